"""Plain C99 source for a recurrent model: no runtime at all (NAME.c and NAME.h).

For stacks of unidirectional LSTM, GRU (both reset_after settings) and
SimpleRNN layers with a Dense (or TimeDistributed(Dense)) head: the trained
weights as `static const` arrays (flash, not RAM), a state struct with h
(and c) per recurrent layer, and three functions:

    void NAME_reset(NAME_state *s);
    void NAME_step(NAME_state *s, const float *x_t, float *y_t);
    void NAME_predict(const float *x, float *y);

No heap, no mutable globals, no libm (exp, log, erf are the file's own, in single
precision), nothing of libc beyond memset / memcpy. Anything else gets a one-line reason
(Unavailable) and no file.
The C is checked like every other form: verify compiles it and runs it
through ctypes (runners/c.py) against Keras.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..forms import Form, Subject, Unavailable

# Every transcendental goes through the helpers in MATH below (ee_exp, ee_sigmoid, ...):
# single precision, no libm, no errno, so that a Cortex-M core spends its time on the model.
ACTIVATIONS = {
    "linear": "{x}",
    "tanh": "ee_tanh({x})",
    "sigmoid": "ee_sigmoid({x})",
    "relu": "({x} > 0.0f ? {x} : 0.0f)",
    # The rest of Keras 3's element-wise activations, as keras.activations defines them with
    # their default arguments (elu alpha 1, leaky_relu negative_slope 0.2, gelu exact).
    "elu": "({x} > 0.0f ? {x} : ee_exp({x}) - 1.0f)",
    "selu": "(1.05070098f * ({x} > 0.0f ? {x} : 1.67326324f * (ee_exp({x}) - 1.0f)))",
    "softplus": "ee_softplus({x})",
    "softsign": "({x} / (1.0f + ee_abs({x})))",
    "hard_sigmoid": "({x} <= -3.0f ? 0.0f : {x} >= 3.0f ? 1.0f : {x} / 6.0f + 0.5f)",
    "silu": "({x} * ee_sigmoid({x}))",
    "hard_silu": "({x} <= -3.0f ? 0.0f : {x} >= 3.0f ? {x} : {x} * ({x} / 6.0f + 0.5f))",
    "gelu": "(0.5f * {x} * (1.0f + ee_erf({x} * 0.707106781f)))",
    "leaky_relu": "({x} > 0.0f ? {x} : 0.2f * {x})",
    "relu6": "({x} <= 0.0f ? 0.0f : {x} >= 6.0f ? 6.0f : {x})",
    "mish": "({x} * ee_tanh(ee_softplus({x})))",
    "exponential": "ee_exp({x})",
}
# Over a whole vector, not one element: only a Dense layer's output takes them. softmax
# subtracts the largest logit first, so that no exponential overflows.
VECTOR_ACTIVATIONS = ("softmax", "log_softmax")
# The math the activations call, each helper with the helpers it calls: a file carries only
# the ones it uses (an unused static function is a warning, and -Werror). No libm: every
# one is single precision with no errno, no double and no call, so that nm -u of the object
# lists nothing but memset and memcpy, and an FPU core spends its time on the model.
MATH: dict[str, tuple[tuple[str, ...], str]] = {
    "ee_abs": ((), """\
static float ee_abs(float x)
{
    return x < 0.0f ? -x : x;
}
"""),
    "ee_exp": ((), """\
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
"""),
    "ee_pow2_16": ((), """\
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
"""),
    "ee_sigmoid_nd": (("ee_pow2_16",), """\
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
"""),
    "ee_tanh_nd": (("ee_pow2_16",), """\
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
"""),
    "ee_sigmoid": (("ee_sigmoid_nd",), """\
EE_INLINE float ee_sigmoid(float x)
{
    float num;
    const float den = ee_sigmoid_nd(x, 23.0831207f, &num); /* 16 log2(e) */
    return num / den;
}
"""),
    "ee_tanh": (("ee_tanh_nd",), """\
EE_INLINE float ee_tanh(float x)
{
    float num;
    const float den = ee_tanh_nd(x, 46.1662413f, &num); /* 32 log2(e) */
    return num / den;
}
"""),
    "ee_log": ((), """\
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
"""),
    "ee_rsqrt": ((), """\
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
"""),
    "ee_softplus": (("ee_abs", "ee_exp", "ee_log"), """\
/* log(1 + e^x) as max(x, 0) + log(1 + e^-|x|): no overflow for any x. */
static float ee_softplus(float x)
{
    return (x > 0.0f ? x : 0.0f) + ee_log(1.0f + ee_exp(-ee_abs(x)));
}
"""),
    "ee_erf": (("ee_abs", "ee_exp"), """\
/* erf by Abramowitz and Stegun 7.1.26: absolute error below 1.5e-7. */
static float ee_erf(float x)
{
    const float a = ee_abs(x);
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    const float y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t
                              - 0.284496736f) * t + 0.254829592f) * t) * ee_exp(-a * a);
    return x < 0.0f ? -y : y;
}
"""),
}
# z[r] += (row r of W) . v: the only loop over weights. The rows are stored in blocks of 8,
# then one of 4, then single rows (blocked() below); within a block, for each k the block's
# weights of v[k] side by side. So every weight is read once, in the order it is stored, each
# v[k] once per block, and eight sums stay in registers. A core with a single-precision FMA
# (Cortex-M4F, M7, M33, M55) gets one VFMA per weight: __builtin_fmaf is inlined there. A host
# with 4-wide float vectors (x86-64's SSE, AArch64's NEON) reads the same blocks four rows to
# an instruction, through GCC's and clang's vector types: the same products and sums in the
# same order, so its outputs are the scalar code's, bit for bit.
MATVEC = """\
#if defined(__ARM_FEATURE_FMA) && defined(__ARM_FP) && (__ARM_FP & 4)
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

#if defined(__GNUC__) && !defined(__arm__) && (defined(__SSE__) || defined(__aarch64__))
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
#define EE_ROWS8(v) { const float e = (v); a0 = EE_MAC(a0, w[0], e); a1 = EE_MAC(a1, w[1], e); \\
    a2 = EE_MAC(a2, w[2], e); a3 = EE_MAC(a3, w[3], e); a4 = EE_MAC(a4, w[4], e); \\
    a5 = EE_MAC(a5, w[5], e); a6 = EE_MAC(a6, w[6], e); a7 = EE_MAC(a7, w[7], e); w += 8; }
#define EE_ROWS4(v) { const float e = (v); a0 = EE_MAC(a0, w[0], e); a1 = EE_MAC(a1, w[1], e); \\
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
"""


def blocked(matrix: np.ndarray) -> np.ndarray:
    """matrix (n, rows): column r holds row r's weights over v. Stored as ee_mv reads it."""
    n, rows = matrix.shape
    parts, r = [], 0
    for size in (8, 4, 1):
        while rows - r >= size and (size != 4 or r == rows - rows % 8):
            parts.append(np.asarray(matrix[:, r:r + size], np.float32).ravel())
            r += size
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def math_for(code: str) -> str:
    """The MATH helpers code calls, each after the helpers it calls."""
    wanted: list[str] = []

    def need(name: str) -> None:
        for dep in MATH[name][0]:
            need(dep)
        if name not in wanted:
            wanted.append(name)

    for name in MATH:
        if re.search(rf"\b{name}\(", code):
            need(name)
    order = [name for name in MATH if name in wanted]
    return "\n".join(MATH[name][1] for name in order)


# gcc/clang flags the contract promises the file compiles under, warning-free.
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def c_name(name: str) -> str:
    """NAME in C identifiers: '-' (and anything else not allowed) becomes '_'."""
    ident = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return f"m_{ident}" if ident[:1].isdigit() else ident


def compiler() -> str | None:
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc):
            return shutil.which(cc)
    return None


def _activation(layer, attr: str, vector: bool = False) -> str:
    """The activation's name, or why it has no C form: vector ones only where vector (a Dense
    layer's output, over its units)."""
    act = getattr(layer, attr)
    name = getattr(act, "__name__", str(act))
    if name in VECTOR_ACTIVATIONS and not vector:
        raise Unavailable(f"layer '{layer.name}': activation '{name}' as the {attr} of a "
                          "recurrent cell has no C form here (it takes a Dense layer's output)")
    if name not in ACTIVATIONS and name not in VECTOR_ACTIVATIONS:
        raise Unavailable(f"layer '{layer.name}': activation '{name}' has no C form here "
                          f"(supported: {', '.join([*ACTIVATIONS, *VECTOR_ACTIVATIONS])})")
    return name


