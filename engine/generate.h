/* generate.h — recurrent inference for generation: the per-sequence state of
 * every layer (the causal conv's window of past inputs and the SSM state h)
 * and a step that runs one token through the model in O(1) time and memory
 * per token, giving the same logits as the full forward (ssmlab-math(7) MODEL) at that
 * position.
 *
 * Letters as in model.h: D d_model, E d_inner, Ns state_dim (N learned plus
 * the pinned channels), R dt_rank, K d_conv, V padded vocabulary. */
#ifndef SSM_GENERATE_H
#define SSM_GENERATE_H

#include "engine/balance.h"
#include "engine/model.h"
#include "engine/status.h"

/* The largest team a step runs on; the threads' shares of the bf16
 * products follow their measured speed. */
#define SSM_GEN_TEAM_MAX 16

/* The phases of a step whose split follows the threads' measured speeds:
 * in_proj, the channels (dt_proj, softplus, the scan step, the gate;
 * Mamba-2: the heads' dt, softplus and SSD step), out_proj and the LM head
 * (a thread's rate differs between them). */
enum { SSM_GEN_IN_PROJ, SSM_GEN_CHANNELS, SSM_GEN_OUT_PROJ, SSM_GEN_HEAD, SSM_GEN_PHASES };

typedef struct {
    int n_layer, D, E, Ns, R, K, V; /* sizes, copied from the model's config */
    int arch;        /* SSM_ARCH_*; Mamba-2 (ssmlab-math(7) MAMBA-2) reads the
                      * buffers below as its own: h as (n_layer, H, P, N)
                      * (E Ns = H P N), A's first H entries per layer as A_h,
                      * xz as [z; xBC; dt], u as xBC, delta's first H as dt */
    int Cw;          /* conv channels: E (Mamba-1), E + 2GN (Mamba-2) */
    int Wz;          /* in_proj rows: 2E (Mamba-1), 2E + 2GN + H (Mamba-2) */
    long pos;        /* tokens consumed since build or reset */
    float *memory;   /* one allocation holding every buffer below */
    /* carried from token to token */
    float *conv;     /* (n_layer, Cw, K-1) past conv inputs, oldest first */
    float *h;        /* (n_layer, E, Ns)  SSM state */
    /* constant after build */
    float *A;        /* (n_layer, E, Ns)  A in channel order [one-pinned 0,
                      * learned -exp(A_log), zero-pinned -100] */
    /* per-token scratch */
    float *x;        /* (D)     residual stream */
    float *xn;       /* (SSM_GEN_TEAM_MAX, D) RMSNorm output, one row per
                      * thread of the step's team (at most that many) */
    float *xz;       /* (Wz)    in_proj output [u; z] */
    float *u;        /* (Cw)    SiLU(conv) */
    float *xdbl;     /* (R+2Ns) [delta; B; C] */
    float *delta;    /* (E)     softplus(W_dt delta + b_dt) */
    float *y;        /* (E)     scan output incl. D*u, then gated */
    float *mix;      /* (D)     mixer output */
    /* the team's balance for bf16 products and the channel phase, per
     * phase, updated after each token (a row's or a channel's result does
     * not depend on which thread runs it, so these move only the time,
     * never the bits) */
    ssm_balance balance[SSM_GEN_PHASES];
    int *claim;      /* (2 n_layer + 1) per shared product of a token (in_proj
                      * and out_proj of each layer, the head): the next of its
                      * tail rows for a thread to claim, zeroed per token */
} ssm_gen_state;

/* Size the state for m and zero it.  Derives what the step reads from the
 * weights: x_proj's S_B and S_C rows for scenario models
 * (ssm_scenario_forward) and A of every layer, so build again after the
 * weights change.  SSM_ERR_CONFIG for classifiers and continuous-input
 * models (no language-model head to step), SSM_ERR_NOMEM.  On failure *s is
 * empty (ssm_gen_state_free is still safe). */
ssm_status ssm_gen_state_build(ssm_gen_state *s, ssm_model *m);
void ssm_gen_state_free(ssm_gen_state *s);

/* Forget the sequence: zero the conv windows and the SSM states. */
void ssm_gen_state_reset(ssm_gen_state *s);

/* Feed token at position s->pos and write the next-token logits (V).  The
 * logits equal those of ssm_model_forward at the same position (up to
 * float rounding: matrix-vector products instead of GEMMs).  A model with
 * bf16 weights (SSM_WEIGHTS_BF16) multiplies by them directly with the
 * active path of engine/bf16.h (the forward widens them: the same weights,
 * the same logits up to rounding).  No allocation.
 * SSM_ERR_DATA for a token outside [0, V); SSM_ERR_USAGE for a state built
 * for another model shape. */
ssm_status ssm_model_step(const ssm_model *m, ssm_gen_state *s, int token,
                          float *logits /* (V) */);

/* Feed a whole prompt of n tokens at once, at position 0 of a fresh (or
 * reset) state: the parallel forward pass over the prompt (GEMMs and the
 * fast scan, not n recurrent steps), which leaves each layer's final SSM
 * state and conv window in s, ready for ssm_model_step, and writes the
 * next-token logits (V) after the last prompt token.  Same results as n
 * calls of ssm_model_step, up to float rounding.  It runs in the model's
 * activation buffers (any probe attached to m is set aside meanwhile).
 * SSM_ERR_USAGE when s is not at position 0 or n < 1; SSM_ERR_DATA for a
 * token outside [0, V). */
ssm_status ssm_model_prefill(ssm_model *m, ssm_gen_state *s, const int *tokens, int n,
                             float *logits /* (V) */);

#endif
