"""Integer C for the whole-sequence models (NAME_int8_predict alone): a chain of recurrent layers
read forwards or backwards, Bidirectional ones, RepeatVector and Dense layers over one float
input, read from sequence.py's plan. Each layer's output is an int16 buffer on predict's stack
(rows of its width padded to 4, its scale per column); the layers themselves are integer.py's
(make_icell, make_idense) and the emitter's (int8emit.py). What else the float C computes whole
(masks, token ids, several inputs, initial_state, normalizations between such layers) is
refused in one line."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...forms import Subject, Unavailable
from .int8emit import (
    _cell_code,
    _float,
    _helpers,
    _ints,
    _mv,
    _op_arrays,
)
from .integer import (
    BOUNDED,
    INPUT_MARGIN,
    Q15,
    TABLED,
    ICell,
    IDense,
    _calibration,
    _pad4,
    cell_weights,
    dense_range,
    make_icell,
    make_idense,
    run_cell,
)
from .plan import c_name
from .sequence import SeqPlan, sequence_plan


@dataclass
class QNode:
    k: int
    kind: str                  # input | identity | recurrent | bidirectional | dense | repeat
    name: str
    src: int | None            # the node it reads (plan index)
    steps: int                 # rows of its output (0: one vector)
    width: int
    scale: np.ndarray          # per column
    buf: str                   # its C buffer
    cells: list = field(default_factory=list)   # (cell index, ICell, backwards)
    merge: str | None = None
    seq_out: bool = True
    dense: IDense | None = None
    mask: str | None = None          # the C array of the mask it carries (an Embedding's own)
    reads_mask: str | None = None    # recurrent layers: the mask whose steps they keep h over
    table: tuple | None = None       # an Embedding's (int8 rows, int16 multiplier per row, shift)

    @property
    def stride(self) -> int:
        return _pad4(self.width)

    @property
    def rows(self) -> int:
        return max(self.steps, 1)


@dataclass
class SeqIPlan:
    source: SeqPlan
    nodes: list[QNode]
    output: QNode
    x_scale: np.ndarray
    ranges: dict
    input: dict                # the one input: name, shape, steps, features (and vocabulary)

    @property
    def ids(self) -> bool:
        """The input is token ids (int32) into an Embedding."""
        return "vocabulary" in self.input

    @property
    def y_scale(self) -> np.ndarray:
        return self.output.scale

    @property
    def y_size(self) -> int:
        return self.output.rows * self.output.width

    @property
    def stack_values(self) -> int:
        return sum(n.rows * n.stride for n in self.nodes if n.kind != "identity")

    @property
    def cells(self) -> list[ICell]:
        return [c for n in self.nodes for _, c, _ in n.cells]


def _refuse(why: str) -> Unavailable:
    return Unavailable(f"integer C, whole sequence: {why}")


def seq_int8_plan(subject: Subject) -> SeqIPlan:
    """The whole-sequence model as integer layers with their scales, or why not, in one line."""
    sp = sequence_plan(subject)
    if len(sp.inputs) != 1:
        raise _refuse(f"one input only (float time steps, or token ids into an Embedding); this "
                      f"model takes {len(sp.inputs)}")
    ids = sp.inputs[0]["dtype"] == "int32"
    if ids:
        x = _id_calibration(subject, sp.inputs[0]["name"])
        xmax = np.zeros(1)
        x_scale = np.zeros(0)
    else:
        x = _calibration(subject)
        xmax = np.abs(x).max(axis=(0, 1))
        x_scale = np.where(xmax > 0, xmax * INPUT_MARGIN, 1.0) / 32767.0
    masks: dict[str, np.ndarray] = {}
    values: dict[int, np.ndarray] = {}
    nodes: list[QNode] = []
    by_k: dict[int, QNode] = {}
    ranges: dict = {"input_max_abs": [float(v) for v in xmax]}
    for s in sp.nodes:
        kind, name = s.node.kind, s.node.name
        if kind in ("masking", "norm"):
            raise _refuse(f"layer '{name}' ({type(s.node.layer).__name__}) has no integer form "
                          "in a whole-sequence model here")
        if kind == "input":
            values[s.k] = x if ids else np.asarray(x, np.float64)
            q = QNode(s.k, "ids" if ids else kind, name, None, s.steps, s.width, x_scale,
                      "x" if ids else f"b{s.k}")
        elif kind == "embedding":
            src = by_k[s.node.inputs[0][0]]
            _, dim, table = sp.embeddings[s.k]
            values[s.k] = np.asarray(table, np.float64)[values[src.k]]
            if s.mask:
                masks[s.mask] = (values[src.k] != 0).astype(np.int64)
            scale, rows = _embedding(table)
            ranges[name] = {"max_abs": float(np.abs(table).max())}
            q = QNode(s.k, kind, name, src.k, s.steps, dim, np.full(dim, scale), f"b{s.k}",
                      mask=s.mask, table=rows)
        else:
            src = by_k[s.node.inputs[0][0]]
            v = values[src.k]
            if kind == "identity":
                values[s.k] = v
                q = QNode(s.k, kind, name, src.k, src.steps, src.width, src.scale, src.buf,
                          mask=s.mask)
            elif kind == "repeat":
                values[s.k] = np.repeat(v[:, None, :], s.steps, axis=1)
                q = QNode(s.k, kind, name, src.k, s.steps, src.width, src.scale, f"b{s.k}")
            elif kind in ("recurrent", "bidirectional"):
                q, values[s.k] = _recurrent(s, src, v, ranges, masks.get(s.reads_mask))
                q.mask, q.reads_mask = s.mask, s.reads_mask
            elif kind == "dense":
                out, r = dense_range(s.dense, v)
                ranges[name] = {"pre_activation_max_abs": [float(a) for a in r["pre"]]}
                if s.dense.activation == "log_softmax":
                    raise _refuse(f"layer '{name}': log_softmax has no integer C form here")
                last = s is sp.output
                d = make_idense(s.dense, r["pre"], last, src.scale, src.width)
                values[s.k] = out
                q = QNode(s.k, kind, name, src.k, src.steps, d.units, d.out_scale, f"b{s.k}",
                          dense=d)
            else:
                raise _refuse(f"layer '{name}' has no integer form here")
        nodes.append(q)
        by_k[s.k] = q
    inp = sp.inputs[0]
    return SeqIPlan(sp, nodes, by_k[sp.output.k], x_scale, ranges,
                    {"name": inp["name"], "shape": inp["shape"], "steps": inp["steps"],
                     "features": inp["features"],
                     **({"vocabulary": inp["vocabulary"]} if ids else {})})


def _id_calibration(subject: Subject, name: str) -> np.ndarray:
    """The token-id sequences the ranges are taken over: the calibration set's and the
    reference inputs', as int64 (n, steps)."""
    arrays = [subject.calibration[name] if isinstance(subject.calibration, dict)
              else subject.calibration]
    ref = subject.reference_x
    if isinstance(ref, dict) and name in ref:
        arrays.append(ref[name])
    steps = subject.interface.inputs[0].shape[0]
    return np.concatenate([np.asarray(a).reshape(-1, steps) for a in arrays]).astype(np.int64)


