"""ONNX Runtime, CPU execution provider."""

from __future__ import annotations

from .base import Runner, SteppedRunner, dims


class OnnxRunner(Runner):
    runtime = "onnxruntime"
    artifact = "onnx"
    imports = ("onnxruntime",)

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
        self.file_inputs = [dims(i.shape) for i in inputs]
        self.file_outputs = [dims(o.shape) for o in self.session.get_outputs()]
        first = inputs[0].shape[0]
        self.fixed_batch = first if isinstance(first, int) else None

    def _run(self, arrays):
        return self.session.run(self._out, dict(zip(self._in, arrays, strict=True)))

    def _bare(self, arrays):
        run, names, feed = self.session.run, self._out, dict(zip(self._in, arrays, strict=True))
        return lambda: run(names, feed)


class OnnxStepRunner(SteppedRunner):
    runtime = "onnxruntime-step"
    artifact = "onnx_step"
    inner = OnnxRunner
