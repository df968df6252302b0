"""Plain C99 source for a recurrent model: no runtime at all (NAME.c and NAME.h).

For stacks of unidirectional LSTM, GRU (both reset_after settings) and
SimpleRNN layers with a Dense (or TimeDistributed(Dense)) head: the trained
weights as `static const` arrays (flash, not RAM), a state struct with h
(and c) per recurrent layer, and three functions:

    void NAME_reset(NAME_state *s);
    void NAME_step(NAME_state *s, const float *x_t, float *y_t);
    void NAME_predict(const float *x, float *y);

No heap, no mutable globals, nothing of libc beyond <math.h> and memset /
memcpy. Anything else gets a one-line reason (Unavailable) and no file.
The C is checked like every other form: verify compiles it and runs it
through ctypes (runners/c.py) against Keras.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..forms import Form, Subject, Unavailable

ACTIVATIONS = {
    "linear": "{x}",
    # tanh through one expf (2 sigmoid(2x) - 1): glibc's tanhf costs about twice an expf, and
    # the result stays within a few float ulps of 1 (absolute), far inside any tolerance.
    "tanh": "(2.0f / (1.0f + expf(-2.0f * ({x}))) - 1.0f)",
    "sigmoid": "(1.0f / (1.0f + expf(-({x}))))",
    "relu": "({x} > 0.0f ? {x} : 0.0f)",
    # The rest of Keras 3's element-wise activations, as keras.activations defines them with
    # their default arguments (elu alpha 1, leaky_relu negative_slope 0.2, gelu exact).
    "elu": "({x} > 0.0f ? {x} : expf({x}) - 1.0f)",
    "selu": "(1.05070098f * ({x} > 0.0f ? {x} : 1.67326324f * (expf({x}) - 1.0f)))",
    # log(1 + e^x) as max(x, 0) + log1p(e^-|x|): no overflow for large |x|.
    "softplus": "(({x} > 0.0f ? {x} : 0.0f) + log1pf(expf(-fabsf({x}))))",
    "softsign": "({x} / (1.0f + fabsf({x})))",
    "hard_sigmoid": "({x} <= -3.0f ? 0.0f : {x} >= 3.0f ? 1.0f : {x} / 6.0f + 0.5f)",
    "silu": "({x} / (1.0f + expf(-({x}))))",
    "hard_silu": "({x} <= -3.0f ? 0.0f : {x} >= 3.0f ? {x} : {x} * ({x} / 6.0f + 0.5f))",
    "gelu": "(0.5f * {x} * (1.0f + erff({x} * 0.707106781f)))",
    "leaky_relu": "({x} > 0.0f ? {x} : 0.2f * {x})",
    "relu6": "({x} <= 0.0f ? 0.0f : {x} >= 6.0f ? 6.0f : {x})",
    "mish": "({x} * tanhf(({x} > 0.0f ? {x} : 0.0f) + log1pf(expf(-fabsf({x})))))",
    "exponential": "expf({x})",
}
# Over a whole vector, not one element: only a Dense layer's output takes them. softmax
# subtracts the largest logit first, so that no expf overflows.
VECTOR_ACTIVATIONS = ("softmax", "log_softmax")
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
    head: list[Dense]
    steps: int
    features: int
    outputs: int
    every_step: bool   # y for every time step (many-to-many), else the last step's

    @property
    def state_floats(self) -> int:
        return sum(c.units * (2 if c.kind == "lstm" else 1) for c in self.cells)

    @property
    def params(self) -> int:
        return (sum(int(w.size) for c in self.cells for w in c.weights)
                + sum(d.kernel.size + (0 if d.bias is None else d.bias.size) for d in self.head))


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
    head: list[Dense] = []
    width = features
    every_step = True
    for layer in model.layers:
        if isinstance(layer, (keras.layers.InputLayer, keras.layers.Dropout)):
            continue
        inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
        kinds = {keras.layers.LSTM: "lstm", keras.layers.GRU: "gru",
                 keras.layers.SimpleRNN: "rnn"}
        kind = next((k for cls, k in kinds.items() if type(layer) is cls), None)
        if kind is not None:
            if head:
                raise Unavailable(f"layer '{layer.name}': a recurrent layer after the Dense head "
                                  "has no C form here")
            if not every_step:
                raise Unavailable(f"layer '{layer.name}' follows a layer that returns only its "
                                  "last step")
            if layer.go_backwards or layer.stateful or getattr(layer, "return_state", False):
                raise Unavailable(f"layer '{layer.name}': go_backwards, stateful and return_state "
                                  "have no C form here")
            weights = [np.asarray(w, np.float32) for w in layer.get_weights()]
            cells.append(Cell(kind, layer.name, width, int(layer.units), weights,
                              _activation(layer.cell, "activation"),
                              _activation(layer.cell, "recurrent_activation")
                              if kind != "rnn" else None,
                              bool(getattr(layer.cell, "reset_after", True)),
                              bool(layer.cell.use_bias)))
            width = int(layer.units)
            every_step = bool(layer.return_sequences)
        elif isinstance(inner, keras.layers.Dense):
            if not cells:
                raise Unavailable(f"layer '{layer.name}': a Dense layer before the first "
                                  "recurrent layer has no C form here")
            kernel, *bias = [np.asarray(w, np.float32) for w in inner.get_weights()]
            head.append(Dense(layer.name, width, int(inner.units), kernel,
                              bias[0] if bias else None,
                              _activation(inner, "activation", vector=True)))
            width = int(inner.units)
        else:
            raise Unavailable(f"layer '{layer.name}' ({type(layer).__name__}) has no C form here; "
                              "C source takes LSTM, GRU and SimpleRNN stacks with Dense heads")
    if not cells:
        raise Unavailable("C source needs a recurrent layer (LSTM, GRU or SimpleRNN)")
    if not all(np.all(np.isfinite(w)) for c in cells for w in c.weights):
        raise Unavailable("the weights hold inf or NaN")
    ((_, out_shape),) = interface.outputs
    expected = (steps, width) if every_step else (width,)
    if int(np.prod(out_shape)) != int(np.prod(expected)):
        raise Unavailable(f"output shape {list(out_shape)} is not what the layers give "
                          f"({list(expected)})")
    return Plan(cells, head, int(steps), int(features), width, every_step)


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
            f"            for (j = 0; j < {units}; j++) {{ {v}[j] = expf({v}[j] - top); sum += {v}[j]; }}",
            f"            for (j = 0; j < {units}; j++) {v}[j] /= sum;",
        ]
    else:
        lines += [
            f"            for (j = 0; j < {units}; j++) sum += expf({v}[j] - top);",
            "            sum = logf(sum);",
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


def _accumulate(dst: str, src: str, rows: int, matrix: str, stride: int, width: int,
                offset: str = "") -> str:
    """dst[j] += sum_k src[k] * matrix[k][offset + j], for j < width: one matrix-vector line."""
    return (f"        for (k = 0; k < {rows}; k++) {{ const float v = {src}[k]; "
            f"for (j = 0; j < {width}; j++) {dst}[j] += v * {matrix}[k * {stride}{offset} + j]; }}")


def _cell_code(k: int, c: Cell, src: str) -> str:
    u, i = c.units, c.inputs
    h = f"s->h{k}"
    w = f"L{k}_W"
    r = f"L{k}_U"
    b = f"L{k}_B"
    lines = []
    if c.kind == "lstm":
        g = 4 * u
        init = f"z[j] = {b}[j];" if c.use_bias else "z[j] = 0.0f;"
        ra, a = c.recurrent_activation, c.activation
        lines += [
            f"    {{ /* layer {k}: LSTM({u}), gates i f c o */",
            f"        float z[{g}];",
            "        int j, k;",
            f"        for (j = 0; j < {g}; j++) {init}",
            _accumulate("z", src, i, w, g, g),
            _accumulate("z", h, u, r, g, g),
            f"        for (j = 0; j < {u}; j++) {{",
            f"            const float ig = {_act(ra, 'z[j]')};",
            f"            const float fg = {_act(ra, f'z[{u} + j]')};",
            f"            const float cg = {_act(a, f'z[{2 * u} + j]')};",
            f"            const float og = {_act(ra, f'z[{3 * u} + j]')};",
            f"            const float cn = fg * s->c{k}[j] + ig * cg;",
            f"            s->c{k}[j] = cn;",
            f"            s->h{k}[j] = og * {_act(a, 'cn')};",
            "        }",
            "    }",
        ]
    elif c.kind == "gru":
        g = 3 * u
        ra, a = c.recurrent_activation, c.activation
        if c.reset_after:
            xb = f"{b}[j]" if c.use_bias else "0.0f"
            rb = f"{b}[{g} + j]" if c.use_bias else "0.0f"
            lines += [
                f"    {{ /* layer {k}: GRU({u}), reset_after, gates z r h */",
                f"        float zx[{g}], zh[{g}];",
                "        int j, k;",
                f"        for (j = 0; j < {g}; j++) {{ zx[j] = {xb}; zh[j] = {rb}; }}",
                _accumulate("zx", src, i, w, g, g),
                _accumulate("zh", h, u, r, g, g),
                f"        for (j = 0; j < {u}; j++) {{",
                f"            const float zg = {_act(ra, 'zx[j] + zh[j]')};",
                f"            const float rg = {_act(ra, f'zx[{u} + j] + zh[{u} + j]')};",
                f"            const float hh = {_act(a, f'zx[{2 * u} + j] + rg * zh[{2 * u} + j]')};",
                f"            zx[j] = zg * s->h{k}[j] + (1.0f - zg) * hh;",
                "        }",
                f"        memcpy(s->h{k}, zx, sizeof s->h{k});",
                "    }",
            ]
        else:
            xb = f"{b}[j]" if c.use_bias else "0.0f"
            lines += [
                f"    {{ /* layer {k}: GRU({u}), reset before the matmul, gates z r h */",
                f"        float zx[{g}], rh[{u}], hh[{u}];",
                "        int j, k;",
                f"        for (j = 0; j < {g}; j++) zx[j] = {xb};",
                _accumulate("zx", src, i, w, g, g),
                _accumulate("zx", h, u, r, g, 2 * u),  # z and r: the h part comes after the reset
                f"        for (j = 0; j < {u}; j++) {{ zx[j] = {_act(ra, 'zx[j]')}; "
                f"rh[j] = {_act(ra, f'zx[{u} + j]')} * s->h{k}[j]; hh[j] = zx[{2 * u} + j]; }}",
                _accumulate("hh", "rh", u, r, g, u, offset=f" + {2 * u}"),
                f"        for (j = 0; j < {u}; j++) s->h{k}[j] = zx[j] * s->h{k}[j] + "
                f"(1.0f - zx[j]) * {_act(a, 'hh[j]')};",
                "    }",
            ]
    else:
        init = f"z[j] = {b}[j];" if c.use_bias else "z[j] = 0.0f;"
        lines += [
            f"    {{ /* layer {k}: SimpleRNN({u}) */",
            f"        float z[{u}];",
            "        int j, k;",
            f"        for (j = 0; j < {u}; j++) {init}",
            _accumulate("z", src, i, w, u, u),
            _accumulate("z", h, u, r, u, u),
            f"        for (j = 0; j < {u}; j++) s->h{k}[j] = {_act(c.activation, 'z[j]')};",
            "    }",
        ]
    return "\n".join(lines)


def source(name: str, plan_: Plan) -> str:
    n = c_name(name)
    upper = n.upper()
    arrays = []
    for k, c in enumerate(plan_.cells):
        kernel, recurrent, *bias = c.weights
        arrays.append(_array(f"L{k}_W", kernel))
        arrays.append(_array(f"L{k}_U", recurrent))
        if c.use_bias:
            arrays.append(_array(f"L{k}_B", bias[0]))
    for k, d in enumerate(plan_.head):
        arrays.append(_array(f"D{k}_W", d.kernel))
        if d.bias is not None:
            arrays.append(_array(f"D{k}_B", d.bias))
    cells = []
    for k, c in enumerate(plan_.cells):
        src = "x_t" if k == 0 else f"s->h{k - 1}"
        cells.append(_cell_code(k, c, src))
    head = []
    last = f"s->h{len(plan_.cells) - 1}"
    src = last
    for k, d in enumerate(plan_.head):
        dst = "y" if k == len(plan_.head) - 1 else f"t{k}"
        if dst != "y":
            head.append(f"    float {dst}[{d.units}];")
        init = f"D{k}_B[j]" if d.bias is not None else "0.0f"
        vector = d.activation in VECTOR_ACTIVATIONS
        head += [
            "    {",
            "        int j, k;",
            f"        for (j = 0; j < {d.units}; j++) {{",
            f"            float a = {init};",
            f"            for (k = 0; k < {d.inputs}; k++) a += {src}[k] * D{k}_W[k * {d.units} + j];",
            f"            {dst}[j] = {'a' if vector else _act(d.activation, 'a')};",
            "        }",
            *(_vector_activation(d.activation, dst, d.units) if vector else []),
            "    }",
        ]
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
    return f"""/* {name}.c: generated by edge-echo from {name}.keras; the API and contract are in {name}.h.
 * {plan_.params} parameters as static const float. C99; needs <math.h> (link with -lm).
 */
