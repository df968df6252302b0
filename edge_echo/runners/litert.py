"""LiteRT (the TensorFlow Lite interpreter, ai-edge-litert), for the unrolled, step and micro forms."""

from __future__ import annotations

from ..tfenv import native_stderr_silenced
from .base import Runner, SteppedRunner, dims, pair


def has_variable_tensors(path) -> bool:
    """A stateful file: the fused LSTM keeps h and c in variable tensors between invokes."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    return any(model.Subgraphs(s).Tensors(t).IsVariable()
               for s in range(model.SubgraphsLength())
               for t in range(model.Subgraphs(s).TensorsLength()))


class LiteRTRunner(Runner):
    runtime = "litert"
    artifact = "tflite"
    # The flatbuffer schema reads the file for its variable tensors.
    imports = ("ai_edge_litert.interpreter", "ai_edge_litert.schema_py_generated")

    def activate(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with native_stderr_silenced():
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads)
        found_in = self.interpreter.get_input_details()
        found_out = self.interpreter.get_output_details()
        self.input_names, at = pair(self.path, self.input_names, [d["name"] for d in found_in],
                                    "input")
        self.output_names, out_at = pair(self.path, self.output_names,
                                         [d["name"] for d in found_out], "output")
        self._in, self._out = [found_in[k] for k in at], [found_out[k] for k in out_at]
        self.input_dtypes = [d["dtype"] for d in self._in]
        self.file_inputs = [dims(d["shape_signature"]) for d in self._in]
        self.file_outputs = [dims(d["shape_signature"]) for d in self._out]
        signature = self._in[0]["shape_signature"]
        self.fixed_batch = None if signature[0] < 0 else int(signature[0])
        with native_stderr_silenced():
            self.interpreter.allocate_tensors()
        self._shapes = [tuple(d["shape"]) for d in self._in]
        # Read from the file, not the manifest: a file given alone keeps its contract too.
        self.stateful = has_variable_tensors(self.path)

    def reset(self) -> None:
        self.interpreter.reset_all_variables()

    def _resize(self, arrays) -> None:
        it = self.interpreter
        shapes = [a.shape for a in arrays]
        if shapes != self._shapes:
            for detail, shape in zip(self._in, shapes, strict=True):
                it.resize_tensor_input(detail["index"], shape)
            with native_stderr_silenced():
                it.allocate_tensors()
            self._shapes = shapes

    def _run(self, arrays):
        it = self.interpreter
        self._resize(arrays)
        for detail, array in zip(self._in, arrays, strict=True):
            it.set_tensor(detail["index"], array)
        it.invoke()
        return [it.get_tensor(d["index"]).copy() for d in self._out]

    def _bare(self, arrays):
        self._resize(arrays)
        it = self.interpreter
        set_tensor, invoke, get_tensor = it.set_tensor, it.invoke, it.get_tensor
        sets = [(d["index"], a) for d, a in zip(self._in, arrays, strict=True)]
        gets = [d["index"] for d in self._out]
        if self.stateful and self.reset_per_sequence:
            reset = it.reset_all_variables

            def call():
                reset()
                for index, array in sets:
                    set_tensor(index, array)
                invoke()
                return [get_tensor(index) for index in gets]
        else:
            def call():
                for index, array in sets:
                    set_tensor(index, array)
                invoke()
                return [get_tensor(index) for index in gets]
        return call


class LiteRTStepRunner(SteppedRunner):
    runtime = "litert-step"
    artifact = "tflite_step"
    inner = LiteRTRunner


class LiteRTMicroRunner(LiteRTRunner):
    """The micro form on LiteRT (a phone or gateway can run it too), reset before each sequence."""

    runtime = "litert-micro"
    artifact = "tflite_micro"


class LiteRTMicroStepRunner(SteppedRunner):
    runtime = "litert-micro-step"
    artifact = "tflite_micro_step"
    inner = LiteRTRunner
