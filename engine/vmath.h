/* vmath.h — branch-free float math that clang vectorises: exp, and the
 * sigmoid, SiLU and softplus built on it.  Loops over arrays that call these
 * compile to AVX2 code; libm's expf and log1pf would not. */
#ifndef SSM_VMATH_H
#define SSM_VMATH_H

#include <stdint.h>
#include <string.h>

/* exp(x) in float: x = n ln2 + r with |r| <= ln2/2, exp(r) by its Taylor
 * polynomial of degree 7 (truncation < 6e-9), 2^n built in the exponent
 * bits.  Relative error ~1.5e-7 for x in [ln(FLT_MIN), 88]; exactly 0 below
 * (no subnormals), exp(88) above 88, NaN stays NaN.  Branch-free
 * (selects only), so loops calling it vectorise. */
static inline float ssm_expf(float x)
{
    const float lo = -87.336544f, hi = 88.0f; /* lo = ln(FLT_MIN) */
    const float magic = 0x1.8p23f;      /* adding it rounds to an integer */
    const float ln2_hi = 0x1.62e4p-1f;  /* 15 bits: n * ln2_hi is exact */
    const float ln2_lo = 0x1.7f7d1cp-20f;
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    const float kf = xc * 1.44269504f + magic;
    const float n = kf - magic;
    float r = xc - n * ln2_hi;
    r = r - n * ln2_lo;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t kb, sb;
    memcpy(&kb, &kf, sizeof kb);
    sb = (kb - 0x4b400000u + 127u) << 23; /* bits of 2^n, n in [-126, 127] */
    float s;
    memcpy(&s, &sb, sizeof s);
    return x < lo ? 0.0f : p * s;
}

static inline float ssm_sigmoidf(float x) { return 1.0f / (1.0f + ssm_expf(-x)); }
static inline float ssm_siluf(float x) { return x * ssm_sigmoidf(x); }

/* d/dx SiLU(x) = s (1 + x (1 - s)), s = sigmoid(x) */
static inline float ssm_dsiluf(float x)
{
    float s = ssm_sigmoidf(x);
    return s * (1.0f + x * (1.0f - s));
}

/* softplus(x) = max(x, 0) + log1p(exp(-|x|)), and x itself above 20 as torch
 * and the selective-scan kernel do.  log1p(y) for y in (0, 1] is
 * 2 atanh(s) with s = y / (2 + y) <= 1/3, summed to s^15 (error < 2e-9),
 * which keeps full precision for small y. */
static inline float ssm_softplusf(float x)
{
    float y = ssm_expf(x < 0.0f ? x : -x);
    float s = y / (2.0f + y), s2 = s * s;
    float p = 1.0f / 15.0f;
    p = p * s2 + 1.0f / 13.0f;
    p = p * s2 + 1.0f / 11.0f;
    p = p * s2 + 1.0f / 9.0f;
    p = p * s2 + 1.0f / 7.0f;
    p = p * s2 + 1.0f / 5.0f;
    p = p * s2 + 1.0f / 3.0f;
    p = p * s2 + 1.0f;
    float sp = (x > 0.0f ? x : 0.0f) + 2.0f * s * p;
    return x > 20.0f ? x : sp;
}

#endif
