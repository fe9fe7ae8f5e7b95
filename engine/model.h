/* model.h — the Mamba-1 residual model of ssmlab-math(7) MODEL: configuration, the
 * parameter block (one allocation, named views, llm.c style), activations,
 * and the forward/backward passes.
 *
 * Letters: B batch, L length, D d_model, E d_inner, N d_state, R dt_rank,
 * K d_conv, V padded vocabulary, C classes, I values per continuous token.
 * Every per-layer tensor is stacked over layers: (n_layer, ...). */
#ifndef SSM_MODEL_H
#define SSM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/balance.h"
#include "engine/probe.h"
#include "engine/status.h"

enum { SSM_INPUT_TOKENS = 0, SSM_INPUT_CONTINUOUS = 1 };

/* The mixer of every layer: Mamba-1 (S6, ssmlab-math(7) MODEL) or Mamba-2
 * (SSD, ssmlab-math(7) MAMBA-2; engine/mamba2.h).  Mamba-2 models are
 * language models on tokens without scenario or reordering; their
 * polarization pins whole heads, not state channels (engine/mamba2.h). */
enum { SSM_ARCH_MAMBA1 = 0, SSM_ARCH_MAMBA2 = 1, SSM_ARCH_COUNT };

/* S_B, S_C parameterisation of ssmlab-math(7) DYNAMICS */
enum { SSM_SCENARIO_DEFAULT = 0, SSM_SCENARIO_POSITIVE, SSM_SCENARIO_NEGATIVE, SSM_SCENARIO_MIXED, SSM_SCENARIO_COUNT };
/* pinned state channels of ssmlab-math(7) RECENCY (Mamba-2: pinned heads):
 * (n_zero, n_one) = (0,0) (1,0) (0,1) (1,1) */
enum { SSM_POLARIZE_NONE = 0, SSM_POLARIZE_ZERO, SSM_POLARIZE_ONE, SSM_POLARIZE_BOTH, SSM_POLARIZE_COUNT };
/* token reordering of the SSM input u in chosen layers (classifiers only),
 * ssmlab-math(7) DYNAMICS: soft is SoftSort, hard a straight-through sort */
enum { SSM_REORDER_OFF = 0, SSM_REORDER_HARD, SSM_REORDER_SOFT, SSM_REORDER_COUNT };
#define SSM_REORDER_MAX_LAYER 63   /* reorder_layers is a 64-bit mask */
/* the classifier's readout, ssmlab-math(7) MODEL: the mean over tokens, the
 * last token, or a learned cls token appended after the last one */
enum { SSM_POOL_MEAN = 0, SSM_POOL_LAST, SSM_POOL_CLS, SSM_POOL_COUNT };

typedef struct {
    int d_model;        /* D */
    int n_layer;
    int d_state;        /* N */
    int d_conv;         /* K */
    int expand;
    int d_inner;        /* E = expand * D (derived) */
    int dt_rank;        /* R; 0 in a config means ceil(D / 16) */
    int vocab_size;     /* as configured (e.g. 50277); 0 for continuous input */
    int pad_vocab_size_multiple;
    int padded_vocab;   /* V: vocab_size rounded up to the multiple (derived) */
    int input_kind;     /* SSM_INPUT_* */
    int d_input;        /* I: values per token for continuous input */
    int n_classes;      /* C > 0: classification head; 0: language-model head */
    int tie_embeddings; /* LM head shares the embedding (1) or has lm_head (0) */
    float norm_eps;     /* RMSNorm epsilon, 1e-5 */
    int scenario;       /* SSM_SCENARIO_* */
    int polarize;       /* SSM_POLARIZE_* */
    int reorder;        /* SSM_REORDER_* */
    float reorder_tau;  /* SoftSort temperature tau > 0 (1 by default) */
    uint64_t reorder_layers; /* bit l: layer l reorders u; 0 means layer 0 alone
                              * (cleared when reorder = off) */
    int n_reorder;      /* reordering layers (derived) */
    int pool;           /* SSM_POOL_*: classifiers only; cls runs on L+1 tokens */
    int n_one, n_zero;  /* pinned channels A = 0 and A = -100 (derived; Mamba-2:
                         * pinned heads, counted in n_heads) */
    int state_dim;      /* Ns = n_one + N + n_zero, the scan's width (derived;
                         * Mamba-2: N) */
    /* Mamba-2 (arch = SSM_ARCH_MAMBA2) only; dt_rank is unused there */
    int arch;           /* SSM_ARCH_* */
    int head_dim;       /* P: channels per head */
    int n_groups;       /* G: groups of heads sharing B and C (and a gated-norm group) */
    int chunk_size;     /* Q: positions per chunk of the SSD scan */
    int n_heads;        /* H = E / P (derived; with polarization E / P + n_one +
                         * n_zero, and d_inner = H P) */
} ssm_config;

