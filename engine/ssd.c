/* ssd.c — the SSD scan of Mamba-2 (ssmlab-math(7) MAMBA-2), chunked and
 * naive, forward and backward.  The chunked form works per (sequence, head)
 * on chunks of Q positions with s_i the cumulative sum of dt A inside the
 * chunk:
 *   Y     = (C B^T o Lmask) X + diag(exp s) C H^T + D X,
 *           Lmask[i,j] = exp(s_i - s_j) dt_j for j <= i, else 0
 *   H'    = exp(s_last) H + (diag(w) X)^T B,  w_j = exp(s_last - s_j) dt_j
 * with H the state entering the chunk; the GEMMs go to OpenBLAS (one
 * thread each), the (sequence, head) pairs are spread over OpenMP threads.
 * Each pair is computed by one thread in a fixed order and the sums over
 * heads and sequences are reduced in a fixed order afterwards, so the bits
 * do not depend on the thread count. */
#include "engine/ssd.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vmath.h"

int ssm_ssd_probed(const ssm_ssd_args *a)
{
    return a->keep || a->h_out || a->patch_h;
}

int ssm_ssd_chunks(int L, int Q)
{
    return (L + Q - 1) / Q;
}

/* Floats of one thread's forward and backward work space */
static size_t fwd_per_thread(const ssm_ssd_args *a)
{
    size_t Q = a->Q, P = a->P, N = a->N;
    return 3 * Q + Q * Q + Q * P + P * N;
}

static size_t bwd_per_thread(const ssm_ssd_args *a)
{
    size_t Q = a->Q, P = a->P, N = a->N;
    return 5 * Q + 3 * Q * Q + 3 * Q * P + P * N;
}

/* The backward's per-pair partial sums: dB and dC per head (B, H, L, N),
 * dA and dD per pair (B, H) */
static size_t bwd_shared(const ssm_ssd_args *a)
{
    size_t BH = (size_t)a->B * a->H;
    return 2 * BH * a->L * a->N + 2 * BH;
}

/* C B^T of every chunk of every sequence and group, (B, G, chunks, Q, Q):
 * the group's heads share it */
static size_t grams_size(const ssm_ssd_args *a)
{
    return (size_t)a->B * a->G * ssm_ssd_chunks(a->L, a->Q) * a->Q * a->Q;
}

size_t ssm_ssd_work_size(const ssm_ssd_args *a, int threads, int backward)
{
    if (threads < 1) threads = 1;
    if (!backward) return grams_size(a) + (size_t)threads * fwd_per_thread(a);
    return bwd_shared(a) + grams_size(a) + (size_t)threads * bwd_per_thread(a);
}

/* One chunk's views for pair (b, h): rows t0 .. t0+n-1 */
typedef struct {
    int n, t0;
    const float *x, *Bc, *Cc, *dt;   /* x (n, ld_x), B and C (n, ld_bc), dt (n) at stride H */
    const float *gram;               /* (n, Q) C B^T of the chunk's group, or NULL */
} chunk_view;

static chunk_view chunk_at(const ssm_ssd_args *a, int b, int h, int c, const float *grams)
{
    int g = h / (a->H / a->G), t0 = c * a->Q, nc = ssm_ssd_chunks(a->L, a->Q);
    int n = a->L - t0 < a->Q ? a->L - t0 : a->Q;
    size_t row = (size_t)b * a->L + t0;
    chunk_view v = {n, t0, a->x + row * a->ld_x + (size_t)h * a->P,
                    a->Bm + row * a->ld_bc + (size_t)g * a->N,
                    a->Cm + row * a->ld_bc + (size_t)g * a->N, a->dt + row * a->H + h,
                    grams ? grams + (((size_t)b * a->G + g) * nc + c) * a->Q * a->Q : NULL};
    return v;
}

/* grams (B, G, chunks, Q, Q): C B^T of each chunk of each sequence and
 * group, spread over the threads (one BLAS thread each) */
static void grams_fill(const ssm_ssd_args *a, float *grams)
{
    int nc = ssm_ssd_chunks(a->L, a->Q), Q = a->Q, tasks = a->B * a->G * nc;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < tasks; i++) {
        int b = i / (a->G * nc), g = i / nc % a->G, c = i % nc, t0 = c * Q;
        int n = a->L - t0 < Q ? a->L - t0 : Q;
        size_t row = (size_t)b * a->L + t0, at = (size_t)g * a->N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, a->N, 1.0f,
                    a->Cm + row * a->ld_bc + at, a->ld_bc, a->Bm + row * a->ld_bc + at, a->ld_bc, 0.0f,
                    grams + (size_t)i * Q * Q, Q);
    }
}