@dataclass
class Cell:
    kind: str          # lstm | gru | rnn
    name: str
    inputs: int
    units: int
    weights: list[np.ndarray]
    activation: str
    recurrent_activation: str | None
    reset_after: bool = True
    use_bias: bool = True
    # Normalization layers between the previous layer (or the input) and this one, per step.
    pre: list[Norm] = field(default_factory=list)


@dataclass
class Norm:
    """BatchNormalization (folded at inference: x * a + b), LayerNormalization (a = gamma,
    b = beta, either None where the layer has none) or LayerNormalization(rms_scaling), over
    the features of each step."""
    kind: str          # batch | layer | rms
    name: str
    width: int
    a: np.ndarray | None
    b: np.ndarray | None
    epsilon: float
    index: int = 0     # N{index}_A, N{index}_B in the file

    def arrays(self) -> list[tuple[str, np.ndarray]]:
        return [(f"N{self.index}_{part.upper()}", v) for part, v in (("a", self.a), ("b", self.b))
                if v is not None]


@dataclass
class Dense:
    name: str
    inputs: int
    units: int
    kernel: np.ndarray
    bias: np.ndarray | None
    activation: str


@dataclass
class Plan:
    cells: list[Cell]
    head: list[Dense | Norm]
    steps: int
    features: int
    outputs: int
    every_step: bool   # y for every time step (many-to-many), else the last step's

    @property
    def state_floats(self) -> int:
        return sum(c.units * (2 if c.kind == "lstm" else 1) for c in self.cells)

    @property
    def norms(self) -> list[Norm]:
        return [n for c in self.cells for n in c.pre] + [n for n in self.head if isinstance(n, Norm)]

    @property
    def params(self) -> int:
        return (sum(int(w.size) for c in self.cells for w in c.weights)
                + sum(d.kernel.size + (0 if d.bias is None else d.bias.size) for d in self.head
                      if isinstance(d, Dense))
                + sum(int(v.size) for n in self.norms for _, v in n.arrays()))

    def layers(self) -> list[str]:
        """What the file computes, in order: cell(units), dense(units), *_norm(width)."""
        names = []
        for c in self.cells:
            names += [f"{n.kind}_norm({n.width})" for n in c.pre] + [f"{c.kind}({c.units})"]
        return names + [f"{d.kind}_norm({d.width})" if isinstance(d, Norm) else f"dense({d.units})"
                        for d in self.head]


def plan(subject: Subject) -> Plan:
    """Read the model into cells and a head, or say in one line why it has no C form."""
    import keras

    model = subject.model
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise Unavailable("C source takes models with one input and one output")
    interface = subject.interface
    if not interface.plain:
        raise Unavailable(f"C source takes float inputs; input '{interface.input_name}' takes "
                          f"{interface.inputs[0].dtype} token ids")
    if len(interface.input_shape) != 2:
        raise Unavailable("C source takes inputs of (time steps, features)")
    steps, features = interface.input_shape
    cells: list[Cell] = []
    head: list[Dense | Norm] = []
    norms: list[Norm] = []  # read, not yet placed before a cell or into the head
    width = features
    every_step = True
    from .. import modelplan

    try:
        layers = modelplan.chain(modelplan.read(model))
    except modelplan.PlanError as exc:
        raise Unavailable(str(exc)) from None
    for layer in layers:
        if isinstance(layer, keras.layers.Dropout):
            continue
        inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
        if type(layer).__name__ in modelplan.RECURRENT:
            if head:
                raise Unavailable(f"layer '{layer.name}': a recurrent layer after the Dense head "
                                  "has no C form here")
            if not every_step:
                raise Unavailable(f"layer '{layer.name}' follows a layer that returns only its "
                                  "last step")
            if layer.go_backwards or layer.stateful or getattr(layer, "return_state", False):
                raise Unavailable(f"layer '{layer.name}': go_backwards, stateful and return_state "
                                  "have no C form here")
            cells.append(_cell(layer, width, pre=norms))
            norms = []
            width = int(layer.units)
            every_step = bool(layer.return_sequences)
        elif isinstance(inner, keras.layers.Dense):
            if not cells:
                raise Unavailable(f"layer '{layer.name}': a Dense layer before the first "
                                  "recurrent layer has no C form here")
            head += norms
            norms = []
            head.append(_dense(layer, inner, width))
            width = int(inner.units)
        elif isinstance(inner, (keras.layers.BatchNormalization, keras.layers.LayerNormalization)):
            norms.append(_norm(layer, inner, width, keras))
        else:
            raise Unavailable(f"layer '{layer.name}' ({type(layer).__name__}) has no C form here; "
                              "C source takes LSTM, GRU and SimpleRNN stacks with Dense heads "
                              "and Batch or LayerNormalization between them")
    head += norms
    if not cells:
        raise Unavailable("C source needs a recurrent layer (LSTM, GRU or SimpleRNN)")
    if not all(np.all(np.isfinite(w)) for c in cells for w in c.weights):
        raise Unavailable("the weights hold inf or NaN")
    ((_, out_shape),) = interface.outputs
    expected = (steps, width) if every_step else (width,)
    if int(np.prod(out_shape)) != int(np.prod(expected)):
        raise Unavailable(f"output shape {list(out_shape)} is not what the layers give "
                          f"({list(expected)})")
    p = Plan(cells, head, int(steps), int(features), width, every_step)
    for k, norm in enumerate(p.norms):
        norm.index = k
    return p


def _norm(layer, inner, width: int, keras) -> Norm:
    """A normalization layer over the features of each step, as Keras computes it at inference,
    or why it has no C form."""
    try:
        ndims = len(layer.input.shape)
    except (AttributeError, ValueError):
        ndims = None
    axes = inner.axis if isinstance(inner.axis, (list, tuple)) else [inner.axis]
    if ndims is None or [int(a) % ndims for a in axes] != [ndims - 1]:
        raise Unavailable(f"layer '{layer.name}': {type(inner).__name__} over axis {inner.axis} "
                          "has no C form here (over the features of each step only)")

    def weight(v):
        return None if v is None else np.asarray(v, np.float32).reshape(width)

    eps = np.float32(inner.epsilon)
    if isinstance(inner, keras.layers.BatchNormalization):
        # tf.nn.batch_normalization in float32: inv = rsqrt(var + eps) * gamma, then
        # x * inv + (beta - mean * inv).
        mean, var = weight(inner.moving_mean), weight(inner.moving_variance)
        inv = (np.float32(1.0) / np.sqrt(var + eps)).astype(np.float32)
        gamma, beta = weight(getattr(inner, "gamma", None)), weight(getattr(inner, "beta", None))
        if gamma is not None:
            inv = (inv * gamma).astype(np.float32)
        shift = (-mean * inv if beta is None else beta - mean * inv).astype(np.float32)
        values = [inv, shift]
        kind = "batch"
    else:
        kind = "rms" if getattr(inner, "rms_scaling", False) else "layer"
        values = [weight(getattr(inner, "gamma", None)),
                  None if kind == "rms" else weight(getattr(inner, "beta", None))]
    if not all(v is None or np.all(np.isfinite(v)) for v in values):
        raise Unavailable(f"layer '{layer.name}': its weights hold inf or NaN")
    return Norm(kind, layer.name, width, *values, float(eps))


