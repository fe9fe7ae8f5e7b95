/* session.h — a training session for the engine thread of the TUI: a run
 * configuration becomes data, model and optimizer; the session takes single
 * optimizer steps, validates (cancellably), saves and loads checkpoints, and
 * keeps a probe copy of the model for measurements on one inspected input
 * (token norms, importance, spectrum, hidden attention and influence of
 * ssmlab-math(7)).  Its training step and validation are scenarios/task.h's,
 * the ones ssmlab train runs (the same batches for the same seed and step),
 * and its measurements are engine/'s: byte-level language models (task lm)
 * and image classifiers (task classify), whose inspected input is a test
 * image.  The run configuration and the task data come from scenarios/run_config.h
 * and scenarios/task.h.
 *
 * A session never loses work and never writes where it should not: a
 * loaded checkpoint is looked at (inspecting) until training is asked for,
 * and then trains as a new run beside it (runs/b7 -> runs/b7-2); a new
 * model (scenario, polarize, reorder) is a new run named after its settings
 * (lab/run_dir.h); saving into a checkpoint directory this session did not
 * write for this model needs ssm_session_overwrite, which the lab calls only
 * after the user typed the path and confirmed.  A checkpoint's
 * tokenizer.json (data/tokenizer.h, as ssmlab inspect and generate use it)
 * tokenizes the inspected text and names its tokens.
 *
 * A run that trains writes its history, rc.out/train.csv, as ssmlab train
 * does (scenarios/history.h): a row per logged step, a validation row with
 * the model's dynamics per validation.  A loaded checkpoint's history is
 * continued by the new run in its own directory (its rows up to the
 * loaded step are copied); the loaded directory is never written.
 *
 * A session holds no training buffers until its run trains: a new run, or
 * a checkpoint opened in either weight format, has no gradients and no
 * AdamW moments (opt.m, opt.v NULL; opt.step is the step) until its first
 * training step, which allocates them (the moments from the checkpoint's
 * directory, checked at open and loaded then: the same bits as a run that
 * held them all along), and keeps them from then on; a save builds the
 * moments alone (it writes them).  While the model does not train the
 * probe's forward runs on the model's own weights (ssm_model_share_weights:
 * one copy); once it trains, the probe copies them at each probe.
 *
 * A checkpoint can be inspected with bf16 weights (engine/model.h
 * SSM_WEIGHTS_BF16, ssm_session_open_checkpoint_as): the model (and the
 * probe, on its weights) holds the large matrices in bf16, and the
 * measurements' backward (influence) is the input-only one
 * (ssm_model_keep_acts, as every probe's).  The first training step or
 * save reloads the checkpoint's float32 weights and optimizer state from
 * its directory (training never starts from rounded weights); the model is
 * float32 from then on. */
#ifndef SSM_SESSION_H
#define SSM_SESSION_H

#include <stdatomic.h>
#include <stdint.h>

#include "data/tokenizer.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/flow.h"
#include "engine/probe.h"
#include "engine/states.h"
#include "engine/status.h"
#include "lab/run_dir.h"
#include "scenarios/history.h"
#include "scenarios/run_config.h"
#include "scenarios/task.h"
#include "scenarios/task_dynamics.h"

