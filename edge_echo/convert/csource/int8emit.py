"""The integer C's emitter: NAME.int8.h and NAME.int8.c from integer.py's plan, with the helpers
of templates/int8.c that the file calls (each C part once, from the template file)."""

from __future__ import annotations

import re

import numpy as np

from .integer import BOUNDED, ICell, IDense, IPlan, Op, _pad4, parts
from .plan import c_name


def _ints(ctype: str, name: str, values, per_line: int = 12, fmt=str) -> str:
    flat = [fmt(int(v)) for v in np.asarray(values).ravel()]
    rows = [", ".join(flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    " + ",\n    ".join(rows) + "\n};\n"


def _op_arrays(prefix: str, op: Op) -> str:
    return (_ints("uint32_t", f"{prefix}_W", op.words, 6, lambda v: f"0x{v:08x}u")
            + _ints("int16_t", f"{prefix}_B", op.bias)
            + _ints("uint8_t", f"{prefix}_M", op.mult, 16))


def _split(op: Op) -> str:
    """ee_mv's and ee_lstm's last three arguments: the second segment's groups and the shifts."""
    return f"{op.groups2}, {op.shifts[0]}, {op.shifts[1]}"


def _mv(dst: str, prefix: str, op: Op, v: str) -> str:
    return (f"    ee_mv({dst}, {prefix}_W, {prefix}_B, {op.bias_shift}, {prefix}_M, {op.shift}, {v}, "
            f"{op.groups}, {op.rows}, {_split(op)});")


def _float(v: float) -> str:
    text = f"{float(v):.9g}"
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def edge_scale(name: str, values, index: str) -> tuple[str, str]:
    """A float edge's scales: the declaration and the C expression of the one for index; one
    float where every value is the same (a softmax's outputs, one-hot inputs), not an array."""
    vals = [_float(v) for v in np.asarray(values, np.float64).ravel()]
    if len(set(vals)) == 1:
        return f"static const float {name} = {vals[0]};", name
    return f"static const float {name}[{len(vals)}] = {{{', '.join(vals)}}};", f"{name}[{index}]"


def _c_to_q12(c: ICell, expr: str) -> str:
    """c (scale 2^(p - 15)) in Q3.12."""
    p = c.c_power
    if p >= 3:
        return f"{expr} * {1 << (p - 3)}"
    return f"({expr} + {1 << (2 - p)}) >> {3 - p}"


def _cell_code(k: int, c: ICell, v: str | None = None, cstate: str | None = None) -> list[str]:
    """One time step of layer k (labels L{k}...): its input x_t and h side by side at v (the
    state's, by default), its c at cstate; h updated in place."""
    u = c.units
    v = v or f"s->v + {c.off}"
    cstate = cstate or f"s->c{k}"
    h = f"({v})[{c.nxp} + j]"
    lines = [f"    {{ /* layer {k}: {c.kind.upper() if c.kind != 'rnn' else 'SimpleRNN'}({u}), "
             f"'{c.name}' */"]
    if c.kind == "lstm":
        op, p = c.ops["k"], c.c_power
        cm, cr = (1 << (p - 3), 0) if p >= 3 else (1, 3 - p)
        lines += [f"        int16_t hn[{u}];",
                  f"        ee_lstm(hn, {cstate}, L{k}_W, L{k}_B, {op.bias_shift}, L{k}_M, {op.shift}, {v}, "
                  f"{op.groups}, {u}, {15 + p}, {cm}, {cr}, {_split(op)});",
                  f"        memcpy({v} + {c.nxp}, hn, sizeof hn);", "    }"]
    elif c.kind == "rnn":
        step = f"{h} = {activated(c.activation, c.table is not None, f'A_L{k}', 'z[j]') or 'z[j]'};"
        lines += [f"        int16_t z[{u}];", "        int j;", "    " + _mv("z", f"L{k}", c.ops["k"], v),
                  f"        for (j = 0; j < {u}; j++) {step}", "    }"]
    elif "hx" in c.ops:
        lines += [f"        int16_t zr[{2 * u}], hx[{u}], hh[{u}];", "        int j;",
                  "    " + _mv("zr", f"L{k}_ZR", c.ops["zr"], v),
                  "    " + _mv("hx", f"L{k}_HX", c.ops["hx"], v),
                  "    " + _mv("hh", f"L{k}_HH", c.ops["hh"], f"{v} + {c.nxp}"),
                  f"        for (j = 0; j < {u}; j++) {{",
                  "            const int32_t zg = ee_sigmoid(zr[j]);",
                  f"            const int32_t rg = ee_sigmoid(zr[{u} + j]);",
                  "            const int32_t cand = ee_lut(EE_TANH, "
                  "ee_sat16(hx[j] + ((rg * hh[j] + 16384) >> 15)));",
                  f"            {h} = (int16_t)(cand + ((zg * ({h} - cand) + 16384) >> 15));",
                  "        }", "    }"]
    else:
        lines += [f"        int16_t zr[{2 * u}], rh[{c.nxp + c.nhp}], hc[{u}];", "        int j;",
                  "    " + _mv("zr", f"L{k}_ZR", c.ops["zr"], v),
                  f"        memcpy(rh, {v}, sizeof rh);",
                  f"        for (j = 0; j < {u}; j++) {{",
                  "            zr[j] = (int16_t)ee_sigmoid(zr[j]);",
                  f"            rh[{c.nxp} + j] = (int16_t)((ee_sigmoid(zr[{u} + j]) * {h} + 16384) >> 15);",
                  "        }",
                  "    " + _mv("hc", f"L{k}_KH", c.ops["kh"], "rh"),
                  f"        for (j = 0; j < {u}; j++) {{",
                  "            const int32_t cand = ee_lut(EE_TANH, hc[j]);",
                  f"            {h} = (int16_t)(cand + ((zr[j] * ({h} - cand) + 16384) >> 15));",
                  "        }", "    }"]
    return lines


def activated(activation: str, tabled: bool, table: str, x: str) -> str | None:
    """The C expression of an element-wise activation of the int16 x (table: the array of a
    TABLED activation's samples, where tabled); None where it is x itself (linear, softmax)."""
    if activation in BOUNDED:
        fn = "ee_sigmoid(" if activation == "sigmoid" else "ee_lut(EE_TANH, "
        return f"(int16_t){fn}{x})"
    if activation == "relu":
        return f"({x} > 0 ? {x} : 0)"
    return f"(int16_t)ee_lut({table}, {x})" if tabled else None


def dense_activation(d: IDense, table: str, v: str, indent: str) -> list[str]:
    """A Dense layer's element-wise activation over v[0..units), in place; nothing for linear
    and softmax."""
    expr = activated(d.activation, d.table is not None, table, f"{v}[j]")
    return [f"{indent}for (j = 0; j < {d.units}; j++) {v}[j] = {expr};"] if expr else []


def _head_code(ip: IPlan) -> list[str]:
    last_cell = ip.cells[-1]
    src = f"s->v + {last_cell.off + last_cell.nxp}"
    if not ip.head:
        return [f"    memcpy(y, {src}, {last_cell.units} * sizeof(int16_t));"]
    lines = []
    for k, d in enumerate(ip.head):
        last = k == len(ip.head) - 1
        dst = "y" if last and d.activation != "softmax" else f"d{k}"
        if dst != "y":
            size = d.units if last else _pad4(d.units)
            lines.append(f"    int16_t {dst}[{size}];")
            if size > d.units:
                lines.append(f"    memset({dst} + {d.units}, 0, {size - d.units} * sizeof(int16_t));")
        lines.append(_mv(dst, f"D{k}", d.op, src))
        lines += dense_activation(d, f"A_D{k}", dst, "    ")
        if d.activation == "softmax":
            m, sh = d.softmax
            lines.append(f"    ee_softmax({dst}, y, {d.units}, {m}, {sh});")
        src = dst
    if any(d.activation in (*BOUNDED, "relu") or d.table is not None for d in ip.head):
        lines.insert(0, "    int j;")
    return lines


def _helpers(code: str, cells: list[ICell]) -> tuple[str, str]:
    """The template parts the code calls, in the template's order; and the define that inlines
    the sums where the model is small (EE_DOT4_INLINE)."""
    wanted = ["prelude", "ee_mv"]
    if re.search(r"EE_TANH|ee_sigmoid\(|ee_lstm\(", code):
        wanted.append("EE_TANH")
    if re.search(r"ee_lut\(|ee_sigmoid\(|ee_lstm\(", code):
        wanted.append("ee_lut")
    if re.search(r"ee_sigmoid\(|ee_lstm\(", code):
        wanted.append("ee_sigmoid")
    if "ee_lstm(" in code:
        wanted.append("ee_lstm")
    if "ee_softmax(" in code:
        wanted.append("ee_softmax")
    helpers = "\n".join(parts()[w] for w in ("prelude", "ee_mv", "EE_TANH", "ee_lut", "ee_sigmoid",
                                              "ee_lstm", "ee_softmax") if w in wanted)
    weights = sum(op.rows * (op.groups + op.groups2) * 4 for c in cells for op in c.ops.values())
    small = "\n#define EE_DOT4_INLINE /* below 1,024 weights a step (templates/int8.c) */\n" \
        if weights < 1024 else ""
    return helpers, small


def int8_header(name: str, ip: IPlan) -> str:
    n = c_name(name) + "_int8"
    upper = n.upper()
    p = ip.source
    out_note = ("y holds STEPS x OUTPUTS values, one row per time step" if p.every_step
                else "y holds OUTPUTS values, from the last time step")
    cs = [f"    int16_t c{k}[{c.units}];  /* layer {k}'s c, scale 2^{c.c_power - 15} */"
          for k, c in enumerate(ip.cells) if c.kind == "lstm"]
    return f"""/* {name}.int8.h: generated by edge-echo from {name}.keras. Plain C99, integer arithmetic.
 *
 * The same API as {name}.h under the prefix {n}_, so that an app can link both:
 * float32 x (STEPS x FEATURES, row-major) in, float32 y out; {out_note}.
 * Inside, int8 weights, int16 activations and state, int32 sums: no float
 * arithmetic between the edges, and the same bits on every core.
 *
 * The integer entry points take and give the quantized values themselves:
 *   x_q[t * FEATURES + k] = round(x / {upper}_X_SCALE[k]), saturated to int16;
 *   y = y_q[... + j] * {upper}_Y_SCALE[j].
 * Define EE_NO_FLOAT when compiling {name}.int8.c to leave the float edges out (then the
 * object uses no float at all: no soft-float library on a core without an FPU).
 * Call {n}_reset at the start of every sequence, then {n}_step (or _step_q)
 * once per time step; {n}_predict (or _predict_q) runs a whole sequence from a
 * zero state of its own.
 */
#ifndef {upper}_H
#define {upper}_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define {upper}_STEPS {p.steps}
#define {upper}_FEATURES {p.features}
#define {upper}_OUTPUTS {p.outputs}
#define {upper}_Y_SIZE {p.outputs * (p.steps if p.every_step else 1)}
/* real = integer x scale: the input's per feature, the output's per output */
#define {upper}_X_SCALE {{{', '.join(_float(v) for v in ip.x_scale)}}}
#define {upper}_Y_SCALE {{{', '.join(_float(v) for v in ip.y_scale)}}}

typedef struct {{
    int16_t v[{ip.state_size}];  /* the input step, then each layer's h (Q15 unless scaled) */
{chr(10).join(cs)}
}} {n}_state;

void {n}_reset({n}_state *s);
void {n}_step_q({n}_state *s, const int16_t *x_t, int16_t *y_t);
void {n}_predict_q(const int16_t *x, int16_t *y);
#ifndef EE_NO_FLOAT
void {n}_step({n}_state *s, const float *x_t, float *y_t);
void {n}_predict(const float *x, float *y);
#endif

#ifdef __cplusplus
}}
#endif

#endif /* {upper}_H */
"""


def int8_source(name: str, ip: IPlan) -> str:
    n = c_name(name) + "_int8"
    upper = n.upper()
    p = ip.source
    arrays = []
    for k, c in enumerate(ip.cells):
        for key, op in c.ops.items():
            arrays.append(_op_arrays(f"L{k}" if key == "k" else f"L{k}_{key.upper()}", op))
    for k, d in enumerate(ip.head):
        arrays.append(_op_arrays(f"D{k}", d.op))
    # Each other activation's table (integer.TABLED), over its layer's pre-activation scale.
    for label, table, what in [*((f"A_L{k}", c.table, c) for k, c in enumerate(ip.cells)),
                               *((f"A_D{k}", d.table, d) for k, d in enumerate(ip.head))]:
        if table is not None:
            arrays.append(f"/* {what.activation}, layer '{what.name}' */\n"
                          + _ints("int16_t", label, table))
    cells = [line for k, c in enumerate(ip.cells) for line in _cell_code(k, c)]
    head = _head_code(ip)
    code = "\n".join(cells + head)
    helpers, small = _helpers(code, ip.cells)
    x_inv, x_at = edge_scale("X_INV", 1.0 / np.asarray(ip.x_scale, np.float64), "k")
    y_scale, y_at_j = edge_scale("Y_SCALE", ip.y_scale, "j")
    y_at = f"y + t * {upper}_OUTPUTS" if p.every_step else "y"
    each = (f"        {n}_head(&s, {y_at});\n    }}\n" if p.every_step
            else f"    }}\n    {n}_head(&s, y);\n")
    each_f = (f"        {n}_head(&s, yq);\n"
              f"        for (j = 0; j < {upper}_OUTPUTS; j++)\n"
              f"            y[t * {upper}_OUTPUTS + j] = (float)yq[j] * {y_at_j};\n    }}\n"
              if p.every_step else
              f"    }}\n    {n}_head(&s, yq);\n"
              f"    for (j = 0; j < {upper}_OUTPUTS; j++) y[j] = (float)yq[j] * {y_at_j};\n")
    return f"""/* {name}.int8.c: generated by edge-echo from {name}.keras; the API and contract are in
 * {name}.int8.h.
 * {p.params} parameters as int8 (per output row scales), int16 activations and state,
 * int32 sums, integer requantization. C99; nothing of libc beyond memset and memcpy.
 */
#include "{name}.int8.h"
{small}
{helpers}
{chr(10).join(arrays)}
EE_HOT static void {n}_cells({n}_state *s)
{{
{chr(10).join(cells)}
}}

EE_HOT static void {n}_head(const {n}_state *s, int16_t *y)
{{
{chr(10).join(head)}
}}

void {n}_reset({n}_state *s)
{{
    memset(s, 0, sizeof *s);
}}

void {n}_step_q({n}_state *s, const int16_t *x_t, int16_t *y_t)
{{
    memcpy(s->v, x_t, {p.features} * sizeof(int16_t));
    {n}_cells(s);
    {n}_head(s, y_t);
}}

void {n}_predict_q(const int16_t *x, int16_t *y)
{{
    {n}_state s;
    int t;
    {n}_reset(&s);
    for (t = 0; t < {upper}_STEPS; t++) {{
        memcpy(s.v, x + t * {upper}_FEATURES, {p.features} * sizeof(int16_t));
        {n}_cells(&s);
{each}}}

#ifndef EE_NO_FLOAT
{parts()["ee_quantize"]}
{x_inv}
{y_scale}

static void {n}_in({n}_state *s, const float *x_t)
{{
    int k;
    for (k = 0; k < {p.features}; k++) s->v[k] = ee_quantize(x_t[k], {x_at});
}}

void {n}_step({n}_state *s, const float *x_t, float *y_t)
{{
    int16_t yq[{p.outputs}];
    int j;
    {n}_in(s, x_t);
    {n}_cells(s);
    {n}_head(s, yq);
    for (j = 0; j < {p.outputs}; j++) y_t[j] = (float)yq[j] * {y_at_j};
}}

void {n}_predict(const float *x, float *y)
{{
    {n}_state s;
    int16_t yq[{p.outputs}];
    int t, j;
    {n}_reset(&s);
    for (t = 0; t < {upper}_STEPS; t++) {{
        {n}_in(&s, x + t * {upper}_FEATURES);
        {n}_cells(&s);
{each_f}}}
#endif
"""
