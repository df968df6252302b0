"""ONNX Runtime Node (npm onnxruntime-node), its CPU execution provider, in Node: the .onnx
and .ort files as a Node service or an Electron app runs them."""

from __future__ import annotations

from .base import SteppedRunner
from .javascript import JsRunner


class OnnxNodeRunner(JsRunner):
    runtime = "onnxruntime-node"
    artifact = "onnx"
    twin = "onnxruntime"
    host_kind, engine, packages = "node", "onnxruntime", ("onnxruntime-node",)


class OrtNodeRunner(OnnxNodeRunner):
    """The .ort file, opened as ORT format explicitly (as the Python .ort runner does)."""

    runtime = "onnxruntime-node-ort"
    artifact = "ort"
    twin = "onnxruntime-ort"
    options = {"extra": {"session": {"load_model_format": "ORT"}}}


class OnnxNodeStepRunner(SteppedRunner):
    runtime = "onnxruntime-node-step"
    artifact = "onnx_step"
    inner = OnnxNodeRunner


class OrtNodeStepRunner(SteppedRunner):
    runtime = "onnxruntime-node-ort-step"
    artifact = "ort_step"
    inner = OrtNodeRunner