def _norm_code(n: Norm, buf: str) -> list[str]:
    """n over buf[0..width) in place, at 8 spaces, inside a block that declares int j."""
    w, a, b = n.width, f"N{n.index}_A", f"N{n.index}_B"
    if n.kind == "batch":
        return [f"        for (j = 0; j < {w}; j++) {buf}[j] = {buf}[j] * {a}[j] + {b}[j];"]
    # tf.nn.moments (two passes), then rsqrt(var + eps); Keras's LayerNormalization is then
    # x * (inv * gamma) + (-mean * inv * gamma + beta), and with rms_scaling x * inv * gamma.
    lines = [
        "        {",
        "            float mean = 0.0f, var = 0.0f, inv;",
        f"            for (j = 0; j < {w}; j++) mean += {buf}[j];",
        f"            mean = mean / {_float(w)};",
        f"            for (j = 0; j < {w}; j++) {{ const float d = {buf}[j] - mean; var += d * d; }}",
        f"            var = var / {_float(w)};",
        f"            inv = ee_rsqrt(var + {_float(n.epsilon)});",
    ]
    if n.kind == "rms":
        scaled = f"{buf}[j] * inv" + (f" * {a}[j]" if n.a is not None else "")
        lines.append(f"            for (j = 0; j < {w}; j++) {buf}[j] = {scaled};")
    else:
        g = f"inv * {a}[j]" if n.a is not None else "inv"
        shift = f"{b}[j] - mean * g" if n.b is not None else "-mean * g"
        lines.append(f"            for (j = 0; j < {w}; j++) {{ const float g = {g}; "
                     f"{buf}[j] = {buf}[j] * g + ({shift}); }}")
    return lines + ["        }"]


def _float(v: float) -> str:
    text = f"{float(v):.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def _array(name: str, values: np.ndarray) -> str:
    flat = np.asarray(values, np.float32).ravel()
    rows = [", ".join(_float(v) for v in flat[i:i + 6]) for i in range(0, len(flat), 6)]
    body = ",\n    ".join(rows)
    return f"static const float {name}[{len(flat)}] = {{\n    {body}\n}};\n"


def _act(name: str, expr: str) -> str:
    """The activation of expr. An expression that is not one operand (zx[j] + zh[j]) is put
    in parentheses: the forms use x several times and next to / and *."""
    operand = re.fullmatch(r"[A-Za-z_]\w*(->\w+)*(\[[^\]]*\])?", expr) is not None
    return ACTIVATIONS[name].format(x=expr if operand else f"({expr})")


def _vector_activation(name: str, v: str, units: int) -> list[str]:
    """softmax (or log_softmax) over v[0..units) in place, the largest logit subtracted first."""
    lines = [
        "        {",
        f"            float top = {v}[0], sum = 0.0f;",
        f"            for (j = 1; j < {units}; j++) if ({v}[j] > top) top = {v}[j];",
    ]
    if name == "softmax":
        lines += [
            f"            for (j = 0; j < {units}; j++) {{ {v}[j] = ee_exp({v}[j] - top); sum += {v}[j]; }}",
            "            sum = 1.0f / sum;",
            f"            for (j = 0; j < {units}; j++) {v}[j] *= sum;",
        ]
    else:
        lines += [
            f"            for (j = 0; j < {units}; j++) sum += ee_exp({v}[j] - top);",
            "            sum = ee_log(sum);",
            f"            for (j = 0; j < {units}; j++) {v}[j] = {v}[j] - top - sum;",
        ]
    return lines + ["        }"]


def header(name: str, plan_: Plan) -> str:
    n, upper = c_name(name), c_name(name).upper()
    fields = []
    for k, c in enumerate(plan_.cells):
        fields.append(f"    float h{k}[{c.units}];  /* layer {k} ({c.kind}, {c.name}): h */")
        if c.kind == "lstm":
            fields.append(f"    float c{k}[{c.units}];  /* layer {k}: c */")
    out_note = ("y holds STEPS x OUTPUTS values, one row per time step" if plan_.every_step
                else "y holds OUTPUTS values, from the last time step")
    return f"""/* {name}.h: generated by edge-echo from {name}.keras. Plain C99, no runtime.
 *
 * Contract: float32, row-major. x holds STEPS x FEATURES values (time step t
 * at x + t * FEATURES); {out_note}.
 * Streaming: call {n}_reset at the start of every sequence, then {n}_step
 * once per time step; y_t is the head's output at that step. {n}_predict
 * runs a whole sequence (batch 1) from a zero state of its own.
 * The weights are static const (flash); the state struct is the only RAM
 * that persists between calls. No heap, no mutable globals.
 */
#ifndef {upper}_H
#define {upper}_H

#ifdef __cplusplus
extern "C" {{
#endif

#define {upper}_STEPS {plan_.steps}
#define {upper}_FEATURES {plan_.features}
#define {upper}_OUTPUTS {plan_.outputs}
#define {upper}_Y_SIZE {plan_.outputs * (plan_.steps if plan_.every_step else 1)}

typedef struct {{
{chr(10).join(fields)}
}} {n}_state;

void {n}_reset({n}_state *s);
void {n}_step({n}_state *s, const float *x_t, float *y_t);
void {n}_predict(const float *x, float *y);

#ifdef __cplusplus
}}
#endif

#endif /* {upper}_H */
"""


def _mv(dst: str, weights: str, bias: str | None, x: str, nx: int, h: str | None, nh: int,
        rows: int) -> str:
    b = bias or "0"
    return (f"        ee_mv({dst}, {weights}, {b}, {x}, {nx}, {h or '0'}, {nh if h else 0}, {rows});")


SIGMOID_SCALE, TANH_SCALE = np.float32(23.0831207), np.float32(46.1662413)  # 16 and 32 log2(e)


def fused_lstm(c: Cell) -> bool:
    """Keras's default LSTM (sigmoid gates, tanh): its products of activations share divisions."""
    return c.kind == "lstm" and (c.recurrent_activation, c.activation) == ("sigmoid", "tanh")


def cell_arrays(k: int, c: Cell) -> list[tuple[str, np.ndarray]]:
    """The layer's constants as its code reads them: rows over [x_t, h] stored blocked()."""
    kernel, recurrent, *rest = c.weights
    bias = rest[0] if c.use_bias else None
    u = c.units
    both = np.concatenate([kernel, recurrent])   # (i + u, gates)
    if fused_lstm(c):
        # Each gate's row and bias times the scale its activation multiplies by first (16 log2 e
        # for sigmoid, 32 log2 e for tanh): one multiply less per gate.
        scale = np.repeat(np.float32([SIGMOID_SCALE, SIGMOID_SCALE, TANH_SCALE, SIGMOID_SCALE]), u)
        both = both * scale
        bias = None if bias is None else bias * scale
    if c.kind in ("lstm", "rnn"):
        arrays = [(f"L{k}_K", blocked(both))]
        if bias is not None:
            arrays.append((f"L{k}_B", bias))
        return arrays
    if c.reset_after:
        arrays = [(f"L{k}_KZR", blocked(both[:, :2 * u])), (f"L{k}_WH", blocked(kernel[:, 2 * u:])),
                  (f"L{k}_UH", blocked(recurrent[:, 2 * u:]))]
        if bias is not None:
            bias = np.asarray(bias).reshape(2, 3 * u)
            arrays += [(f"L{k}_BZR", bias[0, :2 * u] + bias[1, :2 * u]),
                       (f"L{k}_BX", bias[0, 2 * u:]), (f"L{k}_BH", bias[1, 2 * u:])]
        return arrays
    arrays = [(f"L{k}_KZR", blocked(both[:, :2 * u])), (f"L{k}_KH", blocked(both[:, 2 * u:]))]
    if bias is not None:
        arrays += [(f"L{k}_BZR", bias[:2 * u]), (f"L{k}_BH", bias[2 * u:])]
    return arrays


