"""What a device does with an exported file: predict a sequence, or stream values through a step model.

Only the runtimes are used (ONNX Runtime, LiteRT), never TensorFlow, and the
file alone is enough: shapes and state are read from the model itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .errors import ArtifactError, UsageError
from .runners import LiteRTRunner, OnnxRunner, Runner

_RUNNER_OF_SUFFIX = {".onnx": OnnxRunner, ".tflite": LiteRTRunner}


def parse_number(text: str, what: str = "value") -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{what} {text!r} is not finite")
    return value


def parse_line(text: str, number: int) -> list[float]:
    """One stream line: numbers separated by spaces or commas."""
    return [parse_number(v, f"line {number}: value") for v in text.replace(",", " ").split()]


def open_runner(path: Path, probe_first: bool = True, runtime: str | None = None) -> Runner:
    """A runner for a file given directly: loaded in a child first, since nothing vouches for it.

    runtime tflm runs a .tflite on TensorFlow Lite Micro instead of LiteRT: a file TFLM
    cannot run is refused in one line, and its arena is found by bisection in child processes
    (TFLM segfaults on some too-small arenas), so nothing loads in this process untried.
    """
    path = Path(path)
    cls = _RUNNER_OF_SUFFIX.get(path.suffix)
    if cls is None:
        raise UsageError(f"{path}: expected a .onnx or .tflite file")
    if runtime not in (None, cls.runtime, "tflm") or (runtime == "tflm" and cls is not LiteRTRunner):
        raise UsageError(f"--runtime {runtime} does not run {path.suffix} files; "
                         f"choose {cls.runtime}" + (" or tflm" if cls is LiteRTRunner else ""))
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if runtime == "tflm":
        from .runners.tflm import TFLMRunner

        cls, probe_first = TFLMRunner, False
    if probe_first:
        from .probe import probe

        why = probe(path)
        if why:
            raise ArtifactError(why if why.startswith(path.name) else f"{path.name}: {why}")
    # Names are taken by position; the file's own names do not matter here.
    runner = cls(path, ["x"], ["y"])
    runner.__enter__()
    return runner


def predict(path: Path, values: list[str], runtime: str | None = None) -> np.ndarray:
    numbers = [parse_number(v) for v in values]
    runner = open_runner(path, runtime=runtime)
    try:
        if len(runner.file_inputs) != 1:
            raise UsageError(f"{Path(path).name} is a step model; use `edge-echo stream`")
        sample = runner.file_inputs[0][1:]
        if any(d is None for d in sample):
            raise UsageError(f"{Path(path).name}: the input shape {sample} is not fixed")
        size = int(np.prod(sample))
        if not numbers or len(numbers) % size:
            raise UsageError(f"{Path(path).name} takes {size} value(s) per sequence "
                             f"(input shape {['N', *sample]}); got {len(numbers)}")
        x = np.array(numbers, np.float32).reshape(-1, *sample)
        return runner.infer({"x": x})["y"]
    finally:
        runner.__exit__(None, None, None)


class StepStream:
    """Feeds one step at a time through a step model, carrying its state (h, c, ...)."""

    def __init__(self, path: Path):
        self.runner = open_runner(path)
        inputs, outputs = self.runner.file_inputs, self.runner.file_outputs
        if len(inputs) < 2 or len(outputs) != len(inputs):
            self.close()
            raise UsageError(f"{Path(path).name} is not a step model (it has no state inputs); "
                             "use `edge-echo predict`")
        self.features = int(np.prod(inputs[0][1:]))
        self.state_shapes = [tuple(s[1:]) for s in inputs[1:]]
        names = [f"s{i}" for i in range(len(inputs))]
        self.runner.input_names = names
        self.runner.output_names = names
        self.reset()

    def reset(self) -> None:
        self.state = [np.zeros((1, *shape), np.float32) for shape in self.state_shapes]

    def step(self, values: list[float]) -> np.ndarray:
        if len(values) != self.features:
            raise UsageError(f"each step takes {self.features} value(s); got {len(values)}")
        x = np.array(values, np.float32).reshape(1, self.features)
        out = self.runner.infer({"s0": x, **{f"s{i + 1}": s for i, s in enumerate(self.state)}})
        self.state = [out[f"s{i + 1}"] for i in range(len(self.state))]
        return out["s0"][0]

    def close(self) -> None:
        self.runner.__exit__(None, None, None)


def stream(path: Path, lines: Iterable[str], reset_every: int = 0) -> Iterator[np.ndarray]:
    """One output per input line; a blank line, or every reset_every steps, starts a new sequence."""
    session = StepStream(path)
    try:
        steps = 0
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text:
                session.reset()
                steps = 0
                continue
            if reset_every and steps == reset_every:
                session.reset()
                steps = 0
            yield session.step(parse_line(text, number))
            steps += 1
    finally:
        session.close()