/* Parameter tensors, in block order.  Sizes of 0 mean "absent". */
typedef struct {
    float *embedding;   /* (V, D)  token embedding, tokens input only */
    float *input_w;     /* (D, I)  continuous input projection */
    float *input_b;     /* (D) */
    float *norm_w;      /* (n_layer, D)        pre-mixer RMSNorm weight */
    float *in_proj;     /* (n_layer, 2E, D)    [u; z] = W_in x */
    float *conv_w;      /* (n_layer, E, K)     depthwise causal conv */
    float *conv_b;      /* (n_layer, E) */
    float *x_proj;      /* (n_layer, R+2Ns, E) [delta; B; C] = W_x u; B and C
                         * rows in channel order [one-pinned, N learned, zero-pinned] */
    float *dt_proj_w;   /* (n_layer, E, R) */
    float *dt_proj_b;   /* (n_layer, E) */
    float *A_log;       /* (n_layer, E, N)     A = -exp(A_log) */
    float *Dskip;       /* (n_layer, E)        the D skip term */
    float *out_proj;    /* (n_layer, D, E) */
    float *norm_f;      /* (D)                 final RMSNorm weight */
    float *lm_head;     /* (V, D)              untied LM head only */
    float *cls_w;       /* (C, D)              classification head */
    float *cls_b;       /* (C) */
    float *scen_P;      /* (n_layer, N, E)     scenario P: S_C = U(P) */
    float *scen_q;      /* (n_layer, N)        scenario q: S_B = diag(sigma(q)) U(P) */
    float *imp_k;       /* (n_reorder, E)      importance vector k of each reordering layer */
    float *cls_tok;     /* (D)                 token appended after the input (pool cls) */
    /* Mamba-2 only (size 0 in Mamba-1, whose mixer tensors in_proj .. Dskip
     * are size 0 in Mamba-2); W = 2E + 2GN + H, Cw = E + 2GN.  norm_w,
     * out_proj, norm_f and the head are shared. */
    float *m2_in_proj;  /* (n_layer, W, D)     [z; x B C; dt] = W_in x */
    float *m2_conv_w;   /* (n_layer, Cw, K)    depthwise causal conv over x B C */
    float *m2_conv_b;   /* (n_layer, Cw) */
    float *m2_dt_bias;  /* (n_layer, H) */
    float *m2_A_log;    /* (n_layer, H)        A_h = -exp(A_log_h) */
    float *m2_D;        /* (n_layer, H)        the D skip of each head */
    float *m2_norm_w;   /* (n_layer, E)        gated RMSNorm weight */
} ssm_params;
#define SSM_NUM_PARAM_TENSORS 28