/* s (n): cumulative dt A inside the chunk; es = exp(s) */
static void chunk_decay(const chunk_view *v, int H, float A, float *s, float *es)
{
    float acc = 0.0f;
    for (int i = 0; i < v->n; i++) {
        acc += v->dt[(size_t)i * H] * A;
        s[i] = acc;
        es[i] = expf(acc);
    }
}

/* G (n, n) = C B^T (copied from the chunk's gram), then M = G o Lmask
 * (lower triangle, zero above); dtc (n) takes the chunk's dt, contiguous,
 * so the row loop vectorises with ssm_expf */
static void chunk_mask(const chunk_view *v, int H, int Q, const float *s, float *dtc, float *G,
                       float *M)
{
    int n = v->n;
    for (int j = 0; j < n; j++) dtc[j] = v->dt[(size_t)j * H];
    for (int i = 0; i < n; i++) {
        const float *gi = v->gram + (size_t)i * Q;
        float *Mi = M + (size_t)i * Q, si = s[i];
        if (G) memcpy(G + (size_t)i * Q, gi, sizeof(float) * n);
        for (int j = 0; j <= i; j++) Mi[j] = gi[j] * ssm_expf(si - s[j]) * dtc[j];
        for (int j = i + 1; j < n; j++) Mi[j] = 0.0f;
    }
}

/* Xw (n, P) = diag(w) X with w_j = exp(s_last - s_j) dt_j; w (n) kept */
static void chunk_weighted_x(const chunk_view *v, int H, int P, int ld_x, const float *s,
                             float *w, float *Xw)
{
    int n = v->n;
    for (int j = 0; j < n; j++) {
        w[j] = expf(s[n - 1] - s[j]) * v->dt[(size_t)j * H];
        for (int p = 0; p < P; p++) Xw[(size_t)j * P + p] = w[j] * v->x[(size_t)j * ld_x + p];
    }
}

/* Rows of M per product M X: a block of rows [i0, i1) needs M's first i1
 * columns only, the rest being zero (about 5/8 of the work at Q = 256) */
#define TRI_ROWS 64

/* Forward of pair (b, h), given the chunks' grams: y's head columns, the
 * chunk states, the last state */
static void pair_forward(const ssm_ssd_args *a, int b, int h, const float *grams, float *work, float *y)
{
    int Q = a->Q, P = a->P, N = a->N, H = a->H, E = H * a->P, nc = ssm_ssd_chunks(a->L, Q);
    float *s = work, *es = s + Q, *dtc = es + Q, *M = dtc + Q, *Xw = M + (size_t)Q * Q,
          *St = Xw + (size_t)Q * P;
    float *w = es;   /* w reuses es after the outputs */
    memset(St, 0, sizeof(float) * P * N);
    for (int c = 0; c < nc; c++) {
        chunk_view v = chunk_at(a, b, h, c, grams);
        int n = v.n;
        float *yc = y + ((size_t)b * a->L + v.t0) * E + (size_t)h * P;   /* (n, P) at stride E */
        if (a->states)
            memcpy(a->states + (((size_t)b * H + h) * nc + c) * P * N, St, sizeof(float) * P * N);
        chunk_decay(&v, H, a->A[h], s, es);
        /* state to output: Y = diag(exp s) C H^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, P, N, 1.0f, v.Cc, a->ld_bc, St, N,
                    0.0f, yc, E);
        for (int i = 0; i < n; i++)
            for (int p = 0; p < P; p++) yc[(size_t)i * E + p] *= es[i];
        /* inside the chunk: Y += M X, then the skip */
        chunk_mask(&v, H, Q, s, dtc, NULL, M);
        for (int i0 = 0; i0 < n; i0 += TRI_ROWS) {   /* M is lower triangular */
            int i1 = i0 + TRI_ROWS < n ? i0 + TRI_ROWS : n;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, i1 - i0, P, i1, 1.0f,
                        M + (size_t)i0 * Q, Q, v.x, a->ld_x, 1.0f, yc + (size_t)i0 * E, E);
        }
        for (int i = 0; i < n; i++)
            for (int p = 0; p < P; p++) yc[(size_t)i * E + p] += a->Dskip[h] * v.x[(size_t)i * a->ld_x + p];
        /* chunk state: H = exp(s_last) H + Xw^T B */
        float decay = expf(s[n - 1]);
        chunk_weighted_x(&v, H, P, a->ld_x, s, w, Xw);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, N, n, 1.0f, Xw, P, v.Bc, a->ld_bc,
                    decay, St, N);
    }
    if (a->h_last) memcpy(a->h_last + ((size_t)b * H + h) * P * N, St, sizeof(float) * P * N);
}