def _embedding(table: np.ndarray) -> tuple[float, tuple]:
    """An Embedding's table as int8 rows, each with a multiplier that turns it into the layer's
    one output scale (its largest |value| over 32767): out = (q x m + 2^(s-1)) >> s."""
    table = np.asarray(table, np.float64)
    out = max(float(np.abs(table).max()), 1e-6) / 32767.0
    amax = np.abs(table).max(axis=1)
    sw = np.where(amax > 0, amax / 127.0, 1.0)
    q = np.clip(np.round(table / sw[:, None]), -127, 127).astype(np.int64)
    m = sw / out
    shift = int(min(30, np.floor(np.log2(32767.0 / float(m.max())))))
    return out, (q, np.round(m * 2.0 ** shift).astype(np.int64), shift)


def _recurrent(s, src: QNode, v: np.ndarray, ranges: dict,
               mask: np.ndarray | None = None) -> tuple[QNode, np.ndarray]:
    """A recurrent or Bidirectional layer over its input's float values v: its integer cells,
    its output node and its float output (as Keras gives it)."""
    layer, kind, name = s.node.layer, s.node.kind, s.node.name
    if s.node.initial_state:
        raise _refuse(f"layer '{name}' starts from another layer's state; no integer form here")
    if src.steps == 0:
        raise _refuse(f"layer '{name}' takes a sequence; its input is one vector")
    bi = kind == "bidirectional"
    first = layer.forward_layer if bi else layer
    seq_out = bool(first.return_sequences)
    merge = layer.merge_mode if bi else None
    halves, outs = [], []
    for half, (cell_k, cell) in enumerate(s.cells):
        if cell.kind in ("lstm", "gru") and (cell.recurrent_activation, cell.activation) != \
                ("sigmoid", "tanh"):
            raise _refuse(f"layer '{name}': {cell.kind.upper()} with sigmoid gates and tanh "
                          f"only, not {cell.recurrent_activation} and {cell.activation}")
        backwards = half == 1 if bi else bool(layer.go_backwards)
        weights = cell_weights(cell)
        read, r = run_cell(cell, weights, v, backwards, mask)
        ranges[f"{name}/{half}" if bi else name] = r
        ic = make_icell(cell, weights, src.scale, src.width, r)
        if bi and merge != "concat" and ic.h_scale != Q15:
            raise _refuse(f"layer '{name}': merge_mode {merge!r} of halves that are not in "
                          "[-1, 1] has no integer form here")
        halves.append((cell_k, ic, backwards))
        if not seq_out:
            outs.append(read[:, -1])
        else:  # Keras turns a Bidirectional's backward half around again, aligned with input
            outs.append(read[:, ::-1] if bi and backwards else read)
    if bi:
        a, b = outs
        out = {"concat": lambda: np.concatenate([a, b], axis=-1), "sum": lambda: a + b,
               "ave": lambda: (a + b) / 2, "mul": lambda: a * b}[merge]()
    else:
        out = outs[0]
    units = s.cells[0][1].units
    per = [np.full(units, ic.h_scale) for _, ic, _ in halves]
    scale = (np.concatenate(per) if merge == "concat" else
             per[0] * 2 if merge == "sum" else per[0])
    q = QNode(s.k, kind, name, src.k, s.steps, s.width, scale, f"b{s.k}", halves, merge,
              seq_out)
    return q, out