/* Weight formats of a model (ssm_model_build_weights, ssm_checkpoint_load_as).
 *
 * SSM_WEIGHTS_F32: every parameter in the float32 block; everything works
 * (training, backward, measurements).
 *
 * SSM_WEIGHTS_BF16: inference only.  The large matrices (embedding,
 * in_proj, x_proj, dt_proj.weight, out_proj, lm_head; Mamba-2: embedding,
 * m2_in_proj, out_proj, lm_head: about 99% of a
 * language model's weights) are held as bfloat16 in one separate
 * allocation (wbf_memory, carved into the views of ssm_params_bf16) and are
 * absent from the float32 block (their ssm_params views are NULL); the small
 * tensors (norms, conv, biases, A_log, D, the classifier, ...) stay float32.
 * The weights take about half the memory and the decode step reads half
 * the bytes.  Under a scenario x_proj stays float32 (its B and C rows are
 * rewritten from scenario_P at every forward).  The recurrent step
 * (engine/generate.h) multiplies by the bf16 matrices directly
 * (engine/bf16.h); the parallel forward widens one layer's matrices at a
 * time to float32 (m->widen) and runs the usual GEMMs, the embedding rows
 * are widened on lookup and the LM head of ssm_model_forward_last is a
 * bf16 matrix-vector product.  Logits agree with float32 weights to 1e-2
 * relative (max |a - b| / max |b| over a row; 3e-3 to 9e-3 on the tests'
 * random models, all of it the weights' rounding: against float32 weights
 * rounded to bf16 they agree to 1e-5).
 * No parameter gradients: ssm_model_alloc_grads and ssm_model_backward
 * refuse with SSM_ERR_USAGE, and so do checkpoint saves; ssm_model_init
 * leaves a bf16 model alone.  The measurements' backward runs: after
 * ssm_model_keep_acts, ssm_model_backward_stream computes the gradients
 * with respect to the activations and the input only, widening each
 * layer's matrices into m->widen as the forward does (the same floats:
 * it equals the float32 backward on the weights rounded to bf16). */
typedef enum { SSM_WEIGHTS_F32 = 0, SSM_WEIGHTS_BF16 = 1, SSM_WEIGHTS_COUNT } ssm_weights;

/* "f32", "bf16"; the parser gives -1 for anything else */
const char *ssm_weights_name(int weights);
int ssm_weights_parse(const char *s);

/* The bfloat16 tensors of a SSM_WEIGHTS_BF16 model, in block order (NULL
 * when absent, as in ssm_params). */
typedef struct {
    uint16_t *embedding;  /* (V, D)              tokens input only */
    uint16_t *in_proj;    /* (n_layer, 2E, D) */
    uint16_t *x_proj;     /* (n_layer, R+2Ns, E) NULL under a scenario (float32 then) */
    uint16_t *dt_proj_w;  /* (n_layer, E, R) */
    uint16_t *out_proj;   /* (n_layer, D, E) */
    uint16_t *lm_head;    /* (V, D)              untied LM head only */
    uint16_t *m2_in_proj; /* (n_layer, W, D)     Mamba-2 only (in_proj, x_proj and
                           * dt_proj_w are then NULL; out_proj is shared) */
} ssm_params_bf16;
#define SSM_NUM_BF16_TENSORS 7

/* Forward activations kept for the backward pass, sized for (B, L), where
 * L = act_L is the batch's length plus 1 under pool cls (the cls token is
 * the last position of every sequence). */
typedef struct {
    float *resid;   /* (n_layer+1, B, L, D) residual stream x_0 .. x_n */
    float *rstd;    /* (n_layer, B, L)      1/sqrt(mean(x^2)+eps) per norm */
    float *xn;      /* (n_layer, B, L, D)   RMSNorm output (mixer input) */
    float *xz;      /* (n_layer, B, L, 2E)  in_proj output [u; z] */
    float *uc;      /* (n_layer, B, L, E)   conv output before SiLU */
    float *u;       /* (n_layer, B, L, E)   SiLU(conv) */
    float *xdbl;    /* (n_layer, B, L, R+2Ns) [delta; B; C] */
    float *dtraw;   /* (n_layer, B, L, E)   W_dt delta + b_dt */
    float *delta;   /* (n_layer, B, L, E)   softplus(dtraw) */
    float *ys;      /* (n_layer, B, L, E)   scan output incl. D*u */
    float *yg;      /* (n_layer, B, L, E)   ys * SiLU(z) */
    float *mix;     /* (n_layer, B, L, D)   mixer output */
    float *rstd_f;  /* (B, L) */
    float *xf;      /* (B, L, D)            final RMSNorm output */
    float *pooled;  /* (B, D)               the head's input (classifier): mean over
                     * tokens, or the last position (pool last, cls) */
    float *logits;  /* (B, L, V) or (B, C) */
    float *dlogits; /* same shape as logits: softmax - onehot, scaled */
    float *imp_s;   /* (S, B, L) importance score of each input token (L without
                     * the cls token), in input order, for each reordering
                     * layer (S = n_reorder): k . (W_dt delta + b_dt); without
                     * reordering (S = 1) layer 0's proxy mean_e Delta_t[e]
                     * (Mamba-2: mean_h dt_t[h]) */
    /* reordering layers only, kept per layer for backward (else one slot):
     * (Sk, ...) with Sk = n_reorder when training, 1 in inference */
    float *perm;    /* (Sk, B, L, L) reordering matrix P-hat (row i holds the
                     * weights of new position i) */
    float *ro_u0;   /* (Sk, B, L, E)    SiLU(conv) in input order */
    float *ro_xdbl0;/* (Sk, B, L, R+2Ns) x_proj of ro_u0 */
    float *ro_dtraw0;/* (Sk, B, L, E)   W_dt delta + b_dt of ro_u0: the scores' source */
    float *m2;      /* Mamba-2 only: the mixers' activations, carved by
                     * engine/mamba2.c (ssm_mamba2_acts_size); the Mamba-1
                     * ones from xz to yg are then size 0 */
} ssm_acts;
#define SSM_NUM_ACT_TENSORS 23

