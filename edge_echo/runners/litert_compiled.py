"""LiteRT's CompiledModel API (ai_edge_litert.compiled_model), the one LiteRT 2.x recommends,
run by the file's `serving_default` signature as an Android, iOS or Linux app calls it.

CompiledModel takes stateless files: it refuses the micro files, whose fused LSTM keeps its
state in variable tensors (LiteRT 2.3: "Failed to load model from file"); those stay on the
Interpreter, whose reset their contract needs. So this runtime runs the unrolled file, its
quantized variants and the step file.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArtifactError
from ..tfenv import native_stderr_silenced
from .base import Runner, SteppedRunner, pair

SIGNATURE = "serving_default"
_shared = None


def _environment():
    """One LiteRT environment for every CompiledModel of the process. Its buffers live as long
    as the calls bench timed, so it is destroyed at exit, where LiteRT logs each accelerator it
    registered at INFO straight to fd 2 ("DestroyAccelerator: ..."): after everything edge-echo
    prints, fd 2 is closed to that chatter."""
    global _shared
    if _shared is None:
        import atexit
        import os
        import sys

        from ai_edge_litert.compiled_model import _create_default_environment

        with native_stderr_silenced():  # creating it logs each accelerator too
            _shared = _create_default_environment()

        def quiet_teardown():
            sys.stderr.flush()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)

        atexit.register(quiet_teardown)
    return _shared


class LiteRTCompiledRunner(Runner):
    runtime = "litert-compiled"
    artifact = "tflite"
    imports = ("ai_edge_litert.compiled_model",)

    def activate(self) -> None:
        from ai_edge_litert.compiled_model import CompiledModel

        with native_stderr_silenced():
            self.model = CompiledModel.from_file(str(self.path), environment=_environment())
        signatures = self.model.get_signature_list()
        if SIGNATURE not in signatures:
            raise ArtifactError(f"{self.path.name}: no '{SIGNATURE}' signature (it has "
                                f"{', '.join(signatures) or 'none'}); CompiledModel runs by "
                                "signature: export it again")
        self.index = self.model.get_signature_index(SIGNATURE)
        found_in = self.model.get_input_tensor_details(SIGNATURE)
        found_out = self.model.get_output_tensor_details(SIGNATURE)
        names_in, names_out = signatures[SIGNATURE]["inputs"], signatures[SIGNATURE]["outputs"]
        self.input_names, self._in_at = pair(self.path, self.input_names, names_in, "input")
        self.output_names, self._out_at = pair(self.path, self.output_names, names_out, "output")
        self._in = [found_in[names_in[k]] for k in self._in_at]
        self._out = [found_out[names_out[k]] for k in self._out_at]
        self.input_dtypes = [np.dtype(d["dtype"]) for d in self._in]
        # Batch 1, as an app calls it: after resize_input_tensor LiteRT 2.3's CompiledModel
        # overran its buffers on some user models (a heap corruption, measured in the zoo of
        # tests/test_convert.py), so it is never resized: verify feeds a batch one sequence at
        # a time, as it does the micro files.
        self.file_inputs = [[None, *d["shape"][1:]] for d in self._in]
        self.file_outputs = [[None, *d["shape"][1:]] for d in self._out]
        self.fixed_batch = 1
        self._shapes = [tuple(d["shape"]) for d in self._in]
        self._buffers()
        # LiteRT brings its accelerators up on the first run, logging each at INFO to fd 2.
        with native_stderr_silenced():
            self._run([np.zeros(shape, dtype) for shape, dtype in
                       zip(self._shapes, self.input_dtypes, strict=True)])

    def deactivate(self) -> None:
        self._inputs = self._outputs = None
        self.model.close()

    def _buffers(self) -> None:
        self._inputs = self.model.create_input_buffers(self.index)
        self._outputs = self.model.create_output_buffers(self.index)
        self._out_shapes = [tuple(d["shape"]) for d in self._out]

    def _check(self, arrays) -> None:
        shapes = [tuple(a.shape) for a in arrays]
        if shapes != self._shapes:
            raise ArtifactError(f"{self.path.name}: {self.runtime} runs batch 1 of shapes "
                                f"{self._shapes}, not {shapes}")

    def _run(self, arrays):
        self._check(arrays)
        for k, array in zip(self._in_at, arrays, strict=True):
            self._inputs[k].write(array)
        self.model.run_by_index(self.index, self._inputs, self._outputs)
        return [self._outputs[k].read(int(np.prod(shape)), np.dtype(d["dtype"])).reshape(shape)
                for k, d, shape in zip(self._out_at, self._out, self._out_shapes, strict=True)]

    def _bare(self, arrays):
        """What an app does per call: write the prepared input buffers, run, read."""
        self._check(arrays)
        inputs, outputs, run, index = self._inputs, self._outputs, self.model.run_by_index, self.index
        writes = [(inputs[k].write, a) for k, a in zip(self._in_at, arrays, strict=True)]
        reads = [(outputs[k].read, int(np.prod(shape)), np.dtype(d["dtype"]), shape)
                 for k, d, shape in zip(self._out_at, self._out, self._out_shapes, strict=True)]

        def call():
            for write, array in writes:
                write(array)
            run(index, inputs, outputs)
            return [read(n, dtype).reshape(shape) for read, n, dtype, shape in reads]

        return call


class LiteRTCompiledStepRunner(SteppedRunner):
    runtime = "litert-compiled-step"
    artifact = "tflite_step"
    inner = LiteRTCompiledRunner
