/* scan.c — the selective scan and the causal depthwise conv of one Mamba
 * layer (ssmlab-math(7) MODEL steps 2 and 5), forward and backward.  The fast scans
 * spread (batch x channel block) tasks over OpenMP threads and vectorise over
 * the channels of a block: SCAN_W = 8 on the avx2 path, 16 in AVX-512
 * intrinsics on the avx512 path (chosen at run time); the fast
 * conv forward spreads row tasks and vectorises over channel chunks, with the
 * SiLU optionally fused; the naive twins follow the formulas literally in
 * double.  Every reduction of the fast kernels runs in a fixed
 * order, so results do not depend on the thread count.  A fast kernel that
 * must fall back to its naive twin (too wide a state or conv, no work
 * space) says so on stderr, once per reason. */
#include "engine/scan.h"
#include "engine/hsum16.h"
#include "engine/layout.h"
#include "engine/split.h"
#include "engine/status.h"
#include "engine/vmath.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_W    8   /* channels per scan block: one AVX2 vector of floats */
#define SCAN_NMAX 256 /* largest N the fast scan keeps on the stack */
#define SCAN_GMAX 32  /* most channel groups per sequence in the backward */
#define CONV_W    16  /* channels per conv block */
#define CONV_KMAX 16  /* largest K the fast conv keeps on the stack */
#define CONV_CH   256 /* channels per chunk of the fast conv forward */
#define CONV_ROWS 32  /* rows (of B*L) per task of the fast conv forward */

static int imin(int a, int b) { return a < b ? a : b; }

/* Reasons a fast kernel falls back to its naive twin, each told once. */
static atomic_flag told_scan_wide = ATOMIC_FLAG_INIT;  /* N > SCAN_NMAX */
static atomic_flag told_conv_wide = ATOMIC_FLAG_INIT;  /* K > CONV_KMAX */
static atomic_flag told_conv_small = ATOMIC_FLAG_INIT; /* caller's work space too small */
static atomic_flag told_conv_nomem = ATOMIC_FLAG_INIT; /* no memory for a work space */

/* A fallback, said once per reason: the first call for told prints
 * "ssmlab: <kernel>: <reason>: <consequence>" (fmt) on stderr. */
__attribute__((format(printf, 2, 3)))
static void fallback_tell(atomic_flag *told, const char *fmt, ...)
{
    if (atomic_flag_test_and_set(told))
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "ssmlab: %s\n", line);
}

static void fallback_scan_wide(int N)
{
    fallback_tell(&told_scan_wide, "scan: state width %d > %d: using the naive scan "
                  "(single-threaded, slower)", N, SCAN_NMAX);
}

static void fallback_conv_wide(int K)
{
    fallback_tell(&told_conv_wide, "conv: d_conv %d > %d: using the naive conv "
                  "(single-threaded, slower)", K, CONV_KMAX);
}

/* need floats of work space: the caller's (work, work_n) when given, else
 * a new allocation, also left in *own for free().  NULL when the caller's
 * is too small or memory is short. */
static float *work_take(float *work, size_t work_n, size_t need, float **own)
{
    *own = NULL;
    if (work)
        return work_n >= need ? work : NULL;
    *own = ssm_layout_alloc(need);
    return *own;
}

/* ------------------------------------------------------------------ */
/* exp                                                                  */

/* ------------------------------------------------------------------ */
/* fast scan: helpers for one block of SCAN_W channels                   */

/* Inputs of one token for one channel block, padded with zeros. */
typedef struct {
    float dt[SCAN_W];  /* delta_t[e0 + w] */
    float u[SCAN_W];   /* u_t[e0 + w] */
    float dtu[SCAN_W]; /* delta_t u_t */
    float dy[SCAN_W];  /* dy_t[e0 + w] (backward only) */
    const float *Bt;   /* (N) B_t */
    const float *Ct;   /* (N) C_t */
} scan_tok;

static int scan_nblk(int E) { return (E + SCAN_W - 1) / SCAN_W; }

/* v[w] = src[w] for w < nw, 0 in the padding lanes. */
static inline void scan_load(const float *src, int nw, float v[SCAN_W])
{
    for (int w = 0; w < SCAN_W; w++)
        v[w] = w < nw ? src[w] : 0.0f;
}

/* Token (b*L + t) = row of the block starting at channel e0. */
static inline void scan_tok_load(const ssm_scan_args *a, const float *dy,
                                 size_t row, int e0, int nw, scan_tok *tk)
{
    const size_t off = row * (size_t)a->E + (size_t)e0;
    scan_load(a->delta + off, nw, tk->dt);
    scan_load(a->u + off, nw, tk->u);
    if (dy)
        scan_load(dy + off, nw, tk->dy);
    for (int w = 0; w < SCAN_W; w++)
        tk->dtu[w] = tk->dt[w] * tk->u[w];
    tk->Bt = a->Bm + row * (size_t)a->ld_bc;
    tk->Ct = a->Cm + row * (size_t)a->ld_bc;
}

/* At[n][w] = A[e0 + w, n], 0 in the padding lanes. */
static void scan_block_A(const ssm_scan_args *a, int e0, int nw,
                         float At[][SCAN_W])
{
    for (int n = 0; n < a->N; n++)
        for (int w = 0; w < SCAN_W; w++)
            At[n][w] = w < nw ? a->A[(size_t)(e0 + w) * a->N + n] : 0.0f;
}

/* Fixed-order tree sum of the SCAN_W lanes (destroys v). */
static inline float scan_hsum(float v[SCAN_W])
{
    for (int half = SCAN_W / 2; half > 0; half /= 2)
        for (int w = 0; w < half; w++)
            v[w] += v[w + half];
    return v[0];
}

/* One token, state only, in place: h <- exp(dt A) h + dt u B_t. */
static inline void scan_token_state(int N, const float At[][SCAN_W],
                                    const scan_tok *tk, float h[][SCAN_W])
{
    for (int n = 0; n < N; n++) {
        const float bn = tk->Bt[n];
        for (int w = 0; w < SCAN_W; w++)
            h[n][w] = ssm_expf(tk->dt[w] * At[n][w]) * h[n][w]
                    + tk->dtu[w] * bn;
    }
}

/* One token of the forward, in place: h <- exp(dt A) h + dt u B_t and
 * acc[w] = sum_n C_t[n] h[n][w] (n in increasing order). */
static inline void scan_token_fwd(int N, const float At[][SCAN_W],
                                  const scan_tok *tk, float h[][SCAN_W],
                                  float acc[SCAN_W])
{
    for (int w = 0; w < SCAN_W; w++)
        acc[w] = 0.0f;
    for (int n = 0; n < N; n++) {
        const float bn = tk->Bt[n], cn = tk->Ct[n];
        for (int w = 0; w < SCAN_W; w++) {
            h[n][w] = ssm_expf(tk->dt[w] * At[n][w]) * h[n][w]
                    + tk->dtu[w] * bn;
            acc[w] += cn * h[n][w];
        }
    }
}

/* ------------------------------------------------------------------ */
/* fast scan forward                                                     */

static void scan_fwd_block(const ssm_scan_args *a, int b, int blk, float *y)
{
    float At[SCAN_NMAX][SCAN_W]; /* (N, W) A of this block, transposed */
    float h[SCAN_NMAX][SCAN_W];  /* (N, W) state h_t */
    float Dv[SCAN_W];            /* (W) skip weights */
    const int e0 = blk * SCAN_W, nw = imin(SCAN_W, a->E - e0);
    scan_block_A(a, e0, nw, At);
    scan_load(a->Dskip + e0, nw, Dv);
    memset(h, 0, (size_t)a->N * sizeof h[0]);
    for (int t = 0; t < a->L; t++) {
        const size_t row = (size_t)b * a->L + t;
        scan_tok tk;
        float acc[SCAN_W]; /* (W) sum_n C_t h_t */
        scan_tok_load(a, NULL, row, e0, nw, &tk);
        scan_token_fwd(a->N, At, &tk, h, acc);
        float *yr = y + row * (size_t)a->E + e0;
        for (int w = 0; w < nw; w++)
            yr[w] = acc[w] + Dv[w] * tk.u[w];
    }
    for (int w = 0; a->h_last && w < nw; w++)
        for (int n = 0; n < a->N; n++)
            a->h_last[((size_t)b * a->E + e0 + w) * a->N + n] = h[n][w];
}

/* ------------------------------------------------------------------ */
/* fast scan forward, AVX-512: 16 channels a block, state in registers   */

/* Everything here is compiled for AVX-512F by target attributes, whatever
 * the build's -march, and runs only when the CPU has it (scan_isa_pick). */