/* One named tensor of a block laid out like the parameters (used for
 * checkpoints, saved gradients and optimizer state alike). */
typedef struct {
    char name[96];  /* checkpoint name, e.g. "backbone.layers.3.mixer.A_log" */
    float *data;    /* view into the block; NULL for a tensor held in bf16 */
    uint16_t *bf16; /* view into m->wbf_memory for a tensor held in bf16
                     * (SSM_WEIGHTS_BF16), else NULL */
    int ndim;
    int shape[4];
    size_t numel;
    int no_decay;   /* AdamW applies no weight decay (A_log, D, biases, norms) */
} ssm_tensor;

typedef struct {
    int B, L;
    const int *tokens;    /* (B, L) token ids, SSM_INPUT_TOKENS */
    const float *inputs;  /* (B, L, I) values, SSM_INPUT_CONTINUOUS */
    const int *targets;   /* LM: (B, L), -1 ignored; classifier: (B); NULL: no loss */
} ssm_batch;

typedef struct {
    ssm_config cfg;
    int weights;            /* SSM_WEIGHTS_*, fixed at build */
    size_t num_params;      /* floats of the float32 block (without the bf16 tensors) */
    ssm_params params;
    float *params_memory;   /* (num_params) */
    size_t num_bf16;        /* bf16 weights, 0 in a float32 model */
    ssm_params_bf16 wbf;    /* views into wbf_memory */
    uint16_t *wbf_memory;   /* (num_bf16) */
    float *widen;           /* (widen_cap) bf16 forward: one layer's matrices, or a
                             * block of LM-head rows, widened to float32 */
    size_t widen_cap;
    ssm_params grads;
    float *grads_memory;    /* (num_params), NULL until ssm_model_alloc_grads */
    ssm_acts acts;
    float *acts_memory;     /* (acts_cap) views for the current batch shape */
    size_t acts_cap;        /* floats; grows to the largest batch seen */
    int act_B, act_L;       /* activations are laid out for this batch shape
                             * (act_L = the batch's L + 1 under pool cls) */
    int act_threads;        /* and the scratch for this many threads */
    int act_lean;           /* laid out for ssm_model_forward_last without
                             * gradients: two residual slots used in turn,
                             * one mixer output, logits (B, V), no dlogits */
    float *scratch;         /* (scratch_cap) scratch of the passes, laid out
                             * like the activations; model.c's scratch_table */
    size_t scratch_cap;
    float loss;             /* mean loss of the last forward with targets */
    int n_targets;          /* targets counted in that loss */
    const ssm_batch *last;  /* batch of the last forward (for backward) */
    const ssm_probe *probe; /* NULL, or the attached probe (engine/probe.h) */
    float *probe_keep;      /* (E, Ns) keep mask of the layer being run */
    float *probe_h;         /* (probe_h_cap) states h_t of the layer being run,
                             * (B, L, E, Ns), when the probe wants them */
    size_t probe_h_cap;
    int probe_patched;      /* the last forward was patched: no backward */
    int keep_acts;          /* every layer's activations are kept without
                             * gradients, for an input-only backward
                             * (ssm_model_keep_acts) */
    int shares_weights;     /* params_memory and wbf_memory are another
                             * model's (ssm_model_share_weights) */
    ssm_balance balance;    /* the threads' speeds on the forward's row
                             * blocks (in_proj, the S6 inputs, the gate and
                             * out_proj), updated after each; the blocks
                             * start at multiples of ssm_model_gemm_granule,
                             * so they move no bit */
} ssm_model;

