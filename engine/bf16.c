/* bf16.c — the bf16-weight matrix-vector product of bf16.h: a naive twin,
 * AVX2 and AVX-512F paths that widen W to float, an AVX-512 BF16 path
 * (vdpbf16ps), the run-time choice among them, and the row split over
 * OpenMP threads.  Each vector path runs four rows at a time, so one load
 * of x feeds four independent accumulators. */
#include "engine/bf16.h"

#include <immintrin.h>
#include <omp.h>
#include <stddef.h>

#include "engine/split.h"

#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define TARGET_DPBF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define INLINE static inline __attribute__((always_inline))
#define ROWS 4   /* rows per block of the vector paths */

/* ------------------------------------------------------------------------ */
/* Naive twin                                                               */

static void matvec_naive(float *y, const uint16_t *W, const float *x, int M, int K)
{
    for (int i = 0; i < M; i++) {
        const uint16_t *w = W + (size_t)i * K;
        float s = 0.0f;
        for (int k = 0; k < K; k++) s += ssm_bf16_to_f32(w[k]) * x[k];
        y[i] = s;
    }
}

/* sum of w[k] x[k] for k in [k0, K), the vector paths' tail */
static float dot_tail(const uint16_t *w, const float *x, int k0, int K)
{
    float s = 0.0f;
    for (int k = k0; k < K; k++) s += ssm_bf16_to_f32(w[k]) * x[k];
    return s;
}

/* The rows a block prefetches while it runs: the block PREFETCH_BYTES of W
 * ahead (at least the next block), or its own rows near the end of the
 * matrix.  Without it a decode step reads W at about half the memory
 * bandwidth: ROWS short rows are too few streams for the hardware
 * prefetcher to keep memory busy. */
#define PREFETCH_BYTES 12288

static inline const uint16_t *ahead(const uint16_t *w, int i, int M, int K)
{
    long rows = PREFETCH_BYTES / (2L * (K > 0 ? K : 1));
    int d = rows <= ROWS ? ROWS : (int)((rows + ROWS - 1) / ROWS * ROWS);
    return (long)i + d + ROWS <= M ? w + (size_t)d * K : w;
}

/* ------------------------------------------------------------------------ */
/* AVX2: widen 8 bf16 to float by a 16-bit shift, FMA                       */

TARGET_AVX2 INLINE __m256 widen8(const uint16_t *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

TARGET_AVX2 INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* y (nr) = W (nr, K) x, nr <= ROWS */
TARGET_AVX2 INLINE void block_avx2(float *y, const uint16_t *W, const float *x, int nr, int K)
{
    __m256 acc[ROWS];
    for (int r = 0; r < ROWS; r++) acc[r] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 xv = _mm256_loadu_ps(x + k);
        for (int r = 0; r < nr; r++)
            acc[r] = _mm256_fmadd_ps(widen8(W + (size_t)r * K + k), xv, acc[r]);
    }
    for (int r = 0; r < nr; r++) y[r] = hsum8(acc[r]) + dot_tail(W + (size_t)r * K, x, k, K);
}

TARGET_AVX2 static void matvec_avx2(float *y, const uint16_t *W, const float *x, int M, int K)
{
    int i = 0;
    for (; i + ROWS <= M; i += ROWS) block_avx2(y + i, W + (size_t)i * K, x, ROWS, K);
    if (i < M) block_avx2(y + i, W + (size_t)i * K, x, M - i, K);
}

/* ------------------------------------------------------------------------ */
/* AVX-512F: widen 16 bf16 at a time; the tail through masked loads         */

TARGET_AVX512 INLINE __m512 widen16(__m256i h)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

TARGET_AVX512 INLINE void block_avx512(float *y, const uint16_t *W, const uint16_t *next,
                                       const float *x, int nr, int K)
{
    __m512 acc[ROWS];
    for (int r = 0; r < ROWS; r++) acc[r] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 xv = _mm512_loadu_ps(x + k);
        for (int r = 0; r < nr; r++) {
            if (!(k & 31)) _mm_prefetch((const char *)(next + (size_t)r * K + k), _MM_HINT_T0);
            __m256i h = _mm256_loadu_si256((const __m256i *)(W + (size_t)r * K + k));
            acc[r] = _mm512_fmadd_ps(widen16(h), xv, acc[r]);
        }
    }
    if (k < K) {   /* the last K - k < 16 columns; masked-off lanes are zero */
        __mmask16 m = (__mmask16)((1u << (K - k)) - 1u);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + k);
        for (int r = 0; r < nr; r++) {
            __m256i h = _mm256_maskz_loadu_epi16(m, W + (size_t)r * K + k);
            acc[r] = _mm512_fmadd_ps(widen16(h), xv, acc[r]);
        }
    }
    for (int r = 0; r < nr; r++) y[r] = _mm512_reduce_add_ps(acc[r]);
}