#include "{name}.h"

#include <math.h>
#include <string.h>

{chr(10).join(arrays)}
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


def _generated(subject: Subject) -> tuple[Plan, str, str]:
    if "c_source" not in subject.cache:
        p = plan(subject)
        subject.cache["c_source"] = (p, header(subject.name, p), source(subject.name, p))
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
            raise RuntimeError(f"{path.name} does not compile warning-free with "
                               f"{' '.join(STRICT)}: {(done.stderr.strip().splitlines() or ['?'])[0]}")
        size = subprocess.run(["size", str(obj)], capture_output=True, text=True)
        text, data, bss = (int(v) for v in size.stdout.splitlines()[1].split()[:3])
        stack = [int(line.split("\t")[1]) for su in Path(tmp).glob("*.su")
                 for line in su.read_text().splitlines() if line.count("\t") >= 2]
        version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    return {"flash_bytes": text + data, "mutable_global_bytes": data + bss,
            "max_stack_frame_bytes": max(stack, default=0),
            "measured": f"{Path(cc).name} -Os {' '.join(STRICT)}, size and -fstack-usage "
                        f"({version.splitlines()[0] if version else '?'})"}


def contract(subject: Subject, path: Path) -> dict:
    p, _, _ = _generated(subject)
    n = c_name(subject.name)
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
        "layers": [f"{c.kind}({c.units})" for c in p.cells] + [f"dense({d.units})" for d in p.head],
        "reset": f"{n}_reset(&s) at the start of each sequence, then {n}_step once per time step",
        "footprint": footprint(path),
    }}


FORMS = (
    Form("c_header", ".h", "c", to_header, (), optional=True),
    Form("c_source", ".c", "c", to_source, (), contract=contract, optional=True),
)
