/* engine_thread.h — the TUI's engine thread: it owns a training session,
 * trains and measures off the UI thread (token norms and their verdicts,
 * importance, spectrum, the flow of the selected layer, hidden attention
 * and influence, the states and their memory horizons, the logit lens, on
 * the inspected text or test image, live on the model with the user's
 * interventions when there are any;
 * for Mamba-2 models per head and per group where that is what they mean,
 * and the engine's refusal in place of what they do not have yet),
 * takes commands from a queue, and publishes snapshots (copies of
 * everything the panels draw) under a mutex, waking the UI through a
 * self-pipe.  Only the UI thread calls curses. */
#ifndef SSM_ENGINE_THREAD_H
#define SSM_ENGINE_THREAD_H

#include "lab/session.h"
#include "engine/status.h"

#define SSM_SNAP_MAX_T 1024      /* inspected tokens (28 x 28 and 32 x 32 pixel images fit) */
#define SSM_SNAP_TEXT 1024       /* bytes of the inspected text */
#define SSM_SNAP_LABEL 16        /* bytes of a token's label, with the NUL */
#define SSM_SNAP_PIXELS 1024     /* pixels of the test image shown (28 x 28 and 32 x 32 fit) */
#define SSM_SNAP_MAX_LAYER 64    /* layers measured */
#define SSM_SNAP_FLOW_T SSM_FLOW_STEPS_DEFAULT   /* flow steps shown */
#define SSM_SNAP_MAX_N 64        /* eigenvalues shown per layer (Mamba-2: per group) */
#define SSM_SNAP_SPEC_ROWS 256   /* spectra shown: a layer's, or (Mamba-2) a layer's groups' */
#define SSM_SNAP_HIST 1024       /* loss history points (decimated when full) */
#define SSM_SNAP_DYN 256         /* validations with dynamics in the history (decimated when full) */
#define SSM_INFL_EXACT_MAX_D 64  /* influence: exact up to this d_model, else probes */
#define SSM_INFL_PROBES 32       /* Gaussian probes of the estimate */
#define SSM_SNAP_HZ_BINS 10      /* memory-horizon histogram: 9 finite bins, then infinite */
#define SSM_IV_MAX 16            /* channels ablated, and channels pinned, at most */

/* The memory-horizon histogram's bin of h tokens (ssm_states_horizon):
 * 0: h < 1; k = 1..7: 4^(k-1) <= h < 4^k; 8: 16384 tokens and more;
 * SSM_SNAP_HZ_BINS - 1: infinite (some A[e,n] = 0).  label: the bin's
 * lower edge as shown ("<1", "1", "4", ..., "16k", "inf"). */
int ssm_horizon_bin(float h);
const char *ssm_horizon_bin_label(int k);

/* The dynamics of the history's validations, by train.csv column: eig_pos,
 * eig_neg, mean_slope, mix_slope, half_life (NAN: no exponential decay),
 * cos_last. */
enum { SSM_DYN_POS = 0, SSM_DYN_NEG, SSM_DYN_SLOPE, SSM_DYN_MIX_SLOPE, SSM_DYN_HALF_LIFE, SSM_DYN_COS, SSM_DYN_NCOLS };

typedef enum {
    SSM_CMD_TOGGLE = 0,  /* start or pause training */
    SSM_CMD_PAUSE,
    SSM_CMD_RUN,         /* start training (when it can train) */
    SSM_CMD_STEP,        /* one step, then paused */
    SSM_CMD_VALIDATE,    /* validate now (cancellable) */
    SSM_CMD_NEW_MODEL,   /* fresh model with scenario, polarize, reorder: a new run */
    SSM_CMD_TEXT,        /* inspect text arg (language models) */
    SSM_CMD_TOKENS,      /* inspect the token ids listed in arg ("1,2,3" or "1 2 3") */
    SSM_CMD_IMAGE,       /* inspect test image index (image classifiers) */
    SSM_CMD_LOAD,        /* load checkpoint dir arg, to inspect it */
    SSM_CMD_SAVE,        /* save into dir arg ("" = the run's out); force: also over a
                          * checkpoint this session did not write (the user confirmed) */
    SSM_CMD_SELECT,      /* hidden attention of layer (0-based, as ssmlab inspect counts),
                          * channel (-1 = mean); influence and logit lens on token */
    SSM_CMD_ABLATE,      /* hold every state of channel `channel` of layer `layer` at zero,
                          * or, when it is held, let it go */
    SSM_CMD_PIN,         /* pin A = 0 for every state of that channel (one-polarized), or unpin it */
    SSM_CMD_CLEAR,       /* drop every intervention */
    SSM_CMD_QUIT
} ssm_cmd_kind;