/* Configuration. */
void ssm_config_default(ssm_config *c);
ssm_status ssm_config_finalize(ssm_config *c);   /* derive E, R, V, Ns; validate */

/* Names of the enums above ("default", "positive", ...; "none", "zero",
 * "one", "both"; "off", "hard", "soft"; "mean", "last", "cls") and their
 * parsers (-1 if unknown). */
const char *ssm_scenario_name(int scenario);
const char *ssm_polarize_name(int polarize);
const char *ssm_reorder_name(int reorder);
const char *ssm_pool_name(int pool);
int ssm_scenario_parse(const char *s);
int ssm_polarize_parse(const char *s);
int ssm_reorder_parse(const char *s);
int ssm_pool_parse(const char *s);

/* Layer l's index among the reordering layers (its slot in imp_k and
 * imp_s), or -1 when it does not reorder. */
int ssm_reorder_slot(const ssm_config *c, int layer);

/* reorder_layers as text: layer numbers 0 to 63 separated by commas ("0,3").
 * parse returns 0 and sets *mask, or -1 for anything else (empty too);
 * format writes the same form ("" for an empty mask). */
int ssm_reorder_layers_parse(const char *s, uint64_t *mask);
void ssm_reorder_layers_format(uint64_t mask, char *buf, size_t cap);

/* Model lifetime. */
ssm_status ssm_model_build(ssm_model *m, const ssm_config *c);   /* params zeroed, float32 */
/* The same with a weight format (SSM_WEIGHTS_*; SSM_ERR_USAGE if unknown). */
ssm_status ssm_model_build_weights(ssm_model *m, const ssm_config *c, int weights);
/* Build dst as a SSM_WEIGHTS_BF16 copy of the float32 model src: the same
 * configuration, the bf16 tensors rounded to nearest even, the rest copied. */
ssm_status ssm_model_to_bf16(ssm_model *dst, const ssm_model *src);
/* Build m on src's weights: the same configuration and weight format, its
 * parameter views (and bf16 views) pointing into src's blocks, which m
 * does not own (ssm_model_free leaves them); its activations, scratch and
 * gradients are its own.  A second set of activations for the same
 * weights (the lab's probe of a model that is not training): src must
 * outlive m and its weights stay as they are meanwhile (m is not trained:
 * the forward's idempotent scenario rewrite of x_proj is the only write). */
ssm_status ssm_model_share_weights(ssm_model *m, const ssm_model *src);
void ssm_model_init(ssm_model *m, uint64_t seed);                 /* mamba_ssm init, float32 only */
ssm_status ssm_model_alloc_grads(ssm_model *m);
/* Keep every layer's activations in the following forwards without
 * parameter gradients, for ssm_model_backward_stream's input-only backward
 * (the measurements: influence, hidden attention of every layer); the only
 * way for a bf16 model (Mamba-1 and Mamba-2).  keeps_acts:
 * 1 when the forward keeps every layer's activations (this, or gradients). */
ssm_status ssm_model_keep_acts(ssm_model *m);
int ssm_model_keeps_acts(const ssm_model *m);
/* What a measurement calls before its forward: ssm_model_keep_acts for a
 * bf16 model, ssm_model_alloc_grads for a float32 one (as before bf16). */
ssm_status ssm_model_keep_for_backward(ssm_model *m);
void ssm_model_free(ssm_model *m);

/* Passes. forward computes logits, and the loss when batch->targets is set.
 * backward accumulates d(loss_scale * loss)/dparam into m->grads. */