#define SCAN_W16 16   /* channels per AVX-512 block */
#define SCAN_AVX512 __attribute__((target("avx512f")))

/* ssm_expf (vmath.h) on 16 lanes, bit for bit: the same n, r and
 * polynomial, and p 2^n by one scalef where ssm_expf builds 2^n in the
 * exponent bits and multiplies (both round p 2^n once).  The lower clamp is
 * scalef's mask: below ln(FLT_MIN) the result is exactly 0.  14 operations
 * where building the bits took 17. */
SCAN_AVX512 static inline __m512 scan_exp16(__m512 x)
{
    const __m512 magic = _mm512_set1_ps(0x1.8p23f);
    const __m512 xc = _mm512_min_ps(_mm512_set1_ps(88.0f), x); /* NaN stays NaN */
    const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(xc, _mm512_set1_ps(1.44269504f), magic), magic);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.336544f), _CMP_NLT_UQ);
    return _mm512_maskz_scalef_ps(keep, p, n);
}

/* The lanes of a block of nw channels. */
static inline __mmask16 scan16_mask(int nw)
{
    return (__mmask16)(nw >= SCAN_W16 ? 0xffffu : (1u << nw) - 1u);
}

/* At[n] = A[e0 + w, n] over the lanes w < nw, 0 in the padding lanes. */
SCAN_AVX512 static inline __attribute__((always_inline))
void scan16_block_A(const ssm_scan_args *a, int e0, int nw, int N, __m512 *At)
{
    for (int n = 0; n < N; n++) {
        float col[SCAN_W16] = {0}; /* (W) A[e0 + w, n] */
        for (int w = 0; w < nw; w++)
            col[w] = a->A[(size_t)(e0 + w) * N + n];
        At[n] = _mm512_loadu_ps(col);
    }
}

/* One state n of one token: h <- exp(dt A) h + dt u B_t[n]; returns
 * acc + C_t[n] h. */
SCAN_AVX512 static inline __attribute__((always_inline))
__m512 scan16_state_step(__m512 dt, __m512 dtu, __m512 An, float bn, float cn,
                         __m512 *h, __m512 acc)
{
    const __m512 dA = scan_exp16(_mm512_mul_ps(dt, An));
    *h = _mm512_fmadd_ps(dA, *h, _mm512_mul_ps(dtu, _mm512_set1_ps(bn)));
    return _mm512_fmadd_ps(_mm512_set1_ps(cn), *h, acc);
}

/* Rows ahead (in the direction of the sweep) that the AVX-512 scans
 * prefetch delta, u and dy from.  A block's rows are E floats apart, a
 * page or more at E >= 1024, and the hardware prefetchers do not cross
 * pages: without it a third of the forward's time went to those loads
 * (1536 channels, L 512). */
#define SCAN_PREFETCH 4

/* Prefetches the block's lanes of row t of sequence b (dy too if set),
 * nothing when t is outside [0, L). */
static inline void scan16_prefetch(const ssm_scan_args *a, const float *dy, int b, int t, int e0)
{
    if (t < 0 || t >= a->L) return;
    const size_t off = ((size_t)b * a->L + (size_t)t) * (size_t)a->E + (size_t)e0;
    _mm_prefetch((const char *)(a->delta + off), _MM_HINT_T0);
    _mm_prefetch((const char *)(a->u + off), _MM_HINT_T0);
    if (dy) _mm_prefetch((const char *)(dy + off), _MM_HINT_T0);
}

/* The block of channels e0.. (nw of them) of sequence b, N states each,
 * h and At (N) in the caller's arrays: with N a constant (scan16_fwd_n16)
 * the n loops unroll and the state lives in registers for the whole
 * sequence.  y_t = sum_n C_t[n] h_t[n] (n in increasing order) + D u_t. */
SCAN_AVX512 static inline __attribute__((always_inline))
void scan16_fwd_body(const ssm_scan_args *a, int b, int e0, int nw, int N,
                     __m512 *h, __m512 *At, float *y)
{
    const __mmask16 m = scan16_mask(nw);
    scan16_block_A(a, e0, nw, N, At);
    for (int n = 0; n < N; n++)
        h[n] = _mm512_setzero_ps();
    const __m512 Dv = _mm512_maskz_loadu_ps(m, a->Dskip + e0);
    for (int t = 0; t < a->L; t++) {
        const size_t row = (size_t)b * a->L + t, off = row * (size_t)a->E + (size_t)e0;
        const float *Bt = a->Bm + row * (size_t)a->ld_bc, *Ct = a->Cm + row * (size_t)a->ld_bc;
        scan16_prefetch(a, NULL, b, t + SCAN_PREFETCH, e0);
        const __m512 dt = _mm512_maskz_loadu_ps(m, a->delta + off);
        const __m512 u = _mm512_maskz_loadu_ps(m, a->u + off);
        const __m512 dtu = _mm512_mul_ps(dt, u);
        __m512 acc = _mm512_setzero_ps();
        if (N == 16) {
#pragma clang loop unroll(full)
            for (int n = 0; n < 16; n++)
                acc = scan16_state_step(dt, dtu, At[n], Bt[n], Ct[n], &h[n], acc);
        } else {
            for (int n = 0; n < N; n++)
                acc = scan16_state_step(dt, dtu, At[n], Bt[n], Ct[n], &h[n], acc);
        }
        _mm512_mask_storeu_ps(y + off, m, _mm512_fmadd_ps(Dv, u, acc));
    }
    for (int n = 0; a->h_last && n < N; n++) {
        float col[SCAN_W16]; /* (W) h[e0 + w, n] */
        _mm512_storeu_ps(col, h[n]);
        for (int w = 0; w < nw; w++)
            a->h_last[((size_t)b * a->E + e0 + w) * N + n] = col[w];
    }
}

SCAN_AVX512 static void scan16_fwd_n16(const ssm_scan_args *a, int b, int e0, int nw, float *y)
{
    __m512 h[16], At[16]; /* (N, W) state and A of the block, N = 16 */
    scan16_fwd_body(a, b, e0, nw, 16, h, At, y);
}

SCAN_AVX512 static void scan16_fwd_any(const ssm_scan_args *a, int b, int e0, int nw, float *y)
{
    __m512 h[SCAN_NMAX], At[SCAN_NMAX]; /* (N, W) state and A of the block */
    scan16_fwd_body(a, b, e0, nw, a->N, h, At, y);
}

SCAN_AVX512 static void scan16_forward(const ssm_scan_args *a, float *y)
{
    const int nblk = (a->E + SCAN_W16 - 1) / SCAN_W16, ntask = a->B * nblk;
    int next = 0; /* blocks go to whichever thread is free: the host often
                     runs one vCPU slower, and a block's bits do not depend
                     on its thread */
#pragma omp parallel
    for (int i = ssm_split_claim(&next); i < ntask; i = ssm_split_claim(&next)) {
        const int b = i / nblk, e0 = i % nblk * SCAN_W16, nw = imin(SCAN_W16, a->E - e0);
        if (a->N == 16) scan16_fwd_n16(a, b, e0, nw, y);
        else scan16_fwd_any(a, b, e0, nw, y);
    }
}

/* ------------------------------------------------------------------ */
/* the path of the fast scans                                            */

static _Atomic int scan_isa_now = SSM_SCAN_ISA_AUTO; /* AUTO: not chosen yet */

static int scan_isa_best(void)
{
    return ssm_scan_isa_supported(SSM_SCAN_ISA_AVX512) ? SSM_SCAN_ISA_AVX512 : SSM_SCAN_ISA_AVX2;
}

int ssm_scan_isa_supported(ssm_scan_isa isa)
{
    if (isa == SSM_SCAN_ISA_AVX512) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") != 0;
    }
    return isa == SSM_SCAN_ISA_AUTO || isa == SSM_SCAN_ISA_AVX2;
}

ssm_status ssm_scan_isa_set(ssm_scan_isa isa)
{
    if (!ssm_scan_isa_supported(isa))
        return ssm_fail(SSM_ERR_CONFIG, "scan path %s: this CPU lacks it", ssm_scan_isa_name(isa));
    atomic_store(&scan_isa_now, isa == SSM_SCAN_ISA_AUTO ? scan_isa_best() : (int)isa);
    return SSM_OK;
}

ssm_scan_isa ssm_scan_isa_get(void)
{
    int isa = atomic_load(&scan_isa_now);
    if (isa == SSM_SCAN_ISA_AUTO) {
        isa = scan_isa_best();
        atomic_store(&scan_isa_now, isa);
    }
    return (ssm_scan_isa)isa;
}

