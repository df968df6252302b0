"""Versions of the tools that produce and run exports, without importing them."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("edge-echo", "tensorflow", "keras", "tf-keras", "tf2onnx", "onnx", "onnxruntime",
            "ai-edge-litert", "tflite-micro", "numpy")


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found