ssm_status ssm_model_forward(ssm_model *m, const ssm_batch *batch);
/* The forward of a language model without targets whose head runs on the
 * last position of each sequence only: logits (B, V) (a prompt's prefill).
 * Without gradients it runs lean: only one layer's activations, two
 * residual slots and (B, V) logits are held, so afterwards acts.resid and
 * acts.mix do not hold every layer (the measurements need ssm_model_forward);
 * with no probe attached (and no reordering), the last layer's gate,
 * out_proj and residual run on each sequence's last row only. */
ssm_status ssm_model_forward_last(ssm_model *m, const ssm_batch *batch);
ssm_status ssm_model_backward(ssm_model *m, float loss_scale);
void ssm_model_zero_grad(ssm_model *m);

/* One layer's mixer alone, without its RMSNorm and the residual add:
 * out = Mixer_layer(x) (ssmlab-math(7) MODEL, steps 1-6), x and out (B, L, D).
 * No reordering and no importance score, even in layer 0.  It runs in the
 * model's activation buffers, so it ends the last forward's: no backward
 * may follow (ssm_model_backward fails until the next forward).  Mamba-2:
 * its mixer (ssmlab-math(7) MAMBA-2, steps 1-6; engine/mamba2.h). */
ssm_status ssm_model_mixer_forward(ssm_model *m, int layer, const float *x, int B, int L,
                                   float *out);

/* One layer's selective scan alone, the S6 map of Vo et al.: y = S6(u)
 * (steps 3-5 with D = 0), u and y (B, L, E): B_t = S_B u_t, C_t = S_C u_t,
 * Delta_t = softplus(W_dt delta_t + b_dt), no conv, gate or projections.
 * Like ssm_model_mixer_forward it ends the last forward's activations.
 * Mamba-1 only: a Mamba-2 SSD takes B, C and dt from in_proj, not from its
 * input x, so it has no such map (SSM_ERR_USAGE). */
ssm_status ssm_model_s6_forward(ssm_model *m, int layer, const float *u, int B, int L,
                                float *y);

/* Backward from the last residual stream: given dL/dx_n (B, act_L, D), the
 * gradient with respect to x_n before the final norm, run every layer's
 * backward and write dL/dx_0 (B, act_L, D), the gradient with respect to the
 * embedded input, to dx0.  Parameter gradients accumulate as a side effect
 * when the model has them; after ssm_model_keep_acts (no gradients, bf16
 * models too) only the activations' gradients are computed (no dW GEMMs).
 * Used for influence maps (ssmlab-math(7) RECENCY). */
ssm_status ssm_model_backward_stream(ssm_model *m, const float *dxn, float *dx0);

/* After ssm_model_backward: the gradient of the loss with respect to the
 * inputs, (B, L, I) for continuous inputs (attacks), or with respect to the
 * embedded tokens x_0, (B, L, D); L is the batch's length (under pool cls
 * the appended token is not an input and is left out). */
ssm_status ssm_model_input_grad(const ssm_model *m, float *dinputs);

/* Input tokens per sequence of the activations' batch: act_L, less the
 * appended cls token under pool cls.  The measurements (dynamics, recency)
 * cover these positions, at stride act_L in the activations. */
int ssm_model_input_len(const ssm_model *m);

/* Named views of a block laid out like the parameters.  Returns the count
 * (at most cap are written; pass cap 0 to count). */
int ssm_model_tensors(const ssm_model *m, float *block, ssm_tensor *out, int cap);

/* Attach a probe (engine/probe.h) to every following pass, or detach it
 * with NULL.  The probe must outlive its attachment; it is not copied.
 * Fails with SSM_ERR_USAGE when a spec is out of the model's range (the
 * patch position is checked by the forward), SSM_ERR_NOMEM without memory. */
ssm_status ssm_model_set_probe(ssm_model *m, const ssm_probe *p);

/* The probe's specs against the model's shape (engine/probe.h: Mamba-1's
 * channels and state channels, Mamba-2's heads, entries of a head's (P, N)
 * state and A_h) and a run of L tokens. */
ssm_status ssm_model_probe_check(const ssm_model *m, const ssm_probe *p, int L);

/* One forward with a measuring hook on top of the attached probe: the
 * attached probe's interventions stay, hook's on_layer, ctx, want_states
 * and final_h are added for this pass, and the attached probe is restored
 * after it (also on failure). */