static ssm_status ssd_check_args(const ssm_ssd_args *a)
{
    if (a->B < 1 || a->L < 1 || a->H < 1 || a->P < 1 || a->G < 1 || a->N < 1 || a->Q < 1 ||
        a->H % a->G)
        return ssm_fail(SSM_ERR_SOFTWARE, "ssd: bad shape B %d L %d H %d P %d G %d N %d Q %d",
                        a->B, a->L, a->H, a->P, a->G, a->N, a->Q);
    return SSM_OK;
}

ssm_status ssm_ssd_forward(const ssm_ssd_args *a, float *y)
{
    ssm_status st = ssd_check_args(a);
    if (st) return st;
    if (ssm_ssd_probed(a)) return ssm_ssd_forward_naive(a, y);
    int threads = omp_get_max_threads(), pairs = a->B * a->H;
    if (!a->work || a->work_n < ssm_ssd_work_size(a, threads, 0))
        return ssm_fail(SSM_ERR_SOFTWARE, "ssd forward: work space of %zu floats is short of %zu",
                        a->work_n, ssm_ssd_work_size(a, threads, 0));
    size_t per = fwd_per_thread(a);
    float *grams = a->work, *work = grams + grams_size(a);
    grams_fill(a, grams);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < pairs; i++)
        pair_forward(a, i / a->H, i % a->H, grams, work + (size_t)omp_get_thread_num() * per, y);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Chunked backward                                                         */

typedef struct { /* one thread's backward buffers */
    float *s, *es, *ds, *dtd, *dtc;   /* (Q) */
    float *G, *M, *dM;          /* (Q, Q) */
    float *Xw, *dYs, *U;        /* (Q, P) */
    float *dH;                  /* (P, N) gradient of the state leaving the chunk */
} bwd_buf;

static bwd_buf bwd_carve(const ssm_ssd_args *a, float *w)
{
    size_t Q = a->Q, QQ = Q * Q, QP = Q * a->P;
    float *q = w + 5 * Q;   /* past the (Q) buffers */
    bwd_buf k = {w, w + Q, w + 2 * Q, w + 3 * Q, w + 4 * Q, q, q + QQ, q + 2 * QQ,
                 q + 3 * QQ, q + 3 * QQ + QP, q + 3 * QQ + 2 * QP, q + 3 * QQ + 3 * QP};
    return k;
}

/* The intra-chunk term Y = M X: dX += M^T dY (dX holds D dY already), dC
 * and dB of its C B^T, and its parts of ddt and ds */
static void chunk_back_diag(const ssm_ssd_args *a, const chunk_view *v, const float *dYc, int E,
                            float *dXc, float *dBc, float *dCc, bwd_buf *k)
{
    int n = v->n, Q = a->Q, P = a->P, N = a->N, H = a->H;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, P, 1.0f, dYc, E, v->x, a->ld_x,
                0.0f, k->dM, Q);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, P, n, 1.0f, k->M, Q, dYc, E, 1.0f,
                dXc, a->ld_x);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            size_t ij = (size_t)i * Q + j;
            if (j > i) { k->G[ij] = 0.0f; continue; }
            float e = ssm_expf(k->s[i] - k->s[j]), dm = k->dM[ij];
            float z = dm * k->M[ij];
            k->dtd[j] += dm * k->G[ij] * e;
            k->ds[i] += z;
            k->ds[j] -= z;
            k->G[ij] = dm * e * v->dt[(size_t)j * H];   /* now dG */
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, N, n, 1.0f, k->G, Q, v->Bc, a->ld_bc,
                0.0f, dCc, N);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, N, n, 1.0f, k->G, Q, v->Cc, a->ld_bc,
                0.0f, dBc, N);
}

/* The state-to-output term Y = diag(exp s) C H^T with H the chunk's entry
 * state St: dC, ds; dYs = diag(exp s) dY is left in k->dYs */
