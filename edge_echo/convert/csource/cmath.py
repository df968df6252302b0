"""The C the activations and the weights' loop are made of: single-precision math with no libm
(each helper only where a file calls it), and the blocked matrix-vector product. The C itself
is templates/float.c, a C file of its own; here, which parts a file takes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

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


TEMPLATE = Path(__file__).with_name("templates") / "float.c"


def template_parts(path: Path) -> dict[str, tuple[tuple[str, ...], str]]:
    """A C template's parts (templates/float.c, templates/int8.c): name -> (the parts it
    calls, after "needs", and its C), each between its "@part NAME" and "@end" lines."""
    found = re.findall(r"/\* @part (\w+)(?: needs ([\w ]+))? \*/\n(.*?)/\* @end \*/\n",
                       path.read_text(), re.S)
    return {name: (tuple(needs.split()), body) for name, needs, body in found}


_PARTS = template_parts(TEMPLATE)
# The includes and EE_INLINE every file starts with.
PRELUDE = _PARTS.pop("prelude")[1]
# z[r] += (row r of W) . v: the only loop over weights. The rows are stored in blocks of 8,
# then one of 4, then single rows (blocked() below); within a block, for each k the block's
# weights of v[k] side by side. So every weight is read once, in the order it is stored, each
# v[k] once per block, and eight sums stay in registers. A core with a single-precision FMA
# (Cortex-M4F, M7, M33, M55) gets one VFMA per weight: __builtin_fmaf is inlined there. A host
# with 4-wide float vectors (x86-64's SSE, AArch64's NEON, WebAssembly's simd128) reads the
# same blocks four rows to an instruction, through GCC's and clang's vector types: the same
# products and sums in the same order, unfused (AArch64 has an FMA, but its scalar rows stay
# unfused too), so its outputs are the scalar code's, bit for bit, on every such target.
MATVEC = _PARTS.pop("matvec")[1]
# The math the activations call (ee_exp, ee_sigmoid, ...), each helper with the helpers it
# calls: a file carries only the ones it uses (an unused static function is a warning, and
# -Werror). No libm: every one is single precision with no errno, no double and no call, so
# that nm -u of the object lists nothing but memset and memcpy, and an FPU core spends its
# time on the model.
MATH: dict[str, tuple[tuple[str, ...], str]] = _PARTS


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
