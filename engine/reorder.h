/* reorder.h — token reordering by importance (ssmlab-math(7) DYNAMICS, the
 * MambaVision refinement of Vo et al.): the differentiable SoftSort with
 * temperature tau, or a hard sort, as a (L, L) matrix P-hat per sequence,
 * applied to (L, W) blocks, and their backward passes.  A hard sort is
 * straight-through: its backward is SoftSort's. */
#ifndef SSM_REORDER_H
#define SSM_REORDER_H

/* order (L): token indices by increasing score (stable) */
void ssm_reorder_rank(const float *s, int L, int *order);

/* P-hat (B, L, L) from scores s (B, L): hard puts 1 at [i, order[i]];
 * soft is softmax_j(-|s_j - s_{order[i]}| / tau) (SoftSort of -s). */
void ssm_reorder_build(int mode, int B, int L, const float *s, float tau, float *perm);

/* y_b (L, W) = P-hat_b x_b for every sequence b; rows strided by ldx, ldy. */
void ssm_reorder_apply(int B, int L, int W, const float *perm,
                       const float *x, int ldx, float *y, int ldy);

/* x_b (L, W) = P-hat_b^T y_b (the backward of apply with respect to x). */
void ssm_reorder_apply_t(int B, int L, int W, const float *perm,
                         const float *y, int ldy, float *x, int ldx);

/* dperm_b (L, L) += dy_b x_b^T (the backward of apply with respect to P-hat). */
void ssm_reorder_dperm(int B, int L, int W, const float *dy, int ldy,
                       const float *x, int ldx, float *dperm);

/* ds (B, L) = d loss / d s through the SoftSort matrix perm (B, L, L)
 * built with tau, given dperm.  For a hard sort pass the SoftSort matrix of
 * the same scores: the straight-through gradient. */
void ssm_reorder_backward_soft(int B, int L, const float *s, float tau, const float *perm,
                               const float *dperm, float *ds);

#endif
