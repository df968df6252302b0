/* float.c: the float C's helpers (NAME.c), each part between its @part and @end lines, with the
 * parts it calls after "needs"; a file carries only the parts it calls (cmath.py picks them).
 * The whole file also compiles on its own, warning-free under -std=c99 -Wall -Wextra -Werror
 * -pedantic (a test does so on the host and for Cortex-M0 and M4).
 *
 * No libm: every helper is single precision with no errno, no double and no call, so that
 * nm -u of a model's object lists nothing but memset and memcpy, and an FPU core spends its
 * time on the model. */

/* @part prelude */
#include <stdint.h>
#include <string.h>

/* GCC and clang inline the hot helpers at every call site, each with its sizes as constants
 * (fewer instructions a step, a little more flash): always on Arm cores and RISC-V cores with
 * an FPU, and elsewhere unless the build optimizes for size (-Os). */
#if defined(__GNUC__) && (defined(__arm__) || defined(__riscv_flen) || !defined(__OPTIMIZE_SIZE__))
#define EE_INLINE static inline __attribute__((always_inline))
#else
#define EE_INLINE static inline
#endif
/* @end */

/* @part ee_abs */
static float ee_abs(float x)
{
    return x < 0.0f ? -x : x;
}
/* @end */

/* @part ee_exp */
/* e^x: x = n ln2 + r with n = round(x log2 e) (found by adding 1.5 x 2^23, whose low bits
 * then hold it) and r in two parts (Cody-Waite), |r| <= ln2 / 2; e^r by Cephes' expf
 * polynomial; 2^n written into the exponent bits. Within 2 ulp of expf; 0 below -86.6
 * (e^x < 3e-38 there), inf from 88.72 on, NaN stays NaN. The range is tested on the bits:
 * on a core without an FPU a float comparison is a library call. */
static float ee_exp(float x)
{
    union { float f; uint32_t u; } s;
    float n, r, p;
    s.f = x;
    if ((s.u & 0x7fffffffu) >= 0x42AD3333u) { /* |x| >= 86.6, inf or NaN */
        if ((s.u & 0x7fffffffu) > 0x7f800000u) return x;
        if (s.u >> 31) return 0.0f;
        if (s.u >= 0x42B17218u) {
            s.u = 0x7f800000u;
            return s.f;
        }
        return 2.0f * ee_exp(x - 0.693147181f); /* keeps 2^n below 2^128 */
    }
    s.f = x * 1.44269504f + 12582912.0f;
    n = s.f - 12582912.0f;
    r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
           + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * (r * r) + r + 1.0f;
    s.u = (s.u - 0x4B400000u + 127u) << 23; /* 2^n: n in [-125, 127] */
    return p * s.f;
}
/* @end */

/* @part ee_pow2_16 */
/* 2^(t/16) for t <= 0, as sigmoid and tanh take it: k = round(t) from the bits of
 * t + 1.5 x 2^23 and f = t - k in [-1/2, 1/2]; 2^(f/16) by its degree-3 series (remainder
 * below 1e-8); 2^(k/16) = 2^(k >> 4) x 2^((k & 15) / 16), a 16-entry table with the first
 * factor added into the exponent bits, so that no multiply builds it. 0 where the result
 * is below 2^-126; NaN stays NaN. Three multiplies and five additions in all. */
static const uint32_t EE_POW2_16[16] = {
    0x3f800000u, 0x3f85aac3u, 0x3f8b95c2u, 0x3f91c3d3u, 0x3f9837f0u, 0x3f9ef532u, 0x3fa5fed7u,
    0x3fad583fu, 0x3fb504f3u, 0x3fbd08a4u, 0x3fc5672au, 0x3fce248cu, 0x3fd744fdu, 0x3fe0ccdfu,
    0x3feac0c7u, 0x3ff5257du
};

EE_INLINE float ee_pow2_16(float t)
{
    union { float f; uint32_t u; } s;
    uint32_t k;
    float f;
    s.f = t;
    if (s.u > 0xC4FC0000u) /* t < -2016, or NaN */
        return (s.u & 0x7fffffffu) > 0x7f800000u ? t : 0.0f;
    {
        const int32_t whole = (int32_t)t; /* toward zero: f = t - whole in (-1, 0] */
        f = t - (float)whole;
        k = (uint32_t)(whole + 2032); /* + 16 x 127, in [16, 2032] */
    }
    f = ((1.35508078e-5f * f + 9.38384793e-4f) * f + 4.33216988e-2f) * f + 1.0f;
    s.u = EE_POW2_16[k & 15u] + (((k >> 4) - 127u) << 23);
    return f * s.f;
}
/* @end */

/* @part ee_sigmoid_nd needs ee_pow2_16 */
/* sigmoid(x) = *num / den, den returned, for x = t / scale (scale 16 log2(e) unless the
 * weights were stored pre-scaled), with e = e^-|x| in (0, 1]: num is e below 0 and 1
 * from 0 on (small results keep their relative precision); den is 1 + e. The sign is read
 * from the bits. A product of activations (an LSTM's i g and o tanh(c)) then costs one
 * division, which a core without an FPU pays for dearly. */