typedef struct {
    run_config rc;        /* rc.out: where this run is saved */
    char name[64];        /* shown to users: the run's name, or the loaded checkpoint's while inspecting */
    task_data *data;      /* corpus or images, and the (B, L) batch block (owned) */
    int images;           /* 1: an image classifier (rc.task classify) */
    double baseline;      /* lm: unigram loss of the validation split; images: ln C (chance) */
    ssm_model model;      /* the trained model, activations sized (B, L) */
    ssm_adamw opt;        /* opt.step always; the moments (opt.m, opt.v) and the
                           * model's gradients only from the run's first step
                           * (a save builds the moments alone): an inspecting
                           * session holds no training buffers */
    char opt_from[RUN_PATH_MAX]; /* the loaded checkpoint, whose moments the first
                           * step loads ("" = fresh moments, or built already) */
    long tokens_seen;
    long saved_step;      /* opt.step at the last save or load; -1: never */
    ssm_model probe;      /* the model's weights (shared while it does not
                           * train, else copied), activations (1, T) */
    int probe_T;          /* tokens of the last probe forward */
    ssm_batch probe_batch;/* its batch (the caller keeps tokens or inputs alive) */
    const ssm_probe *iv;  /* interventions on the probe model (NULL: none; ssm_session_intervene) */
    /* runs and checkpoints */
    char loaded[RUN_PATH_MAX];     /* the checkpoint the model came from ("" = none) */
    int inspecting;                /* loaded and not trained since */
    int out_written;               /* this session wrote rc.out for this model */
    char base_name[64];            /* new runs are named after this run ... */
    char base_parent[RUN_PATH_MAX];/* ... and go into this directory */
    int base_set[SSM_RUN_NSETTINGS]; /* the base run's scenario, polarize, reorder */
    ssm_tokenizer tk;              /* the checkpoint's tokenizer.json (kind NONE: none) */
    /* the run's history: rc.out/train.csv, opened at the run's first step */
    history_writer hist;           /* hist.f NULL: not open */
    char hist_dir[RUN_PATH_MAX];   /* the directory it is open in */
    char hist_from[RUN_PATH_MAX];  /* the history the run continues (the loaded checkpoint's; "" = none) */
    double hist_t0;                /* elapsed_s counts from here (the run's first step in this session) */
} ssm_session;

/* Load the task's data and build a freshly initialised model from rc
 * (checked with run_config_check), without training buffers until the
 * first step.  The run is saved into rc.out, or into
 * the first free variant of it (rc.out-2, ...) when rc.out already holds a
 * checkpoint; the run is named after rc.out. */
ssm_status ssm_session_open(ssm_session *s, const run_config *rc);

/* Load checkpoint dir's weights to inspect it (its optimizer moments,
 * when present, are loaded at the first training step or save; moments of
 * another step than the weights' are refused here, and with bf16 weights
 * at that first step): the run configuration is base, then the checkpoint's stored
 * one (keys it cannot apply are skipped), then the n `key=value`
 * overrides; the checkpoint's architecture wins.  dir/tokenizer.json, when
 * present, is loaded (a bad one, or one with more tokens than the model, is
 * an error naming the file).  Training it later saves into the first free
 * variant of dir (dir-2, ...), never into dir.  An image classifier needs
 * its stored run configuration (which names its data). */
ssm_status ssm_session_open_checkpoint(ssm_session *s, const char *dir, const run_config *base,
                                       char *const *overrides, int n);

/* The same with a weight format: SSM_WEIGHTS_F32 (as above),
 * SSM_WEIGHTS_BF16 (inspected in bf16: see the top of this file), or -1:
 * ssm_checkpoint_default_weights (bf16). */
ssm_status ssm_session_open_checkpoint_as(ssm_session *s, const char *dir, const run_config *base,
                                          char *const *overrides, int n, int weights);

/* Rebuild a fresh model (step 0) with architecture mc (input kind and head
 * are the task's), keeping the data and the tokenizer: a new run, named
 * after the base run and the settings that differ from it (ssm_run_dir_name),
 * in a directory that holds no checkpoint.  On failure the session is
 * unchanged. */
ssm_status ssm_session_rebuild(ssm_session *s, const ssm_config *mc);

void ssm_session_free(ssm_session *s);

/* One optimizer step over grad_accum micro-batches (a model inspected in
 * bf16 is first reloaded in float32 from its checkpoint): *loss is their mean
 * loss, *acc the classifier's accuracy on them (NAN for lm), *lr the
 * learning rate used.  The first step of a run opens its history in rc.out
 * (created), continuing hist_from; a step that ssmlab train would log
 * (every log_every, and the last scheduled one) appends a training row. */
ssm_status ssm_session_step(ssm_session *s, double *loss, double *acc, float *lr);

/* Mean validation loss (and classifier accuracy, else NAN) over at most
 * max_batches batches (0: the whole split or test set).  Stops with
 * SSM_ERR_INTERRUPTED when *cancel becomes nonzero. */
ssm_status ssm_session_validate(ssm_session *s, int max_batches, atomic_int *cancel, double *loss,
                                double *acc);