TARGET_AVX512 static void matvec_avx512(float *y, const uint16_t *W, const float *x, int M, int K)
{
    int i = 0;
    for (; i + ROWS <= M; i += ROWS) {
        const uint16_t *w = W + (size_t)i * K;
        block_avx512(y + i, w, ahead(w, i, M, K), x, ROWS, K);
    }
    if (i < M) block_avx512(y + i, W + (size_t)i * K, W + (size_t)i * K, x, M - i, K);
}

/* ------------------------------------------------------------------------ */
/* AVX-512 BF16: vdpbf16ps on x split into two bf16 parts                   */

/* x is split once per product, PANEL columns at a time, into hi = bf16(x)
 * and lo = bf16(x - hi), so W x = W hi + W lo to about 2^-17 of |W| |x|
 * (a bf16 x alone would lose 2^-9); the parts are padded with zeros to a
 * multiple of 32 columns. */
#define PANEL 4096

TARGET_DPBF16 static void x_split(const float *x, int n, uint16_t *hi, uint16_t *lo)
{
    int k = 0;
    for (; k < n; k += 16) {
        __mmask16 m = (__mmask16)(n - k >= 16 ? 0xffffu : (1u << (n - k)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        __m256bh h = _mm512_cvtneps_pbh(v);
        __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, widen16((__m256i)h)));
        _mm256_storeu_si256((__m256i *)(hi + k), (__m256i)h);
        _mm256_storeu_si256((__m256i *)(lo + k), (__m256i)l);
    }
    if (k % 32) {
        _mm256_storeu_si256((__m256i *)(hi + k), _mm256_setzero_si256());
        _mm256_storeu_si256((__m256i *)(lo + k), _mm256_setzero_si256());
    }
}

/* w . [hi + lo] over n columns (hi, lo padded to a multiple of 32), one row
 * at a time: rows are contiguous, so the product reads W in one sequential
 * stream the hardware prefetcher follows (four rows side by side were four
 * short streams per thread and ran at two thirds of the read bandwidth).
 * Four accumulator pairs over the columns keep the dot products' latency
 * hidden; the last n % 32 columns come through a masked load. */
TARGET_DPBF16 INLINE float row_dpbf16(const uint16_t *w, const uint16_t *hi, const uint16_t *lo, int n)
{
    __m512 ah[4], al[4];
    for (int j = 0; j < 4; j++) ah[j] = al[j] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 128 <= n; k += 128) {
        for (int j = 0; j < 4; j++) {
            _mm_prefetch((const char *)(w + k + 32 * j + PREFETCH_BYTES / 2), _MM_HINT_T0);
            __m512bh v = (__m512bh)_mm512_loadu_si512((const void *)(w + k + 32 * j));
            ah[j] = _mm512_dpbf16_ps(ah[j], v, (__m512bh)_mm512_loadu_si512((const void *)(hi + k + 32 * j)));
            al[j] = _mm512_dpbf16_ps(al[j], v, (__m512bh)_mm512_loadu_si512((const void *)(lo + k + 32 * j)));
        }
    }
    for (int j = 0; k < n; k += 32, j++) {   /* up to three whole chunks, then a masked one */
        __mmask32 m = n - k >= 32 ? 0xffffffffu : (__mmask32)((1u << (n - k)) - 1u);
        __m512bh v = (__m512bh)_mm512_maskz_loadu_epi16(m, w + k);
        ah[j] = _mm512_dpbf16_ps(ah[j], v, (__m512bh)_mm512_loadu_si512((const void *)(hi + k)));
        al[j] = _mm512_dpbf16_ps(al[j], v, (__m512bh)_mm512_loadu_si512((const void *)(lo + k)));
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(ah[0], al[0]), _mm512_add_ps(ah[1], al[1])),
                             _mm512_add_ps(_mm512_add_ps(ah[2], al[2]), _mm512_add_ps(ah[3], al[3])));
    return _mm512_reduce_add_ps(s);
}

