"""ONNX Runtime Web (npm onnxruntime-web) on its WebAssembly backend, in headless Chromium:
the .onnx and .ort files as a web page runs them (one thread, no proxy worker)."""

from __future__ import annotations

from .base import SteppedRunner
from .javascript import JsRunner


class OnnxWebRunner(JsRunner):
    runtime = "onnxruntime-web"
    artifact = "onnx"
    twin = "onnxruntime"
    host_kind, engine, packages = "browser", "onnxruntime", ("onnxruntime-web",)
    where = "Chromium"


class OrtWebRunner(OnnxWebRunner):
    """The .ort file, opened as ORT format explicitly."""

    runtime = "onnxruntime-web-ort"
    artifact = "ort"
    twin = "onnxruntime-ort"
    options = {"extra": {"session": {"load_model_format": "ORT"}}}


class OnnxWebStepRunner(SteppedRunner):
    runtime = "onnxruntime-web-step"
    artifact = "onnx_step"
    inner = OnnxWebRunner


class OrtWebStepRunner(SteppedRunner):
    runtime = "onnxruntime-web-ort-step"
    artifact = "ort_step"
    inner = OrtWebRunner
