/* session.h — a training session for the engine thread of the TUI: a run
 * configuration becomes data, model and optimizer; the session takes single
 * optimizer steps, validates (cancellably), saves and loads checkpoints, and
 * keeps a probe copy of the model for measurements on one inspected text
 * (token norms, importance, spectrum, hidden attention of SPEC §2–3).
 * It mirrors the loop of cli/train.c (same batches for the same seed and
 * step); byte-level language models only for now. */
#ifndef SSM_SESSION_H
#define SSM_SESSION_H

#include <stdatomic.h>

#include "config.h"
#include "model.h"
#include "optim.h"
#include "status.h"
#include "text.h"

typedef struct {
    run_config rc;
    char name[64];        /* shown to users: config basename or checkpoint dir */
    ssm_text text;        /* corpus (train + validation bytes) */
    double unigram;       /* unigram baseline of the validation split, nats */
    ssm_model model;      /* the trained model, activations sized (B, L) */
    ssm_adamw opt;
    ssm_text_block blk;   /* (B, L) training batch */
    ssm_text_block vblk;  /* (B, L) validation batch */
    long tokens_seen;
    long saved_step;      /* opt.step at the last save or load; -1: never */
    ssm_model probe;      /* weights copied from model, activations (1, T) */
    int probe_T;          /* tokens of the last probe forward */
} ssm_session;

/* Load rc->data and build a freshly initialised model from rc (checked with
 * run_config_check).  name may be NULL (then "defaults"). */
ssm_status ssm_session_open(ssm_session *s, const run_config *rc, const char *name);

/* Load checkpoint dir (weights, and optimizer moments when present): the
 * run configuration is base, then the checkpoint's stored one (keys it
 * cannot apply are skipped), then the n `key=value` overrides; the
 * checkpoint's architecture wins, and out becomes dir. */
ssm_status ssm_session_open_checkpoint(ssm_session *s, const char *dir, const run_config *base,
                                       char *const *overrides, int n);

/* Rebuild a fresh model (step 0) with architecture mc, keeping the data.
 * On failure the session is unchanged. */
ssm_status ssm_session_rebuild(ssm_session *s, const ssm_config *mc);

void ssm_session_free(ssm_session *s);

/* One optimizer step over grad_accum micro-batches: *loss is their mean
 * loss, *lr the learning rate used. */
ssm_status ssm_session_step(ssm_session *s, double *loss, float *lr);

/* Mean validation loss over at most max_batches batches (0: the whole
 * split).  Stops with SSM_ERR_INTERRUPTED when *cancel becomes nonzero. */
ssm_status ssm_session_validate(ssm_session *s, int max_batches, atomic_int *cancel, double *loss);

/* Save weights, optimizer moments and the run configuration into dir. */
ssm_status ssm_session_save(ssm_session *s, const char *dir);

/* Steps taken since the last save or load. */
int ssm_session_dirty(const ssm_session *s);

/* Copy the current weights into the probe model and run it on tokens (T)
 * (batch 1, no targets).  Afterwards s->probe.acts hold the activations of
 * every layer (the probe has gradients allocated, so the forward keeps them). */
ssm_status ssm_session_probe(ssm_session *s, const int *tokens, int T);

/* Hidden attention of SPEC §3 for layer l (0-based mixer index) of the
 * probe's last forward (a model with gradients allocated, so that every
 * layer's activations are kept): alpha_e[t][s] = C_t . (prod_{k=s+1..t}
 * exp(Delta_k[e] A[e,:])) (Delta_s[e] B_s) for s <= t, over all Ns state
 * channels (pinned ones included).  channel >= 0: out[t][s] = alpha_e for
 * that channel; channel < 0: out = mean over channels of |alpha_e|.
 * out is (T, T), zero above the diagonal.  SSM_ERR_INTERRUPTED when
 * *cancel becomes nonzero (cancel may be NULL). */
ssm_status ssm_session_hidden_attention(const ssm_model *probe, int l, int channel,
                                        atomic_int *cancel, float *out);

#endif