ssm_status ssm_model_forward_hooked(ssm_model *m, const ssm_batch *b, const ssm_probe *hook);

/* Layer l's A (E, Ns) as the passes run it: ssm_model_layer_A of its A_log,
 * then the attached probe's pins. */
void ssm_model_run_A(const ssm_model *m, int layer, float *A);

/* The final RMSNorm and the language-model head applied to M rows of a
 * residual stream: x (M, D) to logits (M, V) (the logit lens,
 * ssmlab-inspect(1) LENS).  Language models only (SSM_ERR_USAGE else). */
ssm_status ssm_model_head_apply(const ssm_model *m, const float *x, int M, float *logits);

/* Building blocks of the passes, shared with engine/mamba2.c.
 * matmul: out (M, N) = in (M, K) W (N, K)^T [+ bias]; its backward
 * din = beta din + dout W (din may be NULL), dW += dout^T in, dbias +=
 * column sums.  rmsnorm: y (M, D) = x rstd w, rstd (M); its backward dx +=,
 * dw +=.  GEMMs split over OpenMP threads in row blocks, the forward's by
 * bal's speeds (updated after; NULL: evenly). */
void ssm_model_matmul_forward(ssm_balance *bal, float *out, int ldo, const float *in, int ldi, const float *W,
                              const float *bias, int M, int N, int K);
/* The row height at whose multiples sgemm's row blocks may start without
 * changing a bit of any row (measured once from the running library), or
 * 0 if it has none: then the forward's blocks stay even. */
int ssm_model_gemm_granule(void);
void ssm_model_matmul_backward(float *din, int lddi, float beta, float *dW, float *dbias,
                               const float *dout, int ldd, const float *in, int ldi,
                               const float *W, int M, int N, int K);
/* importance: layer 0's proxy score of ssmlab-math(7) MAMBA-2 into
 * acts.imp_s, s_t = (1/H) sum_h dt_t[h] over dt (B, act_L, H), with the
 * Mamba-1 proxy's one implementation. */
void ssm_model_importance_proxy(ssm_model *m, const float *dt, int H);
void ssm_model_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int M, int D,
                               float eps);
void ssm_model_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x,
                                const float *rstd, const float *w, int M, int D);
/* Layer l's input x_l (B, act_L, D) in the activations' residual stream
 * (l = n_layer: the last), and its mixer output (B, act_L, D): a lean pass
 * (ssm_model_forward_last) keeps two residual slots and one mixer output. */
float *ssm_model_resid(const ssm_model *m, int l);
float *ssm_model_mix(const ssm_model *m, int l);
/* The attached probe's residual patch: x entering `layer` at the patch
 * position gets the patch's value, in every sequence (nothing without a
 * residual patch of that layer). */
void ssm_model_probe_patch_residual(ssm_model *m, int layer);

/* SSM_OK for a Mamba-1 model; for Mamba-2 SSM_ERR_USAGE with the message
 * "WHAT: not available for mamba2 models yet (Mamba-1 only)", for the
 * commands and measurements not ported yet.  ssm_arch_name gives "mamba1"
 * or "mamba2", ssm_arch_parse their number (-1 if unknown). */
ssm_status ssm_model_need_mamba1(const ssm_model *m, const char *what);
const char *ssm_arch_name(int arch);
int ssm_arch_parse(const char *s);

/* Thread count: n OpenMP threads share scan, conv and elementwise work and
 * split every GEMM into row blocks, each run by single-threaded OpenBLAS. */
void ssm_threads_set(int n);
int ssm_threads_get(void);

/* A of one layer, (E, Ns), from its A_log (E, N), in the state channel
 * order [one-polarized A = 0, learned -exp(A_log), zero-polarized A = -100]
 * (ssmlab-math(7) RECENCY).  The one place A is built: the forward and
 * backward passes, generation and every measurement call it. */
#define SSM_A_ONE_POLARIZED 0.0f
#define SSM_A_ZERO_POLARIZED (-100.0f)
void ssm_model_layer_A(const ssm_config *c, const float *A_log, float *A);

#endif
