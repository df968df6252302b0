"""The runner interface every runtime implements, after Polygraphy's runners.

A runner is built from a model file and the logical input/output names of the
manifest, is activated once (load, allocate), and maps a feed of named arrays
to named outputs. Runtimes are imported in activate(), so importing a runner
module pulls in neither TensorFlow nor a native runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ArtifactError, first_line


class Runner:
    runtime = "?"
    # The manifest artifact this runtime loads.
    artifact = "?"
    # The modules activate() imports: a memory measurement imports them before it starts.
    imports: tuple[str, ...] = ()
    # The original model's own framework (Keras, or TensorFlow on a serving graph): what verify
    # compares fresh inputs against.
    reference = False

    def __init__(self, path: Path, inputs: list[str] | None, outputs: list[str] | None,
                 threads: int = 1, artifact: dict | None = None):
        self.path = Path(path)
        # The manifest's entry for the file, for runners that need more than names.
        self.entry = artifact or {}
        # Inputs and outputs are found in the file by these names (None: the file's own names).
        self.input_names = None if inputs is None else list(inputs)
        self.output_names = None if outputs is None else list(outputs)
        # The dtype each input takes, in input_names order (the file's: int32 token ids stay int).
        self.input_dtypes: list = []
        self.threads = threads
        # The batch size the model file fixes, or None where it resizes.
        self.fixed_batch: int | None = None
        self.looped = False
        # A stateful file (the fused LSTM keeps h and c between invokes) is reset before
        # every sequence, as its contract says; a stepped runner resets it itself instead.
        self.stateful = False
        self.reset_per_sequence = True

    # A runtime in another process has no bare call here to time: it times itself (clock()),
    # or, for a stepped loop across the process boundary, is not timed.
    untimed = False

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this runtime cannot run here at all (e.g. no C compiler), or None."""
        return None

    def __enter__(self):
        try:
            self.activate()
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(
                f"{self.path.name}: {self.runtime} cannot load it ({first_line(exc)})") from None
        return self

    def __exit__(self, *exc):
        self.deactivate()

    def activate(self) -> None:
        raise NotImplementedError

    def deactivate(self) -> None:
        pass

    def reset(self) -> None:
        """Back to the state the file starts in (zero h and c): a stateful file's contract."""

    def arrays(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The feed in the file's input order and dtypes; every input is looked up by name."""
        missing = [name for name in self.input_names if name not in feed]
        if missing:
            raise ArtifactError(f"{self.path.name}: no value for input {', '.join(missing)} "
                                f"(given {', '.join(feed) or 'nothing'})")
        dtypes = self.input_dtypes or [np.float32] * len(self.input_names)
        return [np.ascontiguousarray(feed[name], dtype=dtype)
                for name, dtype in zip(self.input_names, dtypes, strict=True)]

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return self._infer(self.arrays(feed))
        except (ArtifactError, KeyboardInterrupt):
            raise
        except Exception as exc:  # e.g. a token id past the vocabulary: one line, no traceback
            raise ArtifactError(f"{self.path.name}: {self.runtime} failed on this input "
                                f"({first_line(exc)})") from None

    def infer_batches(self, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """infer on each feed in turn (a runtime in another process takes them in one request)."""
        return [self.infer(feed) for feed in feeds]

    def _infer(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        batch = arrays[0].shape[0]
        if self.fixed_batch is None or batch == self.fixed_batch:
            outs = self._sequence(arrays)
        else:
            # A file with a fixed batch of 1 gets one sample at a time.
            self.looped = True
            pieces = [self._sequence([a[i:i + 1] for a in arrays]) for i in range(batch)]
            outs = [np.concatenate(parts) for parts in zip(*pieces, strict=True)]
        return dict(zip(self.output_names, outs, strict=True))

    def prepared(self, feed: dict[str, np.ndarray]) -> Callable[[], object]:
        """The call a device app makes, on this feed prepared once: bench times it.

        No dict, no conversion, no copy: the runtime's own set, invoke and get (or
        ORT's run with a built feed), and the reset a stateful file's contract asks
        for before each sequence. A file with a fixed batch of 1 gets one call per sample.
        """
        arrays = self.arrays(feed)
        batch = arrays[0].shape[0]
        if self.fixed_batch is None or batch == self.fixed_batch:
            return self._bare(arrays)
        calls = [self._bare([a[i:i + 1] for a in arrays]) for i in range(batch)]

        def each_sample():
            for call in calls:
                call()

        return each_sample

    def _bare(self, arrays: list[np.ndarray]) -> Callable[[], object]:
        raise NotImplementedError(f"{self.runtime} has no bare call")

    def _sequence(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        if self.stateful and self.reset_per_sequence:
            self.reset()
        return self._run(arrays)

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


GENERATED = ("Identity", "serving_default_", "StatefulPartitionedCall", "output_", "input_")


def pair(path: Path, wanted: list[str] | None, found: list[str], what: str) -> tuple[list[str], list[int]]:
    """The names to use and, for each, its position in the file: by name, never by position,
    except for one input or output, or a file whose names are the converter's defaults
    (Identity, Identity_1, ...) in a count that matches."""
    if wanted is None:
        return list(found), list(range(len(found)))
    if len(set(found)) == len(found) and all(name in found for name in wanted):
        return list(wanted), [found.index(name) for name in wanted]
    generated = all(name.startswith(GENERATED) for name in found)
    if len(wanted) == len(found) and (len(found) == 1 or generated):
        return list(wanted), list(range(len(found)))
    raise ArtifactError(f"{path.name}: its {what}s are {', '.join(found) or 'none'}; expected "
                        f"{', '.join(wanted)}")


def numpy_dtype(name: str):
    """ONNX Runtime's 'tensor(int32)' (or a numpy dtype name) as a numpy dtype."""
    text = str(name)
    if text.startswith("tensor("):
        text = {"float": "float32", "double": "float64"}.get(text[7:-1], text[7:-1])
    return np.dtype(text)


def dims(shape) -> list[int | None]:
    """A file's declared shape, None where a dimension is dynamic."""
    return [int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None for d in shape]


class SteppedRunner(Runner):
    """A one-step model run over whole sequences, its state carried between steps.

    It takes and returns what the full model does, so verify compares a step
    model with the same inputs, reference and comparator as any other runner.
    The state is either explicit (inputs fed back from outputs) or, for the
    micro step form, inside the interpreter: reset at the start of each
    sequence, then one invoke per time step.
    """

    inner: type[Runner] = Runner

    @classmethod
    def unavailable(cls) -> str | None:
        return cls.inner.unavailable()

    @property
    def untimed(self) -> bool:
        return hasattr(self.inner, "clock")

    def activate(self) -> None:
        step = self.entry.get("step")
        if not step:
            raise ArtifactError(f"{self.path.name}: the manifest does not describe its state")
        self.step = step
        self.runner = self.inner(self.path, [d["name"] for d in step["inputs"]],
                                 [d["name"] for d in step["outputs"]], threads=self.threads,
                                 artifact=self.entry)
        self.runner.__enter__()
        self.runner.reset_per_sequence = False
        if self.input_names is None:
            self.input_names = [step["inputs"][0]["name"]]
        if self.output_names is None:
            self.output_names = [step["outputs"][0]["name"]]
        self.input_dtypes = self.runner.input_dtypes[:1]
        self.inside = bool(step.get("state_inside"))
        if self.inside:
            self.fixed_batch = 1  # one interpreter holds one sequence's state
            self.stateful = True

    def deactivate(self) -> None:
        self.runner.__exit__(None, None, None)

    def reset(self) -> None:
        self.runner.reset()

    def _bare(self, arrays):
        """A device app's stepping loop: per step, copy x_t (and the state the last step
        returned) into the inputs, then the runtime's bare call; the reset once per sequence
        where the state is inside."""
        (sequences,) = arrays
        x = self.step["inputs"][0]
        batch, steps = len(sequences), sequences.shape[1]
        xs = [np.ascontiguousarray(sequences[:, t].reshape(batch, *x["shape"][1:]))
              for t in range(steps)]
        order = self.runner.input_names
        buffers = {x["name"]: xs[0].copy()}
        initial = {s["input"]: np.full((batch, *s["shape"][1:]), s["initial"], np.float32)
                   for s in self.step["state"]}
        buffers.update({name: value.copy() for name, value in initial.items()})
        step = self.runner._bare([buffers[name] for name in order])
        outputs = self.runner.output_names
        feedback = [(buffers[s["input"]], outputs.index(s["output"])) for s in self.step["state"]]
        x_buffer = buffers[x["name"]]
        reset = self.runner.reset if self.inside else None
        starts = [(buffers[name], value) for name, value in initial.items()]

        def sequence():
            if reset is not None:
                reset()
            for buffer, value in starts:
                np.copyto(buffer, value)
            for x_t in xs:
                np.copyto(x_buffer, x_t)
                out = step()
                for buffer, k in feedback:
                    np.copyto(buffer, out[k])
            return out

        return sequence

    def infer_batches(self, feeds):
        """Every feed stepped in lockstep where the inner runner takes many feeds in one
        request (run_many: a JavaScript host), so that a time step is one request."""
        if not hasattr(self.runner, "run_many") or self.inside or len(feeds) == 1:
            return super().infer_batches(feeds)
        x = self.step["inputs"][0]
        y_name = self.step["outputs"][0]["name"]
        batches = [self.arrays(feed)[0] for feed in feeds]
        states = [{s["input"]: np.full((len(b), *s["shape"][1:]), s["initial"], np.float32)
                   for s in self.step["state"]} for b in batches]
        ys: list[list[np.ndarray]] = [[] for _ in batches]
        order = self.runner.input_names
        for t in range(batches[0].shape[1]):
            step_feeds = [{x["name"]: b[:, t].reshape(len(b), *x["shape"][1:]), **state}
                          for b, state in zip(batches, states, strict=True)]
            outs = self.runner.run_many([[f[name] for name in order] for f in step_feeds])
            for k, out in enumerate(outs):
                named = dict(zip(self.runner.output_names, out, strict=True))
                states[k] = {s["input"]: named[s["output"]] for s in self.step["state"]}
                ys[k].append(named[y_name])
        self.looped = self.runner.looped
        every = self.step["sequence_output"] == "every_step"
        return [{self.output_names[0]: np.stack(y, axis=1) if every else y[-1]} for y in ys]

    def _run(self, arrays):
        (sequences,) = arrays
        x = self.step["inputs"][0]
        y_name = self.step["outputs"][0]["name"]
        batch = len(sequences)
        state = {s["input"]: np.full((batch, *s["shape"][1:]), s["initial"], np.float32)
                 for s in self.step["state"]}
        ys = []
        for t in range(sequences.shape[1]):
            x_t = sequences[:, t].reshape(batch, *x["shape"][1:])
            out = self.runner.infer({x["name"]: x_t, **state})
            state = {s["input"]: out[s["output"]] for s in self.step["state"]}
            ys.append(out[y_name].reshape(batch, -1) if self.inside else out[y_name])
        self.looped = self.runner.looped
        every = self.step["sequence_output"] == "every_step"
        return [np.stack(ys, axis=1) if every else ys[-1]]
