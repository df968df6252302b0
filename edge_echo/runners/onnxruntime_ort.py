"""ONNX Runtime on the ORT format (.ort), the form ONNX Runtime Mobile builds load: the same
CPU execution provider as onnxruntime, the file opened as ORT format explicitly, so a .ort
that ONNX Runtime could only read as ONNX (or the reverse) fails here."""

from __future__ import annotations

from .base import SteppedRunner
from .onnxruntime import OnnxRunner


class OrtRunner(OnnxRunner):
    runtime = "onnxruntime-ort"
    artifact = "ort"
    session_config = {"session.load_model_format": "ORT"}


class OrtStepRunner(SteppedRunner):
    runtime = "onnxruntime-ort-step"
    artifact = "ort_step"
    inner = OrtRunner