static void chunk_back_off(const ssm_ssd_args *a, const chunk_view *v, const float *dYc, int E,
                           const float *St, float *dCc, bwd_buf *k)
{
    int n = v->n, P = a->P, N = a->N;
    for (int i = 0; i < n; i++)
        for (int p = 0; p < P; p++) k->dYs[(size_t)i * P + p] = k->es[i] * dYc[(size_t)i * E + p];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, N, P, 1.0f, k->dYs, P, St, N, 1.0f,
                dCc, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, P, N, 1.0f, v->Cc, a->ld_bc, St, N,
                0.0f, k->U, P);
    for (int i = 0; i < n; i++) {
        float acc = 0.0f;
        for (int p = 0; p < P; p++) acc += k->dYs[(size_t)i * P + p] * k->U[(size_t)i * P + p];
        k->ds[i] += acc;
    }
}

/* The state update H' = exp(s_last) St + (diag(w) X)^T B, given k->dH =
 * dL/dH': dX, dB, ddt, ds; then k->dH becomes dL/dSt (adding the
 * state-to-output term's diag(exp s) dY^T C). */
static void chunk_back_state(const ssm_ssd_args *a, const chunk_view *v, const float *St,
                             float *dXc, float *dBc, bwd_buf *k)
{
    int n = v->n, P = a->P, N = a->N, H = a->H;
    float decay = k->es[n - 1], acc = 0.0f;
    for (size_t i = 0; i < (size_t)P * N; i++) acc += St[i] * k->dH[i];
    k->ds[n - 1] += decay * acc;
    /* U = B dH^T (n, P): dX_j += w_j U_j, dw_j = x_j . U_j */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, P, N, 1.0f, v->Bc, a->ld_bc, k->dH, N,
                0.0f, k->U, P);
    float *w = k->M;   /* M is no longer needed: w (n) */
    chunk_weighted_x(v, H, P, a->ld_x, k->s, w, k->Xw);
    for (int j = 0; j < n; j++) {
        float dw = 0.0f;
        for (int p = 0; p < P; p++) {
            dw += v->x[(size_t)j * a->ld_x + p] * k->U[(size_t)j * P + p];
            dXc[(size_t)j * a->ld_x + p] += w[j] * k->U[(size_t)j * P + p];
        }
        k->dtd[j] += dw * expf(k->s[n - 1] - k->s[j]);
        k->ds[n - 1] += dw * w[j];
        k->ds[j] -= dw * w[j];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, N, P, 1.0f, k->Xw, P, k->dH, N, 1.0f,
                dBc, N);
    for (size_t i = 0; i < (size_t)P * N; i++) k->dH[i] *= decay;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, P, N, n, 1.0f, k->dYs, P, v->Cc, a->ld_bc,
                1.0f, k->dH, N);
}

/* Backward of pair (b, h); dBp, dCp (L, N) are this pair's partials, dAp
 * and dDp its scalars */
static void pair_backward(const ssm_ssd_args *a, int b, int h, const float *grams, const float *dy,
                          float *dx, float *ddt, float *dBp, float *dCp, float *dAp, float *dDp,
                          bwd_buf *k)
{
    int Q = a->Q, P = a->P, N = a->N, H = a->H, E = H * P, nc = ssm_ssd_chunks(a->L, Q);
    float A = a->A[h], Dh = a->Dskip[h], dA = 0.0f, dD = 0.0f;
    memset(k->dH, 0, sizeof(float) * P * N);
    for (int c = nc - 1; c >= 0; c--) {
        chunk_view v = chunk_at(a, b, h, c, grams);
        int n = v.n;
        size_t row = (size_t)b * a->L + v.t0;
        const float *dYc = dy + row * E + (size_t)h * P;
        const float *St = a->states + (((size_t)b * H + h) * nc + c) * P * N;
        float *dXc = dx + row * a->ld_x + (size_t)h * P;
        float *dBc = dBp + (size_t)v.t0 * N, *dCc = dCp + (size_t)v.t0 * N;
        memset(k->ds, 0, sizeof(float) * n);
        memset(k->dtd, 0, sizeof(float) * n);
        chunk_decay(&v, H, A, k->s, k->es);
        chunk_mask(&v, H, Q, k->s, k->dtc, k->G, k->M);
        for (int i = 0; i < n; i++)   /* skip: y += D x */
            for (int p = 0; p < P; p++) {
                float g = dYc[(size_t)i * E + p];
                dD += g * v.x[(size_t)i * a->ld_x + p];
                dXc[(size_t)i * a->ld_x + p] = Dh * g;
            }
        chunk_back_diag(a, &v, dYc, E, dXc, dBc, dCc, k);
        chunk_back_off(a, &v, dYc, E, St, dCc, k);
        chunk_back_state(a, &v, St, dXc, dBc, k);
        /* s_i = sum_{k <= i} dt_k A: da_k = sum_{i >= k} ds_i */
        float da = 0.0f;
        for (int i = n - 1; i >= 0; i--) {
            da += k->ds[i];
            float dt = v.dt[(size_t)i * H];
            ddt[(row + i) * H + h] = k->dtd[i] + da * A;
            dA += da * dt;
        }
    }
    *dAp = dA;
    *dDp = dD;
}