# --- the emitter ---------------------------------------------------------------------------

def _recurrent_code(n: QNode, src: QNode) -> list[str]:
    lines = []
    steps = src.steps
    units = n.cells[0][1].units
    if n.merge and n.merge != "concat":
        for half in range(2):
            lines.append(f"    int16_t {n.buf}_{half}[{n.rows * _pad4(units)}];")
    for half, (cell_k, c, backwards) in enumerate(n.cells):
        if n.merge and n.merge != "concat":
            dst, stride, off = f"{n.buf}_{half}", _pad4(units), 0
        else:
            dst, stride, off = n.buf, n.stride, half * units
        pos = "at" if n.kind == "bidirectional" else "t"
        lines += [f"    {{ /* layer '{n.name}'{' (backward half)' if n.merge and half else ''}: "
                  f"{c.kind}({units}){' backwards' if backwards else ''} over {steps} steps */",
                  f"        int16_t v[{c.nxp + c.nhp}];",
                  *([f"        int16_t c[{units}];", "        memset(c, 0, sizeof c);"]
                    if c.kind == "lstm" else []),
                  "        memset(v, 0, sizeof v);",
                  f"        for (t = 0; t < {steps}; t++) {{",
                  f"            const int at = {f'{steps - 1} - t' if backwards else 't'};",
                  f"            memcpy(v, {src.buf} + at * {src.stride}, {c.nxp} * sizeof(int16_t));",
                  # A masked step keeps the state (and gives the last h again).
                  *([f"            if ({n.reads_mask}[at]) {{"] if n.reads_mask else []),
                  *(("        " if n.reads_mask else "    ") + line
                    for line in _cell_code(cell_k, c, "v", "c")),
                  *(["            }"] if n.reads_mask else []),
                  *([f"            memcpy({dst} + ({pos}) * {stride} + {off}, v + {c.nxp}, "
                     f"{units} * sizeof(int16_t));"] if n.seq_out else []),
                  "            (void)at;",
                  "        }",
                  *([] if n.seq_out else
                    [f"        memcpy({dst} + {off}, v + {c.nxp}, {units} * sizeof(int16_t));"]),
                  "    }"]
    if n.merge and n.merge != "concat":
        size = n.rows * _pad4(units)
        a, b = f"{n.buf}_0", f"{n.buf}_1"
        op = (f"(int16_t)((({a}[t] * {b}[t]) + 16384) >> 15)" if n.merge == "mul"
              else f"(int16_t)(({a}[t] + {b}[t]) >> 1)")  # sum at 2^-14, ave at Q15
        lines.append(f"    for (t = 0; t < {size}; t++) {n.buf}[t] = {op};")
    return lines


