/* engine_thread.h — the TUI's engine thread: it owns a training session,
 * trains and measures off the UI thread (token norms, importance, spectrum,
 * hidden attention and influence on the inspected text or test image),
 * takes commands from a queue, and publishes snapshots (copies of
 * everything the panels draw) under a mutex, waking the UI through a
 * self-pipe.  Only the UI thread calls curses. */
#ifndef SSM_ENGINE_THREAD_H
#define SSM_ENGINE_THREAD_H

#include "lab/session.h"
#include "engine/status.h"

#define SSM_SNAP_MAX_T 1024      /* inspected tokens (28 x 28 and 32 x 32 pixel images fit) */
#define SSM_SNAP_MAX_LAYER 64    /* layers measured */
#define SSM_SNAP_MAX_N 64        /* eigenvalues shown per layer */
#define SSM_SNAP_HIST 1024       /* loss history points (decimated when full) */
#define SSM_INFL_EXACT_MAX_D 64  /* influence: exact up to this d_model, else probes */
#define SSM_INFL_PROBES 32       /* Gaussian probes of the estimate */

typedef enum {
    SSM_CMD_TOGGLE = 0,  /* start or pause training */
    SSM_CMD_PAUSE,
    SSM_CMD_STEP,        /* one step, then paused */
    SSM_CMD_VALIDATE,    /* validate now (cancellable) */
    SSM_CMD_NEW_MODEL,   /* fresh model with scenario, polarize, reorder */
    SSM_CMD_TEXT,        /* inspect text arg (language models) */
    SSM_CMD_IMAGE,       /* inspect test image index (image classifiers) */
    SSM_CMD_LOAD,        /* load checkpoint dir arg */
    SSM_CMD_SAVE,        /* save into dir arg ("" = the run's out) */
    SSM_CMD_SELECT,      /* hidden attention of layer (1-based), channel (-1 = mean);
                          * influence on token */
    SSM_CMD_QUIT
} ssm_cmd_kind;

typedef struct {
    ssm_cmd_kind kind;
    int scenario, polarize, reorder;   /* NEW_MODEL */
    int layer, channel, token;         /* SELECT */
    long index;                        /* IMAGE */
    char arg[RUN_PATH_MAX];            /* TEXT, LOAD, SAVE */
} ssm_cmd;

typedef struct {
    unsigned long seq;         /* publish counter */
    unsigned long cmds_done;   /* commands handled */
    unsigned long measured_cmds; /* cmds_done at the last measurement */
    /* session */
    char name[64], out[RUN_PATH_MAX];
    int scenario, polarize, reorder, n_layer, d_model, d_inner, d_state, n_classes, threads;
    size_t num_params;
    long step;
    int total_steps, running, busy, dirty, ready;
    char busy_what[48];
    double loss, tok_per_s, lr, val_loss;
    double baseline;           /* lm: unigram loss of the validation split; images: ln C */
    double acc, val_acc;       /* images: training batch and validation accuracy (NAN for lm) */
    long val_step;             /* -1: not validated yet */
    /* the inspected input: a text, or a test image of an image classifier */
    int images;                /* 1: an image classifier */
    int n_images, image, image_label, image_pred;      /* test images; the one shown, its label, the prediction */
    int grid_cols, patch;      /* images: tokens per image row, pixels per patch side */
    /* measurements on the inspected input */
    int T;                                             /* tokens */
    unsigned char text[SSM_SNAP_MAX_T];                /* text bytes; images: column digits x mod 10 */
    long measured_step;                                /* -1: none yet */
    float norms[(SSM_SNAP_MAX_LAYER + 1) * SSM_SNAP_MAX_T]; /* (n_layer+1, T) ||x_{l,t}|| */
    float slopes[SSM_SNAP_MAX_T];                      /* log-norm slope per layer */
    float mean_slope;
    int verdict;                                       /* SSM_VERDICT_* */
    float imp[SSM_SNAP_MAX_T];                         /* importance score, input order */
    int order[SSM_SNAP_MAX_T];                         /* positions by increasing score */
    int imp_learned;                                   /* 1: learned k; 0: mean Delta proxy */
    int spec_ok, spec_N;
    int n_pos[SSM_SNAP_MAX_LAYER], n_neg[SSM_SNAP_MAX_LAYER], n_cplx[SSM_SNAP_MAX_LAYER];
    int cls[SSM_SNAP_MAX_LAYER];                       /* SSM_SPECTRUM_* */
    char signs[SSM_SNAP_MAX_LAYER][SSM_SNAP_MAX_N + 1];/* '+' '-' '~' '0' by decreasing re */
    int attn_ok, attn_layer, attn_channel;             /* layer 1-based; channel -1 = mean */
    unsigned char attn[SSM_SNAP_MAX_T * SSM_SNAP_MAX_T]; /* (T, T) |alpha| / row max, as 0..255 */
    char attn_note[96];                                /* why there is no attention ("" = none) */
    int infl_ok, infl_token, infl_probes;              /* probes 0: exact */
    char infl_note[64];                                /* why there is no influence */
    long infl_passes;                                  /* backward passes of the last influence */
    float infl[SSM_SNAP_MAX_T];                        /* I(t,s) = ||dx_n[t]/dx_0[s]||_F, s = 0..T-1 */
    double infl_rate, infl_half_life, infl_r2;         /* decay fit over s < t (NAN: no fit) */
    int infl_fit_n;                                    /* points in the fit */
    /* history */
    int n_hist, n_val;
    long hist_step[SSM_SNAP_HIST], val_steps[SSM_SNAP_HIST];
    float hist_loss[SSM_SNAP_HIST], val_hist[SSM_SNAP_HIST];
    /* the engine's last message */
    unsigned long msg_seq;
    int msg_error;
    char msg[256];
} ssm_snapshot;

typedef struct ssm_engine ssm_engine;

typedef struct {
    int wake_fd;          /* write end of the UI's self-pipe (nonblocking) */
    int autostart;        /* start training at once */
    const char *text;     /* inspected text (NULL: a default sentence) */
    long image;           /* image classifiers: the inspected test image */
} ssm_engine_options;

/* Take ownership of an opened session and start the thread.  The session
 * struct is moved into the engine (s is zeroed; on failure it is freed). */
ssm_status ssm_engine_start(ssm_engine **out, ssm_session *s, const run_config *base,
                            const ssm_engine_options *o);

/* Queue a command (never blocks; a SELECT replaces a queued SELECT).
 * Returns 0, or -1 when the queue is full. */
int ssm_engine_send(ssm_engine *e, const ssm_cmd *c);

/* Ask the running computation (training run, validation, measurement) to stop. */
void ssm_engine_cancel(ssm_engine *e);

/* Copy the latest snapshot into dst (under the mutex), unless dst already
 * holds it (the same seq). */
void ssm_engine_snapshot(ssm_engine *e, ssm_snapshot *dst);

/* Commands sent so far (for waiting until they are handled). */
unsigned long ssm_engine_sent(ssm_engine *e);

/* Send QUIT, join the thread and free everything. */
void ssm_engine_stop(ssm_engine *e);

#endif