/* dB, dC (B, L, ld_bc) = sums over each group's heads of the partials
 * (B, H, L, N); dA, dD (H) += sums over sequences of (B, H) */
static void bwd_reduce(const ssm_ssd_args *a, const float *dBp, const float *dCp,
                       const float *dAp, const float *dDp, float *dB, float *dC, float *dA, float *dD)
{
    int B = a->B, L = a->L, H = a->H, G = a->G, N = a->N, hg = H / G;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < B * L; i++) {
        int b = i / L, t = i % L;
        for (int g = 0; g < G; g++)
            for (int n = 0; n < N; n++) {
                float sb = 0.0f, sc = 0.0f;
                for (int h = g * hg; h < (g + 1) * hg; h++) {
                    size_t at = (((size_t)b * H + h) * L + t) * N + n;
                    sb += dBp[at];
                    sc += dCp[at];
                }
                dB[(size_t)i * a->ld_bc + (size_t)g * N + n] = sb;
                dC[(size_t)i * a->ld_bc + (size_t)g * N + n] = sc;
            }
    }
    for (int h = 0; h < H; h++)
        for (int b = 0; b < B; b++) {
            dA[h] += dAp[(size_t)b * H + h];
            dD[h] += dDp[(size_t)b * H + h];
        }
}

ssm_status ssm_ssd_backward(const ssm_ssd_args *a, const float *dy, float *dx, float *dB,
                            float *dC, float *ddt, float *dA, float *dD)
{
    ssm_status st = ssd_check_args(a);
    if (st) return st;
    if (a->keep) return ssm_ssd_backward_naive(a, dy, dx, dB, dC, ddt, dA, dD);
    int threads = omp_get_max_threads(), pairs = a->B * a->H;
    if (!a->states || !a->work || a->work_n < ssm_ssd_work_size(a, threads, 1))
        return ssm_fail(SSM_ERR_SOFTWARE, "ssd backward: no chunk states or a short work space");
    size_t BH = (size_t)a->B * a->H, LN = (size_t)a->L * a->N;
    float *dBp = a->work, *dCp = dBp + BH * LN, *dAp = dCp + BH * LN, *dDp = dAp + BH;
    float *grams = dDp + BH, *per = grams + grams_size(a);
    size_t nper = bwd_per_thread(a);
    grams_fill(a, grams);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < pairs; i++) {
        bwd_buf k = bwd_carve(a, per + (size_t)omp_get_thread_num() * nper);
        pair_backward(a, i / a->H, i % a->H, grams, dy, dx, ddt, dBp + (size_t)i * LN, dCp + (size_t)i * LN,
                      dAp + i, dDp + i, &k);
    }
    bwd_reduce(a, dBp, dCp, dAp, dDp, dB, dC, dA, dD);
    return SSM_OK;
}

/* ------------------------------------------------------------------------ */
/* Naive twin: the recurrence, literally                                    */

/* Views of position t of pair (b, h) */
typedef struct {
    const float *x, *Bt, *Ct;
    float dt;
} step_view;

static step_view step_at(const ssm_ssd_args *a, int b, int h, int t)
{
    size_t row = (size_t)b * a->L + t;
    int g = h / (a->H / a->G);
    step_view v = {a->x + row * a->ld_x + (size_t)h * a->P, a->Bm + row * a->ld_bc + (size_t)g * a->N,
                   a->Cm + row * a->ld_bc + (size_t)g * a->N, a->dt[row * a->H + h]};
    return v;
}

