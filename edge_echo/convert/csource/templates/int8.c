/* int8.c: the integer C's helpers (NAME.int8.c), each part between its @part and @end lines;
 * a file carries only the parts it calls (integer.py picks them by name). The whole file also
 * compiles on its own, warning-free under -std=c99 -Wall -Wextra -Werror -pedantic (a test
 * does so on the host and for Cortex-M0 and M4).
 *
 * Exact integer arithmetic only: int8 weights, int16 activations and state, int32 sums, the
 * requantization a multiply and a shift. So every core computes the same bits: the scalar code
 * and the DSP code (the dual 16-bit multiply-accumulate of Cortex-M4, M7, M33, M55) add the
 * same products, and no sum can overflow (integer.py bounds each row's sum below 2^31 before it
 * writes the file). Right shifts of negative values are arithmetic, as GCC and clang define
 * them. */

/* @part prelude */
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && (defined(__arm__) || defined(__riscv) || !defined(__OPTIMIZE_SIZE__))
#define EE_INLINE static inline __attribute__((always_inline))
#else
#define EE_INLINE static inline
#endif


/* Arm's DSP extension (ACLE): SMLAD adds two 16 x 16 products to a sum in one instruction, and
 * SXTB16 widens two of a word's int8 weights to int16 lanes in one. -DEE_SCALAR builds the
 * portable code anywhere, which gives the same bits. */
#if defined(__ARM_FEATURE_DSP) && defined(__ARM_FEATURE_SIMD32) && !defined(__ARM_BIG_ENDIAN) \
    && !defined(EE_SCALAR)
#define EE_DSP 1
#endif
#if defined(EE_DSP) || (defined(__ARM_FEATURE_SAT) && !defined(EE_SCALAR))
#include <arm_acle.h>
#endif

/* The time steps' code (the layers and the head) is optimized for speed by GCC on the DSP cores
 * even in a build for size (-Os): there, -Os keeps the matrix loop's sums on the stack, and a
 * step costs a third more instructions; the code is a few hundred bytes larger. */
#if defined(__GNUC__) && !defined(__clang__) && defined(EE_DSP)
#define EE_HOT __attribute__((optimize("O2")))
#else
#define EE_HOT
#endif

/* floor(a m / 2^s): the requantization of a sum a by a row's multiplier m (its weights' scale
 * over the output's, times 2^s, below 2^15); the rows' sums carry half a step of bias, so this
 * rounds. For s >= 16, floor(floor(a m / 2^16) / 2^(s - 16)), which is the same integer: SMLAWB
 * on a DSP core (SMLAWB with nothing to add); elsewhere from a's two halves, in 32 bits (no 64-bit multiply on a core
 * without one). */
#ifdef EE_DSP
#define EE_MULW(a, m) __smlawb((a), (m), 0)
#else
#define EE_MULW(a, m) (((a) >> 16) * (m) + ((((a) & 0xffff) * (m)) >> 16))
#endif
#define EE_RQ(a, m, s) ((s) >= 16 ? EE_MULW((int32_t)(a), (int32_t)(m)) >> ((s) >= 16 ? (s) - 16 : 0) \
                        : (int32_t)(((int64_t)(a) * (int32_t)(m)) >> (s)))
/* The same for a row's one-byte multiplier (m < 2^8), which also takes SMLAWB (or 32 bits) for
 * 9 <= s < 16: a m / 2^s = a (m 2^(16 - s)) / 2^16, with m 2^(16 - s) below 2^15. */
#define EE_RQ8(a, m, s) ((s) >= 9 && (s) < 16 \
                         ? EE_MULW((int32_t)(a), (int32_t)(m) << ((s) < 16 ? 16 - (s) : 0)) \
                         : EE_RQ(a, m, s))

/* A row's int16 bias in its sum's units: b 2^bs (integer.py's Op.bias_shift), a shift. */
#define EE_BIAS(b, bs) ((int32_t)(b) * (int32_t)(1L << (bs)))

EE_INLINE int32_t ee_sat16(int32_t v)
{
#if defined(__ARM_FEATURE_SAT) && !defined(EE_SCALAR)
    return __ssat(v, 16);
#else
    return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
#endif
}
/* @end */

