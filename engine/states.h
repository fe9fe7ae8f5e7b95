/* states.h — measurements inside the recurrence (ssmlab-inspect(1) STATES
 * and LENS): the size ||h_t||_F and the effective rank of the state after
 * each token, the memory horizon of each channel, and the logit lens's
 * statistics of one position (top-1, its probability, entropy, and the KL
 * divergence from the final distribution). */
#ifndef SSM_STATES_H
#define SSM_STATES_H

#include "engine/status.h"

/* ||h_t||_F for t < L, h (L, E, Ns) -> out (L). */
void ssm_states_norm(const float *h, int L, int E, int Ns, float *out);

/* The memory horizon of channel e in tokens, 1 / (mean_t delta_t[e] *
 * min_n |A[e,n]|): the time the slowest state channel of e needs to decay
 * by e.  INFINITY when some A[e,n] = 0 (a one-polarized channel never
 * forgets).  delta (L, E) at row stride ld (>= E), A (E, Ns) -> out (E). */
void ssm_states_horizon(const float *delta, int L, int E, int ld, const float *A, int Ns,
                        float *out);

/* The effective rank of each h_t as an E x Ns matrix: exp of the entropy of
 * its singular values normalised to sum 1 (GSL's SVD), between 1 and
 * min(E, Ns); 0 for a zero state.  h (L, E, Ns) -> out (L).  Fails only
 * without memory. */
ssm_status ssm_states_erank(const float *h, int L, int E, int Ns, float *out);

/* The logit lens at one position: lens and final logits (V) of the same
 * position, the lens from an earlier layer's residual stream through the
 * final norm and head. */
typedef struct {
    int top;          /* argmax of the lens logits (the lowest id on ties) */
    double prob;      /* its softmax probability */
    double entropy;   /* of the lens distribution, nats */
    double kl;        /* KL(final || lens), nats; 0 when they agree */
} ssm_lens_stat;

void ssm_lens_row(const float *lens, const float *final, int V, ssm_lens_stat *out);

/* ln sum_v exp(x[v]) of V logits, in double. */
double ssm_log_sum_exp(const float *x, int V);

/* KL(softmax(p) || softmax(q)) in nats, in double, from two logit rows (V)
 * and their ssm_log_sum_exp zp, zq; not clamped at 0 (rounding can leave
 * it a hair below).  The lens and the interventions' comparison use it. */
double ssm_kl_logits(const float *p, double zp, const float *q, double zq, int V);

#endif