def _cell_code(k: int, c: Cell, src: str) -> str:
    u, i = c.units, c.inputs
    h = f"s->h{k}"
    bias = (lambda label: label) if c.use_bias else (lambda label: None)
    ra, a = c.recurrent_activation, c.activation
    lines = []
    if c.kind == "lstm":
        g = 4 * u
        lines += [
            f"    {{ /* layer {k}: LSTM({u}), gates i f c o over [x_t, h] */",
            f"        float z[{g}];",
            "        int j;",
            _mv("z", f"L{k}_K", bias(f"L{k}_B"), src, i, h, u, g),
        ]
        if fused_lstm(c):  # i g and o tanh(c), one division each; the gates' rows pre-scaled
            lines += [
                f"        for (j = 0; j < {u}; j++) {{",
                "            float ni, nf, nc, no, nt, dt, cn;",
                "            const float di = ee_sigmoid_nd(z[j], 1.0f, &ni);",
                f"            const float df = ee_sigmoid_nd(z[{u} + j], 1.0f, &nf);",
                f"            const float dc = ee_tanh_nd(z[{2 * u} + j], 1.0f, &nc);",
                f"            const float dn = ee_sigmoid_nd(z[{3 * u} + j], 1.0f, &no);",
                f"            cn = nf / df * s->c{k}[j] + (ni * nc) / (di * dc);",
                f"            s->c{k}[j] = cn;",
                "            dt = ee_tanh_nd(cn, 46.1662413f, &nt);",
                f"            {h}[j] = (no * nt) / (dn * dt);",
                "        }",
                "    }",
            ]
            return "\n".join(lines)
        lines += [
            f"        for (j = 0; j < {u}; j++) {{",
            f"            const float ig = {_act(ra, 'z[j]')};",
            f"            const float fg = {_act(ra, f'z[{u} + j]')};",
            f"            const float cg = {_act(a, f'z[{2 * u} + j]')};",
            f"            const float og = {_act(ra, f'z[{3 * u} + j]')};",
            f"            const float cn = fg * s->c{k}[j] + ig * cg;",
            f"            s->c{k}[j] = cn;",
            f"            {h}[j] = og * {_act(a, 'cn')};",
            "        }",
            "    }",
        ]
    elif c.kind == "gru" and c.reset_after:
        lines += [
            f"    {{ /* layer {k}: GRU({u}), reset_after: z and r over [x_t, h], the candidate's "
            "x and h parts apart */",
            f"        float zr[{2 * u}], hx[{u}], hh[{u}];",
            "        int j;",
            _mv("zr", f"L{k}_KZR", bias(f"L{k}_BZR"), src, i, h, u, 2 * u),
            _mv("hx", f"L{k}_WH", bias(f"L{k}_BX"), src, i, None, 0, u),
            _mv("hh", f"L{k}_UH", bias(f"L{k}_BH"), h, u, None, 0, u),
            f"        for (j = 0; j < {u}; j++) {{",
            f"            const float zg = {_act(ra, 'zr[j]')};",
            f"            const float rg = {_act(ra, f'zr[{u} + j]')};",
            f"            const float cand = {_act(a, 'hx[j] + rg * hh[j]')};",
            f"            {h}[j] = zg * {h}[j] + (1.0f - zg) * cand;",
            "        }",
            "    }",
        ]
    elif c.kind == "gru":
        lines += [
            f"    {{ /* layer {k}: GRU({u}), reset before the matmul: z and r over [x_t, h], the "
            "candidate over [x_t, r h] */",
            f"        float zr[{2 * u}], rh[{u}], hc[{u}];",
            "        int j;",
            _mv("zr", f"L{k}_KZR", bias(f"L{k}_BZR"), src, i, h, u, 2 * u),
            f"        for (j = 0; j < {u}; j++) {{ zr[j] = {_act(ra, 'zr[j]')}; "
            f"rh[j] = {_act(ra, f'zr[{u} + j]')} * {h}[j]; }}",
            _mv("hc", f"L{k}_KH", bias(f"L{k}_BH"), src, i, "rh", u, u),
            f"        for (j = 0; j < {u}; j++) {h}[j] = zr[j] * {h}[j] + "
            f"(1.0f - zr[j]) * {_act(a, 'hc[j]')};",
            "    }",
        ]
    else:
        lines += [
            f"    {{ /* layer {k}: SimpleRNN({u}) over [x_t, h] */",
            f"        float z[{u}];",
            "        int j;",
            _mv("z", f"L{k}_K", bias(f"L{k}_B"), src, i, h, u, u),
            f"        for (j = 0; j < {u}; j++) {h}[j] = {_act(c.activation, 'z[j]')};",
            "    }",
        ]
    return "\n".join(lines)


def source(name: str, plan_: Plan) -> str:
    n = c_name(name)
    upper = n.upper()
    arrays = []
    for k, c in enumerate(plan_.cells):
        arrays += [_array(label, values) for label, values in cell_arrays(k, c)]
    for k, d in enumerate(plan_.head):
        if isinstance(d, Dense):
            arrays.append(_array(f"D{k}_W", blocked(d.kernel)))
            if d.bias is not None:
                arrays.append(_array(f"D{k}_B", d.bias))
    for norm in plan_.norms:
        arrays += [_array(label, values) for label, values in norm.arrays()]
    cells = []
    for k, c in enumerate(plan_.cells):
        src = "x_t" if k == 0 else f"s->h{k - 1}"
        if not c.pre:
            cells.append(_cell_code(k, c, src))
            continue
        # The input normalized into a buffer of its own (x_t is the caller's, h the state).
        cells += [f"    {{ /* layer {k}'s input through {', '.join(norm.name for norm in c.pre)} */",
                  f"        float in{k}[{c.inputs}];", "        int j;",
                  f"        memcpy(in{k}, {src}, sizeof in{k});",
                  *(line for norm in c.pre for line in _norm_code(norm, f"in{k}")),
                  _cell_code(k, c, f"in{k}"), "    }"]
    head = []
    last = f"s->h{len(plan_.cells) - 1}"
    src = last
    for k, d in enumerate(plan_.head):
        dst = "y" if k == len(plan_.head) - 1 else f"t{k}"
        if isinstance(d, Norm):
            if dst != "y":
                head.append(f"    float {dst}[{d.width}];")
            head += ["    {", "        int j;",
                     f"        memcpy({dst}, {src}, {d.width} * sizeof(float));",
                     *_norm_code(d, dst), "    }"]
            src = dst
            continue
        if dst != "y":
            head.append(f"    float {dst}[{d.units}];")
        vector = d.activation in VECTOR_ACTIVATIONS
        body = [_mv(dst, f"D{k}_W", f"D{k}_B" if d.bias is not None else None, src, d.inputs,
                    None, 0, d.units)]
        if not vector and d.activation != "linear":
            body.append(f"        for (j = 0; j < {d.units}; j++) {dst}[j] = "
                        f"{_act(d.activation, f'{dst}[j]')};")
        if vector:
            body += _vector_activation(d.activation, dst, d.units)
        head += ["    {", *(["        int j;"] if len(body) > 1 else []), *body, "    }"]
        src = dst
    if not plan_.head:
        head.append(f"    memcpy(y, {last}, sizeof {last});")
    y_step = f"y + t * {upper}_OUTPUTS" if plan_.every_step else "y"
    predict_body = (
        f"    for (t = 0; t < {upper}_STEPS; t++) {{\n"
        f"        {n}_cells(&s, x + t * {upper}_FEATURES);\n"
        + (f"        {n}_head(&s, {y_step});\n    }}\n" if plan_.every_step else
           f"    }}\n    {n}_head(&s, y);\n")
    )
    code = "\n".join([*cells, *head])
    helpers = "\n".join(part for part in (math_for(code), MATVEC) if part)
    return f"""/* {name}.c: generated by edge-echo from {name}.keras; the API and contract are in {name}.h.
 * {plan_.params} parameters as static const float, stored in the order the code reads them.
 * C99, no libm: exp, log and erf are this file's own, in single precision.
 */
#include "{name}.h"

#include <stdint.h>
#include <string.h>

{chr(10).join(arrays)}
/* GCC and clang inline the hot helpers at every call site, each with its sizes as constants
 * (fewer instructions a step, a little more flash): always on Arm cores, and elsewhere
 * unless the build optimizes for size (-Os). */
#if defined(__GNUC__) && (defined(__arm__) || !defined(__OPTIMIZE_SIZE__))
#define EE_INLINE static inline __attribute__((always_inline))
#else
#define EE_INLINE static inline
#endif

{helpers}
static void {n}_cells({n}_state *s, const float *x_t)
{{
{chr(10).join(cells)}
}}

static void {n}_head(const {n}_state *s, float *y)
{{
{chr(10).join(head)}
}}

void {n}_reset({n}_state *s)
{{
    memset(s, 0, sizeof *s);
}}

void {n}_step({n}_state *s, const float *x_t, float *y_t)
{{
    {n}_cells(s, x_t);
    {n}_head(s, y_t);
}}

void {n}_predict(const float *x, float *y)
{{
    {n}_state s;
    int t;
    {n}_reset(&s);
{predict_body}}}
"""


