"""The one-step form of an echo model: (x_t, h, c) -> (y_t, h_out, c_out).

A device that reads one value at a time from a sensor runs this once per
value, feeding the state back. Both formats carry the state as explicit
inputs and outputs, so the files themselves hold no state between calls.

- TFLite: the trained LSTM's own cell and Dense, traced for one step and
  frozen like the full model (builtin ops only).
- ONNX: a native LSTM node over a sequence of one step, built from the W, R
  and B initializers of the exported full .onnx (already in ONNX's gate order)
  and its Dense kernel and bias, so both files share the same weights.
"""

from __future__ import annotations

import numpy as np

from ..forms import Form, Unavailable
from ..tfenv import import_tensorflow
from .onnx import BATCH_DIM, OPSET, to_onnx


def _spec(subject):
    if subject.spec is None:
        raise Unavailable("step models are made for the echo models only so far")
    return subject.spec


def to_step_tflite(subject) -> bytes:
    tf = import_tensorflow()
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
    return converter.convert()


def to_step_onnx(subject) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

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
    return {"step": subject.spec.step_io()}


FORMS = (
    Form("tflite_step", ".step.tflite", "tflite", to_step_tflite, ("tensorflow",), _contract),
    Form("onnx_step", ".step.onnx", "onnx", to_step_onnx, ("edge-echo", "onnx"), _contract),
)