/* Rows shorter than this go to the AVX-512F path: summing row_dpbf16's
 * eight accumulators costs more than a short row's products (dt_proj's 48
 * columns ran 5x slower than in the widening path). */
#define DPBF16_MIN_K 128

TARGET_DPBF16 static void matvec_dpbf16(float *y, const uint16_t *W, const float *x, int M, int K)
{
    if (K < DPBF16_MIN_K) {
        matvec_avx512(y, W, x, M, K);
        return;
    }
    uint16_t hi[PANEL + 32], lo[PANEL + 32];
    if (K == 0)
        for (int i = 0; i < M; i++) y[i] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += PANEL) {
        int n = K - k0 < PANEL ? K - k0 : PANEL;
        x_split(x + k0, n, hi, lo);
        for (int i = 0; i < M; i++) {
            float d = row_dpbf16(W + (size_t)i * K + k0, hi, lo, n);
            y[i] = k0 > 0 ? y[i] + d : d;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Paths                                                                    */

static const char *const path_names[SSM_BF16_PATH_COUNT] = {"auto", "naive", "avx2", "avx512", "dpbf16"};
static ssm_bf16_path path_forced = SSM_BF16_AUTO;

const char *ssm_bf16_path_name(ssm_bf16_path p)
{
    return p >= 0 && p < SSM_BF16_PATH_COUNT ? path_names[p] : "?";
}

int ssm_bf16_path_available(ssm_bf16_path p)
{
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl");
    switch (p) {
    case SSM_BF16_AUTO:
    case SSM_BF16_NAIVE: return 1;
    case SSM_BF16_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case SSM_BF16_AVX512: return avx512;
    case SSM_BF16_DPBF16: return avx512 && __builtin_cpu_supports("avx512bf16");
    default: return 0;
    }
}

ssm_status ssm_bf16_path_force(ssm_bf16_path p)
{
    if (p < 0 || p >= SSM_BF16_PATH_COUNT)
        return ssm_fail(SSM_ERR_USAGE, "bf16 matvec path %d is unknown", (int)p);
    if (!ssm_bf16_path_available(p))
        return ssm_fail(SSM_ERR_USAGE, "bf16 matvec path %s: this CPU does not have it",
                        ssm_bf16_path_name(p));
    path_forced = p;
    return SSM_OK;
}

ssm_bf16_path ssm_bf16_path_active(void)
{
    if (path_forced != SSM_BF16_AUTO) return path_forced;
    for (ssm_bf16_path p = SSM_BF16_DPBF16; p > SSM_BF16_NAIVE; p--)
        if (ssm_bf16_path_available(p)) return p;
    return SSM_BF16_NAIVE;
}

void ssm_bf16_matvec(ssm_bf16_path p, float *y, const uint16_t *W, const float *x, int M, int K)
{
    if (p == SSM_BF16_AUTO) p = ssm_bf16_path_active();
    switch (p) {
    case SSM_BF16_AVX2: matvec_avx2(y, W, x, M, K); return;
    case SSM_BF16_AVX512: matvec_avx512(y, W, x, M, K); return;
    case SSM_BF16_DPBF16: matvec_dpbf16(y, W, x, M, K); return;
    default: matvec_naive(y, W, x, M, K);
    }
}

/* The calling thread's rows of y = W x [+ bias]: those ssm_split_rows gives
 * it in the current team (every row outside a parallel region). */
static void matvec_rows(float *y, const uint16_t *W, const float *x, const float *bias, int M, int K)
{
    int lo, hi;
    ssm_split_rows(M, &lo, &hi);
    if (hi <= lo) return;
    ssm_bf16_matvec(ssm_bf16_path_active(), y + lo, W + (size_t)lo * K, x, hi - lo, K);
    for (int i = lo; bias && i < hi; i++) y[i] += bias[i];
}

void ssm_bf16_matvec_par(float *y, const uint16_t *W, const float *x, const float *bias, int M, int K)
{
#pragma omp parallel if ((long)M * K >= SSM_SPLIT_MIN_WORK)
    matvec_rows(y, W, x, bias, M, K);
}

void ssm_bf16_widen(float *dst, const uint16_t *src, size_t n)
{
#pragma omp parallel for schedule(static) if (n >= (size_t)SSM_SPLIT_MIN_WORK)
    for (size_t i = 0; i < n; i++) dst[i] = ssm_bf16_to_f32(src[i]);
}
