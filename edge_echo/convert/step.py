"""The one-step form of a model: (x_t, state...) -> (y_t, state_out...).

A device that reads one value at a time from a sensor runs this once per
value, feeding the state back. Both formats carry the state as explicit
inputs and outputs, one pair per state tensor of each recurrent layer (an
LSTM has h and c, a GRU or SimpleRNN h), so the files hold no state between
calls.

Every model, the echo models included, is read into a plan (plan_steps): a
chain of unidirectional LSTM, GRU and SimpleRNN layers and per-step layers
(Dense, Embedding, normalization, activations), with a mask at its front
(Embedding(mask_zero=True), Masking) computed per step. A layer that needs
the whole sequence (Bidirectional, go_backwards, pooling over time, a
convolution over time) gets a one-line reason instead. The step is each
layer's own weights for one step:

- TFLite: the layers' cells traced for one step and frozen like the full
  model (builtin ops only);
- ONNX: each recurrent layer a native LSTM, GRU or RNN node over a sequence
  of one step from the explicit state (convert/native_rnn.py), the per-step
  layers through tf2onnx.

A model with one recurrent layer names its state h (and c) as the echo
models always have; several name it after their layers (LAYER_h, LAYER_c).
"""

from __future__ import annotations

from ..forms import Form, Unavailable
from ..tfenv import import_tensorflow

RECURRENT = ("LSTM", "GRU", "SimpleRNN")
# Layers that map each step on its own (or, after the last recurrent layer, the one vector).
PER_STEP = ("Dense", "Embedding", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax",
            "LayerNormalization", "BatchNormalization", "Normalization", "Dropout", "GaussianNoise",
            "GaussianDropout", "AlphaDropout", "SpatialDropout1D", "ActivityRegularization",
            "Identity", "Rescaling")
# Per-step layers whose state or input spec has the sequence's rank (an adapted
# Normalization's mean is (1, 1, features); a BatchNormalization built on a sequence accepts
# rank 3 only): before the sequence is reduced to its last step, they see a sequence of one
# step. The others take the step as it is, with no reshape (no SHAPE op in the file).
SEQUENCE_RANK = ("Normalization", "BatchNormalization")
INFERENCE_NO_OPS = ("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout",
                    "SpatialDropout1D", "ActivityRegularization", "Identity")
WHOLE_SEQUENCE = ("GlobalAveragePooling1D", "GlobalMaxPooling1D",
                  "AveragePooling1D", "MaxPooling1D", "Conv1D", "SeparableConv1D",
                  "DepthwiseConv1D", "Conv1DTranspose", "Flatten", "Attention",
                  "MultiHeadAttention", "AdditiveAttention", "Reshape", "Permute",
                  "Cropping1D", "ZeroPadding1D", "UpSampling1D", "RepeatVector")


def _clean(name: str) -> str:
    import re

    return re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_") or "layer"


def plan_steps(subject) -> list[tuple[str, object, list[str]]]:
    """The model as steps: (kind, layer, state names) per layer, kind 'rnn' or 'map'; or
    Unavailable with the one-line reason it cannot be stepped."""
    from .micro import _chain

    model, interface = subject.model, subject.interface
    if len(interface.inputs) != 1 or len(interface.outputs) != 1:
        raise Unavailable("step models are made for models with one input and one output")
    try:
        layers = _chain(model)
    except Unavailable as exc:
        raise Unavailable(str(exc).replace("micro forms", "step models")) from None
    stages: list[tuple[str, object, list[str]]] = []
    collapsed = None  # the recurrent layer that returned only its last step
    for layer in layers:
        kind = type(layer).__name__
        inner = layer.layer if kind == "TimeDistributed" else layer
        where = f"layer '{layer.name}' ({kind})"
        if kind in RECURRENT:
            if collapsed is not None:
                raise Unavailable(f"{where} reads a sequence that '{collapsed}' already reduced to "
                                  "its last step")
            if layer.go_backwards:
                raise Unavailable(f"{where} reads the sequence backwards, from its last step; a "
                                  "step model sees one step at a time, first to last")
            if layer.return_state:
                raise Unavailable(f"{where} returns its state as a model output")
            prefix = f"{_clean(layer.name)}_"
            stages.append(("rnn", layer, [f"{prefix}h"] + ([f"{prefix}c"] if kind == "LSTM" else [])))
            if not layer.return_sequences:
                collapsed = layer.name
        elif kind == "Masking" or (kind == "Embedding" and layer.mask_zero):
            # Keras skips a masked step: the state stays, the output repeats (or is zero).
            if any(k == "rnn" for k, _, _ in stages) or any(k == "mask" for k, _, _ in stages):
                raise Unavailable(f"{where} masks steps after the first recurrent layer")
            stages += [("mask", layer, []), ("map", layer, [])]
        elif type(inner).__name__ in PER_STEP:
            if type(inner).__name__ in ("LayerNormalization", "BatchNormalization", "Normalization"):
                axes = inner.axis if isinstance(inner.axis, (list, tuple)) else [inner.axis]
                if list(axes) not in ([-1], [len(layer.output.shape) - 1]):
                    raise Unavailable(f"{where} normalizes across time steps")
            if type(inner).__name__ not in INFERENCE_NO_OPS:
                stages.append(("map", inner, []))
        elif kind == "Bidirectional":
            raise Unavailable(f"{where} also reads the sequence backwards, from its last step; a "
                              "step model sees one step at a time, first to last")
        elif kind in WHOLE_SEQUENCE:
            raise Unavailable(f"{where} needs the whole sequence at once; a step model sees one "
                              "step at a time")
        else:
            raise Unavailable(f"{where} is not a per-step layer; step models are made for chains "
                              "of LSTM, GRU and SimpleRNN layers with per-step layers (Dense, "
                              "Embedding, normalization, activations)")
    recurrent = [(layer, names) for k, layer, names in stages if k == "rnn"]
    if not recurrent:
        raise Unavailable("the model has no LSTM, GRU or SimpleRNN layer to step")
    if len(recurrent) == 1:  # one recurrent layer: its state is h (and c)
        layer, prefix = recurrent[0][0], f"{_clean(recurrent[0][0].name)}_"
        stages = [(k, la, [n.removeprefix(prefix) for n in names] if la is layer else names)
                  for k, la, names in stages]
    return stages


