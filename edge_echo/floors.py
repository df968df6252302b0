"""The cheapest model each runtime can run with a model's input and output shapes.

Timing it in the same process as the real model tells how much of a latency
is the model and how much is the fixed cost of one call into the runtime.
Each floor is a single reshape (the echo models map N x T x F to as many
values), built without TensorFlow for ONNX and TFLite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UsageError


def _check(input_shape, output_shape) -> None:
    if int(np.prod(input_shape)) != int(np.prod(output_shape)):
        raise UsageError(f"no reshape floor from {list(input_shape)} to {list(output_shape)}")


def onnx_floor(path: Path, input_name: str, output_name: str, input_shape, output_shape) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    _check(input_shape, output_shape)
    shape = numpy_helper.from_array(np.array([-1, *output_shape], np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", [input_name, "shape"], [output_name])],
        "floor",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", *input_shape])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", *output_shape])],
        initializer=[shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, str(path))
    return path


def tflite_floor(path: Path, input_name: str, output_name: str, input_shape, output_shape) -> Path:
    """A one-op RESHAPE flatbuffer, written with the schema ai-edge-litert ships."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    _check(input_shape, output_shape)

    def tensor(name, shape, buffer, dtype=s.TensorType.FLOAT32):
        t = s.TensorT()
        t.name, t.type, t.buffer = name, dtype, buffer
        t.shape = [1, *shape]
        t.shapeSignature = [-1, *shape]
        return t

    new_shape = np.array([-1, *output_shape], np.int32)
    shape_tensor = tensor("shape", [], 1, s.TensorType.INT32)
    shape_tensor.shape = shape_tensor.shapeSignature = [len(new_shape)]
    sub = s.SubGraphT()
    sub.tensors = [tensor(input_name, input_shape, 0), shape_tensor,
                   tensor(output_name, output_shape, 0)]
    sub.inputs, sub.outputs = [0], [2]
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    op.builtinOptionsType = s.BuiltinOptions.ReshapeOptions
    op.builtinOptions = s.ReshapeOptionsT()
    sub.operators = [op]
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.RESHAPE
    code.version = 1
    empty, data = s.BufferT(), s.BufferT()
    data.data = new_shape.tobytes()
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [sub]
    model.buffers = [empty, data]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def keras_floor(path: Path, input_name: str, input_shape, output_shape) -> Path:
    from .tfenv import import_tensorflow

    import_tensorflow()
    import keras

    _check(input_shape, output_shape)
    inputs = keras.Input(shape=tuple(input_shape), name=input_name)
    keras.Model(inputs, keras.layers.Reshape(tuple(output_shape))(inputs)).save(path)
    return path
