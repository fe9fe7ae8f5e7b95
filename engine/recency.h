/* recency.h — the recency and over-smoothing measurements of ssmlab-math(7) RECENCY (Wang
 * et al.): the hidden attention alpha_e[t][s] of one layer, the influence
 * I(t, s) = ||d x_n[t] / d x_0[s]||_F of each embedded input token on the
 * last residual stream with its exponential decay fit (rate, half-life),
 * and the over-smoothing of the residual stream over depth.  Every
 * measurement covers the L input tokens of the forward
 * (ssm_model_input_len): under pool cls the appended cls token, last, is
 * left out. */
#ifndef SSM_RECENCY_H
#define SSM_RECENCY_H

#include <stdatomic.h>
#include <stdint.h>

#include "engine/model.h"
#include "engine/status.h"

/* ---- hidden attention ------------------------------------------------- */

/* channel argument: the mean over the E channels of |alpha_e| */
#define SSM_ATTN_MEAN (-1)
/* widest state the attention handles (d_state <= 256 plus two pinned) */
#define SSM_ATTN_MAX_NS 258

/* One sequence of one layer's scan inputs. */
typedef struct {
    int L, E, Ns;
    const float *delta;   /* (L, E)      Delta_t[e] */
    const float *Bm;      /* (L, ld_bc)  B_t[j] at Bm[t * ld_bc + j], j < Ns */
    const float *Cm;      /* (L, ld_bc)  C_t[j] likewise */
    int ld_bc;            /* R + 2 Ns inside xdbl */
    const float *A;       /* (E, Ns)     negative (or 0 for one-pinned channels) */
    const float *keep;    /* (E, Ns) or NULL: 0 drops state channel j of channel
                           * e, held at zero by an ablation (engine/probe.h) */
} ssm_attn_args;

/* alpha (L, L), row t, column s, for s <= t:
 *   alpha_e[t][s] = sum_j C_t[j] (prod_{k=s+1..t} exp(Delta_k[e] A[e,j])) Delta_s[e] B_s[j]
 * and 0 above the diagonal.  channel in [0, E): that channel's signed,
 * unnormalised alpha_e; SSM_ATTN_MEAN: (1/E) sum_e |alpha_e[t][s]|.
 * O(L^2 Ns) per channel: for each s the product runs forward over t,
 * summed in double.  SSM_ERR_INTERRUPTED when *cancel becomes nonzero
 * (checked between channels; cancel may be NULL). */
ssm_status ssm_recency_alpha(const ssm_attn_args *a, int channel, atomic_int *cancel, float *alpha);

/* The same from a model's activations after ssm_model_forward: layer l,
 * sequence b of the batch, with the attached probe's pins and ablations.  Activations of every layer are kept only when
 * gradients are allocated (ssm_model_alloc_grads before the forward);
 * without them only the last layer can be read.  In a layer that
 * reorders its SSM input (reorder_layers) the positions are the sorted ones.  The
 * one implementation: ssmlab inspect, sweep and the lab all call it. */
ssm_status ssm_recency_attention(const ssm_model *m, int layer, int b, int channel, atomic_int *cancel,
                                 float *alpha);

/* out (L, L): each row t of alpha divided by max_{s<=t} |alpha[t][s]|, so
 * every nonzero row has max |.| = 1; an all-zero row stays zero.  out may
 * be alpha. */
void ssm_recency_row_normalize(const float *alpha, int L, float *out);

/* ---- influence and its decay ------------------------------------------ */

/* probes argument: SSM_INFLUENCE_AUTO picks exact when D * n_targets <=
 * SSM_INFLUENCE_EXACT_MAX backward passes, else SSM_INFLUENCE_PROBES
 * Gaussian probes; SSM_INFLUENCE_EXACT (0) forces exact; K > 0 forces K
 * probes. */
#define SSM_INFLUENCE_AUTO (-1)
#define SSM_INFLUENCE_EXACT 0
#define SSM_INFLUENCE_EXACT_MAX 1024
#define SSM_INFLUENCE_PROBES 32