const char *ssm_scan_isa_name(ssm_scan_isa isa)
{
    switch (isa) {
    case SSM_SCAN_ISA_AVX2: return "avx2";
    case SSM_SCAN_ISA_AVX512: return "avx512";
    default: return "auto";
    }
}

int ssm_scan_probed(const ssm_scan_args *a)
{
    return a->keep || a->h_out || a->patch_h;
}

ssm_status ssm_scan_forward(const ssm_scan_args *a, float *y)
{
    if (ssm_scan_probed(a)) return ssm_scan_forward_naive(a, y);
    if (a->N > SCAN_NMAX) {
        fallback_scan_wide(a->N);
        return ssm_scan_forward_naive(a, y);
    }
    if (ssm_scan_isa_get() == SSM_SCAN_ISA_AVX512) {
        scan16_forward(a, y);
        return SSM_OK;
    }
    const int nblk = scan_nblk(a->E), ntask = a->B * nblk;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < ntask; i++)
        scan_fwd_block(a, i / nblk, i % nblk, y);
    return SSM_OK;
}

/* ------------------------------------------------------------------ */
/* fast scan backward                                                    */

/* Scratch and partial sums of one call of the fast backward.  A task is
 * one sequence b and one group of consecutive channel blocks; the split
 * into groups depends on E only, never on the thread count. */
typedef struct {
    float *dBp, *dCp; /* (B, L, ngrp, N) per-group partial dB_t, dC_t */
    float *dAp;       /* (B, E, N) per-sequence partial dA */
    float *dDp;       /* (B, E) per-sequence partial dD */
    float *hs;        /* (threads, hs_stride) recomputed states of one block
                         per thread, (L+1, N, W) for W = 8 or 16 lanes; row
                         0 is h_{-1} = 0, row t+1 is h_t */
    size_t hs_stride; /* floats per thread in hs */
    int nblk, ngrp;   /* channel blocks, and groups of them */
} scan_work;
#define SCAN_WORK_ENTRIES 5

/* The fast backward's work space for threads threads, laid out by one
 * table; hs comes last, so what is left after the rest is whole threads. */
static void scan_work_table(const ssm_scan_args *a, int threads, scan_work *wk,
                            ssm_layout_entry t[SCAN_WORK_ENTRIES])
{
    const size_t B = a->B, L = a->L, E = a->E, N = a->N;
    wk->nblk = scan_nblk(a->E);
    wk->ngrp = imin(wk->nblk, SCAN_GMAX);
    wk->hs_stride = (L + 1) * N * SCAN_W16; /* the wider path's, 64-byte rows */
    const ssm_layout_entry list[SCAN_WORK_ENTRIES] = {
        {&wk->dBp, B * L * wk->ngrp * N},
        {&wk->dCp, B * L * wk->ngrp * N},
        {&wk->dAp, B * E * N},
        {&wk->dDp, B * E},
        {&wk->hs, (size_t)threads * wk->hs_stride},
    };
    memcpy(t, list, sizeof list);
}

/* Threads the fast backward runs on: OpenMP's, or as many as the caller's
 * work space holds (the result does not depend on it). */
static int scan_work_threads(const ssm_scan_args *a)
{
    const int nthr = omp_get_max_threads();
    if (!a->work)
        return nthr;
    scan_work wk;
    ssm_layout_entry t[SCAN_WORK_ENTRIES];
    scan_work_table(a, 0, &wk, t);
    const size_t fixed = ssm_layout_size(t, SCAN_WORK_ENTRIES, 1);
    const size_t fit = a->work_n > fixed ? (a->work_n - fixed) / wk.hs_stride : 0;
    return fit < 1 ? 1 : fit < (size_t)nthr ? (int)fit : nthr;
}

/* h_t of the block for every t into hs (L+1, N, W); row 0 = 0.  The state
 * is updated in a local array (no aliasing, so it vectorises) and copied. */
static void scan_recompute(const ssm_scan_args *a, int b, int e0, int nw,
                           const float At[][SCAN_W], float *hs)
{
    float h[SCAN_NMAX][SCAN_W]; /* (N, W) state h_t */
    const size_t NW = (size_t)a->N * SCAN_W;
    memset(h, 0, NW * sizeof(float));
    memset(hs, 0, NW * sizeof *hs);
    for (int t = 0; t < a->L; t++) {
        scan_tok tk;
        scan_tok_load(a, NULL, (size_t)b * a->L + t, e0, nw, &tk);
        scan_token_state(a->N, At, &tk, h);
        memcpy(hs + (t + 1) * NW, h, NW * sizeof *hs);
    }
}

/* Running sums of one block over the reverse sweep. */
typedef struct {
    float carry[SCAN_NMAX][SCAN_W]; /* (N, W) g_{t+1} exp(delta_{t+1} A) */
    float dA[SCAN_NMAX][SCAN_W];    /* (N, W) sum_t of the dA terms */
    float dD[SCAN_W];               /* (W) sum_t dy u */
} scan_acc;

/* One token of the reverse sweep.  ddt, dus (W) receive ddelta_t and the
 * state part of du_t; the block's share of dB_t, dC_t is stored into dBp,
 * dCp (N), or added to them when add is set. */
static inline void scan_token_bwd(int N, const float At[][SCAN_W],
                                  const scan_tok *tk,
                                  const float hp[][SCAN_W],
                                  const float hc[][SCAN_W], scan_acc *ac,
                                  float ddt[SCAN_W], float dus[SCAN_W],
                                  int add, float *dBp, float *dCp)
{
    for (int n = 0; n < N; n++) {
        const float bn = tk->Bt[n], cn = tk->Ct[n];
        float gb[SCAN_W], hd[SCAN_W]; /* (W) lanes of dB_t[n], dC_t[n] */
        for (int w = 0; w < SCAN_W; w++) {
            const float dA = ssm_expf(tk->dt[w] * At[n][w]);
            const float g = tk->dy[w] * cn + ac->carry[n][w];
            const float hpdA = hp[n][w] * dA;
            ddt[w] += g * (hpdA * At[n][w] + bn * tk->u[w]);
            ac->dA[n][w] += g * hpdA * tk->dt[w];
            dus[w] += g * tk->dt[w] * bn;
            gb[w] = g * tk->dtu[w];
            hd[w] = tk->dy[w] * hc[n][w];
            ac->carry[n][w] = g * dA;
        }
        const float sb = scan_hsum(gb), sc = scan_hsum(hd);
        dBp[n] = add ? dBp[n] + sb : sb;
        dCp[n] = add ? dCp[n] + sc : sc;
    }
}

/* The block's dA, dD sums into the per-sequence partials. */
static void scan_store_acc(const ssm_scan_args *a, const scan_work *wk,
                           int b, int e0, int nw, const scan_acc *ac)
{
    for (int w = 0; w < nw; w++) {
        const size_t e = (size_t)b * a->E + e0 + w;
        for (int n = 0; n < a->N; n++)
            wk->dAp[e * a->N + n] = ac->dA[n][w];
        wk->dDp[e] = ac->dD[w];
    }
}

/* Reverse sweep over t for one block of group grp; states come from hs.
 * The group's first block stores its dB/dC partials, later ones add. */
static void scan_reverse(const ssm_scan_args *a, const float *dy, int b,
                         int blk, int grp, int add, const float At[][SCAN_W],
                         const float *hs, const scan_work *wk, float *du,
                         float *ddelta)
{
    const int e0 = blk * SCAN_W, nw = imin(SCAN_W, a->E - e0), N = a->N;
    const size_t NW = (size_t)N * SCAN_W;
    scan_acc ac;
    memset(ac.carry, 0, (size_t)N * sizeof ac.carry[0]);
    memset(ac.dA, 0, (size_t)N * sizeof ac.dA[0]);
    memset(ac.dD, 0, sizeof ac.dD);
    float Dv[SCAN_W]; /* (W) skip weights */
    scan_load(a->Dskip + e0, nw, Dv);
    for (int t = a->L - 1; t >= 0; t--) {
        const size_t row = (size_t)b * a->L + t;
        const size_t prow = (row * wk->ngrp + grp) * N;
        scan_tok tk;
        float ddt[SCAN_W] = {0}, dus[SCAN_W] = {0}; /* (W) */
        scan_tok_load(a, dy, row, e0, nw, &tk);
        scan_token_bwd(N, At, &tk, (const float (*)[SCAN_W])(hs + t * NW),
                       (const float (*)[SCAN_W])(hs + (t + 1) * NW), &ac,
                       ddt, dus, add, wk->dBp + prow, wk->dCp + prow);
        const size_t off = row * a->E + e0;
        for (int w = 0; w < nw; w++) {
            du[off + w] = dus[w] + Dv[w] * tk.dy[w];
            ddelta[off + w] = ddt[w];
        }
        for (int w = 0; w < SCAN_W; w++)
            ac.dD[w] += tk.dy[w] * tk.u[w];
    }
    scan_store_acc(a, wk, b, e0, nw, &ac);
}

