"""Versions of the tools that produce and run exports, without importing them."""

from __future__ import annotations

import hashlib
import platform
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("edge-echo", "tensorflow", "keras", "tf-keras", "tf2onnx", "onnx", "onnxruntime",
            "ai-edge-litert", "tflite-micro", "numpy")
# edge-echo's own code, as a digest of its sources: the version number stays 0.1.0 while the
# converters change, and a file made by other code must never be reused as this code's.
SOURCE = "edge-echo-source"


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found[SOURCE] = source_digest()
    return found


@cache
def source_digest() -> str:
    """sha256 over every module of the edge_echo package, by relative path and content."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
