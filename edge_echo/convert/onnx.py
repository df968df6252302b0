"""Keras LSTM -> ONNX with a native LSTM node and a dynamic batch.

tf2onnx.convert.from_keras fails on Keras 3 models (tensorflow-onnx #2448);
from_function on a tf.function with an explicit TensorSpec works. A dynamic
batch (None) lets tf2onnx match the while loop to a native LSTM node; a fixed
batch gives a Loop that ONNX Runtime runs several times slower.
"""

from __future__ import annotations

from ..specs import INPUT_NAME, OUTPUT_NAME, EchoSpec
from ..tfenv import import_tensorflow
from . import forward
from .onnx_simplify import canonicalize, simplify, toposort

# tf2onnx 1.17 accepts opsets up to 18.
OPSET = 18
BATCH_DIM = "batch"


def to_onnx(model, spec: EchoSpec) -> bytes:
    tf = import_tensorflow()
    import tf2onnx

    signature = tf.TensorSpec((None, *spec.input_shape), tf.float32, name=INPUT_NAME)
    function = tf.function(forward(model, spec), input_signature=[signature])
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[signature], opset=OPSET)
    # The spec knows every dimension but the batch, which tf2onnx can lose through reshapes.
    finish(proto, [OUTPUT_NAME], {INPUT_NAME: spec.input_shape, OUTPUT_NAME: spec.output_shape})
    proto.graph.name = spec.name
    return proto.SerializeToString(deterministic=True)


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