/* Task (b, grp): the blocks of group grp in increasing order. */
static void scan_bwd_task(const ssm_scan_args *a, const float *dy, int b,
                          int grp, float *hs, const scan_work *wk,
                          float *du, float *ddelta)
{
    float At[SCAN_NMAX][SCAN_W]; /* (N, W) A of one block, transposed */
    const int k0 = grp * wk->nblk / wk->ngrp;
    const int k1 = (grp + 1) * wk->nblk / wk->ngrp;
    for (int blk = k0; blk < k1; blk++) {
        const int e0 = blk * SCAN_W, nw = imin(SCAN_W, a->E - e0);
        scan_block_A(a, e0, nw, At);
        scan_recompute(a, b, e0, nw, At, hs);
        scan_reverse(a, dy, b, blk, grp, blk > k0, At, hs, wk, du, ddelta);
    }
}

/* dB_t, dC_t = sum over groups, in group order. */
static void scan_reduce_bc(const ssm_scan_args *a, const scan_work *wk,
                           float *dBm, float *dCm)
{
    const int nrow = a->B * a->L, N = a->N, ngrp = wk->ngrp;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < nrow; r++) {
        float sB[SCAN_NMAX] = {0}, sC[SCAN_NMAX] = {0}; /* (N) */
        for (int k = 0; k < ngrp; k++) {
            const float *pB = wk->dBp + ((size_t)r * ngrp + k) * N;
            const float *pC = wk->dCp + ((size_t)r * ngrp + k) * N;
            for (int n = 0; n < N; n++) {
                sB[n] += pB[n];
                sC[n] += pC[n];
            }
        }
        memcpy(dBm + (size_t)r * a->ld_bc, sB, (size_t)N * sizeof *sB);
        memcpy(dCm + (size_t)r * a->ld_bc, sC, (size_t)N * sizeof *sC);
    }
}

/* dA += sum over sequences, dD likewise, in sequence order. */
static void scan_reduce_ad(const ssm_scan_args *a, const scan_work *wk,
                           float *dA, float *dD)
{
    const size_t EN = (size_t)a->E * a->N;
#pragma omp parallel for schedule(static)
    for (int e = 0; e < a->E; e++) {
        for (int n = 0; n < a->N; n++) {
            float s = 0.0f;
            for (int b = 0; b < a->B; b++)
                s += wk->dAp[b * EN + (size_t)e * a->N + n];
            dA[(size_t)e * a->N + n] += s;
        }
        float s = 0.0f;
        for (int b = 0; b < a->B; b++)
            s += wk->dDp[(size_t)b * a->E + e];
        dD[e] += s;
    }
}

/* ------------------------------------------------------------------ */
/* fast scan backward, AVX-512: 16 channels a block                       */

/* The same algorithm as the avx2 backward above (recompute the block's
 * states, then one reverse sweep), on 16 lanes: the recompute keeps the
 * state in registers and also forms the block's dC_t (it needs h_t only),
 * the reverse sweep keeps the state's gradient (carry) and the dA sums in
 * registers (N = 16) or stack arrays (other N). */

/* dst[n] = sum of the lanes of v[n] (n < N), or dst[n] += it when add;
 * v is spent. */
SCAN_AVX512 static inline __attribute__((always_inline))
void scan16_put_sums(int N, const __m512 *v, int add, float *dst)
{
    if (N == 16) {
        __m512 s = ssm_hsum16x16(v);
        if (add)
            s = _mm512_add_ps(_mm512_loadu_ps(dst), s);
        _mm512_storeu_ps(dst, s);
        return;
    }
    for (int n = 0; n < N; n++) {
        const float s = ssm_hsum16(v[n]);
        dst[n] = add ? dst[n] + s : s;
    }
}

/* Inputs of token row for the block at e0 (lanes m): delta, u, dy and
 * delta u. */
typedef struct {
    __m512 dt, u, dy, dtu;
} scan16_tok;

SCAN_AVX512 static inline __attribute__((always_inline))
scan16_tok scan16_tok_load(const ssm_scan_args *a, const float *dy, size_t row, int e0, __mmask16 m)
{
    const size_t off = row * (size_t)a->E + (size_t)e0;
    scan16_tok tk;
    tk.dt = _mm512_maskz_loadu_ps(m, a->delta + off);
    tk.u = _mm512_maskz_loadu_ps(m, a->u + off);
    tk.dy = _mm512_maskz_loadu_ps(m, dy + off);
    tk.dtu = _mm512_mul_ps(tk.dt, tk.u);
    return tk;
}

/* State n of one token: h <- exp(dt A) h + dt u B_t[n], stored to hrow;
 * hd = dy h (the lanes of dC_t[n]). */
SCAN_AVX512 static inline __attribute__((always_inline))
void scan16_state_n(const scan16_tok *tk, __m512 An, float bn, __m512 *h, __m512 *hd, float *hrow)
{
    const __m512 dA = scan_exp16(_mm512_mul_ps(tk->dt, An));
    *h = _mm512_fmadd_ps(dA, *h, _mm512_mul_ps(tk->dtu, _mm512_set1_ps(bn)));
    _mm512_store_ps(hrow, *h);
    *hd = _mm512_mul_ps(tk->dy, *h);
}

/* State n of one token of the reverse sweep, hp its h_{t-1}: with
 * g = dy C_t[n] + carry, adds the terms of ddelta, du (state part) and dA,
 * sets gb to the lanes of dB_t[n] and carry to g exp(dt A). */
SCAN_AVX512 static inline __attribute__((always_inline))
void scan16_grad_n(const scan16_tok *tk, __m512 An, float b, float c, const float *hp,
                   __m512 *carry, __m512 *dAs, __m512 *gb, __m512 *ddt, __m512 *dus)
{
    const __m512 bn = _mm512_set1_ps(b);
    const __m512 dA = scan_exp16(_mm512_mul_ps(tk->dt, An));
    const __m512 g = _mm512_fmadd_ps(tk->dy, _mm512_set1_ps(c), *carry);
    const __m512 hpdA = _mm512_mul_ps(_mm512_load_ps(hp), dA);
    *ddt = _mm512_fmadd_ps(g, _mm512_fmadd_ps(hpdA, An, _mm512_mul_ps(bn, tk->u)), *ddt);
    *dAs = _mm512_fmadd_ps(_mm512_mul_ps(g, hpdA), tk->dt, *dAs);
    *dus = _mm512_fmadd_ps(_mm512_mul_ps(g, tk->dt), bn, *dus);
    *gb = _mm512_mul_ps(g, tk->dtu);
    *carry = _mm512_mul_ps(g, dA);
}

/* h_t of the block for every t into hs (L+1, N, 16), row 0 = h_{-1} = 0,
 * the state in h (registers for N = 16); and the block's share of
 * dC_t[n] = sum_w dy_t[w] h_t[n][w] into the group's partial (stored by
 * the group's first block, added by later ones).  hd holds N vectors. */
SCAN_AVX512 static inline __attribute__((always_inline))
void scan16_states(const ssm_scan_args *a, const float *dy, int b, int e0, int nw, int N,
                   const __m512 *At, __m512 *h, __m512 *hd, float *hs,
                   const scan_work *wk, int grp, int add)
{
    const __mmask16 m = scan16_mask(nw);
    for (int n = 0; n < N; n++) {
        h[n] = _mm512_setzero_ps();
        _mm512_store_ps(hs + (size_t)n * SCAN_W16, h[n]);
    }
    for (int t = 0; t < a->L; t++) {
        const size_t row = (size_t)b * a->L + t;
        const float *Bt = a->Bm + row * (size_t)a->ld_bc;
        scan16_prefetch(a, dy, b, t + SCAN_PREFETCH, e0);
        const scan16_tok tk = scan16_tok_load(a, dy, row, e0, m);
        float *hrow = hs + (size_t)(t + 1) * N * SCAN_W16;
        if (N == 16) {
#pragma clang loop unroll(full)
            for (int n = 0; n < 16; n++)
                scan16_state_n(&tk, At[n], Bt[n], &h[n], &hd[n], hrow + (size_t)n * SCAN_W16);
        } else {
            for (int n = 0; n < N; n++)
                scan16_state_n(&tk, At[n], Bt[n], &h[n], &hd[n], hrow + (size_t)n * SCAN_W16);
        }
        scan16_put_sums(N, hd, add, wk->dCp + (row * wk->ngrp + grp) * N);
    }
}

