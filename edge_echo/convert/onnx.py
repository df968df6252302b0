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
from .onnx_simplify import canonicalize, simplify

# tf2onnx 1.17 accepts opsets up to 18.
OPSET = 18
BATCH_DIM = "batch"


def to_onnx(model, spec: EchoSpec) -> bytes:
    tf = import_tensorflow()
    import tf2onnx

    signature = tf.TensorSpec((None, *spec.input_shape), tf.float32, name=INPUT_NAME)
    function = tf.function(forward(model, spec), input_signature=[signature])
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[signature], opset=OPSET)
    _rename_output(proto, OUTPUT_NAME)
    simplify(proto)
    canonicalize(proto)
    # The spec knows every dimension but the batch, which tf2onnx can lose
    # through reshapes.
    for value, shape in ((proto.graph.input[0], spec.input_shape),
                         (proto.graph.output[0], spec.output_shape)):
        dims = value.type.tensor_type.shape.dim
        del dims[:]
        dims.add().dim_param = BATCH_DIM
        for size in shape:
            dims.add().dim_value = size
    proto.graph.name = spec.name
    return proto.SerializeToString(deterministic=True)


def _rename_output(proto, name: str) -> None:
    """tf2onnx names the output after the TF tensor ('Identity:0'); a device app wants 'y'."""
    (output,) = proto.graph.output
    old = output.name
    for node in proto.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    output.name = name
