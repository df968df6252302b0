"""One runner per runtime behind one interface, after Polygraphy's runners.

A runner is built from a model file and the logical input/output names of the
manifest, is activated once (load, allocate), and maps a feed of named arrays
to named outputs. Adding a runtime is adding one class here and one line in
RUNNERS. Runtimes are imported in activate(), so merely importing this module
pulls in neither TensorFlow nor a native runtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ArtifactError, first_line
from .tfenv import native_stderr_silenced


class Runner:
    runtime = "?"
    # The manifest artifact this runtime loads.
    artifact = "?"

    def __init__(self, path: Path, inputs: list[str], outputs: list[str], threads: int = 1,
                 artifact: dict | None = None):
        self.path = Path(path)
        # The manifest's entry for the file, for runners that need more than names.
        self.entry = artifact or {}
        self.input_names = list(inputs)
        self.output_names = list(outputs)
        self.threads = threads
        # The batch size the model file fixes, or None where it resizes.
        self.fixed_batch: int | None = None
        self.looped = False

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

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        arrays = [np.ascontiguousarray(feed[name], dtype=np.float32) for name in self.input_names]
        batch = arrays[0].shape[0]
        if self.fixed_batch is None or batch == self.fixed_batch:
            outs = self._run(arrays)
        else:
            # A file with a fixed batch of 1 gets one sample at a time.
            self.looped = True
            pieces = [self._run([a[i:i + 1] for a in arrays]) for i in range(batch)]
            outs = [np.concatenate(parts) for parts in zip(*pieces, strict=True)]
        return dict(zip(self.output_names, outs, strict=True))

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


def _dims(shape) -> list[int | None]:
    """A file's declared shape, None where a dimension is dynamic."""
    return [int(d) if isinstance(d, (int, np.integer)) and d >= 0 else None for d in shape]


class KerasRunner(Runner):
    """Keras through one traced tf.function: the fastest way Keras itself offers."""

    runtime = "keras"
    artifact = "keras"

    def activate(self) -> None:
        from .tfenv import import_tensorflow

        tf = import_tensorflow()
        import keras

        # safe_mode refuses Lambda layers and other deserialised code.
        self.model = model = keras.saving.load_model(self.path, compile=False, safe_mode=True)
        specs = [tf.TensorSpec((None, *t.shape[1:]), t.dtype) for t in model.inputs]
        # One traced graph for every batch size: eager calls cost milliseconds each.
        self.call = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0],
                                                  training=False), input_signature=specs)

    def _run(self, arrays):
        outs = self.call(*arrays)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return [np.asarray(o) for o in outs]


class KerasPredictRunner(KerasRunner):
    """Keras model.predict, the call the seed notebook makes: a baseline, not a deployment."""

    runtime = "keras-predict"

    def _run(self, arrays):
        outs = self.model.predict(arrays[0] if len(arrays) == 1 else arrays, verbose=0)
        return [np.asarray(o) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]