EE_INLINE float ee_sigmoid_nd(float t, float scale, float *num)
{
    union { float f; uint32_t u; } s;
    uint32_t negative;
    float e;
    s.f = t;
    negative = s.u >> 31;
    s.u |= 0x80000000u;
    e = ee_pow2_16(s.f * scale);
    *num = negative ? e : 1.0f;
    return 1.0f + e;
}
/* @end */

/* @part ee_tanh_nd needs ee_pow2_16 */
/* tanh(x) = *num / den for x = t / scale (scale 32 log2(e) unless pre-scaled): (1 - e) /
 * (1 + e) with e = e^-2|x| in (0, 1], the sign put back. */
EE_INLINE float ee_tanh_nd(float t, float scale, float *num)
{
    union { float f; uint32_t u; } s;
    uint32_t sign;
    float e;
    s.f = t;
    sign = s.u & 0x80000000u;
    s.u |= 0x80000000u;
    e = ee_pow2_16(s.f * scale);
    s.f = 1.0f - e;
    s.u |= sign;
    *num = s.f;
    return 1.0f + e;
}
/* @end */

/* @part ee_sigmoid needs ee_sigmoid_nd */
EE_INLINE float ee_sigmoid(float x)
{
    float num;
    const float den = ee_sigmoid_nd(x, 23.0831207f, &num); /* 16 log2(e) */
    return num / den;
}
/* @end */

/* @part ee_tanh needs ee_tanh_nd */
EE_INLINE float ee_tanh(float x)
{
    float num;
    const float den = ee_tanh_nd(x, 46.1662413f, &num); /* 32 log2(e) */
    return num / den;
}
/* @end */

/* @part ee_log */
/* log x for a positive normal x (its callers take it of sums >= 1): x = m 2^e with m in
 * [sqrt(1/2), sqrt(2)) read from the bits, Cephes' logf polynomial in m - 1. */
static float ee_log(float x)
{
    union { float f; uint32_t u; } s;
    float e, z, y;
    s.f = x;
    e = (float)((int32_t)((s.u >> 23) & 0xffu) - 126);
    s.u = (s.u & 0x007fffffu) | 0x3f000000u;
    if (s.f < 0.707106781f) {
        e = e - 1.0f;
        x = s.f + s.f - 1.0f;
    } else {
        x = s.f - 1.0f;
    }
    z = x * x;
    y = ((((((((7.0376836292e-2f * x - 1.1514610310e-1f) * x + 1.1676998740e-1f) * x
              - 1.2420140846e-1f) * x + 1.4249322787e-1f) * x - 1.6668057665e-1f) * x
           + 2.0000714765e-1f) * x - 2.4999993993e-1f) * x + 3.3333331174e-1f) * x * z;
    y = y - 2.12194440e-4f * e - 0.5f * z;
    return x + y + 0.693359375f * e;
}
/* @end */

/* @part ee_rsqrt */
/* 1 / sqrt(x) for a positive normal x (a variance plus its epsilon): the exponent halved on
 * the bits (0x5f3759df), then three Newton steps, each squaring the relative error (3.4e-2,
 * 1.8e-3, 4.7e-6, then float rounding). */
static float ee_rsqrt(float x)
{
    union { float f; uint32_t u; } s;
    float y;
    s.f = x;
    s.u = 0x5f3759dfu - (s.u >> 1);
    y = s.f;
    y = y * (1.5f - 0.5f * x * y * y);
    y = y * (1.5f - 0.5f * x * y * y);
    y = y * (1.5f - 0.5f * x * y * y);
    return y;
}
/* @end */

/* @part ee_softplus needs ee_abs ee_exp ee_log */
/* log(1 + e^x) as max(x, 0) + log(1 + e^-|x|): no overflow for any x. */
static float ee_softplus(float x)
{
    return (x > 0.0f ? x : 0.0f) + ee_log(1.0f + ee_exp(-ee_abs(x)));
}
/* @end */

/* @part ee_erf needs ee_abs ee_exp */
/* erf by Abramowitz and Stegun 7.1.26: absolute error below 1.5e-7. */
static float ee_erf(float x)
{
    const float a = ee_abs(x);
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    const float y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t
                              - 0.284496736f) * t + 0.254829592f) * t) * ee_exp(-a * a);
    return x < 0.0f ? -y : y;
}
/* @end */

/* @part matvec */
#if defined(__arm__) && defined(__ARM_FEATURE_FMA) && defined(__ARM_FP) && (__ARM_FP & 4)
#define EE_MAC(a, w, x) __builtin_fmaf((w), (x), (a))
#else
#define EE_MAC(a, w, x) ((a) + (w) * (x))
#endif