# Whole-sequence models: NAME_predict only. A layer that reads a sequence from both ends
# (Bidirectional, go_backwards), repeats one (RepeatVector), or starts from another layer's state
# (an encoder-decoder's initial_state), and models with several inputs or token ids, are computed
# here one layer at a time over whole sequences, each layer's output in a buffer of its own on
# predict's stack. The graph is modelplan's.

@dataclass
class SeqNode:
    node: object                   # the modelplan Node
    k: int                         # its index in the plan
    steps: int                     # time steps of its output (0: a vector)
    width: int                     # features per step
    buf: str                       # the C expression of its output
    mask: str | None = None        # the C array of its mask (1 = a real step), if it carries one
    cells: list = field(default_factory=list)   # (cell index, Cell) for recurrent layers
    dense: Dense | None = None
    norm: Norm | None = None
    reads_mask: str | None = None  # recurrent layers: the mask whose steps they skip
    initial: list[str] | None = None  # recurrent layers: where their initial h (and c) come from


@dataclass
class SeqPlan:
    nodes: list[SeqNode]
    inputs: list[dict]             # name, param, dtype, shape, vocabulary, steps, features
    output: SeqNode
    why_no_step: str
    embeddings: dict = field(default_factory=dict)   # node k -> (vocab, dim, table)

    @property
    def params(self) -> int:
        total = sum(int(t.size) for _, _, t in self.embeddings.values())
        for n in self.nodes:
            total += sum(int(w.size) for _, c in n.cells for w in c.weights)
            if n.dense is not None:
                total += n.dense.kernel.size + (0 if n.dense.bias is None else n.dense.bias.size)
            if n.norm is not None:
                total += sum(int(v.size) for _, v in n.norm.arrays())
        return total

    @property
    def cells(self) -> list:
        return [c for n in self.nodes for c in n.cells]

    @property
    def buffer_floats(self) -> int:
        return sum(max(n.steps, 1) * n.width for n in self.nodes
                   if n.node.kind not in ("input", "identity"))

    @property
    def y_size(self) -> int:
        return max(self.output.steps, 1) * self.output.width

    def layers(self) -> list[str]:
        names = []
        for n in self.nodes:
            kind = n.node.kind
            if kind == "embedding":
                names.append(f"embedding({n.width})")
            elif kind == "recurrent":
                c = n.cells[0][1]
                names.append(f"{c.kind}({c.units})" + ("[backwards]" if n.node.layer.go_backwards
                                                       else ""))
            elif kind == "bidirectional":
                names.append(f"bidirectional({n.cells[0][1].kind}({n.cells[0][1].units}), "
                             f"{n.node.layer.merge_mode})")
            elif kind == "dense":
                names.append(f"dense({n.width})")
            elif kind == "norm":
                names.append(f"{n.norm.kind}_norm({n.width})")
            elif kind == "repeat":
                names.append(f"repeat({n.steps})")
        return names


def _cell(layer, width: int, pre: list[Norm] | None = None) -> Cell:
    """An LSTM, GRU or SimpleRNN layer as the C reads it (pre: normalizations before it, per
    step), or why it has none."""
    from ..modelplan import RECURRENT

    kind = RECURRENT[type(layer).__name__]
    if layer.stateful:
        raise Unavailable(f"layer '{layer.name}': stateful has no C form here")
    return Cell(kind, layer.name, width, int(layer.units),
                [np.asarray(w, np.float32) for w in layer.get_weights()],
                _activation(layer.cell, "activation"),
                _activation(layer.cell, "recurrent_activation") if kind != "rnn" else None,
                bool(getattr(layer.cell, "reset_after", True)), bool(layer.cell.use_bias),
                pre or [])


def _dense(layer, inner, width: int) -> Dense:
    """A Dense layer (inner, the layer itself or what a TimeDistributed wraps) over width."""
    kernel, *bias = [np.asarray(w, np.float32) for w in inner.get_weights()]
    return Dense(layer.name, width, int(inner.units), kernel, bias[0] if bias else None,
                 _activation(inner, "activation", vector=True))


def sequence_plan(subject: Subject) -> SeqPlan:
    """The model as whole-sequence layers, or why it has no C form, in one line."""
    from .. import modelplan

    try:
        mp = modelplan.read(subject.model)
    except modelplan.PlanError as exc:
        raise Unavailable(str(exc)) from None
    if len(mp.outputs) != 1:
        raise Unavailable("C source takes models with one output")
    interface = subject.interface
    seq: list[SeqNode] = []
    inputs: list[dict] = []
    embeddings: dict = {}
    why: list[str] = []
    cell_count = 0
    norm_count = 0
    for k, node in enumerate(mp.nodes):
        layer, kind = node.layer, node.kind
        src = seq[node.inputs[0][0]] if node.inputs else None
        if node.inputs and node.inputs[0][1] != 0:
            raise Unavailable(f"layer '{node.name}' reads a state output as its input; "
                              "no C form here")
        if len(node.inputs) > 1:
            raise Unavailable(f"layer '{node.name}' ({type(layer).__name__}) takes several inputs; "
                              "no C form here")
        if kind == "input":
            spec = interface.inputs[node.index]
            integer = spec.integer
            if integer and (len(spec.shape) != 1 or any(mp.nodes[j].kind != "embedding"
                                                        for j in mp.consumers(k))):
                raise Unavailable(f"input '{spec.name}' takes token ids; C source takes them only "
                                  "into an Embedding")
            if not integer and len(spec.shape) != 2:
                raise Unavailable(f"input '{spec.name}': C source takes float inputs of "
                                  "(time steps, features)")
            param = _param_name(spec.name, {i["param"] for i in inputs})
            steps = int(spec.shape[0])
            width = 1 if integer else int(spec.shape[1])
            inputs.append({"name": spec.name, "param": param,
                           "dtype": "int32" if integer else "float32",
                           "c_type": "const int32_t *" if integer else "const float *",
                           "shape": list(spec.shape), "steps": steps, "features": width,
                           **({"vocabulary": spec.vocabulary} if spec.vocabulary else {})})
            seq.append(SeqNode(node, k, steps, width, param))
            continue
        # The C array of the mask the node's output carries, as the plan propagates it: its own
        # (Embedding with mask_zero, Masking), or its input's, passed on.
        mask = (f"m{k}" if kind in ("embedding", "masking") else src.mask) if node.masked else None
        if kind == "identity":
            seq.append(SeqNode(node, k, src.steps, src.width, src.buf, mask))
            continue
        buf = f"b{k}"
        if kind == "embedding":
            if mp.nodes[node.inputs[0][0]].kind != "input" or src.node.dtype.startswith("float"):
                raise Unavailable(f"layer '{node.name}': an Embedding takes a model input of token "
                                  "ids here")
            table = np.asarray(layer.get_weights()[0], np.float32)
            if not np.all(np.isfinite(table)):
                raise Unavailable("the weights hold inf or NaN")
            embeddings[k] = (int(table.shape[0]), int(table.shape[1]), table)
            # The C checks ids against the table it holds.
            next(d for d in inputs if d["param"] == src.buf)["vocabulary"] = int(table.shape[0])
            seq.append(SeqNode(node, k, src.steps, int(table.shape[1]), buf, mask))
            continue
        if kind == "masking":
            if src.steps == 0 or src.node.dtype != "float32":
                raise Unavailable(f"layer '{node.name}': Masking takes a float sequence here")
            seq.append(SeqNode(node, k, src.steps, src.width, buf, mask))
            continue
        if kind in ("recurrent", "bidirectional"):
            if src.steps == 0:
                raise Unavailable(f"layer '{node.name}' takes a sequence; its input is one vector")
            if kind == "recurrent":
                layers_ = [layer]
                if layer.go_backwards:
                    why.append(f"layer '{node.name}' reads each sequence backwards (go_backwards)")
            else:
                if type(layer.forward_layer).__name__ not in modelplan.RECURRENT:
                    raise Unavailable(f"layer '{node.name}': Bidirectional of "
                                      f"{type(layer.forward_layer).__name__} has no C form here")
                if layer.merge_mode not in ("concat", "sum", "mul", "ave"):
                    raise Unavailable(f"layer '{node.name}': merge_mode {layer.merge_mode!r} has no "
                                      "C form here (concat, sum, mul, ave)")
                if getattr(layer, "return_state", False):
                    raise Unavailable(f"layer '{node.name}': Bidirectional return_state has no C "
                                      "form here")
                layers_ = [layer.forward_layer, layer.backward_layer]
                why.append(f"layer '{node.name}' (Bidirectional) reads each sequence from both ends")
            cells = []
            for inner in layers_:
                cells.append((cell_count, _cell(inner, src.width)))
                cell_count += 1
            first = layers_[0]
            units = int(first.units)
            width = units * (2 if kind == "bidirectional" and layer.merge_mode == "concat" else 1)
            steps = src.steps if first.return_sequences else 0
            if node.initial_state:
                why.append(f"layer '{node.name}' starts from another layer's state")
                if kind != "recurrent":
                    raise Unavailable(f"layer '{node.name}': Bidirectional with initial_state has "
                                      "no C form here")
            seq.append(SeqNode(node, k, steps, width, buf, mask, cells, reads_mask=src.mask))
            continue
        if kind == "dense":
            inner = layer.layer if type(layer).__name__ == "TimeDistributed" else layer
            d = _dense(layer, inner, src.width)
            seq.append(SeqNode(node, k, src.steps, d.units, buf, mask, dense=d))
            continue
        if kind == "norm":
            import keras

            norm = _norm(layer, layer, src.width, keras)
            norm.index = norm_count
            norm_count += 1
            seq.append(SeqNode(node, k, src.steps, src.width, buf, mask, norm=norm))
            continue
        if kind == "repeat":
            if src.steps != 0:
                raise Unavailable(f"layer '{node.name}': RepeatVector takes one vector a sample")
            why.append(f"layer '{node.name}' (RepeatVector) repeats a whole sequence's last output")
            seq.append(SeqNode(node, k, int(layer.n), src.width, buf))
            continue
        raise Unavailable(f"layer '{node.name}' ({type(layer).__name__}) has no C form here")
    if len(inputs) > 1:
        why.append(f"the model has {len(inputs)} inputs")
    for s in seq:
        if s.node.kind == "recurrent" and s.node.initial_state:
            _initial_state(s, seq)
    out_k, out_index = mp.outputs[0]
    if out_index != 0:
        raise Unavailable("the model's output is a recurrent layer's state; no C form here")
    output = seq[out_k]
    if output.node.kind == "input":
        raise Unavailable("the model's output is its input")
    if any(c.weights and not all(np.all(np.isfinite(w)) for w in c.weights) for _, c in
           (cell for s in seq for cell in s.cells)):
        raise Unavailable("the weights hold inf or NaN")
    ((_, out_shape),) = interface.outputs
    size = max(output.steps, 1) * output.width
    if int(np.prod(out_shape)) != size:
        raise Unavailable(f"output shape {list(out_shape)} is not what the layers give ({size} values)")
    reason = why[0] if why else "token ids are taken a whole sequence at a time here"
    return SeqPlan(seq, inputs, output, reason, embeddings)