typedef struct {
    ssm_cmd_kind kind;
    int scenario, polarize, reorder;   /* NEW_MODEL */
    int layer, channel, token;         /* SELECT; layer, channel: ABLATE, PIN */
    int force;                         /* SAVE */
    long index;                        /* IMAGE */
    char arg[RUN_PATH_MAX];            /* TEXT, TOKENS, LOAD, SAVE */
} ssm_cmd;

typedef struct {
    unsigned long seq;         /* publish counter */
    unsigned long cmds_done;   /* commands handled */
    unsigned long measured_cmds; /* cmds_done at the last measurement */
    /* session */
    char name[64];             /* the run's name, or the loaded checkpoint's while inspecting */
    char out[RUN_PATH_MAX];    /* where the run is saved */
    char loaded[RUN_PATH_MAX]; /* the checkpoint loaded ("" = none) */
    int inspecting;            /* loaded and not trained since */
    int out_written;           /* this session wrote out for this model */
    char base_name[64], base_parent[RUN_PATH_MAX];   /* new runs are named after this run */
    int base_set[SSM_RUN_NSETTINGS];                 /* and its settings (ssm_run_dir_path) */
    int can_train;             /* else train_note says why not */
    char train_note[192];
    unsigned long saves;       /* saves done */
    int text_ok;               /* text can be inspected (else token ids) */
    int tokenizer;             /* a tokenizer.json tokenizes the text */
    int vocab_size;
    int scenario, polarize, reorder, n_layer, d_model, d_inner, d_state, n_classes, threads;
    int arch, n_heads, n_groups;   /* SSM_ARCH_*; Mamba-2's heads and groups (0 for Mamba-1) */
    int attn_units;            /* hidden-attention units to select: channels, or Mamba-2's heads */
    char attn_unit[8];         /* "channel" or "head" (ssm_session_attn_units) */
    char setting_note[SSM_RUN_NSETTINGS][128];   /* why the next scenario, polarize, reorder
                                                  * makes no model (the engine's check; "" = it does) */
    size_t num_params;
    long step, seed;
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
    char label_name[24], pred_name[24];  /* images: class names of label and prediction ("" = none) */
    int img_rows, img_cols;    /* images: the test image's size */
    unsigned char pixels[SSM_SNAP_PIXELS];   /* (img_rows, img_cols) grey levels */
    char input[SSM_SNAP_TEXT + 1];           /* the inspected text, or token ids "1,2,3" */
    /* measurements on the inspected input */
    int T;                                             /* tokens */
    int ids[SSM_SNAP_MAX_T];                           /* token ids (text); images: t */
    char label[SSM_SNAP_MAX_T][SSM_SNAP_LABEL];        /* token t's bytes, its id, or y<row>x<col> */
    long measured_step;                                /* -1: none yet */
    float norms[(SSM_SNAP_MAX_LAYER + 1) * SSM_SNAP_MAX_T]; /* (n_layer+1, T) ||x_{l,t}|| */
    float slopes[SSM_SNAP_MAX_T];                      /* log-norm slope per layer */
    float mean_slope, r2;                              /* residual stream: mean slope, R^2 of the mean's line */
    int verdict;                                       /* SSM_VERDICT_* */
    float mix_slope, mix_r2;                           /* mixer outputs (NAN for one layer) */
    int mix_verdict;                                   /* SSM_VERDICT_* */
    /* the flow of the selected layer from x_0 (ssm_session_flow) */
    int flow_ok, flow_layer, flow_steps, flow_verdict; /* steps done; SSM_FLOW_* */
    float flow_h, flow_rate, flow_r2;                  /* step; rate and R^2 of the mean ln-norm's line */
    float flow_norms[(SSM_SNAP_FLOW_T + 1) * SSM_SNAP_MAX_T];   /* (flow_steps+1, T) ||x_i(k h)|| */
    char flow_note[96];                                /* why there is no flow ("" = none) */
    float imp[SSM_SNAP_MAX_T];                         /* importance score, input order */
    int order[SSM_SNAP_MAX_T];                         /* positions by increasing score */
    int imp_learned;                                   /* 1: learned k; 0: mean Delta proxy */
    int imp_ok;                                        /* measured */
    int spec_ok, spec_N, spec_groups;                  /* row r: layer r / spec_groups, group r % spec_groups */
    int spec_rows;                                     /* rows measured (n_layer * spec_groups, at most SSM_SNAP_SPEC_ROWS) */
    int n_pos[SSM_SNAP_SPEC_ROWS], n_neg[SSM_SNAP_SPEC_ROWS], n_cplx[SSM_SNAP_SPEC_ROWS];
    int cls[SSM_SNAP_SPEC_ROWS];                       /* SSM_SPECTRUM_* */
    char signs[SSM_SNAP_SPEC_ROWS][SSM_SNAP_MAX_N + 1];/* '+' '-' '~' '0' by decreasing re */
    int attn_ok, attn_layer, attn_channel;             /* layer 0-based; channel (Mamba-2: head) -1 = mean */
    unsigned char attn[SSM_SNAP_MAX_T * SSM_SNAP_MAX_T]; /* (T, T) |alpha| / row max, as 0..255 */
    char attn_note[96];                                /* why there is no attention ("" = none) */
    int infl_ok, infl_token, infl_probes;              /* probes 0: exact */
    char infl_note[64];                                /* why there is no influence */
    long infl_passes;                                  /* backward passes of the last influence */
    float infl[SSM_SNAP_MAX_T];                        /* I(t,s) = ||dx_n[t]/dx_0[s]||_F, s = 0..T-1 */
    double infl_rate, infl_half_life, infl_r2;         /* decay fit over s < t (NAN: no fit) */
    int infl_fit_n;                                    /* points in the fit */
    int infl_exponential;                              /* R^2 >= TASK_DECAY_MIN_R2 (task_decay_exponential) */
    /* the states of every layer on the inspected input (ssmlab-inspect(1) STATES),
     * from a probed forward; reordering layers in their sorted order */
    int states_ok;
    char states_note[96];                              /* why there are none ("" = none) */
    float st_norm[SSM_SNAP_MAX_LAYER * SSM_SNAP_MAX_T];/* (n_layer, T) ||h_t||_F */
    int hz_bins[SSM_SNAP_MAX_LAYER][SSM_SNAP_HZ_BINS]; /* channels per memory-horizon bin */
    /* the logit lens at the selected token, rows x_0 .. x_n (language models) */
    int lens_ok, lens_token;
    char lens_note[96];                                /* why there is none */
    int lens_top[SSM_SNAP_MAX_LAYER + 1];
    char lens_label[SSM_SNAP_MAX_LAYER + 1][SSM_SNAP_LABEL];   /* the top-1 token's label */
    float lens_prob[SSM_SNAP_MAX_LAYER + 1], lens_entropy[SSM_SNAP_MAX_LAYER + 1],
        lens_kl[SSM_SNAP_MAX_LAYER + 1];               /* nats; KL(final || lens) */
    /* interventions on the measured model (never on training) */
    int n_ablated, n_pinned;                           /* channels */
    char iv_desc[256];                                 /* "ablate 0:3, pin 1:2:*=0" ("" = none) */
    /* history: a loaded checkpoint's train.csv up to its step, then this run's rows */
    int n_hist, n_val;
    long hist_step[SSM_SNAP_HIST], val_steps[SSM_SNAP_HIST];
    float hist_loss[SSM_SNAP_HIST], val_hist[SSM_SNAP_HIST];
    int n_dyn;                                         /* validations with dynamics */
    long dyn_step[SSM_SNAP_DYN];
    float dyn[SSM_DYN_NCOLS][SSM_SNAP_DYN];            /* SSM_DYN_* */
    char hist_file[RUN_PATH_MAX + 16];                 /* the train.csv written or shown ("" = none) */
    /* the engine's last message */
    unsigned long msg_seq;
    int msg_error;
    char msg[256];
} ssm_snapshot;

typedef struct ssm_engine ssm_engine;

typedef struct {
    int wake_fd;          /* write end of the UI's self-pipe (nonblocking) */
    int autostart;        /* start training at once (not when it cannot train) */
    const char *text;     /* inspected text (NULL: a default sentence, or token ids 0, 1, ...
                           * when text does not fit the model) */
    long image;           /* image classifiers: the inspected test image */
    int weights;          /* SSM_WEIGHTS_* the load command inspects checkpoints in, or -1:
                           * bf16 (f32 for Mamba-2; ssm_session_open_checkpoint_as) */
} ssm_engine_options;

/* Take ownership of an opened session and start the thread.  The session
 * struct is moved into the engine (s is zeroed; on failure it is freed).
 * A text that does not fit the model is refused (SSM_ERR_USAGE, why). */
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
