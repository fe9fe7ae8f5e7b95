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
 * and scenarios/task.h. */
#ifndef SSM_SESSION_H
#define SSM_SESSION_H

#include <stdatomic.h>
#include <stdint.h>

#include "scenarios/run_config.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "engine/status.h"
#include "scenarios/task.h"

typedef struct {
    run_config rc;
    char name[64];        /* shown to users: config basename or checkpoint dir */
    task_data *data;      /* corpus or images, and the (B, L) batch block (owned) */
    int images;           /* 1: an image classifier (rc.task classify) */
    double baseline;      /* lm: unigram loss of the validation split; images: ln C (chance) */
    ssm_model model;      /* the trained model, activations sized (B, L) */
    ssm_adamw opt;
    long tokens_seen;
    long saved_step;      /* opt.step at the last save or load; -1: never */
    ssm_model probe;      /* weights copied from model, activations (1, T) */
    int probe_T;          /* tokens of the last probe forward */
    ssm_batch probe_batch;/* its batch (the caller keeps tokens or inputs alive) */
} ssm_session;

/* Load the task's data and build a freshly initialised model from rc
 * (checked with run_config_check).  name may be NULL (then "defaults"). */
ssm_status ssm_session_open(ssm_session *s, const run_config *rc, const char *name);

/* Load checkpoint dir (weights, and optimizer moments when present): the
 * run configuration is base, then the checkpoint's stored one (keys it
 * cannot apply are skipped), then the n `key=value` overrides; the
 * checkpoint's architecture wins, and out becomes dir.  An image
 * classifier needs its stored run configuration (which names its data). */
ssm_status ssm_session_open_checkpoint(ssm_session *s, const char *dir, const run_config *base,
                                       char *const *overrides, int n);

/* Rebuild a fresh model (step 0) with architecture mc (input kind and head
 * are the task's), keeping the data.  On failure the session is unchanged. */
ssm_status ssm_session_rebuild(ssm_session *s, const ssm_config *mc);

void ssm_session_free(ssm_session *s);

/* One optimizer step over grad_accum micro-batches: *loss is their mean
 * loss, *acc the classifier's accuracy on them (NAN for lm), *lr the
 * learning rate used. */
ssm_status ssm_session_step(ssm_session *s, double *loss, double *acc, float *lr);

/* Mean validation loss (and classifier accuracy, else NAN) over at most
 * max_batches batches (0: the whole split or test set).  Stops with
 * SSM_ERR_INTERRUPTED when *cancel becomes nonzero. */
ssm_status ssm_session_validate(ssm_session *s, int max_batches, atomic_int *cancel, double *loss,
                                double *acc);

/* Save weights, optimizer moments and the run configuration into dir. */
ssm_status ssm_session_save(ssm_session *s, const char *dir);

/* Steps taken since the last save or load. */
int ssm_session_dirty(const ssm_session *s);

/* Image classifiers: test images, tokens per image, values per token and
 * tokens per image row (patches or pixels); all 0 for lm. */
int ssm_session_image_count(const ssm_session *s);
void ssm_session_image_shape(const ssm_session *s, int *L, int *d_input, int *grid_cols);

/* Test image index as the model's input sequence: inputs (L, d_input), as
 * the training run built its sequences; *label its class. */
ssm_status ssm_session_image(const ssm_session *s, long index, float *inputs, int *label);

/* Copy the current weights into the probe model and run it on one
 * sequence of T tokens (tokens) or T continuous values (inputs, (T,
 * d_input)), batch 1, no targets; tokens or inputs must stay alive while
 * the probe's activations are used.  Afterwards s->probe.acts hold the
 * activations of every layer (the probe has gradients allocated, so the
 * forward keeps them). */
ssm_status ssm_session_probe(ssm_session *s, const int *tokens, const float *inputs, int T);

/* Hidden attention (ssmlab-math(7) RECENCY) of layer l (0-based) on the
 * probe's last forward: ssm_recency_attention on its one sequence, the
 * function ssmlab inspect calls, so both show the same numbers.  channel
 * >= 0: that channel's alpha_e; channel < 0: the mean over channels of
 * |alpha_e|.  out is (T, T), zero above the diagonal.  Layer 0 of a
 * reordering model is refused (its positions are the sorted ones).
 * SSM_ERR_INTERRUPTED when *cancel becomes nonzero (cancel may be NULL). */
ssm_status ssm_session_hidden_attention(const ssm_model *probe, int l, int channel,
                                        atomic_int *cancel, float *out);

/* Influence (ssmlab-math(7) RECENCY) on the probe's last forward, for
 * target token t: I[s] = ||d x_n[t] / d x_0[s]||_F for s = 0..T-1, through
 * ssm_recency_influence_kept (the function ssmlab inspect reaches).
 * probes 0: exact (D backward passes); K > 0: K Gaussian probes driven by
 * seed.  *passes gets the backward passes run.  The probe's parameter
 * gradients are zeroed afterwards; its activations are kept.
 * SSM_ERR_INTERRUPTED when *cancel becomes nonzero (cancel may be NULL). */
ssm_status ssm_session_influence(ssm_model *probe, int t, int probes, uint64_t seed,
                                 atomic_int *cancel, float *I, long *passes);

#endif