/* ssm_session_validate, then, when the run has a history (it has trained)
 * and *cancel is still 0, the dynamics on the first validation batch
 * (task_dynamics_measure, the quick budget, as ssmlab train measures at
 * each validation) into *dy and a validation row in train.csv.  dy->n_layer
 * is 0 when nothing was measured (no history, cancelled, or failed: then
 * the row's dynamics cells are empty); free dy with task_dynamics_free. */
ssm_status ssm_session_validate_logged(ssm_session *s, int max_batches, atomic_int *cancel, double *loss,
                                       double *acc, task_dynamics *dy);

/* Load the history the session shows: the open train.csv's directory, else
 * the one the run continues (the loaded checkpoint's).  SSM_ERR_NOINPUT
 * when there is none. */
ssm_status ssm_session_history_load(const ssm_session *s, history *h);

/* Save weights, optimizer moments and the run configuration into dir (a
 * model inspected in bf16 is first reloaded in float32, so what is saved is
 * the checkpoint's own weights), or
 * with dir NULL or "" into the run's rc.out (moved to a free variant when a
 * checkpoint appeared there that this session did not write).  Refuses
 * (SSM_ERR_CANTCREAT, naming dir) a directory that holds a checkpoint
 * this session did not write for this model (ssm_run_dir_foreign).  After a
 * save the run's rc.out is dir. */
ssm_status ssm_session_save(ssm_session *s, const char *dir);

/* ssm_session_save into dir even when it holds someone else's checkpoint:
 * for a path the user typed and confirmed. */
ssm_status ssm_session_overwrite(ssm_session *s, const char *dir);

/* SSM_OK when the session can train; else SSM_ERR_USAGE with the reason:
 * the lab trains language models on byte-level text, so a model whose
 * vocabulary cannot hold the 256 bytes, or that reads tokenizer.json
 * tokens, is inspected only. */
ssm_status ssm_session_can_train(const ssm_session *s);

/* The inspected text as the model's tokens: through the tokenizer.json
 * when there is one, else one token per byte.  *ids is malloc'ed (free it)
 * and holds *n >= 0 ids.  SSM_ERR_USAGE with the reason when the text
 * cannot fit: bytes on a model whose vocabulary is smaller than 256 and that
 * has no tokenizer.json. */
ssm_status ssm_session_tokenize(const ssm_session *s, const char *text, int **ids, int *n);

/* Text can be inspected (a tokenizer, or a vocabulary of the 256 bytes). */
int ssm_session_text_ok(const ssm_session *s);

/* Token id's label into buf: the bytes it decodes to (tokenizer or byte
 * vocabulary), or its decimal id.  Returns the label's length in bytes. */
int ssm_session_token_label(const ssm_session *s, int id, char *buf, size_t n);

/* The name of class k of an image classifier's dataset (Fashion-MNIST's
 * "T-shirt/top" .. "Ankle boot", CIFAR-10's "airplane" .. "truck"), or
 * NULL when the dataset has no names (MNIST's digits, a bad k). */
const char *ssm_session_class_name(const ssm_session *s, int k);

/* Test image index as grey levels 0..255 (the mean over channels),
 * (rows, cols) row-major into gray of at most max values; SSM_ERR_USAGE
 * when it does not fit or there is no such image. */
ssm_status ssm_session_image_pixels(const ssm_session *s, long index, unsigned char *gray, int max,
                                    int *rows, int *cols);

/* Steps taken since the last save or load. */
int ssm_session_dirty(const ssm_session *s);

/* Image classifiers: test images, tokens per image, values per token and
 * tokens per image row (patches or pixels); all 0 for lm. */
int ssm_session_image_count(const ssm_session *s);
void ssm_session_image_shape(const ssm_session *s, int *L, int *d_input, int *grid_cols);

/* Test image index as the model's input sequence: inputs (L, d_input), as
 * the training run built its sequences; *label its class. */
ssm_status ssm_session_image(const ssm_session *s, long index, float *inputs, int *label);

/* Run the probe model on the current weights (shared while the model does
 * not train, else copied into it: see the top of this file) on one
 * sequence of T tokens (tokens) or T continuous values (inputs, (T,
 * d_input)), batch 1, no targets; tokens or inputs must stay alive while
 * the probe's activations are used.  Afterwards s->probe.acts hold the
 * activations of every layer: the probe keeps them for the measurements'
 * backward, the input-only one (ssm_model_keep_acts, no parameter
 * gradients), on either architecture. */
