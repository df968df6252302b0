"""Whole-sequence models: NAME_predict only. A layer that reads a sequence from both ends
(Bidirectional, go_backwards), repeats one (RepeatVector), or starts from another layer's state
(an encoder-decoder's initial_state), and models with several inputs or token ids, are computed
here one layer at a time over whole sequences, each layer's output in a buffer of its own on
predict's stack. The graph is modelplan's."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ...forms import Subject, Unavailable
from .cells import _act, _array, _cell_code, _float, _mv, _norm_code, _vector_activation, cell_arrays
from .cmath import MATVEC, PRELUDE, VECTOR_ACTIVATIONS, blocked, math_for
from .plan import Dense, Norm, _cell, _dense, _norm, c_name


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


def sequence_plan(subject: Subject) -> SeqPlan:
    """The model as whole-sequence layers, or why it has no C form, in one line."""
    from ... import modelplan

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

{PRELUDE}
{chr(10).join(_seq_arrays(sp))}
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
