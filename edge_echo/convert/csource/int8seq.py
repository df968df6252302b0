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
    dense_activation,
    edge_scale,
)
from .integer import (
    INPUT_MARGIN,
    Q15,
    ICell,
    IDense,
    _pad4,
    calibration,
    cell_weights,
    check_cell,
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
    table: np.ndarray | None = None  # an Embedding's int8 rows (its scale per column: scale)
    # A layer started from another's last state: (that layer, "h" or "c"), and how far right
    # c is shifted to this layer's c scale.
    initial: list = field(default_factory=list)
    c_shift: int = 0

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
    ranges: dict
    # Each input in the model's order: name, param (its C parameter), dtype, shape, steps,
    # features, and its scale per feature (float) or vocabulary (token ids).
    inputs: list[dict]

    @property
    def ids(self) -> bool:
        """Some input is token ids (int32) into an Embedding: predict returns a status."""
        return any(i["dtype"] == "int32" for i in self.inputs)

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

    @property
    def kept(self) -> list[QNode]:
        """The recurrent layers whose last state another layer starts from."""
        wanted = {j for n in self.nodes for j, _ in n.initial}
        return [n for n in self.nodes if n.k in wanted]


def _refuse(why: str) -> Unavailable:
    return Unavailable(f"integer C, whole sequence: {why}")


def seq_int8_plan(subject: Subject) -> SeqIPlan:
    """The whole-sequence model as integer layers with their scales, or why not, in one line."""
    sp = sequence_plan(subject)
    inputs, feeds = [], {}
    ranges: dict = {}
    for spec in sp.inputs:
        item = {k: spec[k] for k in ("name", "param", "dtype", "shape", "steps", "features")}
        if spec["dtype"] == "int32":
            feeds[spec["param"]] = calibration(subject, spec["name"])
            item["vocabulary"] = spec.get("vocabulary")
        else:
            x = calibration(subject, spec["name"])
            xmax = np.abs(x).max(axis=(0, 1))
            item["scale"] = np.where(xmax > 0, xmax * INPUT_MARGIN, 1.0) / 32767.0
            feeds[spec["param"]] = x
            ranges[f"input_max_abs/{spec['name']}" if len(sp.inputs) > 1 else "input_max_abs"] = \
                [float(v) for v in xmax]
        inputs.append(item)
    by_param = {i["param"]: i for i in inputs}
    masks: dict[str, np.ndarray] = {}
    values: dict[int, np.ndarray] = {}
    finals: dict[int, dict] = {}
    nodes: list[QNode] = []
    by_k: dict[int, QNode] = {}
    for s in sp.nodes:
        kind, name = s.node.kind, s.node.name
        if kind in ("masking", "norm"):
            raise _refuse(f"layer '{name}' ({type(s.node.layer).__name__}) has no integer form "
                          "in a whole-sequence model here")
        if kind == "input":
            spec = by_param[s.buf]
            ids = spec["dtype"] == "int32"
            values[s.k] = feeds[s.buf] if ids else np.asarray(feeds[s.buf], np.float64)
            q = QNode(s.k, "ids" if ids else kind, name, None, s.steps, s.width,
                      None if ids else spec["scale"], s.buf if ids else f"b{s.k}")
        elif kind == "embedding":
            src = by_k[s.node.inputs[0][0]]
            _, dim, table = sp.embeddings[s.k]
            values[s.k] = np.asarray(table, np.float64)[values[src.k]]
            if s.mask:
                masks[s.mask] = (values[src.k] != 0).astype(np.int64)
            scale, rows = _embedding(table)
            ranges[name] = {"max_abs": float(np.abs(table).max())}
            q = QNode(s.k, kind, name, src.k, s.steps, dim, scale, f"b{s.k}", mask=s.mask,
                      table=rows)
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
                q, values[s.k] = _recurrent(s, src, v, ranges, masks.get(s.reads_mask), by_k,
                                            finals)
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
    return SeqIPlan(sp, nodes, by_k[sp.output.k], ranges, inputs)


def _embedding(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An Embedding's table as int8 with one scale per column (output feature: its largest
    |value| over 127), and the scales. A lookup widens the token's row to int16 as it is; the
    scales go into the next layer's weights (every consumer of an Embedding here has weights),
    so the file holds the table and nothing per token: a vocabulary of 20,000 costs no 40 KB
    of multipliers."""
    table = np.asarray(table, np.float64)
    amax = np.abs(table).max(axis=0)
    scale = np.where(amax > 0, amax / 127.0, 1.0)
    return scale, np.clip(np.round(table / scale), -127, 127).astype(np.int64)


def _recurrent(s, src: QNode, v: np.ndarray, ranges: dict, mask: np.ndarray | None,
               by_k: dict, finals: dict) -> tuple[QNode, np.ndarray]:
    """A recurrent or Bidirectional layer over its input's float values v: its integer cells,
    its output node and its float output (as Keras gives it). finals: each recurrent layer's
    last float state, which a later layer may start from (initial_state)."""
    layer, kind, name = s.node.layer, s.node.kind, s.node.name
    initial, init = [], None
    if s.node.initial_state:  # an encoder-decoder: h (and c) of an earlier layer's last step
        for j, index in s.node.initial_state:
            origin = by_k.get(j)
            if origin is None or origin.kind != "recurrent" or index not in (1, 2):
                raise _refuse(f"layer '{name}' starts from a state that is not another "
                              "recurrent layer's h or c; no integer form here")
            initial.append((j, "h" if index == 1 else "c"))
        init = {field_: finals[j][field_] for j, field_ in initial}
    if src.steps == 0:
        raise _refuse(f"layer '{name}' takes a sequence; its input is one vector")
    bi = kind == "bidirectional"
    first = layer.forward_layer if bi else layer
    seq_out = bool(first.return_sequences)
    merge = layer.merge_mode if bi else None
    halves, outs = [], []
    for half, (cell_k, cell) in enumerate(s.cells):
        check_cell(cell)
        backwards = half == 1 if bi else bool(layer.go_backwards)
        weights = cell_weights(cell)
        final: dict = {}
        read, r = run_cell(cell, weights, v, backwards, mask, init, final)
        finals[s.k] = final
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
              seq_out, initial=initial)
    c_from = [by_k[j].cells[0][1] for j, field_ in initial if field_ == "c"]
    if c_from:  # one c scale for both: the wider, the other's c shifted right into it
        ic = halves[0][1]
        ic.c_power = max(ic.c_power, c_from[0].c_power)
        q.c_shift = ic.c_power - c_from[0].c_power
    return q, out


# --- the emitter ---------------------------------------------------------------------------

def _recurrent_code(n: QNode, src: QNode, keep: bool = False) -> list[str]:
    """The layer over its input's buffer, each half in a block of its own with its state (h
    beside x_t in v, and c), from zeros or another layer's kept last state (n.initial); its last
    state kept (keep: a later layer starts from it) in k{n.k}_h, k{n.k}_c."""
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
                  *_initial_code(n, c, units),
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
                  *([f"        memcpy(k{n.k}_h, v + {c.nxp}, sizeof k{n.k}_h);",
                     *([f"        memcpy(k{n.k}_c, c, sizeof k{n.k}_c);"]
                       if c.kind == "lstm" else [])] if keep else []),
                  "    }"]
    if n.merge and n.merge != "concat":
        size = n.rows * _pad4(units)
        a, b = f"{n.buf}_0", f"{n.buf}_1"
        op = (f"(int16_t)((({a}[t] * {b}[t]) + 16384) >> 15)" if n.merge == "mul"
              else f"(int16_t)(({a}[t] + {b}[t]) >> 1)")  # sum at 2^-14, ave at Q15
        lines.append(f"    for (t = 0; t < {size}; t++) {n.buf}[t] = {op};")
    return lines


def _initial_code(n: QNode, c: ICell, units: int) -> list[str]:
    """Copy the kept last state of the layers n starts from into its v (h) and c."""
    lines = []
    for j, field_ in n.initial:
        if field_ == "h":
            lines.append(f"        memcpy(v + {c.nxp}, k{j}_h, sizeof k{j}_h);")
        elif c.kind == "lstm":
            lines += ["        {", "            int j;",
                      f"            for (j = 0; j < {units}; j++) c[j] = (int16_t)(k{j}_c[j] >> "
                      f"{n.c_shift});", "        }"]
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
        lines += dense_activation(d, f"A_D{k}", "out", "        ")
    lines += ["        (void)j;", "    }"]
    return lines


def _code(ip: SeqIPlan) -> list[str]:
    by_k = {n.k: n for n in ip.nodes}
    kept = {n.k for n in ip.kept}
    lines = []
    for n in ip.nodes:
        if n.kind in ("input", "identity", "ids"):
            continue
        src = by_k[n.src]
        if n.kind == "embedding":
            lines += [f"    /* layer '{n.name}': Embedding({n.width}), int8 rows, a scale per column */",
                      f"    for (t = 0; t < {n.steps}; t++) {{",
                      f"        const int8_t *row = E{n.k} + (long){src.buf}[t] * {n.width};",
                      "        int j;",
                      f"        for (j = 0; j < {n.width}; j++) {n.buf}[t * {n.stride} + j] = row[j];",
                      *([f"        {n.mask}[t] = (unsigned char)({src.buf}[t] != 0);"]
                        if n.mask else []),
                      "    }"]
        elif n.kind == "repeat":
            lines.append(f"    for (t = 0; t < {n.steps}; t++) memcpy({n.buf} + t * {n.stride}, "
                         f"{src.buf}, {n.stride} * sizeof(int16_t));  /* layer '{n.name}' */")
        elif n.kind == "dense":
            lines += _dense_code(n, src)
        else:
            lines += _recurrent_code(n, src, n.k in kept)
    return lines


def _signatures(n: str, ip: SeqIPlan) -> tuple[str, str]:
    """NAME_int8_predict_q's and NAME_int8_predict's: one pointer per input in the model's order
    (token ids come in as they are), y last; with token ids, a call with one outside the
    vocabulary returns -1."""
    ret = "int" if ip.ids else "void"
    q = ", ".join(f"const {'int32_t' if i['dtype'] == 'int32' else 'int16_t'} *{i['param']}"
                  for i in ip.inputs)
    f = ", ".join(f"const {'int32_t' if i['dtype'] == 'int32' else 'float'} *{i['param']}"
                  for i in ip.inputs)
    return f"{ret} {n}_predict_q({q}, int16_t *y)", f"{ret} {n}_predict({f}, float *y)"


def seq_int8_header(name: str, ip: SeqIPlan) -> str:
    n = c_name(name) + "_int8"
    upper = n.upper()
    out = ip.output
    shape = (f"{out.steps} x {out.width} values, one row per time step" if out.steps
             else f"{out.width} values")
    sig_q, sig = _signatures(n, ip)
    described, defines = [], []
    for i in ip.inputs:
        p = i["param"].upper()
        if i["dtype"] == "int32":
            described.append(f" *   {i['param']} ('{i['name']}'): {i['steps']} int32 token ids, each "
                             f"in [0, {i['vocabulary']})")
            defines.append(f"#define {upper}_{p}_STEPS {i['steps']}")
        else:
            described.append(f" *   {i['param']} ('{i['name']}'): {i['steps']} x {i['features']} "
                             f"float32, time step t at + t * {i['features']}; quantized:\n"
                             f" *     {i['param']}_q = round(x / {upper}_{p}_SCALE[k]), "
                             "saturated to int16")
            defines += [f"#define {upper}_{p}_STEPS {i['steps']}",
                        f"#define {upper}_{p}_FEATURES {i['features']}",
                        f"#define {upper}_{p}_SCALE "
                        f"{{{', '.join(_float(v) for v in i['scale'])}}}"]
    ids = ("\n * A token id outside its vocabulary is refused before any is read: predict\n"
           " * then returns -1 and writes nothing to y; 0 otherwise." if ip.ids else "")
    return f"""/* {name}.int8.h: generated by edge-echo from {name}.keras. Plain C99, integer arithmetic.
 *
 * {n}_predict takes one pointer per input, in the model's order:
{chr(10).join(described)}
 * and writes y: {shape}; y = y_q[... + j] * {upper}_Y_SCALE[j] for
 * {n}_predict_q, which takes the quantized inputs (token ids as they are).{ids}
 * Inside, int8 weights, int16 activations and state, int32 sums: no float arithmetic between
 * the edges, the same bits on every core. Define EE_NO_FLOAT when compiling {name}.int8.c to
 * leave the float edge out.
 * No step function: {ip.source.why_no_step}, so a sequence is computed whole. Each layer's
 * output is an int16 buffer on {n}_predict_q's stack ({upper}_STACK_INT16 values in all); the
 * weights are static const (flash). No heap, no mutable globals, no state between calls.
 */