/* @part ee_mv */
/* Two rows' weights share each 16-bit lane: 256 a + b, with a a weight of the pair's first row
 * and b the second's (both int8, so the lane fits int16 exactly). A word holds two lanes, for
 * two inputs side by side. On a DSP core, SMLALD adds lane x input over a word to a 64-bit sum
 * (256 A + B) and SMLAD of the lanes' low bytes (SXTB16) to B: four multiply-accumulates in
 * three instructions and a load, and A = (sum - B) / 256 exactly. The scalar code reads a
 * and b back from each lane and sums A and B directly: the same integers. */
#define EE_LO(w) ((int32_t)((uint32_t)(w) << 16) >> 16)
#define EE_HI(w) ((int32_t)(uint32_t)(w) >> 16)
#define EE_B0(w) ((int32_t)((uint32_t)(w) << 24) >> 24)
#define EE_B1(w) ((int32_t)((uint32_t)(w) << 8) >> 24)
/* The scalar code: a pair's two sums (sa, sb) over v[0..3] from its two words. */
#define EE_PAIR(sa, sb, w0, w1) { \
    const int32_t e0 = EE_B0(w0), e1 = EE_B1(w0), e2 = EE_B0(w1), e3 = EE_B1(w1); \
    sa += ((EE_LO(w0) - e0) >> 8) * v[0] + ((EE_HI(w0) - e1) >> 8) * v[1] \
        + ((EE_LO(w1) - e2) >> 8) * v[2] + ((EE_HI(w1) - e3) >> 8) * v[3]; \
    sb += e0 * v[0] + e1 * v[1] + e2 * v[2] + e3 * v[3]; }

/* sum[0..3] = the four rows' sums (two pairs) over v's 4 x groups values; the weights after.
 * On a DSP core a function of its own: inlined, its loop shares registers with the caller's
 * and GCC keeps sums on the stack (a fifth more instructions a step, measured on Cortex-M4).
 * A model small enough that the call's frame would cost more RAM than its sums save time
 * defines EE_DOT4_INLINE (the generator does, below 1,024 weights a step). */
