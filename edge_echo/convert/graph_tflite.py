"""A serving graph (no Keras layers) -> TFLite, where its recurrent loop keeps a dynamic batch.

A Keras model's recurrent layers are unrolled for TFLite (tflite.py); a bare graph has no layers
to unroll. Its while loop writes each step into a TensorList whose element shape Keras leaves
open in the batch ([-1, units]), and LiteRT's builtins lower a TensorList only with a static
element shape (`tf.TensorListReserve requires element_shape to be static`). So the graph is
frozen at batch 1, its functions are inlined into one GraphDef (tf2onnx's loader, which tf2onnx
itself converts from), and each TensorList's element shape is computed from the input's static
shape, its open batch set to 1: the loop becomes LiteRT's builtin WHILE. The file takes one
sequence per invoke; verify runs it one sequence at a time and compares it like any other.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

# A graph with no loop: converted as it is, any batch.
FROZEN_ROUTE = "graph-frozen"
FROZEN_NOTE = ("the serving graph with its variables frozen to constants, TFLITE_BUILTINS only: "
               "stateless, dynamic batch")
ROUTE = "graph-batch-1"
ROUTE_NOTE = (
    "the serving graph frozen at batch 1, its functions inlined and each TensorList's element "
    "shape made static, so LiteRT runs the recurrent loop as a builtin WHILE: batch 1, one "
    "sequence per invoke, stateless")
# The input that holds a TensorList op's element shape.
ELEMENT_SHAPE_INPUT = {"TensorListReserve": 0, "EmptyTensorList": 0, "TensorListStack": 1,
                       "TensorListFromTensor": 1}


@dataclass
class FrozenGraph:
    """What TFLite's GraphDef converter takes: the frozen graph, its ends and their shapes."""

    graph_def: bytes
    inputs: list[str]
    outputs: list[str]
    shapes: dict[str, list[int]]


def contract(subject) -> dict:
    """The conversion a graph's .tflite had: as it is, or at batch 1 (its loop)."""
    if isinstance(subject.cache.get("frozen"), FrozenGraph):
        return {"route": ROUTE, "note": ROUTE_NOTE, "stateful": False, "batch": 1,
                "timesteps": subject.interface.timesteps}
    return {"route": FROZEN_ROUTE, "note": FROZEN_NOTE, "stateful": False,
            "timesteps": subject.interface.timesteps}


def batch_one(subject) -> FrozenGraph:
    import numpy as np
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )
    from tf2onnx import tf_loader

    from ..tfenv import import_tensorflow

    tf = import_tensorflow()
    graph, i = subject.model, subject.interface
    specs = [tf.TensorSpec((1, *x.shape), spec.dtype, name=x.name)
             for x, spec in zip(i.inputs, graph.input_specs, strict=True)]
    keys, outs, function = graph.input_keys, graph.output_keys, graph.function
    traced = tf.function(lambda *xs: [function(**dict(zip(keys, xs, strict=True)))[k]
                                      for k in outs], input_signature=specs)
    concrete = convert_variables_to_constants_v2(traced.get_concrete_function())
    inputs, outputs = [t.name for t in concrete.inputs], [t.name for t in concrete.outputs]
    graph_def = tf_loader.from_function(concrete, inputs, outputs)
    probe = tf.Graph()
    with probe.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    nodes = {n.name: n for n in graph_def.node}
    for op in probe.get_operations():
        if op.type not in ELEMENT_SHAPE_INPUT:
            continue
        k = ELEMENT_SHAPE_INPUT[op.type]
        value = tf.get_static_value(op.inputs[k])
        if value is None:
            continue
        value = np.array(value, np.int32).reshape(-1)
        if len(value) and value[0] == -1 and np.all(value[1:] >= 0):
            value[0] = 1  # the open batch of a per-step element: this graph's batch is 1
        if len(value) == 0 or np.any(value < 0):
            continue
        const = graph_def.node.add()
        const.name, const.op = f"{op.name}/static_element_shape", "Const"
        const.attr["dtype"].type = tf.int32.as_datatype_enum
        const.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, tf.int32))
        nodes[op.name].input[k] = const.name
    names = [name.split(":")[0] for name in inputs]
    return FrozenGraph(graph_def.SerializeToString(), names,
                       [name.split(":")[0] for name in outputs],
                       {n: [1, *x.shape] for n, x in zip(names, i.inputs, strict=True)})


def converter(frozen: FrozenGraph):
    from ..tfenv import import_tensorflow

    tf = import_tensorflow()
    with tempfile.TemporaryDirectory(prefix="edge-echo-graph-") as tmp:
        path = Path(tmp) / "frozen.pb"
        path.write_bytes(frozen.graph_def)
        made = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
            str(path), frozen.inputs, frozen.outputs, input_shapes=frozen.shapes)
    made.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return made
