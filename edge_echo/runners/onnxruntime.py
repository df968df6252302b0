"""ONNX Runtime, CPU execution provider."""

from __future__ import annotations

from .base import Runner, SteppedRunner, dims, numpy_dtype, pair


class OnnxRunner(Runner):
    runtime = "onnxruntime"
    artifact = "onnx"
    imports = ("onnxruntime",)
    # Session config entries of this runtime (the .ort runner names the file's format).
    session_config: dict[str, str] = {}

    def activate(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 4  # errors reach us as exceptions, said in one line
        for key, value in self.session_config.items():
            options.add_session_config_entry(key, value)
        self.session = ort.InferenceSession(
            str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.input_names, at = pair(self.path, self.input_names, [i.name for i in inputs], "input")
        self.output_names, out_at = pair(self.path, self.output_names, [o.name for o in outputs],
                                         "output")
        inputs, outputs = [inputs[k] for k in at], [outputs[k] for k in out_at]
        self._in = [i.name for i in inputs]
        self._out = [o.name for o in outputs]
        self.input_dtypes = [numpy_dtype(i.type) for i in inputs]
        self.file_inputs = [dims(i.shape) for i in inputs]
        self.file_outputs = [dims(o.shape) for o in outputs]
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
