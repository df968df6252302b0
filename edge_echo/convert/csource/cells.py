"""The float emitter's pieces both model shapes share: constants and arrays, activations, the
matrix-vector calls and one recurrent cell's step."""

from __future__ import annotations

import re

import numpy as np

from .cmath import ACTIVATIONS, blocked
from .plan import Cell, Norm


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