def _dense_code(n: QNode, src: QNode) -> list[str]:
    d = n.dense
    k = n.k
    lines = [f"    /* layer '{n.name}': Dense({d.units}, {d.activation}) */",
             f"    for (t = 0; t < {n.rows}; t++) {{",
             f"        int16_t *out = {n.buf} + t * {n.stride};",
             "        int j;"]
    if d.activation == "softmax":
        m, sh = d.softmax
        lines += [f"        int16_t z[{d.units}];",
                  _mv("z", f"D{k}", d.op, f"{src.buf} + t * {src.stride}").replace("    ", "        ", 1),
                  f"        ee_softmax(z, out, {d.units}, {m}, {sh});"]
    else:
        lines.append(_mv("out", f"D{k}", d.op, f"{src.buf} + t * {src.stride}")
                     .replace("    ", "        ", 1))
        if d.activation in BOUNDED:
            fn = "ee_sigmoid(" if d.activation == "sigmoid" else "ee_lut(EE_TANH, "
            lines.append(f"        for (j = 0; j < {d.units}; j++) out[j] = (int16_t){fn}out[j]);")
        elif d.activation == "relu":
            lines.append(f"        for (j = 0; j < {d.units}; j++) if (out[j] < 0) out[j] = 0;")
        elif d.activation in TABLED:
            lines.append(f"        for (j = 0; j < {d.units}; j++) "
                         f"out[j] = (int16_t)ee_lut(A_D{k}, out[j]);")
    lines += ["        (void)j;", "    }"]
    return lines


def _code(ip: SeqIPlan) -> list[str]:
    by_k = {n.k: n for n in ip.nodes}
    lines = []
    for n in ip.nodes:
        if n.kind in ("input", "identity", "ids"):
            continue
        src = by_k[n.src]
        if n.kind == "embedding":
            _, _, shift = n.table
            lines += [f"    /* layer '{n.name}': Embedding({n.width}), int8 rows */",
                      f"    for (t = 0; t < {n.steps}; t++) {{",
                      f"        const int8_t *row = E{n.k} + (long)x[t] * {n.width};",
                      f"        const int32_t m = EM{n.k}[x[t]];",
                      "        int j;",
                      f"        for (j = 0; j < {n.width}; j++) {n.buf}[t * {n.stride} + j] = "
                      f"(int16_t)((row[j] * m + {1 << (shift - 1)}) >> {shift});",
                      *([f"        {n.mask}[t] = (unsigned char)(x[t] != 0);"] if n.mask else []),
                      "    }"]
        elif n.kind == "repeat":
            lines.append(f"    for (t = 0; t < {n.steps}; t++) memcpy({n.buf} + t * {n.stride}, "
                         f"{src.buf}, {n.stride} * sizeof(int16_t));  /* layer '{n.name}' */")
        elif n.kind == "dense":
            lines += _dense_code(n, src)
        else:
            lines += _recurrent_code(n, src)
    return lines


