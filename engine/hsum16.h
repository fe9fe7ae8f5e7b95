/* hsum16.h — fixed-order sums of the 16 float lanes of an AVX-512 vector,
 * for kernels whose results must not depend on how their rows or
 * channels are grouped: one vector's sum (ssm_hsum16) and sixteen
 * vectors' sums at once by a transpose (ssm_hsum16x16), the same adds in
 * the same order, so the same bits.  Compiled for AVX-512F by a target
 * attribute; call them only from code that checked the CPU has it. */
#ifndef SSM_HSUM16_H
#define SSM_HSUM16_H

#include <immintrin.h>

#define SSM_HSUM16_TARGET __attribute__((target("avx512f"), always_inline))

/* Tree sum of the 16 lanes: v[w] += v[w + half] for half = 8, 4, 2, 1. */
SSM_HSUM16_TARGET static inline float ssm_hsum16(__m512 v)
{
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v),
                                    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

/* out[n] = ssm_hsum16(x[n]) for the 16 vectors x[0..15], the same sums in
 * the same order (so the same bits), by a transpose: each step halves the
 * lanes per sum and packs two sums' halves into one vector. */
SSM_HSUM16_TARGET static inline __m512 ssm_hsum16x16(const __m512 x[16])
{
    __m512 y[8], z[4], p[2]; /* 8, 4, 2 lanes per sum */
    for (int k = 0; k < 8; k++) /* y[k]: x[2k] (lanes 0-7), x[2k+1] (8-15) */
        y[k] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * k], x[2 * k + 1], 0x44),
                             _mm512_shuffle_f32x4(x[2 * k], x[2 * k + 1], 0xee));
    for (int j = 0; j < 4; j++) /* z[j]: 128-bit lane i holds sum 4j + i */
        z[j] = _mm512_add_ps(_mm512_shuffle_f32x4(y[2 * j], y[2 * j + 1], 0x88),
                             _mm512_shuffle_f32x4(y[2 * j], y[2 * j + 1], 0xdd));
    for (int m = 0; m < 2; m++) /* p[m]: lane i: sums 8m + i (x2), 8m + 4 + i (x2) */
        p[m] = _mm512_add_ps(_mm512_shuffle_ps(z[2 * m], z[2 * m + 1], 0x44),
                             _mm512_shuffle_ps(z[2 * m], z[2 * m + 1], 0xee));
    /* s: element 4i + k holds sum 4k + i */
    const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(p[0], p[1], 0x88),
                                   _mm512_shuffle_ps(p[0], p[1], 0xdd));
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(idx, s);
}

#endif
