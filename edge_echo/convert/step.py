"""The one-step form of a model: (x_t, state...) -> (y_t, state_out...).

A device that reads one value at a time from a sensor runs this once per
value, feeding the state back. Both formats carry the state as explicit
inputs and outputs, one pair per state tensor of each recurrent layer (an
LSTM has h and c, a GRU or SimpleRNN h), so the files hold no state between
calls.

A user's model is read into a plan (plan_steps): a chain of unidirectional
LSTM, GRU and SimpleRNN layers and per-step layers (Dense, Embedding,
normalization, activations). A layer that needs the whole sequence
(Bidirectional, go_backwards, pooling over time, a convolution over time,
masking) gets a one-line reason instead. The step is each layer's own cell
and weights, traced for one step:

- TFLite: frozen like the full model (builtin ops only);
- ONNX: the same traced step through tf2onnx (one step has no loop).

The echo models keep their hand-built ONNX step: a native LSTM node over a
sequence of one step, built from the W, R and B initializers of the exported
full .onnx and the Dense kernel and bias, so both files share the same weights.
"""

from __future__ import annotations

import numpy as np

from ..forms import Form, Unavailable
from ..tfenv import import_tensorflow
from .onnx import BATCH_DIM, OPSET, to_onnx

RECURRENT = ("LSTM", "GRU", "SimpleRNN")
# Layers that map each step on its own (or, after the last recurrent layer, the one vector).
PER_STEP = ("Dense", "Embedding", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax",
            "LayerNormalization", "BatchNormalization", "Dropout", "GaussianNoise",
            "GaussianDropout", "AlphaDropout", "SpatialDropout1D", "ActivityRegularization",
            "Identity", "Rescaling")
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
            state = [f"{_clean(layer.name)}_h"] + ([f"{_clean(layer.name)}_c"] if kind == "LSTM"
                                                   else [])
            stages.append(("rnn", layer, state))
            if not layer.return_sequences:
                collapsed = layer.name
        elif kind == "Masking" or (kind == "Embedding" and layer.mask_zero):
            # Keras skips a masked step: the state stays, the output repeats (or is zero).
            if any(k == "rnn" for k, _, _ in stages) or any(k == "mask" for k, _, _ in stages):
                raise Unavailable(f"{where} masks steps after the first recurrent layer")
            stages += [("mask", layer, []), ("map", layer, [])]
        elif type(inner).__name__ in PER_STEP:
            if type(inner).__name__ in ("LayerNormalization", "BatchNormalization"):
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
    if not any(k == "rnn" for k, _, _ in stages):
        raise Unavailable("the model has no LSTM, GRU or SimpleRNN layer to step")
    return stages


def user_step_io(subject, stages) -> dict:
    """Inputs, outputs and state of a user model's one-step form (the manifest's step)."""
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


def _user_step(subject):
    """The traced step function of a user model and its io (cached: both formats use it)."""
    if "step" in subject.cache:
        return subject.cache["step"]
    tf = import_tensorflow()
    stages = plan_steps(subject)
    io = user_step_io(subject, stages)
    signature = [tf.TensorSpec(d["shape"], tf.as_dtype(d["dtype"]), name=d["name"])
                 for d in io["inputs"]]

    def step(x, *states):
        h, k, new_states, keep = x, 0, [], None
        for kind, layer, names in stages:
            if kind == "mask":  # this step's mask, as the layer computes it for the sequence
                keep = tf.reshape(layer.compute_mask(h), (-1, 1))
                continue
            if kind == "map":
                h = layer(h, training=False)
                continue
            mine = list(states[k:k + len(names)])
            k += len(names)
            h, new = layer.cell(h, mine, training=False)
            new = list(new) if isinstance(new, (list, tuple)) else [new]
            if keep is not None:
                new = [tf.where(keep, n, old) for n, old in zip(new, mine, strict=True)]
                h = tf.where(keep, h, tf.zeros_like(h) if layer.zero_output_for_mask else mine[0])
            new_states += new
        return [h, *new_states]

    function = tf.function(step, input_signature=signature)
    subject.cache["step"] = (function, signature, io)
    return subject.cache["step"]


def _spec(subject):
    return subject.spec