def _signatures(n: str, ip: SeqIPlan) -> tuple[str, str]:
    """NAME_int8_predict_q's and NAME_int8_predict's: token ids come in as they are, and a call
    with one outside the vocabulary returns -1."""
    if ip.ids:
        return (f"int {n}_predict_q(const int32_t *x, int16_t *y)",
                f"int {n}_predict(const int32_t *x, float *y)")
    return (f"void {n}_predict_q(const int16_t *x, int16_t *y)",
            f"void {n}_predict(const float *x, float *y)")


def seq_int8_header(name: str, ip: SeqIPlan) -> str:
    n = c_name(name) + "_int8"
    upper = n.upper()
    inp, out = ip.input, ip.output
    shape = (f"{out.steps} x {out.width} values, one row per time step" if out.steps
             else f"{out.width} values")
    sig_q, sig = _signatures(n, ip)
    if ip.ids:
        takes = (f"{n}_predict takes x ('{inp['name']}': {inp['steps']} int32 token ids, each in\n"
                 f" * [0, {inp['vocabulary']})) and writes y: {shape}; it returns -1 for an id outside\n"
                 " * the vocabulary (y untouched), 0 otherwise.")
        quantized = (f" * {n}_predict_q takes the same ids and gives y_q:\n"
                     f" *   y = y_q[... + j] * {upper}_Y_SCALE[j].")
        x_scale = ""
    else:
        takes = (f"{n}_predict takes x ('{inp['name']}': {inp['steps']} x {inp['features']} float32, "
                 f"time step t\n * at x + t * {inp['features']}) and writes y: {shape}.")
        quantized = (f" * {n}_predict_q takes and gives the quantized values themselves:\n"
                     f" *   x_q[t * {inp['features']} + k] = round(x / {upper}_X_SCALE[k]), "
                     "saturated to int16;\n"
                     f" *   y = y_q[... + j] * {upper}_Y_SCALE[j].")
        x_scale = f"#define {upper}_X_SCALE {{{', '.join(_float(v) for v in ip.x_scale)}}}\n"
    return f"""/* {name}.int8.h: generated by edge-echo from {name}.keras. Plain C99, integer arithmetic.
 *
 * {takes}
 * Inside, int8 weights, int16 activations and state, int32 sums: no float arithmetic
 * between the edges, the same bits on every core.
{quantized}
 * Define EE_NO_FLOAT when compiling {name}.int8.c to leave the float edge out.
 * No step function: {ip.source.why_no_step}, so a sequence is computed whole. Each layer's
 * output is an int16 buffer on {n}_predict's stack ({upper}_STACK_INT16 values in all); the
 * weights are static const (flash). No heap, no mutable globals, no state between calls.
 */
#ifndef {upper}_H
#define {upper}_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define {upper}_Y_SIZE {ip.y_size}
#define {upper}_X_STEPS {inp['steps']}
#define {upper}_X_FEATURES {inp['features']}
#define {upper}_STACK_INT16 {ip.stack_values}
/* real = integer x scale: the input's per feature, the output's per output */
{x_scale}#define {upper}_Y_SCALE {{{', '.join(_float(v) for v in ip.y_scale)}}}

{sig_q};
#ifndef EE_NO_FLOAT
{sig};
#endif

#ifdef __cplusplus
}}
#endif

#endif /* {upper}_H */
"""