# Names NAME_predict's own code uses, and C's keywords: an input named so is renamed in_NAME.
_TAKEN = {"y", "s", "t", "at", "j", "v", "in", "x_t", "cells", "b", "m", "E", "int", "float",
          "char", "const", "return", "for", "if", "else", "while", "do", "void", "static",
          "struct", "unsigned", "signed", "long", "short", "double", "sizeof", "register",
          "auto", "extern", "volatile", "union", "enum", "typedef", "goto", "switch", "case",
          "default", "break", "continue", "inline", "restrict"}


def _param_name(name: str, used: set[str]) -> str:
    """The C parameter of an input: its name as an identifier, never one predict's code or C
    already uses, never another input's."""
    param = c_name(name)
    if param in _TAKEN or re.fullmatch(r"[bmEDLN]\d+(_\w+)?|ee_\w+", param):
        param = f"in_{param}"
    base, k = param, 2
    while param in used:
        param, k = f"{base}_{k}", k + 1
    return param


def _initial_state(s: SeqNode, seq: list[SeqNode]) -> None:
    """Where the recurrent layer's initial h (and c) come from: another recurrent layer's state
    fields (its return_state outputs), or a vector layer's output."""
    cell_k, cell = s.cells[0]
    wanted = ["h", "c"] if cell.kind == "lstm" else ["h"]
    if len(s.node.initial_state) != len(wanted):
        raise Unavailable(f"layer '{s.node.name}': initial_state of {len(s.node.initial_state)} "
                          f"tensors; a {cell.kind.upper()} takes {len(wanted)}")
    sources = []
    for j, index in s.node.initial_state:
        src = seq[j]
        if src.node.kind == "recurrent" and index > 0:
            src_k, src_cell = src.cells[0]
            field_name = "h" if index == 1 else "c"
            if src_cell.units != cell.units:
                raise Unavailable(f"layer '{s.node.name}': its initial state has "
                                  f"{src_cell.units} units, not {cell.units}")
            sources.append(f"s->{field_name}{src_k}")
        elif index == 0 and src.steps == 0 and src.width == cell.units:
            sources.append(src.buf)
        else:
            raise Unavailable(f"layer '{s.node.name}': its initial state comes from layer "
                              f"'{src.node.name}' in a way that has no C form here")
    s.initial = sources


def _seq_arrays(sp: SeqPlan) -> list[str]:
    arrays = []
    for k, (_, _, table) in sp.embeddings.items():
        arrays.append(_array(f"E{k}", table))
    for s in sp.nodes:
        for cell_k, c in s.cells:
            arrays += [_array(label, values) for label, values in cell_arrays(cell_k, c)]
        if s.dense is not None:
            arrays.append(_array(f"D{s.k}_W", blocked(s.dense.kernel)))
            if s.dense.bias is not None:
                arrays.append(_array(f"D{s.k}_B", s.dense.bias))
        if s.norm is not None:
            arrays += [_array(label, values) for label, values in s.norm.arrays()]
    return arrays


def _indent(text: str, by: int) -> list[str]:
    return [(" " * by + line) if line else line for line in text.splitlines()]


def _recurrent_code(s: SeqNode, src: SeqNode) -> list[str]:
    """The layer over its whole input: each cell from its initial state, step by step (backwards
    for go_backwards and a Bidirectional's backward half), skipping masked steps; the output at
    each step (processing order, or for a Bidirectional aligned with the input) or the last."""
    node, layer = s.node, s.node.layer
    steps, i = src.steps, src.width
    bi = node.kind == "bidirectional"
    merge = layer.merge_mode if bi else None
    first = layer.forward_layer if bi else layer
    seq_out = bool(first.return_sequences)
    lines = [f"    /* layer '{node.name}': {', '.join(f'{c.kind}({c.units})' for _, c in s.cells)}"
             f" over {steps} steps */"]
    halves = []
    for half, (cell_k, cell) in enumerate(s.cells):
        backwards = (half == 1) if bi else bool(layer.go_backwards)
        u = cell.units
        if bi and merge != "concat":
            target, stride, offset = f"{s.buf}_{half}", u, 0
            halves.append(target)
            lines.append(f"    float {target}[{max(s.steps, 1) * u}];")
        else:
            target, stride, offset = s.buf, u * (2 if bi else 1), half * u
        initial = s.initial
        fields = ["h", "c"] if cell.kind == "lstm" else ["h"]
        for n_field, name in enumerate(fields):
            if initial:
                lines.append(f"    memcpy(s->{name}{cell_k}, {initial[n_field]}, sizeof s->{name}{cell_k});")
            else:
                lines.append(f"    memset(s->{name}{cell_k}, 0, sizeof s->{name}{cell_k});")
        lines.append(f"    for (t = 0; t < {steps}; t++) {{")
        lines.append(f"        const int at = {steps - 1} - t;" if backwards else
                     "        const int at = t;")
        lines.append(f"        const float *x_t = {src.buf} + at * {i};")
        skip = s.reads_mask
        body = _indent(_cell_code(cell_k, cell, "x_t"), 4)
        if skip:
            lines += [f"        if ({skip}[at]) {{", *_indent("\n".join(body), 4), "        }"]
        else:
            lines += body
        if seq_out:
            # Keras gives go_backwards outputs in the order it read them; a Bidirectional turns
            # its backward half around again, so that row t is about input step t.
            pos = "at" if bi else "t"
            lines.append(f"        memcpy({target} + ({pos}) * {stride} + {offset}, s->h{cell_k}, "
                         f"sizeof s->h{cell_k});")
        lines.append("    }")
        if not seq_out:
            lines.append(f"    memcpy({target} + {offset}, s->h{cell_k}, sizeof s->h{cell_k});")
    if halves:
        a, b = halves
        size = max(s.steps, 1) * s.cells[0][1].units
        op = {"sum": f"{a}[t] + {b}[t]", "mul": f"{a}[t] * {b}[t]",
              "ave": f"0.5f * ({a}[t] + {b}[t])"}[merge]
        lines.append(f"    for (t = 0; t < {size}; t++) {s.buf}[t] = {op};")
    return lines