/* The reverse sweep of the block over t, states from hs: du, ddelta of
 * the block's channels, its share of dB_t (stored or added as dC_t), and
 * its dA, dD sums into the per-sequence partials.  carry, dAs and gb hold
 * N vectors each. */
SCAN_AVX512 static inline __attribute__((always_inline))
void scan16_reverse(const ssm_scan_args *a, const float *dy, int b, int e0, int nw, int N,
                    const __m512 *At, __m512 *carry, __m512 *dAs, __m512 *gb,
                    const float *hs, const scan_work *wk, int grp, int add,
                    float *du, float *ddelta)
{
    const __mmask16 m = scan16_mask(nw);
    for (int n = 0; n < N; n++)
        carry[n] = dAs[n] = _mm512_setzero_ps();
    __m512 dD = _mm512_setzero_ps();
    const __m512 Dv = _mm512_maskz_loadu_ps(m, a->Dskip + e0);
    for (int t = a->L - 1; t >= 0; t--) {
        const size_t row = (size_t)b * a->L + t, off = row * (size_t)a->E + (size_t)e0;
        const float *Bt = a->Bm + row * (size_t)a->ld_bc, *Ct = a->Cm + row * (size_t)a->ld_bc;
        scan16_prefetch(a, dy, b, t - SCAN_PREFETCH, e0);
        const scan16_tok tk = scan16_tok_load(a, dy, row, e0, m);
        const float *hp = hs + (size_t)t * N * SCAN_W16; /* (N, 16) h_{t-1} */
        __m512 ddt = _mm512_setzero_ps(), dus = _mm512_setzero_ps();
        if (N == 16) {
#pragma clang loop unroll(full)
            for (int n = 0; n < 16; n++)
                scan16_grad_n(&tk, At[n], Bt[n], Ct[n], hp + (size_t)n * SCAN_W16,
                              &carry[n], &dAs[n], &gb[n], &ddt, &dus);
        } else {
            for (int n = 0; n < N; n++)
                scan16_grad_n(&tk, At[n], Bt[n], Ct[n], hp + (size_t)n * SCAN_W16,
                              &carry[n], &dAs[n], &gb[n], &ddt, &dus);
        }
        scan16_put_sums(N, gb, add, wk->dBp + (row * wk->ngrp + grp) * N);
        _mm512_mask_storeu_ps(du + off, m, _mm512_fmadd_ps(Dv, tk.dy, dus));
        _mm512_mask_storeu_ps(ddelta + off, m, ddt);
        dD = _mm512_fmadd_ps(tk.dy, tk.u, dD);
    }
    for (int n = 0; n < N; n++) {
        float col[SCAN_W16]; /* (W) the dA sums of state n */
        _mm512_storeu_ps(col, dAs[n]);
        for (int w = 0; w < nw; w++)
            wk->dAp[((size_t)b * a->E + e0 + w) * N + n] = col[w];
    }
    _mm512_mask_storeu_ps(wk->dDp + (size_t)b * a->E + e0, m, dD);
}

/* One block, N = 16: everything in registers but the recomputed states. */
SCAN_AVX512 static void scan16_bwd_n16(const ssm_scan_args *a, const float *dy, int b, int e0,
                                      int nw, float *hs, const scan_work *wk, int grp, int add,
                                      float *du, float *ddelta)
{
    __m512 At[16], v[16], dAs[16], tmp[16]; /* (N, W) A; state, then its gradient; dA; sums */
    scan16_block_A(a, e0, nw, 16, At);
    scan16_states(a, dy, b, e0, nw, 16, At, v, tmp, hs, wk, grp, add);
    scan16_reverse(a, dy, b, e0, nw, 16, At, v, dAs, tmp, hs, wk, grp, add, du, ddelta);
}

SCAN_AVX512 static void scan16_bwd_any(const ssm_scan_args *a, const float *dy, int b, int e0,
                                      int nw, float *hs, const scan_work *wk, int grp, int add,
                                      float *du, float *ddelta)
{
    /* (N, W) A; state, then its gradient; dA; sums */
    __m512 At[SCAN_NMAX], v[SCAN_NMAX], dAs[SCAN_NMAX], tmp[SCAN_NMAX];
    scan16_block_A(a, e0, nw, a->N, At);
    scan16_states(a, dy, b, e0, nw, a->N, At, v, tmp, hs, wk, grp, add);
    scan16_reverse(a, dy, b, e0, nw, a->N, At, v, dAs, tmp, hs, wk, grp, add, du, ddelta);
}

/* The tasks (b, grp) of the avx512 path over nthr threads; wk's groups are
 * of 16-channel blocks.  The group's first block stores its dB/dC
 * partials, later ones add. */
SCAN_AVX512 static void scan16_backward(const ssm_scan_args *a, const float *dy, int nthr,
                                        const scan_work *wk, float *du, float *ddelta)
{
    const int ngrp = wk->ngrp, ntask = a->B * ngrp;
#pragma omp parallel num_threads(nthr)
    {
        float *hs = wk->hs + (size_t)omp_get_thread_num() * wk->hs_stride;
#pragma omp for schedule(static)
        for (int i = 0; i < ntask; i++) {
            const int b = i / ngrp, grp = i % ngrp;
            const int k0 = grp * wk->nblk / ngrp, k1 = (grp + 1) * wk->nblk / ngrp;
            for (int blk = k0; blk < k1; blk++) {
                const int e0 = blk * SCAN_W16, nw = imin(SCAN_W16, a->E - e0);
                if (a->N == 16)
                    scan16_bwd_n16(a, dy, b, e0, nw, hs, wk, grp, blk > k0, du, ddelta);
                else
                    scan16_bwd_any(a, dy, b, e0, nw, hs, wk, grp, blk > k0, du, ddelta);
            }
        }
    }
}

ssm_status ssm_scan_backward(const ssm_scan_args *a, const float *dy,
                             float *du, float *ddelta, float *dBm, float *dCm,
                             float *dA, float *dD)
{
    if (ssm_scan_probed(a)) return ssm_scan_backward_naive(a, dy, du, ddelta, dBm, dCm, dA, dD);
    if (a->N > SCAN_NMAX) {
        fallback_scan_wide(a->N);
        return ssm_scan_backward_naive(a, dy, du, ddelta, dBm, dCm, dA, dD);
    }
    const int nthr = scan_work_threads(a);
    scan_work wk;
    ssm_layout_entry t[SCAN_WORK_ENTRIES];
    scan_work_table(a, nthr, &wk, t);
    float *own, *mem = work_take(a->work, a->work_n, ssm_layout_size(t, SCAN_WORK_ENTRIES, 1), &own);
    if (!mem)
        return ssm_fail(a->work ? SSM_ERR_SOFTWARE : SSM_ERR_NOMEM, "scan backward: %s "
                        "(B=%d L=%d E=%d N=%d)", a->work ? "the work space is too small"
                        : "out of memory", a->B, a->L, a->E, a->N);
    ssm_layout_carve(t, SCAN_WORK_ENTRIES, 1, mem);
    if (ssm_scan_isa_get() == SSM_SCAN_ISA_AVX512) {
        /* fewer, wider blocks: the partials sized for 8-lane groups hold them */
        wk.nblk = (a->E + SCAN_W16 - 1) / SCAN_W16;
        wk.ngrp = imin(wk.nblk, SCAN_GMAX);
        scan16_backward(a, dy, nthr, &wk, du, ddelta);
    } else {
        const int ngrp = wk.ngrp, ntask = a->B * ngrp;
#pragma omp parallel num_threads(nthr)
        {
            float *hs = wk.hs + (size_t)omp_get_thread_num() * wk.hs_stride;
#pragma omp for schedule(static)
            for (int i = 0; i < ntask; i++)
                scan_bwd_task(a, dy, i / ngrp, i % ngrp, hs, &wk, du, ddelta);
        }
    }
    scan_reduce_bc(a, &wk, dBm, dCm);
    scan_reduce_ad(a, &wk, dA, dD);
    free(own);
    return SSM_OK;
}

/* Doubles of work space the naive scans take (see naive_work). */
static size_t naive_fwd_doubles(const ssm_scan_args *a)
{
    return (size_t)a->E * a->N + 1;
}