class OnnxRunner(Runner):
    runtime = "onnxruntime"
    artifact = "onnx"

    def activate(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = self.session.get_inputs()
        self._in = [i.name for i in inputs]
        self._out = [o.name for o in self.session.get_outputs()]
        self.file_inputs = [_dims(i.shape) for i in inputs]
        self.file_outputs = [_dims(o.shape) for o in self.session.get_outputs()]
        first = inputs[0].shape[0]
        self.fixed_batch = first if isinstance(first, int) else None

    def _run(self, arrays):
        return self.session.run(self._out, dict(zip(self._in, arrays, strict=True)))


class LiteRTRunner(Runner):
    runtime = "litert"
    artifact = "tflite"

    def activate(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with native_stderr_silenced():
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
        self._in = self.interpreter.get_input_details()
        self._out = self.interpreter.get_output_details()
        self.file_inputs = [_dims(d["shape_signature"]) for d in self._in]
        self.file_outputs = [_dims(d["shape_signature"]) for d in self._out]
        signature = self._in[0]["shape_signature"]
        self.fixed_batch = None if signature[0] < 0 else int(signature[0])
        with native_stderr_silenced():
            self.interpreter.allocate_tensors()
        self._shapes = [tuple(d["shape"]) for d in self._in]

    def _run(self, arrays):
        it = self.interpreter
        shapes = [a.shape for a in arrays]
        if shapes != self._shapes:
            for detail, shape in zip(self._in, shapes, strict=True):
                it.resize_tensor_input(detail["index"], shape)
            with native_stderr_silenced():
                it.allocate_tensors()
            self._shapes = shapes
        for detail, array in zip(self._in, arrays, strict=True):
            it.set_tensor(detail["index"], array)
        it.invoke()
        return [it.get_tensor(d["index"]).copy() for d in self._out]


# The runtimes verify compares; bench adds keras-predict as the baseline.
class SteppedRunner(Runner):
    """A one-step model run over whole sequences, its state carried between steps.

    It takes and returns what the full model does, so verify compares a step
    model with the same inputs, reference and comparator as any other runner.
    """

    inner: type[Runner] = Runner

    def activate(self) -> None:
        step = self.entry.get("step")
        if not step:
            raise ArtifactError(f"{self.path.name}: the manifest does not describe its state")
        self.step = step
        self.runner = self.inner(self.path, [d["name"] for d in step["inputs"]],
                                 [d["name"] for d in step["outputs"]], threads=self.threads)
        self.runner.__enter__()

    def deactivate(self) -> None:
        self.runner.__exit__(None, None, None)

    def _run(self, arrays):
        (sequences,) = arrays
        x_name, y_name = self.step["inputs"][0]["name"], self.step["outputs"][0]["name"]
        batch = len(sequences)
        state = {s["input"]: np.full((batch, *s["shape"][1:]), s["initial"], np.float32)
                 for s in self.step["state"]}
        ys = []
        for t in range(sequences.shape[1]):
            out = self.runner.infer({x_name: sequences[:, t], **state})
            state = {s["input"]: out[s["output"]] for s in self.step["state"]}
            ys.append(out[y_name])
        self.looped = self.runner.looped
        every = self.step["sequence_output"] == "every_step"
        return [np.stack(ys, axis=1) if every else ys[-1]]


class OnnxStepRunner(SteppedRunner):
    runtime = "onnxruntime-step"
    artifact = "onnx_step"
    inner = OnnxRunner


class LiteRTStepRunner(SteppedRunner):
    runtime = "litert-step"
    artifact = "tflite_step"
    inner = LiteRTRunner


def runner_for_format(fmt: str) -> type[Runner]:
    return {"onnx": OnnxRunner, "tflite": LiteRTRunner}[fmt]


def targets(artifacts: dict, runners: dict[str, type[Runner]]) -> list[tuple[str, type[Runner], dict]]:
    """(label, runner class, artifact) for every runtime whose file this export has, then every
    quantized variant, labelled RUNTIME:VARIANT (e.g. litert:int8)."""
    found = [(rt, cls, artifacts[cls.artifact]) for rt, cls in runners.items()
             if cls.artifact in artifacts]
    for art in artifacts.values():
        if art.get("variant"):
            cls = runner_for_format(art["format"])
            if cls.runtime in runners:
                found.append((f"{cls.runtime}:{art['variant']}", cls, art))
    return found


# The runtimes verify compares; bench times the full models, with keras-predict as baseline.
RUNNERS: dict[str, type[Runner]] = {
    cls.runtime: cls
    for cls in (KerasRunner, OnnxRunner, LiteRTRunner, OnnxStepRunner, LiteRTStepRunner)
}
RUNTIMES = tuple(RUNNERS)
BENCH_RUNNERS: dict[str, type[Runner]] = {
    cls.runtime: cls for cls in (KerasPredictRunner, KerasRunner, OnnxRunner, LiteRTRunner)
}