/* h (P, N) <- (exp(dt A) h + dt x B^T) o keep (keep (P, N) or NULL: all
 * ones), then h <- patch when patch is not NULL; y (P) = h C + D x */
static void naive_step(const step_view *v, int P, int N, float A, float Dh, const float *keep,
                       const float *patch, float *h, float *y)
{
    float e = expf(v->dt * A);
    for (int p = 0; p < P; p++) {
        float acc = 0.0f;
        for (int n = 0; n < N; n++) {
            size_t i = (size_t)p * N + n;
            h[i] = e * h[i] + v->dt * v->x[p] * v->Bt[n];
            if (keep) h[i] *= keep[i];
            if (patch) h[i] = patch[i];
            acc += h[i] * v->Ct[n];
        }
        y[p] = acc + Dh * v->x[p];
    }
}

void ssm_ssd_step_naive(int h0, int h1, int H, int P, int G, int N, const float *x, const float *Bt,
                        const float *Ct, const float *dt, const float *A, const float *Dskip, float *h,
                        float *y)
{
    for (int hd = h0; hd < h1; hd++) {
        int g = hd / (H / G);
        step_view v = {x + (size_t)hd * P, Bt + (size_t)g * N, Ct + (size_t)g * N, dt[hd]};
        naive_step(&v, P, N, A[hd], Dskip[hd], NULL, NULL, h + (size_t)hd * P * N, y + (size_t)hd * P);
    }
}

/* naive_step without probes for N a multiple of STEP_LANES: the state
 * update is elementwise, and each row's h C is summed in STEP_LANES
 * partial sums (lane j takes n = j mod STEP_LANES, in order of n), then
 * added in a fixed tree, so the compiler vectorises both; the naive twin's
 * single running sum was a chain of N dependent adds per row (for
 * mamba2-130m, 24 x 64 chains of 128 per layer and token). */
#define STEP_LANES 16
static void lanes_step(const step_view *v, int P, int N, float A, float Dh, float *restrict h,
                       float *restrict y)
{
    float e = expf(v->dt * A);
    const float *restrict Bt = v->Bt, *restrict Ct = v->Ct;
    for (int p = 0; p < P; p++) {
        float dx = v->dt * v->x[p], part[STEP_LANES] = {0};
        float *restrict hp = h + (size_t)p * N;
        for (int n0 = 0; n0 < N; n0 += STEP_LANES)
            for (int j = 0; j < STEP_LANES; j++) {
                float hv = e * hp[n0 + j] + dx * Bt[n0 + j];
                hp[n0 + j] = hv;
                part[j] += hv * Ct[n0 + j];
            }
        for (int w = STEP_LANES / 2; w > 0; w /= 2)
            for (int j = 0; j < w; j++) part[j] += part[j + w];
        y[p] = part[0] + Dh * v->x[p];
    }
}

void ssm_ssd_step(int h0, int h1, int H, int P, int G, int N, const float *x, const float *Bt,
                  const float *Ct, const float *dt, const float *A, const float *Dskip, float *h,
                  float *y)
{
    if (N % STEP_LANES) {
        ssm_ssd_step_naive(h0, h1, H, P, G, N, x, Bt, Ct, dt, A, Dskip, h, y);
        return;
    }
    for (int hd = h0; hd < h1; hd++) {
        int g = hd / (H / G);
        step_view v = {x + (size_t)hd * P, Bt + (size_t)g * N, Ct + (size_t)g * N, dt[hd]};
        lanes_step(&v, P, N, A[hd], Dskip[hd], h + (size_t)hd * P * N, y + (size_t)hd * P);
    }
}

/* head hd's part of the probe's keep mask, or NULL */
static const float *head_keep(const ssm_ssd_args *a, int hd)
{
    return a->keep ? a->keep + (size_t)hd * a->P * a->N : NULL;
}