#if defined(EE_DSP) && !defined(EE_DOT4_INLINE)
EE_HOT __attribute__((noinline)) static const uint32_t *ee_dot4(
#else
EE_INLINE const uint32_t *ee_dot4(
#endif
    int32_t *sum, const uint32_t *w, const int16_t *v, int groups)
{
    int g;
#ifdef EE_DSP
    int64_t c0 = 0, c1 = 0;
    int32_t b0 = 0, b1 = 0;
    for (g = 0; g < groups; g++, v += 4, w += 4) {
        uint32_t x01, x23;
        memcpy(&x01, v, sizeof x01);
        memcpy(&x23, v + 2, sizeof x23);
        c0 = __smlald((int32_t)w[0], (int32_t)x01, c0);
        b0 = __smlad(__sxtb16((int32_t)w[0]), (int32_t)x01, b0);
        c1 = __smlald((int32_t)w[2], (int32_t)x01, c1);
        b1 = __smlad(__sxtb16((int32_t)w[2]), (int32_t)x01, b1);
        c0 = __smlald((int32_t)w[1], (int32_t)x23, c0);
        b0 = __smlad(__sxtb16((int32_t)w[1]), (int32_t)x23, b0);
        c1 = __smlald((int32_t)w[3], (int32_t)x23, c1);
        b1 = __smlad(__sxtb16((int32_t)w[3]), (int32_t)x23, b1);
    }
    sum[0] = (int32_t)((c0 - b0) >> 8);
    sum[1] = b0;
    sum[2] = (int32_t)((c1 - b1) >> 8);
    sum[3] = b1;
#else
    int32_t a0 = 0, b0 = 0, a1 = 0, b1 = 0;
    for (g = 0; g < groups; g++, v += 4, w += 4) {
        EE_PAIR(a0, b0, w[0], w[1])
        EE_PAIR(a1, b1, w[2], w[3])
    }
    sum[0] = a0;
    sum[1] = b0;
    sum[2] = a1;
    sum[3] = b1;
#endif
    return w;
}

/* sum[0..1] = one pair's sums over v's 4 x groups values; the weights after. */
EE_INLINE const uint32_t *ee_dot2(int32_t *sum, const uint32_t *w, const int16_t *v, int groups)
{
    int g;
#ifdef EE_DSP
    int64_t c0 = 0;
    int32_t b0 = 0;
    for (g = 0; g < groups; g++, v += 4, w += 2) {
        uint32_t x01, x23;
        memcpy(&x01, v, sizeof x01);
        memcpy(&x23, v + 2, sizeof x23);
        c0 = __smlald((int32_t)w[0], (int32_t)x01, c0);
        b0 = __smlad(__sxtb16((int32_t)w[0]), (int32_t)x01, b0);
        c0 = __smlald((int32_t)w[1], (int32_t)x23, c0);
        b0 = __smlad(__sxtb16((int32_t)w[1]), (int32_t)x23, b0);
    }
    sum[0] = (int32_t)((c0 - b0) >> 8);
    sum[1] = b0;
#else
    int32_t a0 = 0, b0 = 0;
    for (g = 0; g < groups; g++, v += 4, w += 2) EE_PAIR(a0, b0, w[0], w[1])
    sum[0] = a0;
    sum[1] = b0;
#endif
    return w;
}

/* A block's sums over v: one segment of groups, or (groups2 > 0) two, the second's weights
 * stored at a finer scale than the first's (an input's contributions far smaller than the
 * other's), each sum shifted right by its k before they are added (integer.py's _op). */
EE_INLINE const uint32_t *ee_sums4(int32_t *sum, const uint32_t *w, const int16_t *v, int groups,
                                   int groups2, int k1, int k2)
{
    w = ee_dot4(sum, w, v, groups);
    if (groups2) {
        int32_t more[4], i;
        w = ee_dot4(more, w, v + 4 * groups, groups2);
        for (i = 0; i < 4; i++) sum[i] = (sum[i] >> k1) + (more[i] >> k2);
    }
    return w;
}

EE_INLINE const uint32_t *ee_sums2(int32_t *sum, const uint32_t *w, const int16_t *v, int groups,
                                   int groups2, int k1, int k2)
{
    w = ee_dot2(sum, w, v, groups);
    if (groups2) {
        int32_t more[2];
        w = ee_dot2(more, w, v + 4 * groups, groups2);
        sum[0] = (sum[0] >> k1) + (more[0] >> k2);
        sum[1] = (sum[1] >> k1) + (more[1] >> k2);
    }
    return w;
}

/* z[r] = sat16(EE_RQ8(b[r] 2^bs + (row r of W) . v, m[r], S)) for r < rows, v of 4 x (groups +
 * groups2) int16 values. The rows go in pairs, two pairs at a time (then a last pair), group
 * by group: for each pair its word for inputs 0 and 1 of the group, then for 2 and 3. An odd
 * row count has a zero row after the last, computed and not stored. */
EE_INLINE void ee_mv(int16_t *z, const uint32_t *w, const int16_t *b, int bs, const uint8_t *m,
                     int s, const int16_t *v, int groups, int rows, int groups2, int k1, int k2)
{
    int32_t sum[4];
    for (; rows >= 4; rows -= 4, z += 4, b += 4, m += 4) {
        w = ee_sums4(sum, w, v, groups, groups2, k1, k2);
        z[0] = (int16_t)ee_sat16(EE_RQ8(EE_BIAS(b[0], bs) + sum[0], m[0], s));
        z[1] = (int16_t)ee_sat16(EE_RQ8(EE_BIAS(b[1], bs) + sum[1], m[1], s));
        z[2] = (int16_t)ee_sat16(EE_RQ8(EE_BIAS(b[2], bs) + sum[2], m[2], s));
        z[3] = (int16_t)ee_sat16(EE_RQ8(EE_BIAS(b[3], bs) + sum[3], m[3], s));
    }
    for (; rows > 0; rows -= 2, z += 2, b += 2, m += 2) {
        w = ee_sums2(sum, w, v, groups, groups2, k1, k2);
        z[0] = (int16_t)ee_sat16(EE_RQ8(EE_BIAS(b[0], bs) + sum[0], m[0], s));
        if (rows > 1) z[1] = (int16_t)ee_sat16(EE_RQ8(EE_BIAS(b[1], bs) + sum[1], m[1], s));
    }
}
/* @end */

/* @part EE_TANH */
/* tanh(-8 + i / 16) in Q15, i = 0 ... 256 */
static const int16_t EE_TANH[257] = {
    -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767,
    -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767,
    -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32767,
    -32767, -32767, -32767, -32767, -32767, -32767, -32767, -32766, -32766, -32766, -32766, -32765,
    -32765, -32765, -32764, -32764, -32763, -32762, -32762, -32761, -32760, -32759, -32758, -32756,
    -32755, -32753, -32751, -32749, -32746, -32743, -32740, -32736, -32732, -32727, -32721, -32715,
    -32708, -32700, -32691, -32681, -32670, -32657, -32642, -32625, -32606, -32584, -32560, -32532,
    -32501, -32466, -32426, -32381, -32329, -32271, -32206, -32132, -32048, -31953, -31846, -31726,
    -31589, -31435, -31262, -31067, -30847, -30600, -30322, -30010, -29660, -29268, -28830, -28341,
    -27797, -27191, -26519, -25776, -24956, -24054, -23066, -21986, -20813, -19542, -18173, -16706,
    -15143, -13486, -11743, -9919, -8025, -6073, -4075, -2045, 0, 2045, 4075, 6073,
    8025, 9919, 11743, 13486, 15143, 16706, 18173, 19542, 20813, 21986, 23066, 24054,
    24956, 25776, 26519, 27191, 27797, 28341, 28830, 29268, 29660, 30010, 30322, 30600,
    30847, 31067, 31262, 31435, 31589, 31726, 31846, 31953, 32048, 32132, 32206, 32271,
    32329, 32381, 32426, 32466, 32501, 32532, 32560, 32584, 32606, 32625, 32642, 32657,
    32670, 32681, 32691, 32700, 32708, 32715, 32721, 32727, 32732, 32736, 32740, 32743,
    32746, 32749, 32751, 32753, 32755, 32756, 32758, 32759, 32760, 32761, 32762, 32762,
    32763, 32764, 32764, 32765, 32765, 32765, 32766, 32766, 32766, 32766, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767,
    32767, 32767, 32767, 32767, 32767
};
/* @end */

/* @part ee_lut */
/* f(z) for an int16 z from 257 samples of f, t[i] at z = -32768 + 256 i, the two nearest
 * interpolated: EE_TANH's for z in Q3.12 (-8 + i / 16), in Q15; another activation's table
 * (integer.py's _table) at its layer's scales. */
EE_INLINE int32_t ee_lut(const int16_t *t, int32_t z)
{
    const int16_t *tc = t + 128;   /* tc[z >> 8] is t[(z + 32768) >> 8], in fewer instructions */
    const int32_t i = z >> 8, lo = tc[i];
    return lo + (((tc[i + 1] - lo) * (z & 255)) >> 8);
}
/* @end */

/* @part ee_sigmoid */
/* sigmoid(z) = (1 + tanh(z / 2)) / 2, z in Q3.12, in Q15 (at most 32767): one table for both. */
EE_INLINE int32_t ee_sigmoid(int32_t z)
{
    return (32768 + ee_lut(EE_TANH, z >> 1)) >> 1;
}
/* @end */

/* @part ee_lstm */
/* One step of an LSTM layer (Keras's sigmoid gates and tanh): its rows stored unit by unit (the
 * i, f, c and o rows of unit j side by side, two pairs), so that each unit's four sums go
 * straight into its gates (groups2, k1, k2 as ee_mv's). c (scale 2^(cs - 30)) and the new h
 * (Q15, into hn: h is still read by the later units' sums) in place; cm, cr turn c into Q3.12
 * as (c x cm) >> cr. A sigmoid gate's sum is requantized at half its argument (shift s + 1),
 * straight into tanh's table, and kept as 1 + tanh(z / 2) = 2 sigmoid(z) in Q15 (0 ... 65535):
 * no halving, and the products below shift by 16. */
EE_INLINE void ee_lstm(int16_t *hn, int16_t *c, const uint32_t *w, const int16_t *b, int bs,
                       const uint8_t *m, int s, const int16_t *v, int groups, int units, int cs,
                       int32_t cm, int cr, int groups2, int k1, int k2)
{
    int j;
    for (j = 0; j < units; j++, b += 4, m += 4) {
        int32_t sum[4], ig, fg, gg, og, cn;
        w = ee_sums4(sum, w, v, groups, groups2, k1, k2);
        ig = 32768 + ee_lut(EE_TANH, ee_sat16(EE_RQ8(EE_BIAS(b[0], bs) + sum[0], m[0], s + 1)));
        fg = 32768 + ee_lut(EE_TANH, ee_sat16(EE_RQ8(EE_BIAS(b[1], bs) + sum[1], m[1], s + 1)));
        gg = ee_lut(EE_TANH, ee_sat16(EE_RQ8(EE_BIAS(b[2], bs) + sum[2], m[2], s)));
        og = 32768 + ee_lut(EE_TANH, ee_sat16(EE_RQ8(EE_BIAS(b[3], bs) + sum[3], m[3], s + 1)));
        /* |fg c| + 2^15 and |ig gg| stay below 2^31; (ig gg / 2^cs + 1) / 2 rounds it */
        cn = ee_sat16(((fg * c[j] + 32768) >> 16) + (((ig * gg >> cs) + 1) >> 1));
        c[j] = (int16_t)cn;
        hn[j] = (int16_t)((og * ee_lut(EE_TANH, ee_sat16((cn * cm) >> cr)) + 32768) >> 16);
    }
}
/* @end */

/* @part ee_softmax */
/* 2^-f in Q15 for f = i / 32, i = 0 ... 32 */
static const int16_t EE_EXP2[33] = {
    32767, 32066, 31379, 30706, 30048, 29405, 28774, 28158, 27554, 26964, 26386, 25821,
    25268, 24726, 24196, 23678, 23170, 22674, 22188, 21713, 21247, 20792, 20347, 19911,
    19484, 19066, 18658, 18258, 17867, 17484, 17109, 16743, 16384
};

/* softmax over z[0..n) (logits, any one scale) into p (Q15). e^-(max - z[j]) is 2^-d, d = (max
 * - z[j]) log2(e) turned into Q4.11 by (m, s) and saturated at 16 (2^-16 is half a Q15 step):
 * 2^-(d's fraction) from EE_EXP2 interpolated (66 bytes, not a 257-entry e^-x table: within 2
 * Q15 steps), shifted right by d's integer part, rounded. Then each is divided by the sum
 * through one reciprocal. */
EE_INLINE void ee_softmax(const int16_t *z, int16_t *p, int n, int32_t m, int s)
{
    int32_t top = z[0], sum = 0, inv;
    int j;
    for (j = 1; j < n; j++) if (z[j] > top) top = z[j];
    for (j = 0; j < n; j++) {
        int32_t d = EE_RQ(top - z[j], m, s);
        int32_t i, lo, e, k;
        if (d > 32767) d = 32767;
        i = (d >> 6) & 31;
        k = d >> 11;
        lo = EE_EXP2[i];
        e = lo + (((EE_EXP2[i + 1] - lo) * (d & 63) + 32) >> 6);
        p[j] = (int16_t)(k ? (e + (1 << (k - 1))) >> k : e);
        sum += p[j];
    }
    inv = (int32_t)((1u << 30) / (uint32_t)sum); /* sum >= 32767: the largest logit's 2^0 */
    for (j = 0; j < n; j++) p[j] = (int16_t)ee_sat16((p[j] * inv + 16384) >> 15);
}
/* @end */

/* @part ee_quantize */
/* round(v * inv) saturated to int16 (NaN: 0): the float edge's input, on any core. The
 * product is rounded on its own (no fused multiply-add can change it), then to nearest. */
EE_INLINE int16_t ee_quantize(float v, float inv)
{
    float f = v * inv;
    int32_t r;
    if (!(f == f)) return 0;
    if (f >= 32767.0f) return 32767;
    if (f <= -32768.0f) return -32768;
    r = (int32_t)f;
    f = f - (float)r;
    if (f >= 0.5f) r++;
    else if (f <= -0.5f) r--;
    return (int16_t)ee_sat16(r);
}
/* @end */