static size_t naive_bwd_doubles(const ssm_scan_args *a)
{
    const size_t L = a->L, EN = (size_t)a->E * a->N;
    return (L + 1) * EN + 2 * EN + a->E + 2 * (size_t)a->N + 1;
}

size_t ssm_scan_work_size(int B, int L, int E, int N, int threads, int backward)
{
    const ssm_scan_args a = {.B = B, .L = L, .E = E, .N = N};
    if (N > SCAN_NMAX) {
        const size_t f = naive_fwd_doubles(&a), b = naive_bwd_doubles(&a);
        return 2 * (backward && b > f ? b : f);
    }
    if (!backward)
        return 0;
    scan_work wk;
    ssm_layout_entry t[SCAN_WORK_ENTRIES];
    scan_work_table(&a, threads > 0 ? threads : 1, &wk, t);
    return ssm_layout_size(t, SCAN_WORK_ENTRIES, 1);
}

/* ------------------------------------------------------------------ */
/* single-token step                                                     */

/* One channel of the AVX-512 step for N = 16: its state is one vector,
 * h <- exp(dt A) h + dt u B; returns C h, lane by lane, for the sum. */
SCAN_AVX512 static inline __attribute__((always_inline))
__m512 scan16_step_channel(float dt, float u, __m512 B, __m512 C, const float *Ae, float *he)
{
    const __m512 dA = scan_exp16(_mm512_mul_ps(_mm512_set1_ps(dt), _mm512_loadu_ps(Ae)));
    const __m512 h = _mm512_fmadd_ps(dA, _mm512_loadu_ps(he), _mm512_mul_ps(_mm512_set1_ps(dt * u), B));
    _mm512_storeu_ps(he, h);
    return _mm512_mul_ps(C, h);
}

/* ssm_scan_step for N = 16 on AVX-512: a channel's 16 states are one
 * vector, and sixteen channels' sums of C h come out of one transpose
 * (ssm_hsum16x16); the channels past the last sixteen are summed one by
 * one in the same tree (ssm_hsum16), so a channel's bits do not depend
 * on where a range of channels starts.  The state's update is the naive
 * twin's; y differs from it by the order of the sum over n. */
SCAN_AVX512 static void scan16_step_n16(int E, const float *u, const float *delta, const float *Bt,
                                        const float *Ct, const float *A, const float *Dskip, float *h,
                                        float *y)
{
    const __m512 B = _mm512_loadu_ps(Bt), C = _mm512_loadu_ps(Ct);
    int e = 0;
    for (; e + 16 <= E; e += 16) {
        __m512 v[16];
        for (int w = 0; w < 16; w++)
            v[w] = scan16_step_channel(delta[e + w], u[e + w], B, C, A + (size_t)(e + w) * 16,
                                       h + (size_t)(e + w) * 16);
        const __m512 uv = _mm512_loadu_ps(u + e);
        _mm512_storeu_ps(y + e, _mm512_fmadd_ps(_mm512_loadu_ps(Dskip + e), uv, ssm_hsum16x16(v)));
    }
    for (; e < E; e++) {
        const __m512 v = scan16_step_channel(delta[e], u[e], B, C, A + (size_t)e * 16, h + (size_t)e * 16);
        y[e] = fmaf(Dskip[e], u[e], ssm_hsum16(v));
    }
}

void ssm_scan_step(int E, int N, const float *u, const float *delta,
                   const float *Bt, const float *Ct, const float *A,
                   const float *Dskip, float *h, float *y)
{
    if (N == 16 && ssm_scan_isa_get() == SSM_SCAN_ISA_AVX512) {
        scan16_step_n16(E, u, delta, Bt, Ct, A, Dskip, h, y);
        return;
    }
    ssm_scan_step_naive(E, N, u, delta, Bt, Ct, A, Dskip, h, y);
}

void ssm_scan_step_naive(int E, int N, const float *u, const float *delta,
                         const float *Bt, const float *Ct, const float *A,
                         const float *Dskip, float *h, float *y)
{
    for (int e = 0; e < E; e++) {
        const float dt = delta[e], dtu = dt * u[e];
        const float *Ae = A + (size_t)e * N;
        float *he = h + (size_t)e * N; /* (N) state of channel e */
        for (int n = 0; n < N; n++)
            he[n] = ssm_expf(dt * Ae[n]) * he[n] + dtu * Bt[n];
        float acc = 0.0f;
        for (int n = 0; n < N; n++)
            acc += Ct[n] * he[n];
        y[e] = acc + Dskip[e] * u[e];
    }
}

/* ------------------------------------------------------------------ */
/* naive scan                                                            */

ssm_status ssm_scan_forward_naive(const ssm_scan_args *a, float *y)
{
    const int L = a->L, E = a->E, N = a->N;
    const int exact = a->h_out || a->patch_h;   /* h_t in float: a patch with a recorded h_t is exact */
    float *own;
    double *h = (double *)work_take(a->work, a->work_n, 2 * naive_fwd_doubles(a), &own); /* (E, N) state */
    if (!h) return ssm_fail(a->work ? SSM_ERR_SOFTWARE : SSM_ERR_NOMEM, "naive scan forward: %s",
                            a->work ? "the work space is too small" : "out of memory");
    for (int b = 0; b < a->B; b++) {
        memset(h, 0, (size_t)E * N * sizeof *h);
        for (int t = 0; t < L; t++) {
            const size_t row = (size_t)b * L + t;
            const float *Bt = a->Bm + row * a->ld_bc, *Ct = a->Cm + row * a->ld_bc;
            const float *ph = a->patch_h && t == a->patch_t ? a->patch_h + (size_t)b * E * N : NULL;
            for (int e = 0; e < E; e++) {
                const double dt = a->delta[row * E + e], u = a->u[row * E + e];
                double acc = 0.0;
                for (int n = 0; n < N; n++) {
                    const size_t i = (size_t)e * N + n;
                    h[i] = exp(dt * a->A[i]) * h[i] + dt * Bt[n] * u;
                    if (a->keep) h[i] *= a->keep[i];
                    if (ph) h[i] = ph[i];
                    if (exact) h[i] = (float)h[i];   /* the state carried is the one recorded */
                    if (a->h_out) a->h_out[row * E * N + i] = (float)h[i];
                    acc += Ct[n] * h[i];
                }
                y[row * E + e] = (float)(acc + a->Dskip[e] * u);
            }
        }
        for (size_t i = 0; a->h_last && i < (size_t)E * N; i++)
            a->h_last[(size_t)b * E * N + i] = (float)h[i];
    }
    free(own);
    return SSM_OK;
}

/* Work of the naive backward: one block of doubles, named views. */
typedef struct {
    float *own;    /* the block when the call allocated it, else NULL */
    double *hs;    /* (L+1, E, N) states of one sequence; row t+1 = h_t */
    double *carry; /* (E, N) g_{t+1} exp(delta_{t+1} A) */
    double *dA;    /* (E, N) sum over b, t */
    double *dD;    /* (E) */
    double *dBt;   /* (N) dB_t */
    double *dCt;   /* (N) dC_t */
} naive_work;

static int naive_work_build(const ssm_scan_args *a, naive_work *w)
{
    const size_t L = a->L, EN = (size_t)a->E * a->N, total = naive_bwd_doubles(a);
    double *mem = (double *)work_take(a->work, a->work_n, 2 * total, &w->own);
    if (!mem)
        return 0;
    memset(mem, 0, total * sizeof *mem);
    w->hs = mem;
    w->carry = w->hs + (L + 1) * EN;
    w->dA = w->carry + EN;
    w->dD = w->dA + EN;
    w->dBt = w->dD + a->E;
    w->dCt = w->dBt + a->N;
    return 1;
}

/* h_t of sequence b for all t, in double. */
static void naive_states(const ssm_scan_args *a, int b, double *hs)
{
    const int L = a->L, E = a->E, N = a->N;
    const size_t EN = (size_t)E * N;
    memset(hs, 0, EN * sizeof *hs);
    for (int t = 0; t < L; t++) {
        const size_t row = (size_t)b * L + t;
        const float *Bt = a->Bm + row * a->ld_bc;
        for (int e = 0; e < E; e++) {
            const double dt = a->delta[row * E + e], u = a->u[row * E + e];
            for (int n = 0; n < N; n++) {
                const size_t i = (size_t)e * N + n;
                hs[(t + 1) * EN + i] = (exp(dt * a->A[i]) * hs[t * EN + i]
                                     + dt * Bt[n] * u) * (a->keep ? a->keep[i] : 1.0);
            }
        }
    }
}