ssm_status ssm_ssd_forward_naive(const ssm_ssd_args *a, float *y)
{
    int P = a->P, N = a->N, H = a->H, E = H * P, nc = ssm_ssd_chunks(a->L, a->Q);
    size_t PN = (size_t)P * N;
    float *h = calloc(PN, sizeof(float));   /* (P, N) */
    if (!h) return ssm_fail(SSM_ERR_NOMEM, "ssd: out of memory for the naive forward");
    for (int b = 0; b < a->B; b++)
        for (int hd = 0; hd < H; hd++) {
            memset(h, 0, sizeof(float) * PN);
            for (int t = 0; t < a->L; t++) {
                step_view v = step_at(a, b, hd, t);
                size_t row = (size_t)b * a->L + t;
                const float *patch = a->patch_h && t == a->patch_t ? a->patch_h + ((size_t)b * H + hd) * PN : NULL;
                if (a->states && t % a->Q == 0)   /* the chunked backward's input */
                    memcpy(a->states + (((size_t)b * H + hd) * nc + t / a->Q) * PN, h, sizeof(float) * PN);
                naive_step(&v, P, N, a->A[hd], a->Dskip[hd], head_keep(a, hd), patch, h, y + row * E + (size_t)hd * P);
                if (a->h_out) memcpy(a->h_out + (row * H + hd) * PN, h, sizeof(float) * PN);
            }
            if (a->h_last) memcpy(a->h_last + ((size_t)b * H + hd) * PN, h, sizeof(float) * PN);
        }
    free(h);
    return SSM_OK;
}

ssm_status ssm_ssd_backward_naive(const ssm_ssd_args *a, const float *dy, float *dx,
                                  float *dB, float *dC, float *ddt, float *dA, float *dD)
{
    int P = a->P, N = a->N, H = a->H, E = H * P, L = a->L, G = a->G;
    size_t PN = (size_t)P * N;
    float *hs = malloc(sizeof(float) * ((size_t)(L + 1) * PN + PN + P));   /* h_{-1} .. h_{L-1}, dh, y */
    if (!hs) return ssm_fail(SSM_ERR_NOMEM, "ssd: out of memory for the naive backward");
    float *dh = hs + (size_t)(L + 1) * PN, *ytmp = dh + PN;
    for (int i = 0; i < a->B * L; i++)
        for (int j = 0; j < G * N; j++) {
            dB[(size_t)i * a->ld_bc + j] = 0.0f;
            dC[(size_t)i * a->ld_bc + j] = 0.0f;
        }
    for (int b = 0; b < a->B; b++)
        for (int hd = 0; hd < H; hd++) {
            float A = a->A[hd];
            const float *keep = head_keep(a, hd);
            memset(hs, 0, sizeof(float) * PN);
            for (int t = 0; t < L; t++) {
                step_view v = step_at(a, b, hd, t);
                memcpy(hs + (t + 1) * PN, hs + t * PN, sizeof(float) * PN);
                naive_step(&v, P, N, A, a->Dskip[hd], keep, NULL, hs + (t + 1) * PN, ytmp);
            }
            memset(dh, 0, sizeof(float) * PN);
            for (int t = L - 1; t >= 0; t--) {
                step_view v = step_at(a, b, hd, t);
                size_t row = (size_t)b * L + t;
                int g = hd / (H / G);
                const float *g_y = dy + row * E + (size_t)hd * P, *h = hs + (t + 1) * PN,
                            *hp = hs + t * PN;
                float *dxt = dx + row * a->ld_x + (size_t)hd * P;
                float *dBt = dB + row * a->ld_bc + (size_t)g * N, *dCt = dC + row * a->ld_bc + (size_t)g * N;
                float e = expf(v.dt * A), gdt = 0.0f, dhh = 0.0f;
                for (int p = 0; p < P; p++) {
                    dD[hd] += g_y[p] * v.x[p];
                    dxt[p] = a->Dskip[hd] * g_y[p];
                    for (int n = 0; n < N; n++) {
                        dCt[n] += h[(size_t)p * N + n] * g_y[p];
                        dh[(size_t)p * N + n] += g_y[p] * v.Ct[n];
                    }
                }
                for (int p = 0; p < P; p++)
                    for (int n = 0; n < N; n++) {
                        /* d/d(h_t before the keep mask) */
                        float d = dh[(size_t)p * N + n] * (keep ? keep[(size_t)p * N + n] : 1.0f);
                        gdt += d * v.x[p] * v.Bt[n];
                        dhh += d * hp[(size_t)p * N + n];
                        dxt[p] += v.dt * d * v.Bt[n];
                        dBt[n] += v.dt * d * v.x[p];
                        dh[(size_t)p * N + n] = e * d;
                    }
                dA[hd] += dhh * v.dt * e;
                ddt[row * H + hd] = gdt + dhh * A * e;
            }
        }
    free(hs);
    return SSM_OK;
}