def _dense_code(s: SeqNode, src: SeqNode) -> list[str]:
    d = s.dense
    vector = d.activation in VECTOR_ACTIVATIONS
    rows = max(s.steps, 1)
    body = [f"        float *v = {s.buf} + t * {d.units};",
            f"        const float *in = {src.buf} + t * {d.inputs};",
            "        int j;",
            _mv("v", f"D{s.k}_W", f"D{s.k}_B" if d.bias is not None else None, "in", d.inputs,
                None, 0, d.units)]
    if vector:
        body += _vector_activation(d.activation, "v", d.units)
    elif d.activation != "linear":
        body.append(f"        for (j = 0; j < {d.units}; j++) v[j] = {_act(d.activation, 'v[j]')};")
    else:
        body.append("        (void)j;")
    return [f"    /* layer '{s.node.name}': Dense({d.units}, {d.activation}) */",
            f"    for (t = 0; t < {rows}; t++) {{", *body, "    }"]


def _seq_code(sp: SeqPlan) -> list[str]:
    lines = []
    by_k = {s.k: s for s in sp.nodes}
    for s in sp.nodes:
        kind = s.node.kind
        if kind in ("input", "identity"):
            continue
        src = by_k[s.node.inputs[0][0]]
        if kind == "embedding":
            _, dim, _ = sp.embeddings[s.k]
            lines += [f"    /* layer '{s.node.name}': Embedding({dim}) */",
                      f"    for (t = 0; t < {s.steps}; t++) {{",
                      f"        memcpy({s.buf} + t * {dim}, E{s.k} + (long)({src.buf}[t]) * {dim}, "
                      f"{dim} * sizeof(float));"]
            if s.mask:
                lines.append(f"        {s.mask}[t] = (unsigned char)({src.buf}[t] != 0);")
            lines.append("    }")
        elif kind == "masking":
            # Keras: a step is masked where every feature equals mask_value; its values are zeroed.
            value = _float(s.node.layer.mask_value)
            lines += [f"    /* layer '{s.node.name}': Masking({value}) */",
                      f"    for (t = 0; t < {s.steps}; t++) {{",
                      "        int j;",
                      f"        const float *v = {src.buf} + t * {s.width};",
                      f"        {s.mask}[t] = 0;",
                      f"        for (j = 0; j < {s.width}; j++) if (v[j] != {value}) {s.mask}[t] = 1;",
                      f"        for (j = 0; j < {s.width}; j++) {s.buf}[t * {s.width} + j] = "
                      f"{s.mask}[t] ? v[j] : 0.0f;",
                      "    }"]
        elif kind in ("recurrent", "bidirectional"):
            lines += _recurrent_code(s, src)
        elif kind == "dense":
            lines += _dense_code(s, src)
        elif kind == "norm":
            lines += [f"    /* layer '{s.node.name}': {type(s.node.layer).__name__} */",
                      f"    for (t = 0; t < {max(s.steps, 1)}; t++) {{",
                      f"        float *v = {s.buf} + t * {s.width};",
                      "        int j;",
                      f"        memcpy(v, {src.buf} + t * {s.width}, {s.width} * sizeof(float));",
                      *_norm_code(s.norm, "v"), "    }"]
        elif kind == "repeat":
            lines += [f"    /* layer '{s.node.name}': RepeatVector({s.steps}) */",
                      f"    for (t = 0; t < {s.steps}; t++) memcpy({s.buf} + t * {s.width}, "
                      f"{src.buf}, {s.width} * sizeof(float));"]
    lines.append(f"    memcpy(y, {sp.output.buf}, {sp.y_size} * sizeof(float));")
    return lines


def _seq_signature(n: str, sp: SeqPlan) -> str:
    params = ", ".join(f"{i['c_type']}{i['param']}" for i in sp.inputs)
    ret = "int" if _takes_ids(sp) else "void"
    return f"{ret} {n}_predict({params}, float *y)"


def _takes_ids(sp: SeqPlan) -> bool:
    return any(i["dtype"] == "int32" for i in sp.inputs)


def seq_header(name: str, sp: SeqPlan) -> str:
    n, upper = c_name(name), c_name(name).upper()
    described = []
    for i in sp.inputs:
        if i["dtype"] == "int32":
            described.append(f" *   {i['param']} ('{i['name']}'): {i['steps']} int32 token ids, each in "
                             f"[0, {i.get('vocabulary', '?')})")
        else:
            described.append(f" *   {i['param']} ('{i['name']}'): {i['steps']} x {i['features']} "
                             "float32, time step t at + t * features")
    out = (f"{sp.output.steps} x {sp.output.width} values, one row per time step"
           if sp.output.steps else f"{sp.output.width} values")
    ids = ("\n * A token id outside its vocabulary is rejected, never read out of bounds: "
           f"{n}_predict then\n * returns -1 and writes nothing to y; 0 otherwise."
           if _takes_ids(sp) else "")
    defines = [f"#define {upper}_Y_SIZE {sp.y_size}",
               f"#define {upper}_STACK_FLOATS {sp.buffer_floats}  /* predict's layer buffers */"]
    for i in sp.inputs:
        p = i["param"].upper()
        defines.append(f"#define {upper}_{p}_STEPS {i['steps']}")
        if i["dtype"] == "int32":
            defines.append(f"#define {upper}_{p}_VOCABULARY {i.get('vocabulary', 0)}")
        else:
            defines.append(f"#define {upper}_{p}_FEATURES {i['features']}")
    return f"""/* {name}.h: generated by edge-echo from {name}.keras. Plain C99, no runtime.
 *
 * Contract: row-major, batch 1. {n}_predict takes one pointer per input, in the
 * model's input order:
{chr(10).join(described)}
 * and writes y: {out}.{ids}
 * No step function: {sp.why_no_step}, so a sequence is
 * computed whole. Each layer's output is a buffer on {n}_predict's stack
 * ({upper}_STACK_FLOATS floats in all); the weights are static const (flash).
 * No heap, no mutable globals, no state between calls.
 */
#ifndef {upper}_H
#define {upper}_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

{chr(10).join(defines)}

{_seq_signature(n, sp)};

#ifdef __cplusplus
}}
#endif

#endif /* {upper}_H */
"""


def seq_source(name: str, sp: SeqPlan) -> str:
    n = c_name(name)
    fields = []
    for cell_k, c in sp.cells:
        fields.append(f"    float h{cell_k}[{c.units}];")
        if c.kind == "lstm":
            fields.append(f"    float c{cell_k}[{c.units}];")
    buffers = []
    for s in sp.nodes:
        if s.node.kind in ("input", "identity"):
            continue
        buffers.append(f"    float {s.buf}[{max(s.steps, 1) * s.width}];")
        if s.node.kind in ("embedding", "masking") and s.mask:
            buffers.append(f"    unsigned char {s.mask}[{s.steps}];")
    checks = []
    for i in sp.inputs:
        if i["dtype"] == "int32":
            checks.append(f"    for (t = 0; t < {i['steps']}; t++) if ({i['param']}[t] < 0 || "
                          f"{i['param']}[t] >= {i.get('vocabulary', 0)}) return -1;")
    code = "\n".join(_seq_code(sp))
    helpers = "\n".join(part for part in (math_for(code), MATVEC) if part)
    ret = "    return 0;\n" if _takes_ids(sp) else ""
    return f"""/* {name}.c: generated by edge-echo from {name}.keras; the API and contract are in {name}.h.
 * {sp.params} parameters as static const float, stored in the order the code reads them.
 * C99, no libm: exp, log and erf are this file's own, in single precision.
 */
#include "{name}.h"

#include <stdint.h>
#include <string.h>

{chr(10).join(_seq_arrays(sp))}
#if defined(__GNUC__) && (defined(__arm__) || !defined(__OPTIMIZE_SIZE__))
#define EE_INLINE static inline __attribute__((always_inline))
#else
#define EE_INLINE static inline
#endif

{helpers}
/* The recurrent layers' state while a sequence is computed. */
typedef struct {{
{chr(10).join(fields) or "    float unused;"}
}} {n}_cells;

{_seq_signature(n, sp)}
{{
    {n}_cells cells, *s = &cells;
{chr(10).join(buffers)}
    int t;
{chr(10).join(checks)}
{code}
    (void)s;
{ret}}}
"""


