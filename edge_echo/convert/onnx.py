"""Keras LSTM -> ONNX with a native LSTM node and a dynamic batch.

tf2onnx.convert.from_keras fails on Keras 3 models (tensorflow-onnx #2448);
from_function on a tf.function with an explicit TensorSpec works. A dynamic
batch (None) lets tf2onnx match the while loop to a native LSTM node; a fixed
batch gives a Loop that ONNX Runtime runs several times slower.
"""

from __future__ import annotations

import re

from ..errors import first_line
from ..tfenv import import_tensorflow
from .onnx_simplify import canonicalize, simplify, toposort

# tf2onnx 1.17 accepts opsets up to 18.
OPSET = 18
BATCH_DIM = "batch"


def to_onnx(subject) -> bytes:
    """The .onnx form; converted once per subject (the step form reuses its weights)."""
    if "onnx" not in subject.cache:
        subject.cache["onnx"] = _convert(subject)
    return subject.cache["onnx"]


def _convert(subject) -> bytes:
    tf = import_tensorflow()
    import onnx

    from .native_rnn import native_recurrences
    from .tflite import call, inference_clone, signature

    i = subject.interface
    # None keeps the time steps open in the ONNX file where the model leaves them open.
    inputs = [(x.name, x.model_shape or x.shape, x.dtype) for x in i.inputs]
    if subject.graph_only:  # the serving signature as it is; tf2onnx matches its loops itself
        function, specs = subject.model.traced(i.input_names, [shape for _, shape, _ in inputs])
        proto = from_function(function, specs)
    else:
        model = inference_clone(subject.model, inputs, unroll=False)
        handlers = native_recurrences(model)
        specs = signature(inputs)
        function = tf.function(call(model, len(inputs)), input_signature=specs)
        proto = from_function(function, specs, handlers)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        # Name the TF node (and so the layer) behind an operator ONNX does not know.
        reason = first_line(exc, limit=10_000)
        culprits = [n.name for n in proto.graph.node if re.search(rf"\b{n.op_type}\b", reason)
                    and n.op_type not in ("Add", "Mul", "Cast")]
        raise RuntimeError(f"{reason} (node {culprits[0]})" if culprits else reason) from None
    # Where the time steps are fixed every dimension but the batch is known, which tf2onnx
    # can lose through reshapes.
    shapes = ({**{x.name: x.shape for x in i.inputs}, **dict(i.outputs)}
              if i.model_timesteps is not None else None)
    finish(proto, i.output_names, shapes)
    proto.graph.name = subject.name
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString(deterministic=True)


def from_function(function, specs, handlers=None):
    """tf2onnx's graph of a tf.function. Constants the function captured from Python (an
    adapted Normalization's mean and variance) would become extra graph inputs in tf2onnx:
    such a function is frozen first, and they are constants of the graph."""
    import tf2onnx

    tf = import_tensorflow()
    concrete = function.get_concrete_function()
    if any(t.dtype != tf.resource for t in concrete.captured_inputs):
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        frozen = convert_variables_to_constants_v2(concrete)
        function = tf.function(lambda *xs: frozen(*xs), input_signature=specs)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=OPSET,
                                             custom_op_handlers=handlers)
    return proto


def finish(proto, output_names: list[str], shapes: dict[str, tuple[int, ...]] | None = None) -> None:
    """What every graph from tf2onnx gets: our output names, nodes in order, the simplifications,
    position-based names, and a named batch dimension (with the other dimensions from shapes)."""
    renames = {o.name: name for o, name in zip(proto.graph.output, output_names, strict=True)}
    # tf2onnx names outputs after TF tensors ('Identity:0'); a device app wants 'y'.
    for node in proto.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    for value in proto.graph.output:
        value.name = renames[value.name]
    toposort(proto.graph)  # tf2onnx's GRU and SimpleRNN rewrites leave nodes out of order
    simplify(proto)
    canonicalize(proto)
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if shapes and value.name in shapes:
            del dims[:]
            dims.add()
            for size in shapes[value.name]:
                dims.add().dim_value = size
        if dims:
            dims[0].Clear()
            dims[0].dim_param = BATCH_DIM


def _forms():
    from ..forms import Form

    return (Form("onnx", ".onnx", "onnx", to_onnx, ("tf2onnx", "onnx", "tensorflow"),
                 lambda subject, path: {"target_opset": OPSET}, graph=True),)


FORMS = _forms()
