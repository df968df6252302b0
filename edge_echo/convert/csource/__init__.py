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

One module per part:
- plan.py: the Keras layers read as C cells, normalizations and Dense heads (step models);
- sequence.py: the whole-sequence models (NAME_predict alone), their plan and emitter;
- step.py: the step models' emitter (NAME.h, NAME.c);
- cells.py: the float emitter's pieces both share (arrays, activations, one cell's step);
- cmath.py: which of the C math library's helpers (templates/float.c, a C file of its own,
  with the blocked matrix-vector product) a file takes;
- generate.py: one model's C, made once per subject;
- integer.py: a step model read as integers (NAME.int8.c): calibration, scales, packed int8
  weights; int8emit.py: its emitter (NAME.int8.h, NAME.int8.c), the C helpers in
  templates/int8.c; int8seq.py: the whole-sequence models' integer form and emitter;
- figures.py: what the C costs where it was measured (device.json);
- here: the form, its contract and its manifest entry.
"""

from __future__ import annotations

from pathlib import Path

from ...forms import Form, Subject
from .cmath import ACTIVATIONS, MATH
from .figures import STRICT, compiler, device_figures, footprint, measure
from .generate import _generated
from .int8emit import int8_header, int8_source
from .int8seq import SeqIPlan, _signatures, seq_int8_header, seq_int8_source
from .integer import SCHEME, int8_plan
from .plan import c_name
from .sequence import SeqPlan, _param_name, _seq_signature, _takes_ids

# What other modules and the tests use of the package.
__all__ = ["ACTIVATIONS", "FORMS", "MATH", "STRICT", "c_name", "compiler", "contract",
           "_param_name", "to_header", "to_source"]


def to_header(subject: Subject) -> bytes:
    return _generated(subject)[1].encode()


def to_source(subject: Subject) -> bytes:
    return _generated(subject)[2].encode()


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
    from ...runners import RUNNERS

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


def to_int8_header(subject: Subject) -> bytes:
    ip = int8_plan(subject)
    emit = seq_int8_header if isinstance(ip, SeqIPlan) else int8_header
    return emit(subject.name, ip).encode()


def to_int8_source(subject: Subject) -> bytes:
    ip = int8_plan(subject)
    emit = seq_int8_source if isinstance(ip, SeqIPlan) else int8_source
    return emit(subject.name, ip).encode()


def int8_tolerance(subject: Subject) -> dict:
    """The int8 rule every int8 variant is judged by (convert/quantize.py)."""
    from ..quantize import tolerance

    tol = tolerance("int8", subject.reference_y, subject.interface.probabilities)
    return {"atol": tol["atol"], "rtol": tol["rtol"]}


def int8_contract(subject: Subject, path: Path) -> dict:
    """NAME.int8.c's API (the float file's under NAME_int8_, and the integer entry points), its
    scales and the ranges they come from."""
    from ..quantize import calibration_count, tolerance

    ip = int8_plan(subject)
    p = ip.source
    n = c_name(subject.name) + "_int8"
    rule = tolerance("int8", subject.reference_y, subject.interface.probabilities)["rule"]
    quantization = {
        "method": SCHEME,
        "calibration": f"{calibration_count(subject.calibration)} input sequences and the "
                       "reference inputs, through the float model",
        "ranges": ip.ranges,
        "tolerance_rule": rule,
    }
    if isinstance(ip, SeqIPlan):
        return {**_seq_int8_contract(subject, ip, n), "quantization": quantization}
    return {**subject.interface.io(), "c": {
        "header": f"{subject.name}.int8.h",
        "api": [f"void {n}_reset({n}_state *s)",
                f"void {n}_step({n}_state *s, const float *x_t, float *y_t)",
                f"void {n}_predict(const float *x, float *y)",
                f"void {n}_step_q({n}_state *s, const int16_t *x_t, int16_t *y_t)",
                f"void {n}_predict_q(const int16_t *x, int16_t *y)"],
        "prefix": n,
        "steps": p.steps, "features": p.features, "outputs": p.outputs,
        "sequence_output": "every_step" if p.every_step else "last_step",
        "state_bytes": ip.state_bytes,
        "params": p.params,
        "layers": p.layers(),
        "reset": f"{n}_reset(&s) at the start of each sequence, then {n}_step once per time step",
        "no_float": "define EE_NO_FLOAT to compile the float edges (NAME_int8_step, "
                    "NAME_int8_predict) out; the _q entry points remain",
        "x_scale": [float(v) for v in ip.x_scale],
        "y_scale": [float(v) for v in ip.y_scale],
    }, "quantization": quantization}


def _seq_int8_contract(subject: Subject, ip: SeqIPlan, n: str) -> dict:
    """A whole-sequence model's integer C: NAME_int8_predict (and _q) alone, on c and the
    device targets; c-step has nothing to call."""
    from ...runners import RUNNERS

    no_step = f"no {n}_step: {ip.source.why_no_step}"
    labels = [rt for rt, cls in RUNNERS.items() if cls.artifact == "c_source"]
    not_on = {rt: no_step for rt in labels if rt.startswith("c-step")}
    out = ip.output
    floats = [i for i in ip.inputs if i["dtype"] == "float32"]
    c = {
        "header": f"{subject.name}.int8.h",
        "api": list(reversed(_signatures(n, ip))),
        "prefix": n,
        "mode": "whole_sequence",
        "inputs": [{k: v for k, v in i.items() if k != "scale"} for i in ip.inputs],
        "returns": ("int: 0, or -1 for a token id outside its vocabulary (y untouched)"
                    if ip.ids else "void"),
        "steps": ip.inputs[0]["steps"], "features": ip.inputs[0]["features"],
        "outputs": out.width,
        "sequence_output": "every_step" if out.steps else "last_step",
        "y_size": ip.y_size,
        "state_bytes": 0,
        "stack_buffer_bytes": 2 * ip.stack_values,
        "params": ip.source.params,
        "layers": ip.source.layers(),
        "no_step": no_step,
        "no_float": "define EE_NO_FLOAT to compile the float edge (NAME_int8_predict) out; "
                    "NAME_int8_predict_q remains",
        # Per float input, its scale per feature (a list where the model has one input).
        "x_scale": ([float(v) for v in floats[0]["scale"]] if len(ip.inputs) == 1 and floats
                    else {i["name"]: [float(v) for v in i["scale"]] for i in floats}),
        "y_scale": [float(v) for v in ip.y_scale],
    }
    return {**subject.interface.io(), "runs_on": [rt for rt in labels if rt not in not_on],
            "not_on": not_on, "c": c}


def measure_int8(subject: Subject, path: Path, art: dict) -> dict:
    """As measure, for NAME.int8.c beside its own header."""
    header = to_int8_header(subject).decode()
    return {"footprint": footprint(path),
            **device_figures(subject, path, art["c"], header=header)}


FORMS = (
    Form("c_header", ".h", "c", to_header, (), optional=True),
    Form("c_source", ".c", "c", to_source, (), contract=contract, optional=True, measure=measure),
    Form("c_int8_header", ".int8.h", "c", to_int8_header, (), optional=True),
    Form("c_int8_source", ".int8.c", "c", to_int8_source, (), contract=int8_contract,
         variant="int8", base="c_source", tolerance=int8_tolerance, optional=True,
         measure=measure_int8),
)
