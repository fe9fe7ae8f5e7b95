/* bf16.h — bfloat16 weights for inference: conversion to and from float32
 * (the top 16 bits of a float; float to bf16 rounds to nearest even) and
 * the matrix-vector product y = W x of a bf16 matrix W and a float32
 * vector x, the decode step's kernel (engine/generate.c, the LM head of
 * engine/model.c).
 *
 * Kernel paths, chosen once at run time from the CPU (the fastest it has)
 * unless a test or a user forces one:
 *   naive   the scalar twin: each row summed in column order, one float
 *           accumulator, bf16 widened exactly to float;
 *   avx2    W widened to float by a 16-bit shift, AVX2 FMA, 8 lanes;
 *   avx512  the same on AVX-512F, 16 lanes;
 *   dpbf16  AVX-512 BF16 (vdpbf16ps): x is split once per product into
 *           hi = bf16(x) and lo = bf16(x - hi) (round to nearest even),
 *           and W x = W hi + W lo, pairs of bf16 products summed into
 *           float lanes: x is kept to about 2^-17 relative (bf16 alone
 *           would keep 2^-9).
 * The vector paths keep per-lane partial sums (different order from the
 * naive twin: equal up to float rounding of the sum, and for dpbf16 the
 * 2^-17 of x).  They are compiled
 * with function target attributes, so the binary runs on any x86-64 and
 * a path runs only when the CPU reports it. */
#ifndef SSM_BF16_H
#define SSM_BF16_H

#include <stdint.h>
#include <string.h>

#include "engine/status.h"

static inline float ssm_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Round to nearest even; NaN stays a (quiet) NaN of the same sign; a
 * finite float above the largest bf16 (about 3.39e38) rounds to Inf. */
static inline uint16_t ssm_bf16_from_f32(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

/* Is h Inf or NaN? */
static inline int ssm_bf16_nonfinite(uint16_t h) { return (h & 0x7f80u) == 0x7f80u; }

typedef enum {
    SSM_BF16_AUTO = 0,  /* the fastest path of this CPU (the default) */
    SSM_BF16_NAIVE,
    SSM_BF16_AVX2,
    SSM_BF16_AVX512,
    SSM_BF16_DPBF16,
    SSM_BF16_PATH_COUNT
} ssm_bf16_path;

/* "auto", "naive", "avx2", "avx512", "dpbf16" */
const char *ssm_bf16_path_name(ssm_bf16_path p);

/* Does this CPU run path p?  (naive and auto always.) */
int ssm_bf16_path_available(ssm_bf16_path p);

/* Force path p for every following product (tests, benchmarks), or go back
 * to the CPU's fastest with SSM_BF16_AUTO.  SSM_ERR_USAGE, naming the path,
 * when the CPU does not have it (the path in force is kept). */
ssm_status ssm_bf16_path_force(ssm_bf16_path p);

/* The path the products run now: forced, or the CPU's fastest; never auto. */
ssm_bf16_path ssm_bf16_path_active(void);

/* y (M) = W (M, K) x (K) on the calling thread by path p (auto: the active
 * path).  Any M, K >= 0; no alignment needed. */
void ssm_bf16_matvec(ssm_bf16_path p, float *y, const uint16_t *W, const float *x, int M, int K);

/* y (M) = W (M, K) x (K) [+ bias (M)] by the active path, rows split into
 * fixed blocks over the OpenMP threads when the product is large enough
 * (the split depends only on the thread count: same bits for the same
 * count).  Called outside a parallel region. */
void ssm_bf16_matvec_par(float *y, const uint16_t *W, const float *x, const float *bias, int M, int K);

/* dst (n) = src (n) widened to float; n floats from bf16, split over the
 * OpenMP threads when large (called outside a parallel region). */
void ssm_bf16_widen(float *dst, const uint16_t *src, size_t n);

#endif