#ifndef {upper}_H
#define {upper}_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define {upper}_Y_SIZE {ip.y_size}
#define {upper}_STACK_INT16 {ip.stack_values}
{chr(10).join(defines)}
/* real = integer x scale: the output's, per output */
#define {upper}_Y_SCALE {{{', '.join(_float(v) for v in ip.y_scale)}}}

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
    out = ip.output
    arrays = []
    for node in ip.nodes:
        for cell_k, c, _ in node.cells:
            for key, op in c.ops.items():
                arrays.append(_op_arrays(f"L{cell_k}" if key == "k" else f"L{cell_k}_{key.upper()}", op))
            if c.table is not None:
                arrays.append(f"/* {c.activation}, layer '{c.name}' */\n"
                              + _ints("int16_t", f"A_L{cell_k}", c.table))
        if node.table is not None:
            arrays.append(f"/* layer '{node.name}': Embedding rows, int8 (a scale per column, in "
                          "the next layer's weights) */\n"
                          + _ints("int8_t", f"E{node.k}", node.table, 16))
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
    for node in ip.kept:  # the last state a later layer starts from
        c = node.cells[0][1]
        buffers.append(f"    int16_t k{node.k}_h[{c.units}];")
        if c.kind == "lstm":
            buffers.append(f"    int16_t k{node.k}_c[{c.units}];")
    clears = [f"    memset({node.buf}, 0, sizeof {node.buf});" for node in kept]
    feed = []
    for i, node in zip(ip.inputs, [nd for nd in ip.nodes if nd.kind in ("input", "ids")],
                       strict=True):
        if i["dtype"] == "int32":  # ids are checked against the table before any is read
            feed.append(f"    for (t = 0; t < {i['steps']}; t++) if ({i['param']}[t] < 0 || "
                        f"{i['param']}[t] >= {i['vocabulary']}) return -1;")
        else:
            feed.append(f"    for (t = 0; t < {i['steps']}; t++) memcpy({node.buf} + t * "
                        f"{node.stride}, {i['param']} + t * {i['features']}, {i['features']} * "
                        "sizeof(int16_t));")
    give = (f"    for (t = 0; t < {out.rows}; t++) memcpy(y + t * {out.width}, {out.buf} + t * "
            f"{out.stride}, {out.width} * sizeof(int16_t));")
    helpers, small = _helpers("\n".join(code), ip.cells)
    sig_q, sig = _signatures(n, ip)
    y_scale, y_at = edge_scale("Y_SCALE", ip.y_scale, f"t % {out.width}")
    ret = "\n    return 0;" if ip.ids else ""
    # The float edge: each float input quantized into a buffer of its own, then predict_q.
    edge = [y_scale]
    local, args = [f"int16_t yq[{ip.y_size}];", "int t;"], []
    quantize = []
    for i in ip.inputs:
        if i["dtype"] == "int32":
            args.append(i["param"])
            continue
        p = i["param"]
        size = i["steps"] * i["features"]
        x_inv, x_at = edge_scale(f"X_INV_{p.upper()}", 1.0 / np.asarray(i["scale"], np.float64),
                                 f"t % {i['features']}")
        edge.insert(0, x_inv)
        local.insert(0, f"int16_t {p}_q[{size}];")
        quantize.append(f"    for (t = 0; t < {size}; t++) {p}_q[t] = ee_quantize({p}[t], {x_at});")
        args.append(f"{p}_q")
    call = f"{n}_predict_q({', '.join(args)}, yq)"
    call = f"    if ({call} != 0) return -1;" if ip.ids else f"    {call};"
    edge_code = "\n".join([
        *([parts()["ee_quantize"]] if quantize else []), *edge, "", sig, "{",
        *(f"    {line}" for line in local), *quantize, call,
        f"    for (t = 0; t < {ip.y_size}; t++) y[t] = (float)yq[t] * {y_at};",
        *(["    return 0;"] if ip.ids else []), "}"])
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
{chr(10).join(feed)}
{chr(10).join(code)}
{give}{ret}
}}

#ifndef EE_NO_FLOAT
{edge_code}
#endif
"""