typedef struct {
    int L, n_targets, n_seq;
    int *targets;    /* (n_targets) target positions t_k */
    float *I;        /* (n_targets, L) I[k * L + s]: mean over the n_seq
                      * sequences of ||d x_n[t_k] / d x_0[s]||_F.  Columns
                      * s > t_k are computed too (zero for causal models). */
    int probes;      /* 0: exact (D backward passes per target), else K:
                      * sqrt of the unbiased probe estimate of ||J||_F^2,
                      * (1/K) sum_k ||v_k^T J||^2 with v_k ~ N(0, I_D) */
    long passes;     /* backward passes run */
} ssm_influence;

/* Runs ssm_model_forward on b (no targets needed), then backward passes
 * through ssm_model_backward_stream with dL/dx_n nonzero at position t_k
 * only; every sequence of the batch is handled in the same pass.
 * Allocates m's gradients if needed and zeroes them on return (the
 * parameter gradients are a by-product).  seed drives the probes.
 * Targets must lie in [0, b->L). out is released with ssm_influence_free. */
ssm_status ssm_recency_influence(ssm_model *m, const ssm_batch *b, const int *targets,
                                 int n_targets, int probes, uint64_t seed, ssm_influence *out);

/* The same on the activations of m's last forward (gradients allocated
 * before it), without running a forward: the lab's probe model uses it.
 * SSM_ERR_INTERRUPTED when *cancel becomes nonzero (checked before every
 * backward pass; cancel may be NULL).  The one implementation of the
 * influence: ssmlab inspect, sweep and the lab all reach it. */
ssm_status ssm_recency_influence_kept(ssm_model *m, const int *targets, int n_targets, int probes,
                                      uint64_t seed, atomic_int *cancel, ssm_influence *out);
void ssm_influence_free(ssm_influence *inf);

/* n evenly spaced target positions ending at L - 1:
 * t_k = (k + 1) L / n - 1, k = 0..n-1 (n is clipped to [1, L]).  Returns n. */
int ssm_recency_targets(int L, int n, int *targets);

typedef struct {
    double rate;       /* decay per token: minus the slope of ln I over t - s */
    double half_life;  /* ln 2 / rate, in tokens; +inf when rate <= 0 */
    double intercept;  /* the fit's ln I at distance 0 */
    double r2;         /* 1 - SS_res / SS_tot of the fit (NaN if SS_tot = 0) */
    int n_points;      /* points in the fit */
} ssm_decay;

/* Unweighted least squares (gsl_fit_linear) of ln I against distance over
 * the points with I > 0 and finite.  SSM_ERR_DATA when fewer than two
 * distinct distances remain. */
ssm_status ssm_recency_fit_points(const double *dist, const double *I, int n, ssm_decay *out);

/* The fit over every (t_k, s) of inf with s <= t_k and t_k - s >= min_dist.
 * min_dist 1 (SSM_DECAY_MIN_DIST) leaves out distance 0, where the
 * residual path's identity dominates ||d x_n[t] / d x_0[t]||. */
#define SSM_DECAY_MIN_DIST 1
ssm_status ssm_recency_fit_decay(const ssm_influence *inf, int min_dist, ssm_decay *out);

/* The tail of the influence: the mean of I(t_k, s) over the pairs with
 * t_k - s >= min_dist, over its mean at distance 1.  An exponential decay
 * makes it small; a channel that never forgets (A = 0) leaves a floor.
 * SSM_ERR_DATA when either set of pairs is empty or the distance-1 mean
 * is 0. */
#define SSM_TAIL_MIN_DIST 64
ssm_status ssm_recency_tail(const ssm_influence *inf, int min_dist, double *ratio);

/* ---- over-smoothing ---------------------------------------------------- */

/* X (T, D), one sequence's tokens:
 *   cos_mean  = mean over ordered pairs i != j of cos(x_i, x_j) (the
 *               diagonal i = j is excluded; a zero token counts cos 0);
 *               NaN when T < 2;
 *   deviation = ||X - 1 xbar^T||_F / ||X||_F (NaN when X = 0).
 * SSM_ERR_NOMEM only. */
ssm_status ssm_recency_smoothing_one(const float *X, int T, int D, double *cos_mean,
                                     double *deviation);

/* After ssm_model_forward: for each layer l = 0..n_layer of the residual
 * stream m->acts.resid, both measures averaged over the batch's sequences.
 * cos_mean and deviation are (n_layer + 1). */
ssm_status ssm_recency_smoothing(const ssm_model *m, double *cos_mean, double *deviation);

#endif
