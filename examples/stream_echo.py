"""A device app in miniature: stream sensor values through an edge-echo step model.

Needs only numpy and one runtime (onnxruntime or ai-edge-litert): no
TensorFlow, no edge-echo. The state names and shapes come from the
manifest.json beside the model, as a device app's build step would read them.

    python examples/stream_echo.py exported/many-to-many.step.tflite 0.0 0.2 0.4 0.6 0.8
    printf '0.0\\n0.2\\n0.4\\n' | python examples/stream_echo.py exported/many-to-many.step.onnx
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def step_description(model: Path) -> dict:
    manifest = json.loads((model.parent / "manifest.json").read_text())
    for entry in manifest["models"].values():
        for artifact in entry["artifacts"].values():
            if artifact["file"] == model.name and "step" in artifact:
                return artifact["step"]
    raise SystemExit(f"{model.name} is not a step model listed in the manifest beside it")


def make_step(model: Path, step: dict):
    """Returns run(feed: dict of name -> array) -> dict of name -> array."""
    in_names = [d["name"] for d in step["inputs"]]
    out_names = [d["name"] for d in step["outputs"]]
    if model.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        return lambda feed: dict(zip(out_names, session.run(out_names, feed), strict=True))

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    # TFLite tensors are matched by position, in the order the manifest lists them.
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()

    def run(feed):
        for detail, name in zip(inputs, in_names, strict=True):
            interpreter.set_tensor(detail["index"], feed[name])
        interpreter.invoke()
        return {name: interpreter.get_tensor(d["index"]).copy()
                for d, name in zip(outputs, out_names, strict=True)}

    return run


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    model = Path(argv[0])
    step = step_description(model)
    run = make_step(model, step)
    x_name, y_name = step["inputs"][0]["name"], step["outputs"][0]["name"]
    # Zero state at the start of a sequence, as the manifest's "reset" says.
    state = {s["input"]: np.full((1, *s["shape"][1:]), s["initial"], np.float32)
             for s in step["state"]}
    values = argv[1:] or (line for line in sys.stdin if line.strip())
    for value in values:
        out = run({x_name: np.array([[float(value)]], np.float32), **state})
        state = {s["input"]: out[s["output"]] for s in step["state"]}
        print(f"in {float(value):.1f} -> out {' '.join(f'{v:.1f}' for v in out[y_name].ravel())}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
