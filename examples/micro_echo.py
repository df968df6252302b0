"""A microcontroller app's loop, in Python with the TFLM interpreter (tflite-micro, no TensorFlow).

Runs an edge-echo micro file as TFLM runs it on a device: one arena of the
size the manifest declares, the operators it lists, and the contract the
fused LSTM asks for: reset before each sequence (whole-sequence files), or
reset at the start of a sequence and invoke once per time step (step files).

    python examples/micro_echo.py exported/many-to-one.micro.tflite 0.0 0.2 0.4 0.6 0.8
    python examples/micro_echo.py exported/many-to-many.micro.step.tflite 0.0 0.2 0.4 0.6 0.8
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tflite_micro.python.tflite_micro import runtime


def micro_entry(model: Path) -> dict:
    manifest = json.loads((model.parent / "manifest.json").read_text())
    for entry in manifest["models"].values():
        for artifact in entry["artifacts"].values():
            if artifact["file"] == model.name and "micro" in artifact:
                return artifact
    raise SystemExit(f"{model.name} is not a micro file listed in the manifest beside it")


def tenths(values) -> str:
    """'%.1f' as the seed notebook prints, without '-0.0' for a value just below zero."""
    return " ".join(f"{round(float(v), 1) + 0.0:.1f}" for v in np.ravel(values))


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    model, values = Path(argv[0]), [float(v) for v in argv[1:]]
    artifact = micro_entry(model)
    interpreter = runtime.Interpreter.from_file(str(model),
                                                arena_size=artifact["micro"]["arena_bytes"])
    shape = interpreter.get_input_details(0)["shape"]  # (1, time steps, features)
    interpreter.reset()  # the start of a sequence
    if "step" in artifact:
        for value in values:  # one time step per invoke; h and c stay inside the interpreter
            interpreter.set_input(np.full(shape, value, np.float32), 0)
            interpreter.invoke()
            print(f"in {value:.1f} -> out {tenths(interpreter.get_output(0))}", flush=True)
        return 0
    interpreter.set_input(np.array(values, np.float32).reshape(shape), 0)
    interpreter.invoke()
    print(tenths(interpreter.get_output(0)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