def step_io(subject, stages) -> dict:
    """Inputs, outputs and state of the one-step form (the manifest's step)."""
    interface = subject.interface
    x = interface.inputs[0]
    out_name, out_shape = interface.outputs[0]
    every = any(k == "rnn" for k, _, _ in stages) and all(
        layer.return_sequences for k, layer, _ in stages if k == "rnn")
    y_shape = list(out_shape[1:] if every else out_shape)
    state, ins, outs = [], [], []
    for _, layer, names in stages:
        for name in names:
            shape = [None, int(layer.cell.units)]
            ins.append({"name": name, "shape": shape, "dtype": "float32"})
            outs.append({"name": f"{name}_out", "shape": shape, "dtype": "float32"})
            state.append({"input": name, "output": f"{name}_out", "shape": shape, "initial": 0.0,
                          "layer": layer.name})
    names = [s["input"] for s in state]
    return {
        "inputs": [{"name": x.name, "shape": [None, *x.shape[1:]], "dtype": x.dtype}, *ins],
        "outputs": [{"name": out_name, "shape": [None, *y_shape], "dtype": "float32"}, *outs],
        "state": state,
        "steps": interface.timesteps,
        "sequence_output": "every_step" if every else "last_step",
        "reset": (f"at the start of each sequence feed zeros as {', '.join(names)}; after each "
                  f"step feed {', '.join(f'{n}_out' for n in names)} back in their place"),
    }


def _step(subject, native: bool = False):
    """The traced step function, its signature and io; native: each recurrent layer a
    placeholder for an ONNX node (with the tf2onnx handlers that write them)."""
    key = "step_native" if native else "step"
    if key in subject.cache:
        return subject.cache[key]
    tf = import_tensorflow()
    from .native_rnn import StepNodes

    stages = plan_steps(subject)
    io = step_io(subject, stages)
    signature = [tf.TensorSpec(d["shape"], tf.as_dtype(d["dtype"]), name=d["name"])
                 for d in io["inputs"]]
    nodes = StepNodes([layer for kind, layer, _ in stages if kind == "rnn"] if native else [])

    def step(x, *states):
        h, k, new_states, keep, sequence = x, 0, [], None, True
        for kind, layer, names in stages:
            if kind == "mask":  # this step's mask, as the layer computes it for the sequence
                keep = tf.reshape(layer.compute_mask(h), (-1, 1))
                continue
            if kind == "map" and sequence and type(layer).__name__ in SEQUENCE_RANK:
                h = layer(tf.expand_dims(h, 1), training=False)[:, 0]
                continue
            if kind == "map":
                h = layer(h, training=False)
                continue
            sequence = sequence and layer.return_sequences
            mine = list(states[k:k + len(names)])
            k += len(names)
            done = nodes.call(layer, h, mine) if native else None
            h, new = done if done is not None else layer.cell(h, mine, training=False)
            new = list(new) if isinstance(new, (list, tuple)) else [new]
            if keep is not None:  # Keras skips a masked step: the state stays
                new = [tf.where(keep, n, old) for n, old in zip(new, mine, strict=True)]
                h = tf.where(keep, h, tf.zeros_like(h) if layer.zero_output_for_mask else mine[0])
            new_states += new
        return [h, *new_states]

    function = tf.function(step, input_signature=signature)
    function.get_concrete_function()  # traces now, so that the placeholders are registered
    subject.cache[key] = (function, signature, io, nodes.handlers())
    return subject.cache[key]


def to_step_tflite(subject) -> bytes:
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    from .tflite import finish_tflite

    tf = import_tensorflow()
    function, _, io, _ = _step(subject)
    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return finish_tflite(converter.convert(), [d["name"] for d in io["outputs"]])


def to_step_onnx(subject) -> bytes:
    import onnx

    from .onnx import finish, from_function

    function, signature, io, handlers = _step(subject, native=True)
    proto = from_function(function, signature, handlers)
    finish(proto, [d["name"] for d in io["outputs"]],
           {d["name"]: tuple(d["shape"][1:]) for d in [*io["inputs"], *io["outputs"]]})
    proto.graph.name = f"{subject.name}.step"
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString(deterministic=True)


def _contract(subject, path) -> dict:
    return {"step": _step(subject)[2]}


FORMS = (
    Form("tflite_step", ".step.tflite", "tflite", to_step_tflite, ("tensorflow",), _contract),
    Form("onnx_step", ".step.onnx", "onnx", to_step_onnx, ("edge-echo", "onnx"), _contract),
)