ssm_status ssm_session_probe(ssm_session *s, const int *tokens, const float *inputs, int T);

/* The units of m's hidden attention, which the lab selects one at a time:
 * Mamba-1's d_inner channels, Mamba-2's n_heads heads (ssmlab-math(7)
 * MAMBA-2, Per-head measurements).  *unit (when unit is not NULL) gets
 * "channel" or "head". */
int ssm_session_attn_units(const ssm_model *m, const char **unit);

/* Interventions (engine/probe.h: ablations and pins, no patch) on the
 * probe model: attached to it for every following measurement pass (its
 * forwards, hidden attention, influence, flow), never to the trained
 * model, so training steps and validation run without them.  NULL
 * detaches them.  iv must outlive its attachment.  SSM_ERR_USAGE when a
 * spec is out of the model's range (nothing changes then). */
ssm_status ssm_session_intervene(ssm_session *s, const ssm_probe *iv);

/* A look inside the probe's last forward (ssmlab-inspect(1) STATES): the
 * same input run again with look's hook (want_states and on_layer,
 * engine/probe.h) on top of the session's interventions
 * (ssm_model_forward_hooked), then once more with the interventions alone,
 * so the probe's activations stay those of ssm_session_probe. */
ssm_status ssm_session_look(ssm_session *s, const ssm_probe *look);

/* The logit lens (ssmlab-inspect(1) LENS) of a language model's probe at
 * token t of its last forward: for every residual row x_0 .. x_n
 * (n_layer+1 of them, x_l the output of layer l-1) the final norm and head
 * applied to x_l[t] against the final logits of t (ssm_model_head_apply,
 * ssm_lens_row).  out has n_layer+1 entries.  SSM_ERR_USAGE for a
 * classifier or a bad t. */
ssm_status ssm_session_lens(const ssm_model *probe, int t, ssm_lens_stat *out);

/* Hidden attention (ssmlab-math(7) RECENCY) of layer l (0-based) on the
 * probe's last forward: ssm_recency_attention on its one sequence, the
 * function ssmlab inspect calls, so both show the same numbers.  channel
 * >= 0: that channel's alpha_e (Mamba-2: that head's alpha_h); channel < 0:
 * the mean over channels (heads) of |alpha|.  out is (T, T), zero above the diagonal.  Layer 0 of a
 * reordering model is refused (its positions are the sorted ones).
 * SSM_ERR_INTERRUPTED when *cancel becomes nonzero (cancel may be NULL). */
ssm_status ssm_session_hidden_attention(const ssm_model *probe, int l, int channel,
                                        atomic_int *cancel, float *out);

/* Influence (ssmlab-math(7) RECENCY) on the probe's last forward, for
 * target token t: I[s] = ||d x_n[t] / d x_0[s]||_F for s = 0..T-1, through
 * ssm_recency_influence_kept (the function ssmlab inspect reaches).
 * probes 0: exact (D backward passes); K > 0: K Gaussian probes driven by
 * seed.  *passes gets the backward passes run.  The probe's parameter
 * gradients, if it has any (the session's probe has none: an input-only
 * backward), are zeroed afterwards; its activations are kept.
 * SSM_ERR_INTERRUPTED when *cancel becomes nonzero (cancel may be NULL). */
ssm_status ssm_session_influence(ssm_model *probe, int t, int probes, uint64_t seed,
                                 atomic_int *cancel, float *I, long *passes);

/* The depth-as-time flow (ssmlab-math(7) DYNAMICS, engine/flow.h) of
 * layer l's mixer from the probe's embedded tokens x_0, SSM_FLOW_STEPS_DEFAULT
 * steps of SSM_FLOW_STEP_DEFAULT: the flow of ssmlab inspect's verdicts
 * table.  SSM_ERR_INTERRUPTED when *cancel becomes nonzero (cancel may be
 * NULL).  The probe's forward is run again afterwards, so its activations
 * stay those of ssm_session_probe.  out is freed with ssm_flow_free. */
ssm_status ssm_session_flow(ssm_session *s, int l, atomic_int *cancel, ssm_flow *out);

#endif