/* Token t of sequence b, literally: g = dy_t C_t + carry, then every
 * gradient term of scan.h's math.  dB_t, dC_t go to w->dBt, w->dCt. */
static void naive_token_bwd(const ssm_scan_args *a, const float *dy, int b,
                            int t, naive_work *w, float *du, float *ddelta)
{
    const int E = a->E, N = a->N;
    const size_t EN = (size_t)E * N, row = (size_t)b * a->L + t;
    const float *Bt = a->Bm + row * a->ld_bc, *Ct = a->Cm + row * a->ld_bc;
    const double *hp = w->hs + t * EN, *hc = w->hs + (t + 1) * EN;
    memset(w->dBt, 0, 2 * (size_t)N * sizeof *w->dBt);
    for (int e = 0; e < E; e++) {
        const double dt = a->delta[row * E + e], u = a->u[row * E + e];
        const double dye = dy[row * E + e];
        double ddt = 0.0, dus = 0.0;
        for (int n = 0; n < N; n++) {
            const size_t i = (size_t)e * N + n;
            const double dA = exp(dt * a->A[i]);
            /* g: d/d(h_t before the keep mask) */
            const double g = (dye * Ct[n] + w->carry[i]) * (a->keep ? a->keep[i] : 1.0);
            ddt += g * (hp[i] * dA * a->A[i] + Bt[n] * u);
            w->dA[i] += g * hp[i] * dA * dt;
            dus += g * dt * Bt[n];
            w->dBt[n] += g * dt * u;
            w->dCt[n] += dye * hc[i];
            w->carry[i] = g * dA;
        }
        du[row * E + e] = (float)(dus + a->Dskip[e] * dye);
        ddelta[row * E + e] = (float)ddt;
        w->dD[e] += dye * u;
    }
}

ssm_status ssm_scan_backward_naive(const ssm_scan_args *a, const float *dy,
                                   float *du, float *ddelta, float *dBm, float *dCm,
                                   float *dA, float *dD)
{
    naive_work w;
    if (!naive_work_build(a, &w))
        return ssm_fail(a->work ? SSM_ERR_SOFTWARE : SSM_ERR_NOMEM, "naive scan backward: %s",
                        a->work ? "the work space is too small" : "out of memory");
    const size_t EN = (size_t)a->E * a->N;
    for (int b = 0; b < a->B; b++) {
        naive_states(a, b, w.hs);
        memset(w.carry, 0, EN * sizeof *w.carry);
        for (int t = a->L - 1; t >= 0; t--) {
            naive_token_bwd(a, dy, b, t, &w, du, ddelta);
            const size_t row = (size_t)b * a->L + t;
            for (int n = 0; n < a->N; n++) {
                dBm[row * a->ld_bc + n] = (float)w.dBt[n];
                dCm[row * a->ld_bc + n] = (float)w.dCt[n];
            }
        }
    }
    for (size_t i = 0; i < EN; i++)
        dA[i] += (float)w.dA[i];
    for (int e = 0; e < a->E; e++)
        dD[e] += (float)w.dD[e];
    free(w.own);
    return SSM_OK;
}

/* ------------------------------------------------------------------ */
/* fast conv                                                             */

static int conv_nblk(int E) { return (E + CONV_W - 1) / CONV_W; }

/* wt[k][w] = w[e0 + w, k], 0 in the padding lanes. */
static void conv_block_w(const ssm_conv_args *a, int e0, int nw,
                         float wt[][CONV_W])
{
    for (int k = 0; k < a->K; k++)
        for (int w = 0; w < CONV_W; w++)
            wt[k][w] = w < nw ? a->w[(size_t)(e0 + w) * a->K + k] : 0.0f;
}

/* Taps of channels c0.. (cw of them) transposed: wt[k][w] = w[c0 + w, k]. */
static void conv_chunk_w(const ssm_conv_args *a, int c0, int cw, float wt[][CONV_CH])
{
    for (int k = 0; k < a->K; k++)
        for (int w = 0; w < cw; w++)
            wt[k][w] = a->w[(size_t)(c0 + w) * a->K + k];
}

/* One row of one channel chunk: o[w] = bias[w] + sum_k wt[k][w] xr[k][w]
 * (k in increasing order; a padding tap reads zeros), and uo[w] =
 * SiLU(o[w]) unless uo is NULL.  With K a constant the taps unroll and the
 * loop over w is one pass of vector loads, FMAs and stores. */
static inline __attribute__((always_inline))
void conv_chunk_row(int K, const float *const *xr, const float wt[][CONV_CH],
                    const float *bias, int cw, float *restrict o, float *restrict uo)
{
    if (!uo) {
        for (int w = 0; w < cw; w++) {
            float acc = bias[w];
            for (int k = 0; k < K; k++) acc += wt[k][w] * xr[k][w];
            o[w] = acc;
        }
        return;
    }
    for (int w = 0; w < cw; w++) {
        float acc = bias[w];
        for (int k = 0; k < K; k++) acc += wt[k][w] * xr[k][w];
        o[w] = acc;
        uo[w] = ssm_siluf(acc);
    }
}

/* Rows r0 <= r < r1 (of B*L) of channels c0.. (cw of them), K <= CONV_KMAX. */
static void conv_chunk_rows(const ssm_conv_args *a, int r0, int r1, int c0, int cw,
                            float *out, float *u)
{
    static const float zeros[CONV_CH]; /* the left padding */
    float wt[CONV_KMAX][CONV_CH];      /* (K, CW) taps, transposed */
    const int K = a->K, L = a->L, E = a->E;
    conv_chunk_w(a, c0, cw, wt);
    for (int r = r0; r < r1; r++) {
        const int b = r / L, t = r % L;
        const float *xr[CONV_KMAX]; /* (K) rows of the taps */
        for (int k = 0; k < K; k++) {
            const int src = t - K + 1 + k;
            xr[k] = src < 0 ? zeros : a->x + ((size_t)b * L + src) * a->ldx + c0;
        }
        float *o = out + (size_t)r * E + c0, *uo = u ? u + (size_t)r * E + c0 : NULL;
        if (K == 4) conv_chunk_row(4, xr, (const float (*)[CONV_CH])wt, a->bias + c0, cw, o, uo);
        else conv_chunk_row(K, xr, (const float (*)[CONV_CH])wt, a->bias + c0, cw, o, uo);
    }
}

/* Rows r0 <= r < r1 of the naive conv, in double; u = SiLU(out) unless NULL. */
static void conv_rows_naive(const ssm_conv_args *a, int r0, int r1, float *out, float *u)
{
    const int L = a->L, E = a->E, K = a->K;
    for (int r = r0; r < r1; r++) {
        const int b = r / L, t = r % L;
        for (int e = 0; e < E; e++) {
            double s = a->bias[e];
            for (int k = 0; k < K; k++) {
                const int src = t - K + 1 + k;
                if (src >= 0)
                    s += (double)a->w[(size_t)e * K + k] * a->x[((size_t)b * L + src) * a->ldx + e];
            }
            const float o = (float)s;
            out[(size_t)r * E + e] = o;
            if (u) u[(size_t)r * E + e] = (float)((double)o / (1.0 + exp(-(double)o)));
        }
    }
}

void ssm_conv_silu_rows(const ssm_conv_args *a, int r0, int r1, float *out, float *u)
{
    if (a->K > CONV_KMAX) {
        fallback_conv_wide(a->K);
        conv_rows_naive(a, r0, r1, out, u);
        return;
    }
    for (int c0 = 0; c0 < a->E; c0 += CONV_CH)
        conv_chunk_rows(a, r0, r1, c0, imin(CONV_CH, a->E - c0), out, u);
}

/* Both fast forwards: tasks of CONV_ROWS rows, all channels. */
static void conv_forward_tasks(const ssm_conv_args *a, float *out, float *u)
{
    const int nrow = a->B * a->L, ntask = (nrow + CONV_ROWS - 1) / CONV_ROWS;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < ntask; i++)
        ssm_conv_silu_rows(a, i * CONV_ROWS, imin(nrow, (i + 1) * CONV_ROWS), out, u);
}

void ssm_conv_forward(const ssm_conv_args *a, float *out)
{
    conv_forward_tasks(a, out, NULL);
}

void ssm_conv_silu_forward(const ssm_conv_args *a, float *uc, float *u)
{
    conv_forward_tasks(a, uc, u);
}

/* The body of conv_dx_block, nw and K passed in: conv_dx_block calls it
 * with constants for whole blocks of 4 taps, so that the loops unroll and
 * vectorise (the same sums in the same order, so the same bits). */