def seq_int8_source(name: str, ip: SeqIPlan) -> str:
    from .int8emit import parts

    n = c_name(name) + "_int8"
    inp, out = ip.input, ip.output
    arrays = []
    for node in ip.nodes:
        for cell_k, c, _ in node.cells:
            for key, op in c.ops.items():
                arrays.append(_op_arrays(f"L{cell_k}" if key == "k" else f"L{cell_k}_{key.upper()}", op))
            if c.table is not None:
                arrays.append(f"/* {c.activation}, layer '{c.name}' */\n"
                              + _ints("int16_t", f"A_L{cell_k}", c.table))
        if node.table is not None:
            rows, mult, _ = node.table
            arrays.append(f"/* layer '{node.name}': Embedding rows, int8 */\n"
                          + _ints("int8_t", f"E{node.k}", rows, 16)
                          + _ints("int16_t", f"EM{node.k}", mult))
        if node.dense is not None:
            arrays.append(_op_arrays(f"D{node.k}", node.dense.op))
            if node.dense.table is not None:
                arrays.append(f"/* {node.dense.activation}, layer '{node.name}' */\n"
                              + _ints("int16_t", f"A_D{node.k}", node.dense.table))
    code = _code(ip)
    kept = [node for node in ip.nodes if node.kind not in ("identity", "ids")]
    buffers = [f"    int16_t {node.buf}[{node.rows * node.stride}];" for node in kept]
    buffers += [f"    unsigned char {node.mask}[{node.steps}];" for node in kept
                if node.kind == "embedding" and node.mask]
    clears = [f"    memset({node.buf}, 0, sizeof {node.buf});" for node in kept]
    first = ip.nodes[0]
    if ip.ids:  # ids are checked against the table before any is read
        feed = (f"    for (t = 0; t < {inp['steps']}; t++) if (x[t] < 0 || x[t] >= "
                f"{inp['vocabulary']}) return -1;")
    else:
        feed = (f"    for (t = 0; t < {inp['steps']}; t++) memcpy({first.buf} + t * "
                f"{first.stride}, x + t * {inp['features']}, {inp['features']} * sizeof(int16_t));")
    give = (f"    for (t = 0; t < {out.rows}; t++) memcpy(y + t * {out.width}, {out.buf} + t * "
            f"{out.stride}, {out.width} * sizeof(int16_t));")
    helpers, small = _helpers("\n".join(code), ip.cells)
    size_x = inp["steps"] * inp["features"]
    sig_q, sig = _signatures(n, ip)
    y_scale = f"static const float Y_SCALE[{out.width}] = {{{', '.join(_float(v) for v in ip.y_scale)}}};"
    if ip.ids:
        ret = "\n    return 0;"
        edge = f"""{y_scale}

{sig}
{{
    int16_t yq[{ip.y_size}];
    int t;
    if ({n}_predict_q(x, yq) != 0) return -1;
    for (t = 0; t < {ip.y_size}; t++) y[t] = (float)yq[t] * Y_SCALE[t % {out.width}];
    return 0;
}}"""
    else:
        ret = ""
        x_inv = ", ".join(_float(1.0 / v) for v in ip.x_scale)
        edge = f"""{parts()["ee_quantize"]}
static const float X_INV[{inp['features']}] = {{{x_inv}}};
{y_scale}

{sig}
{{
    int16_t xq[{size_x}], yq[{ip.y_size}];
    int t;
    for (t = 0; t < {size_x}; t++) xq[t] = ee_quantize(x[t], X_INV[t % {inp['features']}]);
    {n}_predict_q(xq, yq);
    for (t = 0; t < {ip.y_size}; t++) y[t] = (float)yq[t] * Y_SCALE[t % {out.width}];
}}"""
    return f"""/* {name}.int8.c: generated by edge-echo from {name}.keras; the API and contract are in
 * {name}.int8.h. {ip.source.params} parameters as int8 (per output row scales), int16
 * activations, int32 sums, integer requantization. C99; nothing of libc beyond memset, memcpy.
 */
#include "{name}.int8.h"
{small}
{helpers}
{chr(10).join(arrays)}
EE_HOT {sig_q}
{{
{chr(10).join(buffers)}
    int t;
{chr(10).join(clears)}
{feed}
{chr(10).join(code)}
{give}{ret}
}}

#ifndef EE_NO_FLOAT
{edge}
#endif
"""
