"""The cheapest model each runtime can run with a model's input and output shapes.

Timing it in the same process as the real model tells how much of a latency
is the model and how much is the fixed cost of one call into the runtime.
Each floor is a single reshape (the echo models map N x T x F to as many
values), built for ONNX and TFLite with neither TensorFlow nor `onnx`, so
bench runs on the runtime install.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def floor_output(input_shape, output_shape) -> list[int]:
    """The floor's output: the model's output shape where the input has as many values, else
    the input flattened (a model whose output is smaller or larger than its input)."""
    if int(np.prod(input_shape)) == int(np.prod(output_shape)):
        return list(output_shape)
    return [int(np.prod(input_shape))]


def onnx_floor(path: Path, input_name: str, output_name: str, input_shape, output_shape) -> Path:
    """A one-node Reshape model, protobuf-encoded by hand: the runtime install has no `onnx`."""
    output_shape = floor_output(input_shape, output_shape)
    new_shape = np.array([-1, *output_shape], "<i8")
    initializer = (b"".join(_int(1, d) for d in new_shape.shape) + _int(2, 7)  # INT64
                   + _bytes(8, b"shape") + _bytes(9, new_shape.tobytes()))
    node = (_bytes(1, input_name.encode()) + _bytes(1, b"shape") + _bytes(2, output_name.encode())
            + _bytes(3, b"floor") + _bytes(4, b"Reshape"))
    graph = (_bytes(1, node) + _bytes(2, b"floor") + _bytes(5, initializer)
             + _bytes(11, _value_info(input_name, input_shape))
             + _bytes(12, _value_info(output_name, output_shape)))
    opset = _bytes(1, b"") + _int(2, ONNX_FLOOR_OPSET)
    model = _int(1, 8) + _bytes(2, b"edge-echo") + _bytes(7, graph) + _bytes(8, opset)
    path.write_bytes(model)
    return path


ONNX_FLOOR_OPSET = 18


def ort_floor(path: Path, input_name: str, output_name: str, input_shape, output_shape) -> Path:
    """The ONNX floor in the ORT format, converted as the .ort forms are."""
    from .convert.ort import to_ort

    source = onnx_floor(path.with_suffix(".onnx"), input_name, output_name, input_shape,
                        output_shape)
    path.write_bytes(to_ort(source, canonical=False))
    return path


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(int(value))


def _bytes(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _value_info(name: str, shape) -> bytes:
    dims = _bytes(1, _bytes(2, b"batch")) + b"".join(_bytes(1, _int(1, d)) for d in shape)
    tensor = _int(1, 1) + _bytes(2, dims)  # elem_type FLOAT
    return _bytes(1, name.encode()) + _bytes(2, _bytes(1, tensor))


def tflite_floor(path: Path, input_name: str, output_name: str, input_shape, output_shape) -> Path:
    """A one-op RESHAPE flatbuffer, written with the schema ai-edge-litert ships."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s

    output_shape = floor_output(input_shape, output_shape)

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
    from .convert.tflite import finish_tflite

    # With the serving_default signature every edge-echo .tflite has (litert-compiled runs by it).
    path.write_bytes(finish_tflite(bytes(builder.Output()), [output_name]))
    return path


def keras_floor(path: Path, input_name: str, input_shape, output_shape) -> Path:
    from .tfenv import import_tensorflow

    import_tensorflow()
    import keras

    output_shape = floor_output(input_shape, output_shape)
    inputs = keras.Input(shape=tuple(input_shape), name=input_name)
    keras.Model(inputs, keras.layers.Reshape(tuple(output_shape))(inputs)).save(path)
    return path


def savedmodel_floor(path: Path, input_name: str, output_name: str, input_shape,
                     output_shape) -> tuple[Path, dict]:
    """The one-reshape graph as a zipped SavedModel with a serving signature, and the entry
    the tensorflow runner reads its names from."""
    import tempfile

    from .readers.graph import zip_dir
    from .tfenv import import_tensorflow

    tf = import_tensorflow()
    shape = tuple(floor_output(input_shape, output_shape))

    class Floor(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, *input_shape), tf.float32)])
        def __call__(self, x):
            return {"y": tf.reshape(x, (-1, *shape))}

    module = Floor()
    with tempfile.TemporaryDirectory(prefix="edge-echo-floor-") as tmp:
        tf.saved_model.save(module, tmp, signatures=module.__call__)
        path.write_bytes(zip_dir(Path(tmp)))
    return path, {"signature": {"inputs": {input_name: "x"}, "outputs": {output_name: "y"}}}


def c_floor(path: Path, input_shape, output_shape) -> tuple[Path, dict]:
    """The C floor: the generated API around one memcpy, and the manifest entry CRunner reads."""
    output_shape = floor_output(input_shape, output_shape)
    size = int(np.prod(output_shape))
    steps, features = (list(input_shape) + [1])[:2] if len(input_shape) >= 2 else (1, size)
    per_step = max(1, size // max(1, steps))
    path.write_text(f"""#include <string.h>
typedef struct {{ float h0[1]; }} floor_state;
void floor_reset(floor_state *s) {{ memset(s, 0, sizeof *s); }}
void floor_step(floor_state *s, const float *x_t, float *y_t)
{{
    (void)s;
    memcpy(y_t, x_t, {min(per_step, int(features))} * sizeof(float));
}}
void floor_predict(const float *x, float *y) {{ memcpy(y, x, {size} * sizeof(float)); }}
""")
    entry = {"outputs": [{"shape": [None, *output_shape]}],
             "c": {"prefix": "floor", "steps": int(steps), "features": int(features),
                   "outputs": size, "sequence_output": "last_step", "state_bytes": 4}}
    return path, entry