def to_step_tflite(subject) -> bytes:
    from .tflite import name_outputs

    tf = import_tensorflow()
    if subject.spec is None:
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        function, _, io = _user_step(subject)
        frozen = convert_variables_to_constants_v2(function.get_concrete_function())
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return name_outputs(converter.convert(), [d["name"] for d in io["outputs"]])
    model, spec = subject.model, _spec(subject)
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    io = spec.step_io()
    lstm = model.get_layer("lstm")
    dense = model.layers[-1].layer if spec.time_distributed else model.layers[-1]
    signature = [tf.TensorSpec(d["shape"], tf.float32, name=d["name"]) for d in io["inputs"]]

    def step(x, h, c):
        h_out, (_, c_out) = lstm.cell(x, [h, c], training=False)
        return dense(h_out), h_out, c_out

    function = tf.function(step, input_signature=signature)
    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return name_outputs(converter.convert(), [d["name"] for d in io["outputs"]])


def _user_step_onnx(subject) -> bytes:
    import onnx
    import tf2onnx

    from .onnx import finish

    function, signature, io = _user_step(subject)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET)
    finish(proto, [d["name"] for d in io["outputs"]],
           {d["name"]: tuple(d["shape"][1:]) for d in [*io["inputs"], *io["outputs"]]})
    proto.graph.name = f"{subject.name}.step"
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString(deterministic=True)


def to_step_onnx(subject) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if subject.spec is None:
        return _user_step_onnx(subject)
    spec = _spec(subject)
    full = onnx.load_from_string(to_onnx(subject))
    consts = {t.name: t for t in full.graph.initializer}
    lstm = next(n for n in full.graph.node if n.op_type == "LSTM")
    # The Dense comes from Keras: with one unit tf2onnx writes it without a MatMul (--length 1).
    model = subject.model
    dense = model.layers[-1].layer if spec.time_distributed else model.layers[-1]

    io = spec.step_io()
    (x, h, c), (y, h_out, c_out) = ([d["name"] for d in io[k]] for k in ("inputs", "outputs"))
    weights = []
    for role, name in (("W", lstm.input[1]), ("R", lstm.input[2]), ("B", lstm.input[3])):
        t = onnx.TensorProto()
        t.CopyFrom(consts[name])
        t.name = role
        weights.append(t)
    weights += [numpy_helper.from_array(np.asarray(dense.kernel, np.float32), "dense_kernel"),
                numpy_helper.from_array(np.asarray(dense.bias, np.float32), "dense_bias")]
    weights.append(numpy_helper.from_array(np.array([0], np.int64), "axis0"))
    nodes = [
        helper.make_node("Unsqueeze", [x, "axis0"], ["x_seq"]),
        helper.make_node("Unsqueeze", [h, "axis0"], ["h0"]),
        helper.make_node("Unsqueeze", [c, "axis0"], ["c0"]),
        helper.make_node("LSTM", ["x_seq", "W", "R", "B", "", "h0", "c0"], ["", "Y_h", "Y_c"],
                         hidden_size=spec.units, direction="forward"),
        helper.make_node("Squeeze", ["Y_h", "axis0"], [h_out]),
        helper.make_node("Squeeze", ["Y_c", "axis0"], [c_out]),
        helper.make_node("MatMul", [h_out, "dense_kernel"], ["dense"]),
        helper.make_node("Add", ["dense", "dense_bias"], [y]),
    ]

    def value(d):
        return helper.make_tensor_value_info(d["name"], TensorProto.FLOAT,
                                             [BATCH_DIM, *d["shape"][1:]])

    graph = helper.make_graph(nodes, f"{spec.name}.step", [value(d) for d in io["inputs"]],
                              [value(d) for d in io["outputs"]], initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="edge-echo")
    model.ir_version = full.ir_version
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(deterministic=True)


def _contract(subject, path) -> dict:
    if subject.spec is None:
        return {"step": _user_step(subject)[2]}
    return {"step": subject.spec.step_io()}


FORMS = (
    Form("tflite_step", ".step.tflite", "tflite", to_step_tflite, ("tensorflow",), _contract),
    Form("onnx_step", ".step.onnx", "onnx", to_step_onnx, ("edge-echo", "onnx"), _contract),
)