def _generated(subject: Subject) -> tuple[Plan | SeqPlan, str, str]:
    """The model as step-by-step cells and a head (NAME_step and NAME_predict), or else as
    whole-sequence layers (NAME_predict only); with the header and the source."""
    if "c_source" not in subject.cache:
        try:
            p = plan(subject)
            subject.cache["c_source"] = (p, header(subject.name, p), source(subject.name, p))
        except Unavailable as stepwise:
            try:
                p = sequence_plan(subject)
            except Unavailable as whole:
                # The whole-sequence reading takes more; its reason names what neither takes.
                raise whole from stepwise
            subject.cache["c_source"] = (p, seq_header(subject.name, p), seq_source(subject.name, p))
    return subject.cache["c_source"]


def to_header(subject: Subject) -> bytes:
    return _generated(subject)[1].encode()


def to_source(subject: Subject) -> bytes:
    return _generated(subject)[2].encode()


def footprint(path: Path) -> dict:
    """Compiled at -Os with the strict flags: flash (text + data), mutable globals (data + bss)
    and the deepest stack frame (-fstack-usage); measured here, on this host's compiler."""
    cc = compiler()
    if cc is None:
        return {"measured": "not measured: no C compiler (cc, gcc or clang) found"}
    with tempfile.TemporaryDirectory(prefix="edge-echo-c-") as tmp:
        obj = Path(tmp) / "m.o"
        done = subprocess.run([cc, *STRICT, "-Os", "-fstack-usage", "-c", str(path.resolve()), "-o",
                               str(obj)], capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["?"]
            first = next((line for line in lines if "error" in line or "warning" in line), lines[0])
            raise RuntimeError(f"{path.name} does not compile warning-free with "
                               f"{' '.join(STRICT)}: {first}")
        size = subprocess.run(["size", str(obj)], capture_output=True, text=True)
        text, data, bss = (int(v) for v in size.stdout.splitlines()[1].split()[:3])
        stack = [int(line.split("\t")[1]) for su in Path(tmp).glob("*.su")
                 for line in su.read_text().splitlines() if line.count("\t") >= 2]
        version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    return {"flash_bytes": text + data, "mutable_global_bytes": data + bss,
            "max_stack_frame_bytes": max(stack, default=0),
            "measured": f"{Path(cc).name} -Os {' '.join(STRICT)}, size and -fstack-usage "
                        f"({version.splitlines()[0] if version else '?'})"}


def device_figures(subject: Subject, path: Path, c: dict) -> dict:
    """Flash, stack, state and instructions on every emulated Cortex-M core (cortexm.py), on
    the first reference sequence (or, without one, seeded uniform [0, 1) values)."""
    from .. import cortexm

    if cortexm.unavailable():
        return {"measured": f"not measured: {cortexm.unavailable()}"}
    size = c["steps"] * c["features"]
    x = None if not isinstance(subject.reference_x, np.ndarray) else \
        np.asarray(subject.reference_x, np.float32)
    if x is not None and x.size >= size:
        x, which = x.reshape(-1)[:size], "the first reference sequence"
    else:
        x, which = np.random.default_rng(0).uniform(0, 1, size), "uniform [0, 1) values (seed 0)"
    with tempfile.TemporaryDirectory(prefix="edge-echo-c-") as tmp:
        copy = Path(tmp) / path.name
        copy.write_bytes(path.read_bytes())
        copy.with_suffix(".h").write_text(_generated(subject)[1])
        figures = cortexm.measure(copy, c, x)
    return {"input": which, **figures}


def contract(subject: Subject, path: Path) -> dict:
    p, _, _ = _generated(subject)
    n = c_name(subject.name)
    if isinstance(p, SeqPlan):
        return _seq_contract(subject, path, p, n)
    return {**subject.interface.io(), "c": {
        "header": f"{subject.name}.h",
        "api": [f"void {n}_reset({n}_state *s)",
                f"void {n}_step({n}_state *s, const float *x_t, float *y_t)",
                f"void {n}_predict(const float *x, float *y)"],
        "prefix": n,
        "steps": p.steps, "features": p.features, "outputs": p.outputs,
        "sequence_output": "every_step" if p.every_step else "last_step",
        "state_bytes": 4 * p.state_floats,
        "params": p.params,
        "layers": p.layers(),
        "reset": f"{n}_reset(&s) at the start of each sequence, then {n}_step once per time step",
    }}


def _seq_contract(subject: Subject, path: Path, p: SeqPlan, n: str) -> dict:
    """A whole-sequence model's C API: NAME_predict alone, one pointer per input. It runs on
    c and the emulated Cortex-M cores; c-step has nothing to call."""
    from ..runners import RUNNERS

    no_step = f"no {n}_step: {p.why_no_step}"
    labels = [rt for rt, cls in RUNNERS.items() if cls.artifact == "c_source"]
    not_on = {rt: no_step for rt in labels if rt.startswith("c-step")}
    c = {
        "header": f"{subject.name}.h",
        "api": [_seq_signature(n, p)],
        "prefix": n,
        "mode": "whole_sequence",
        "inputs": [{k: v for k, v in i.items() if k != "c_type"} for i in p.inputs],
        "returns": "int: 0, or -1 for a token id outside its vocabulary (y untouched)"
                   if _takes_ids(p) else "void",
        "steps": p.inputs[0]["steps"], "features": p.inputs[0]["features"],
        "outputs": p.output.width,
        "sequence_output": "every_step" if p.output.steps else "last_step",
        "y_size": p.y_size,
        "state_bytes": 0,
        "stack_buffer_bytes": 4 * p.buffer_floats + sum(
            s.steps for s in p.nodes if s.node.kind in ("embedding", "masking") and s.mask),
        "params": p.params,
        "layers": p.layers(),
        "no_step": no_step,
    }
    return {**subject.interface.io(), "runs_on": [rt for rt in labels if rt not in not_on],
            "not_on": not_on, "c": c}


def _whole_device_figures(subject: Subject, path: Path, c: dict) -> dict:
    """A whole-sequence model's figures on every emulated core: NAME_predict on the first
    calibration sequence of each input (drawn as the reference inputs are)."""
    from .. import cortexm

    if cortexm.unavailable():
        return {"measured": f"not measured: {cortexm.unavailable()}"}
    calibration = subject.calibration
    if not isinstance(calibration, dict):
        calibration = {subject.interface.input_name: calibration}
    arrays = [np.asarray(calibration[i["name"]][:1]) for i in c["inputs"]]
    with tempfile.TemporaryDirectory(prefix="edge-echo-c-") as tmp:
        copy = Path(tmp) / path.name
        copy.write_bytes(path.read_bytes())
        copy.with_suffix(".h").write_text(_generated(subject)[1])
        figures = cortexm.measure(copy, c, cortexm.pack(c, arrays))
    return {"input": "the first calibration sequence of each input", **figures}


def measure(subject: Subject, path: Path, art: dict) -> dict:
    """What the C source costs where it was measured (device.json, not the manifest): flash and
    stack on this host's compiler, and every emulated Cortex-M core's figures."""
    c = art["c"]
    figures = (_whole_device_figures(subject, path, c) if c.get("mode") == "whole_sequence"
               else device_figures(subject, path, c))
    return {"footprint": footprint(path), "cortex_m": figures}


FORMS = (
    Form("c_header", ".h", "c", to_header, (), optional=True),
    Form("c_source", ".c", "c", to_source, (), contract=contract, optional=True, measure=measure),
)