static inline __attribute__((always_inline))
void conv_dx_body(const ssm_conv_args *a, const float *dout, int b, int e0, int nw,
                  int K, const float wt[][CONV_W], float *dx)
{
    const int L = a->L;
    for (int s = 0; s < L; s++) {
        float acc[CONV_W] = {0}; /* (W) */
        for (int k = (s + K - L > 0 ? s + K - L : 0); k < K; k++) {
            const float *dr = dout + ((size_t)b * L + s + K - 1 - k) * a->E + e0;
            for (int w = 0; w < nw; w++)
                acc[w] += wt[k][w] * dr[w];
        }
        memcpy(dx + ((size_t)b * L + s) * a->ldx + e0, acc, (size_t)nw * sizeof *acc);
    }
}

/* dx[b, s, e] = sum_k w[e,k] dout[b, s+K-1-k, e] for one block. */
static void conv_dx_block(const ssm_conv_args *a, const float *dout, int b,
                          int blk, const float wt[][CONV_W], float *dx)
{
    const int e0 = blk * CONV_W, nw = imin(CONV_W, a->E - e0);
    if (nw == CONV_W && a->K == 4)
        conv_dx_body(a, dout, b, e0, CONV_W, 4, wt, dx);
    else
        conv_dx_body(a, dout, b, e0, nw, a->K, wt, dx);
}

/* The body of conv_dw_block, nw and K passed in (constants for whole
 * blocks of 4 taps, as conv_dx_body). */
static inline __attribute__((always_inline))
void conv_dw_body(const ssm_conv_args *a, const float *dout, int b, int e0, int nw,
                  int K, float *dwp, float *dbp)
{
    const int L = a->L;
    float dw[CONV_KMAX][CONV_W] = {{0}}; /* (K, W) */
    float db[CONV_W] = {0};              /* (W) */
    for (int t = 0; t < L; t++) {
        const float *dr = dout + ((size_t)b * L + t) * a->E + e0;
        for (int w = 0; w < nw; w++)
            db[w] += dr[w];
        for (int k = (K - 1 - t > 0 ? K - 1 - t : 0); k < K; k++) {
            const int src = t - K + 1 + k;
            const float *xr = a->x + ((size_t)b * L + src) * a->ldx + e0;
            for (int w = 0; w < nw; w++)
                dw[k][w] += dr[w] * xr[w];
        }
    }
    for (int w = 0; w < nw; w++) {
        const size_t e = (size_t)b * a->E + e0 + w;
        for (int k = 0; k < K; k++)
            dwp[e * K + k] = dw[k][w];
        dbp[e] = db[w];
    }
}

/* Sequence b's dw (E, K) and dbias (E) for one block into dwp, dbp. */
static void conv_dw_block(const ssm_conv_args *a, const float *dout, int b,
                          int blk, float *dwp, float *dbp)
{
    const int e0 = blk * CONV_W, nw = imin(CONV_W, a->E - e0);
    if (nw == CONV_W && a->K == 4)
        conv_dw_body(a, dout, b, e0, CONV_W, 4, dwp, dbp);
    else
        conv_dw_body(a, dout, b, e0, nw, a->K, dwp, dbp);
}

static void conv_bwd_block(const ssm_conv_args *a, const float *dout, int b,
                           int blk, float *dx, float *dwp, float *dbp)
{
    float wt[CONV_KMAX][CONV_W]; /* (K, W) taps, transposed */
    const int e0 = blk * CONV_W, nw = imin(CONV_W, a->E - e0);
    conv_block_w(a, e0, nw, wt);
    conv_dx_block(a, dout, b, blk, wt, dx);
    conv_dw_block(a, dout, b, blk, dwp, dbp);
}

/* dw += sum over sequences of dwp, dbias likewise, in sequence order. */
static void conv_reduce(const ssm_conv_args *a, const float *dwp,
                        const float *dbp, float *dw, float *dbias)
{
    const size_t EK = (size_t)a->E * a->K;
#pragma omp parallel for schedule(static)
    for (int e = 0; e < a->E; e++) {
        for (int k = 0; k < a->K; k++) {
            float s = 0.0f;
            for (int b = 0; b < a->B; b++)
                s += dwp[b * EK + (size_t)e * a->K + k];
            dw[(size_t)e * a->K + k] += s;
        }
        float s = 0.0f;
        for (int b = 0; b < a->B; b++)
            s += dbp[(size_t)b * a->E + e];
        dbias[e] += s;
    }
}

/* The fast conv backward's work space: per-sequence partial sums. */
static void conv_work_table(int B, int E, int K, float **dwp, float **dbp,
                            ssm_layout_entry t[2])
{
    const size_t BE = (size_t)B * E;
    t[0] = (ssm_layout_entry){dwp, BE * K}; /* (B, E, K) partial dw */
    t[1] = (ssm_layout_entry){dbp, BE};     /* (B, E) partial dbias */
}

size_t ssm_conv_work_size(int B, int E, int K)
{
    float *dwp, *dbp;
    ssm_layout_entry t[2];
    if (K > CONV_KMAX)
        return 0;
    conv_work_table(B, E, K, &dwp, &dbp, t);
    return ssm_layout_size(t, 2, 1);
}

void ssm_conv_backward(const ssm_conv_args *a, const float *dout,
                       float *dx, float *dw, float *dbias)
{
    float *dwp, *dbp, *own, *mem;
    ssm_layout_entry t[2];
    if (a->K > CONV_KMAX) {
        fallback_conv_wide(a->K);
        ssm_conv_backward_naive(a, dout, dx, dw, dbias);
        return;
    }
    conv_work_table(a->B, a->E, a->K, &dwp, &dbp, t);
    const size_t need = ssm_layout_size(t, 2, 1);
    if (!(mem = work_take(a->work, a->work_n, need, &own))) { /* naive is exact */
        if (a->work)
            fallback_tell(&told_conv_small, "conv backward: a work space of %zu floats < %zu: "
                          "using the naive conv backward (single-threaded, slower)", a->work_n, need);
        else
            fallback_tell(&told_conv_nomem, "conv backward: no memory for %zu floats of work space: "
                          "using the naive conv backward (single-threaded, slower)", need);
        ssm_conv_backward_naive(a, dout, dx, dw, dbias);
        return;
    }
    ssm_layout_carve(t, 2, 1, mem);
    const int nblk = conv_nblk(a->E), ntask = a->B * nblk;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < ntask; i++)
        conv_bwd_block(a, dout, i / nblk, i % nblk, dx, dwp, dbp);
    conv_reduce(a, dwp, dbp, dw, dbias);
    free(own);
}

/* ------------------------------------------------------------------ */
/* naive conv                                                            */

void ssm_conv_forward_naive(const ssm_conv_args *a, float *out)
{
    conv_rows_naive(a, 0, a->B * a->L, out, NULL);
}

void ssm_conv_silu_forward_naive(const ssm_conv_args *a, float *uc, float *u)
{
    conv_rows_naive(a, 0, a->B * a->L, uc, u);
}

/* dx[b, s, e] = sum_k w[e,k] dout[b, s+K-1-k, e]. */
static void conv_dx_naive(const ssm_conv_args *a, const float *dout, float *dx)
{
    const int L = a->L, E = a->E, K = a->K;
    for (int b = 0; b < a->B; b++)
        for (int s = 0; s < L; s++)
            for (int e = 0; e < E; e++) {
                double acc = 0.0;
                for (int k = 0; k < K; k++) {
                    const int t = s + K - 1 - k;
                    if (t < L)
                        acc += (double)a->w[(size_t)e * K + k]
                             * dout[((size_t)b * L + t) * E + e];
                }
                dx[((size_t)b * L + s) * a->ldx + e] = (float)acc;
            }
}

void ssm_conv_backward_naive(const ssm_conv_args *a, const float *dout,
                             float *dx, float *dw, float *dbias)
{
    const int L = a->L, E = a->E, K = a->K;
    conv_dx_naive(a, dout, dx);
    for (int e = 0; e < E; e++) {
        for (int k = 0; k < K; k++) {
            double acc = 0.0;
            for (int b = 0; b < a->B; b++)
                for (int t = K - 1 - k; t < L; t++)
                    acc += (double)dout[((size_t)b * L + t) * E + e]
                         * a->x[((size_t)b * L + t - K + 1 + k) * a->ldx + e];
            dw[(size_t)e * K + k] += (float)acc;
        }
        double acc = 0.0;
        for (int b = 0; b < a->B; b++)
            for (int t = 0; t < L; t++)
                acc += dout[((size_t)b * L + t) * E + e];
        dbias[e] += (float)acc;
    }
}
