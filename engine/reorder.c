/* reorder.c — hard and soft (SoftSort, temperature tau) reordering matrices,
 * their application to token blocks with OpenBLAS, and the backward passes. */
#include "engine/reorder.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"

static int by_score(const void *a, const void *b, void *ctx)
{
    const float *s = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (s[i] < s[j]) return -1;
    if (s[i] > s[j]) return 1;
    return (i > j) - (i < j);      /* stable: ties keep input order */
}

void ssm_reorder_rank(const float *s, int L, int *order)
{
    for (int i = 0; i < L; i++) order[i] = i;
    qsort_r(order, L, sizeof *order, by_score, (void *)s);
}

/* Row i of SoftSort: softmax_j(-|s_j - c| / tau) with c = s_{order[i]}.  The
 * largest logit is 0 (j = order[i]), so the exponentials cannot overflow. */
static void softsort_row(const float *s, int L, float c, float tau, float *row)
{
    double z = 0.0;
    for (int j = 0; j < L; j++) z += exp(-fabs((double)s[j] - c) / tau);
    for (int j = 0; j < L; j++) row[j] = (float)(exp(-fabs((double)s[j] - c) / tau) / z);
}

void ssm_reorder_build(int mode, int B, int L, const float *s, float tau, float *perm)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        int order[L];                                       /* (L) */
        const float *sb = s + (size_t)b * L;
        float *P = perm + (size_t)b * L * L;
        ssm_reorder_rank(sb, L, order);
        for (int i = 0; i < L; i++) {
            float *row = P + (size_t)i * L;
            if (mode == SSM_REORDER_SOFT) {
                softsort_row(sb, L, sb[order[i]], tau, row);
            } else {
                memset(row, 0, sizeof(float) * L);
                row[order[i]] = 1.0f;
            }
        }
    }
}

void ssm_reorder_apply(int B, int L, int W, const float *perm,
                       const float *x, int ldx, float *y, int ldy)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, W, L, 1.0f,
                    perm + (size_t)b * L * L, L, x + (size_t)b * L * ldx, ldx, 0.0f,
                    y + (size_t)b * L * ldy, ldy);
}

void ssm_reorder_apply_t(int B, int L, int W, const float *perm,
                         const float *y, int ldy, float *x, int ldx)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, W, L, 1.0f,
                    perm + (size_t)b * L * L, L, y + (size_t)b * L * ldy, ldy, 0.0f,
                    x + (size_t)b * L * ldx, ldx);
}

void ssm_reorder_dperm(int B, int L, int W, const float *dy, int ldy,
                       const float *x, int ldx, float *dperm)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, W, 1.0f,
                    dy + (size_t)b * L * ldy, ldy, x + (size_t)b * L * ldx, ldx, 1.0f,
                    dperm + (size_t)b * L * L, L);
}

static float signf(float x) { return (float)((x > 0.0f) - (x < 0.0f)); }

/* One sequence: softmax backward per row, then the chain rule through
 * a_ij = -|s_j - c_i| / tau, with c_i = s_{order[i]} (the sort routes dc_i to it). */
static void softsort_backward_seq(int L, const float *s, float tau, const float *P,
                                  const float *dP, float *ds, int *order)
{
    ssm_reorder_rank(s, L, order);
    memset(ds, 0, sizeof(float) * L);
    for (int i = 0; i < L; i++) {
        const float *Pi = P + (size_t)i * L, *dPi = dP + (size_t)i * L;
        float c = s[order[i]];
        double dot = 0.0, dc = 0.0;
        for (int j = 0; j < L; j++) dot += (double)Pi[j] * dPi[j];
        for (int j = 0; j < L; j++) {
            double da = Pi[j] * (dPi[j] - dot) / tau;
            float sg = signf(s[j] - c);
            ds[j] -= (float)(da * sg);
            dc += da * sg;
        }
        ds[order[i]] += (float)dc;
    }
}

void ssm_reorder_backward_soft(int B, int L, const float *s, float tau, const float *perm,
                               const float *dperm, float *ds)
{
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        int order[L];                                       /* (L) */
        size_t o = (size_t)b * L * L;
        softsort_backward_seq(L, s + (size_t)b * L, tau, perm + o, dperm + o, ds + (size_t)b * L, order);
    }
}
