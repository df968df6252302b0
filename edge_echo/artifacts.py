"""What a model file holds: its inputs, outputs and operators, read from the file itself.

TFLite files are read with the flatbuffer schema that ai-edge-litert ships,
so this needs no TensorFlow and does not execute the model.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .errors import ArtifactError


def _tflite_names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def describe_tflite(path: Path) -> dict:
    return describe_tflite_bytes(path.read_bytes(), path.name)


def describe_tflite_bytes(buf: bytes, name: str = "the model") -> dict:
    from ai_edge_litert import schema_py_generated as schema

    try:
        if not schema.Model.ModelBufferHasIdentifier(buf, 0):
            raise ValueError("no TFL3 identifier")
        model = schema.Model.GetRootAs(buf, 0)
        op_names = _tflite_names(schema.BuiltinOperator)
        type_names = _tflite_names(schema.TensorType)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = op_names.get(builtin, str(builtin))
            if name == "CUSTOM":
                name = "CUSTOM:" + (code.CustomCode() or b"").decode()
            codes.append(name)
        ops: Counter[str] = Counter()
        for s in range(model.SubgraphsLength()):
            sub = model.Subgraphs(s)
            for o in range(sub.OperatorsLength()):
                ops[codes[sub.Operators(o).OpcodeIndex()]] += 1
        main = model.Subgraphs(0)

        def tensor(index: int) -> dict:
            t = main.Tensors(index)
            sig = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy()
            return {
                "name": t.Name().decode(),
                "shape": [None if d < 0 else int(d) for d in np.atleast_1d(sig)],
                "dtype": type_names[t.Type()].lower(),
            }

        inputs = [tensor(i) for i in main.InputsAsNumpy()]
        outputs = [tensor(i) for i in main.OutputsAsNumpy()]
        tensor_types = Counter(type_names[main.Tensors(i).Type()].lower()
                               for i in range(main.TensorsLength()))
    except ArtifactError:
        raise
    except Exception as exc:  # a malformed flatbuffer raises anything from struct to IndexError
        raise ArtifactError(f"{name}: not a readable TFLite model ({exc})") from None
    return {
        "inputs": inputs,
        "outputs": outputs,
        "operators": dict(sorted(ops.items())),
        "custom_operators": sorted(c for c in set(codes) if c.startswith("CUSTOM:")),
        "tensor_types": dict(sorted(tensor_types.items())),
    }


def describe_onnx(path: Path) -> dict:
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ArtifactError(f"{path.name}: not a readable ONNX model ({exc})") from None

    def value(v) -> dict:
        dims = v.type.tensor_type.shape.dim
        return {
            "name": v.name,
            "shape": [d.dim_value if d.HasField("dim_value") else None for d in dims],
            "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
        }

    ops = Counter(node.op_type for node in model.graph.node)
    weight_types = Counter(onnx.helper.tensor_dtype_to_np_dtype(t.data_type).name
                           for t in model.graph.initializer)
    return {
        "weight_types": dict(sorted(weight_types.items())),
        "inputs": [value(v) for v in model.graph.input],
        "outputs": [value(v) for v in model.graph.output],
        "operators": dict(sorted(ops.items())),
        "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
    }
