"""Load and run a model file in a child process, so a runtime that crashes on it cannot take us down.

ONNX Runtime and LiteRT are native code: a malformed or unlucky file can
make them abort or segfault (ONNX Runtime 1.32 segfaults optimizing a
float16 Transpose the float16 converter writes). The child loads the file,
runs it once on zeros, and the parent turns a signal into one line.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

_CHILD = """
import sys
import numpy as np
from edge_echo.device import open_runner
runner = open_runner(sys.argv[1])
names = [f"i{k}" for k in range(len(runner.file_inputs))]
runner.input_names = names
runner.output_names = [f"o{k}" for k in range(len(runner.file_outputs))]
runner.infer({n: np.zeros([1 if d is None else d for d in s], np.float32)
              for n, s in zip(names, runner.file_inputs)})
"""


def probe(path: Path, timeout: float = 120) -> str | None:
    """None if the file loads and runs; otherwise why not, in one line."""
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"the runtime did not finish loading and running it within {timeout:.0f} s"
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return f"the runtime crashed ({name}) loading or running it"
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"the runtime exited with code {done.returncode}"
