"""What a device does with an exported file: predict a sequence, or stream values through a step model.

Only the runtimes are used (ONNX Runtime, LiteRT), never TensorFlow, and the
file alone is enough: shapes and state are read from the model itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .errors import ArtifactError, UsageError, first_line
from .runners import LiteRTRunner, OnnxRunner, OrtRunner, Runner

_RUNNER_OF_SUFFIX = {".onnx": OnnxRunner, ".ort": OrtRunner, ".tflite": LiteRTRunner}


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
        raise UsageError(f"{path}: expected a .onnx, .ort or .tflite file")
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
    # The file's own input and output names: a multi-input file is fed by name.
    runner = cls(path, None, None)
    runner.__enter__()
    return runner


def predict(path: Path, values: list[str], runtime: str | None = None) -> dict[str, np.ndarray]:
    """Every output of the file, by name, on the values given: numbers for a file with one
    input, NAME=values for each input of a file with several, or one .npz of arrays by input name."""
    runner = open_runner(path, runtime=runtime)
    try:
        if len(runner.file_inputs) > 1 and _is_step(runner):
            raise UsageError(f"{Path(path).name} is a step model; use `edge-echo stream`")
        return runner.infer(parse_feed(runner, values, Path(path).name))
    finally:
        runner.__exit__(None, None, None)


def _is_step(runner: Runner) -> bool:
    outputs = set(runner.output_names)
    return any(f"{name}_out" in outputs for name in runner.input_names[1:])


def parse_feed(runner: Runner, values: list[str], name: str) -> dict[str, np.ndarray]:
    names = runner.input_names
    dtypes = runner.input_dtypes or [np.dtype(np.float32)] * len(names)
    if len(values) == 1 and values[0].endswith(".npz"):
        return _npz_feed(Path(values[0]), names, dtypes, runner.file_inputs)
    if any("=" in v for v in values):
        groups: dict[str, list[str]] = {}
        current = None
        for v in values:
            if "=" in v:
                current, _, rest = v.partition("=")
                if current not in names:
                    raise UsageError(f"{name} has no input '{current}'; its inputs are "
                                     f"{', '.join(names)}")
                if current in groups:
                    raise UsageError(f"input '{current}' is given twice")
                groups[current] = [rest] if rest else []
            elif current is None:
                raise UsageError(f"value {v!r} comes before any NAME=")
            else:
                groups[current].append(v)
        missing = [n for n in names if n not in groups]
        if missing:
            raise UsageError(f"no values for input {', '.join(missing)} (give NAME=values for "
                             f"each of {', '.join(names)})")
        texts = {n: [t for item in groups[n] for t in item.replace(",", " ").split()] for n in names}
    else:
        if len(names) != 1:
            raise UsageError(f"{name} takes {len(names)} inputs ({', '.join(names)}): give "
                             "NAME=values for each, or an .npz with one array per input name")
        texts = {names[0]: values}
    feed, batches = {}, set()
    for n, dtype, shape in zip(names, dtypes, runner.file_inputs, strict=True):
        numbers = [parse_number(v, f"input '{n}': value" if len(names) > 1 else "value")
                   for v in texts[n]]
        x = np.array(numbers, np.float64)
        feed[n] = _shaped(x, shape[1:], n if len(names) > 1 else None, name)
        if np.dtype(dtype).kind in "iu":
            feed[n] = token_ids(feed[n], f"input '{n}'", dtype)
        batches.add(len(feed[n]))
    if len(batches) > 1:
        raise UsageError(f"the inputs give different numbers of sequences "
                         f"({', '.join(f'{n}: {len(v)}' for n, v in feed.items())})")
    return feed


def _shaped(x: np.ndarray, sample: list, input_name: str | None, name: str) -> np.ndarray:
    """x as a batch of samples of the file's shape; one open dimension is read from the count."""
    which = f"input '{input_name}' of {name}" if input_name else name
    open_dims = [k for k, d in enumerate(sample) if d is None]
    if len(open_dims) > 1:
        raise UsageError(f"{which}: the input shape {sample} is not fixed")
    known = int(np.prod([d for d in sample if d is not None]))
    if open_dims:
        if not x.size or x.size % known:
            raise UsageError(f"{which} takes a multiple of {known} value(s) (input shape "
                             f"{['N', *sample]}, one sequence); got {x.size}")
        return x.reshape(1, *[x.size // known if d is None else d for d in sample])
    if not x.size or x.size % known:
        raise UsageError(f"{which} takes {known} value(s) per sequence (input shape "
                         f"{['N', *sample]}); got {x.size}")
    return x.reshape(-1, *sample)


def token_ids(x: np.ndarray, what: str, dtype=np.int32, vocabulary: int | None = None) -> np.ndarray:
    """Integer token ids, or a one-line refusal: a fraction, a negative id, or one past the
    vocabulary (the Embedding's input_dim, where it is known)."""
    x = np.asarray(x)
    if x.dtype.kind == "f":
        fractional = np.mod(x, 1) != 0
        if fractional.any():
            raise UsageError(f"{what} takes integer token ids; got {x[fractional].flat[0]:g}")
    if x.size and (x.min() < 0 or (vocabulary and x.max() >= vocabulary)
                   or x.max() > np.iinfo(np.int32).max):
        bad = x.min() if x.min() < 0 else x.max()
        top = f"[0, {vocabulary})" if vocabulary else "0 or more"
        raise UsageError(f"{what}: token id {int(bad)} is outside {top}")
    return x.astype(dtype)


def _npz_feed(path: Path, names: list[str], dtypes, shapes) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise UsageError(f"{path}: not a readable .npz ({first_line(exc)})") from None
    if len(names) == 1 and len(arrays) == 1:
        arrays = {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise UsageError(f"{path}: no array for input {', '.join(missing)} (arrays: "
                         f"{', '.join(arrays) or 'none'})")
    feed = {}
    for n, dtype, shape in zip(names, dtypes, shapes, strict=True):
        x = arrays[n]
        if x.dtype.kind not in "biuf":
            raise UsageError(f"{path}: '{n}' holds {x.dtype}, not numbers")
        if not np.all(np.isfinite(x)):
            raise UsageError(f"{path}: '{n}' holds NaN or infinity")
        if x.ndim == len(shape) - 1:
            x = x[None]  # one sample
        if x.ndim != len(shape) or any(d is not None and d != got
                                       for d, got in zip(shape[1:], x.shape[1:], strict=True)):
            raise UsageError(f"{path}: '{n}' has samples of shape {list(x.shape[1:])}; the file "
                             f"takes {shape[1:]}")
        feed[n] = (token_ids(x, f"'{n}'", dtype) if np.dtype(dtype).kind in "iu"
                   else x.astype(dtype))
    return feed


class StepStream:
    """Feeds one step at a time through a step model, carrying its state (h, c, ...)."""

    def __init__(self, path: Path):
        self.runner = open_runner(path)
        inputs, outputs = self.runner.file_inputs, self.runner.file_outputs
        if len(inputs) < 2 or len(outputs) != len(inputs):
            self.close()
            raise UsageError(f"{Path(path).name} is not a step model (it has no state inputs); "
                             "use `edge-echo predict`")
        self.x_shape = tuple(inputs[0][1:])
        self.features = int(np.prod(self.x_shape))
        self.state_shapes = [tuple(s[1:]) for s in inputs[1:]]
        # Each state input h is fed back from the output h_out (by position in older files).
        ins, outs = self.runner.input_names, self.runner.output_names
        by_name = all(f"{n}_out" in outs for n in ins[1:])
        self.x_name, self.y_name = ins[0], outs[0] if not by_name else next(
            o for o in outs if o not in {f"{n}_out" for n in ins[1:]})
        self.pairs = [(n, f"{n}_out" if by_name else outs[k + 1]) for k, n in enumerate(ins[1:])]
        self.x_dtype = (self.runner.input_dtypes or [np.float32])[0]
        self.reset()

    def reset(self) -> None:
        self.state = [np.zeros((1, *shape), np.float32) for shape in self.state_shapes]

    def step(self, values: list[float]) -> np.ndarray:
        if len(values) != self.features:
            raise UsageError(f"each step takes {self.features} value(s); got {len(values)}")
        x = np.array(values, np.float64).reshape(1, *self.x_shape)
        if np.dtype(self.x_dtype).kind in "iu":
            x = token_ids(x, "each step", self.x_dtype)
        out = self.runner.infer({self.x_name: x, **{n: s for (n, _), s in
                                                    zip(self.pairs, self.state, strict=True)}})
        self.state = [out[o] for _, o in self.pairs]
        return out[self.y_name][0]

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