/* The single rows after the blocks: z[r] = b[r] + (row r of W) . [x, h]. */
EE_INLINE void ee_mv1(float *z, const float *w, const float *b, const float *x, int nx,
                   const float *h, int nh, int rows)
{
    int k;
    for (; rows > 0; rows--, z++) {
        float a = b ? *b++ : 0.0f;
        for (k = 0; k < nx; k++) a = EE_MAC(a, *w++, x[k]);
        for (k = 0; k < nh; k++) a = EE_MAC(a, *w++, h[k]);
        z[0] = a;
    }
}

/* Where the compiler has 4-lane float vectors (SSE, NEON on aarch64, WebAssembly's simd128),
 * the rows go four and eight at a time through its vector types: per lane the same products
 * summed in the same order as the scalar code below, so the same bits (-DEE_SCALAR builds the
 * scalar code anywhere, to check it). */
#if defined(__GNUC__) && !defined(__arm__) && !defined(EE_SCALAR) && \
    (defined(__SSE__) || defined(__aarch64__) || defined(__wasm_simd128__))
typedef float ee_v4 __attribute__((vector_size(16)));

EE_INLINE ee_v4 ee_v4_load(const float *p)
{
    ee_v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* z[r] = b[r] + (row r of W) . [x, h] for r < rows (b NULL: no bias): x of nx values, then
 * h of nh, so that no layer copies its input and state into one vector. */
EE_INLINE void ee_mv(float *z, const float *w, const float *b, const float *x, int nx,
                  const float *h, int nh, int rows)
{
    int k;
    for (; rows >= 8; rows -= 8, z += 8) {
        ee_v4 lo = {0.0f, 0.0f, 0.0f, 0.0f}, hi = lo;
        if (b) {
            lo = ee_v4_load(b);
            hi = ee_v4_load(b + 4);
            b += 8;
        }
        for (k = 0; k < nx; k++, w += 8) {
            lo += ee_v4_load(w) * x[k];
            hi += ee_v4_load(w + 4) * x[k];
        }
        for (k = 0; k < nh; k++, w += 8) {
            lo += ee_v4_load(w) * h[k];
            hi += ee_v4_load(w + 4) * h[k];
        }
        memcpy(z, &lo, sizeof lo);
        memcpy(z + 4, &hi, sizeof hi);
    }
    if (rows >= 4) {
        ee_v4 a = {0.0f, 0.0f, 0.0f, 0.0f};
        if (b) {
            a = ee_v4_load(b);
            b += 4;
        }
        for (k = 0; k < nx; k++, w += 4) a += ee_v4_load(w) * x[k];
        for (k = 0; k < nh; k++, w += 4) a += ee_v4_load(w) * h[k];
        memcpy(z, &a, sizeof a);
        rows -= 4;
        z += 4;
    }
    ee_mv1(z, w, b, x, nx, h, nh, rows);
}
#else
#define EE_ROWS8(v) { const float e = (v); a0 = EE_MAC(a0, w[0], e); a1 = EE_MAC(a1, w[1], e); \
    a2 = EE_MAC(a2, w[2], e); a3 = EE_MAC(a3, w[3], e); a4 = EE_MAC(a4, w[4], e); \
    a5 = EE_MAC(a5, w[5], e); a6 = EE_MAC(a6, w[6], e); a7 = EE_MAC(a7, w[7], e); w += 8; }
#define EE_ROWS4(v) { const float e = (v); a0 = EE_MAC(a0, w[0], e); a1 = EE_MAC(a1, w[1], e); \
    a2 = EE_MAC(a2, w[2], e); a3 = EE_MAC(a3, w[3], e); w += 4; }

/* z[r] = b[r] + (row r of W) . [x, h] for r < rows (b NULL: no bias): x of nx values, then
 * h of nh, so that no layer copies its input and state into one vector. */
EE_INLINE void ee_mv(float *z, const float *w, const float *b, const float *x, int nx,
                  const float *h, int nh, int rows)
{
    int k;
    for (; rows >= 8; rows -= 8, z += 8) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
        if (b) {
            a0 = b[0]; a1 = b[1]; a2 = b[2]; a3 = b[3]; a4 = b[4]; a5 = b[5]; a6 = b[6]; a7 = b[7];
            b += 8;
        }
        for (k = 0; k < nx; k++) EE_ROWS8(x[k])
        for (k = 0; k < nh; k++) EE_ROWS8(h[k])
        z[0] = a0; z[1] = a1; z[2] = a2; z[3] = a3; z[4] = a4; z[5] = a5; z[6] = a6; z[7] = a7;
    }
    if (rows >= 4) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        if (b) {
            a0 = b[0]; a1 = b[1]; a2 = b[2]; a3 = b[3];
            b += 4;
        }
        for (k = 0; k < nx; k++) EE_ROWS4(x[k])
        for (k = 0; k < nh; k++) EE_ROWS4(h[k])
        z[0] = a0; z[1] = a1; z[2] = a2; z[3] = a3;
        rows -= 4;
        z += 4;
    }
    ee_mv1(z, w, b, x, nx, h, nh, rows);
}
#endif
/* @end */
