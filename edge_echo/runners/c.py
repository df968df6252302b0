"""The generated C source as a runtime: compiled here into a shared library, run through ctypes.

`c` calls NAME_predict (a whole sequence, batch 1); `c-step` calls NAME_reset
then NAME_step once per time step, as a streaming device app does. Both are
compared with Keras by verify like any other runtime. Without a C compiler
they are skipped, and verify says so in one line.
"""

from __future__ import annotations

import ctypes
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ArtifactError
from .base import Runner

_FLOATS = ctypes.POINTER(ctypes.c_float)


def _compiler() -> str | None:
    from ..convert.csource import compiler

    return compiler()


class CRunner(Runner):
    runtime = "c"
    artifact = "c_source"
    # A whole-sequence model's inputs (the contract's c.inputs), or None for a step-API model.
    whole: list | None = None

    @classmethod
    def unavailable(cls) -> str | None:
        if _compiler() is None:
            return "no C compiler (cc, gcc or clang) found, so the C source was not compiled here"
        return None

    def activate(self) -> None:
        contract = self.entry.get("c")
        if not contract:
            raise ArtifactError(f"{self.path.name}: the manifest does not describe the C API")
        cc = _compiler()
        if cc is None:
            raise ArtifactError(f"{self.path.name}: {self.unavailable()}")
        self._tmp = tempfile.TemporaryDirectory(prefix="edge-echo-c-")
        lib = Path(self._tmp.name) / "model.so"
        done = subprocess.run([cc, "-std=c99", "-O2", "-shared", "-fPIC", str(self.path.resolve()), "-o",
                               str(lib), "-lm"], capture_output=True, text=True)
        if done.returncode != 0:
            self._tmp.cleanup()
            first = (done.stderr.strip().splitlines() or ["no message"])[0]
            raise ArtifactError(f"{self.path.name}: does not compile ({first})")
        self.lib = ctypes.CDLL(str(lib))
        prefix = contract["prefix"]
        self._predict = getattr(self.lib, f"{prefix}_predict")
        if contract.get("mode") == "whole_sequence":
            self._activate_whole(contract)
            return
        self._step = getattr(self.lib, f"{prefix}_step")
        self._reset = getattr(self.lib, f"{prefix}_reset")
        for fn in (self._predict, self._step, self._reset):
            fn.restype = None
        self.steps, self.features = int(contract["steps"]), int(contract["features"])
        self.outputs = int(contract["outputs"])
        self.every_step = contract["sequence_output"] == "every_step"
        self.state = (ctypes.c_ubyte * int(contract["state_bytes"]))()
        self.fixed_batch = 1
        y_size = self.outputs * (self.steps if self.every_step else 1)
        self._y = np.zeros(y_size, np.float32)
        # The model's output shape (e.g. steps x 1), as the manifest gives it.
        outputs = self.entry.get("outputs") or [{"shape": [None, y_size]}]
        self._out_shape = tuple(int(d) for d in outputs[0]["shape"][1:])
        self.file_inputs = [[1, self.steps, self.features]]
        self.file_outputs = [[1, *self._out_shape]]

    def _activate_whole(self, contract: dict) -> None:
        """NAME_predict alone, one pointer per input in the model's order (int32 token ids or
        float32); it returns -1 for an id outside the vocabulary where it takes ids."""
        self.whole = contract["inputs"]
        self.ids = any(i["dtype"] == "int32" for i in self.whole)
        self._predict.restype = ctypes.c_int if self.ids else None
        self.fixed_batch = 1
        self._y = np.zeros(int(contract["y_size"]), np.float32)
        outputs = self.entry.get("outputs") or [{"shape": [None, self._y.size]}]
        self._out_shape = tuple(int(d) for d in outputs[0]["shape"][1:])
        self.file_inputs = [[1, *i["shape"]] for i in self.whole]
        self.file_outputs = [[1, *self._out_shape]]
        self.input_dtypes = [np.int32 if i["dtype"] == "int32" else np.float32 for i in self.whole]

    def _whole_args(self, arrays) -> list:
        """Each input as the contiguous array its pointer reads, checked against the contract."""
        if len(arrays) != len(self.whole):
            raise ArtifactError(f"{self.path.name}: takes {len(self.whole)} inputs, got {len(arrays)}")
        args = []
        for spec, x in zip(self.whole, arrays, strict=True):
            size = int(np.prod(spec["shape"]))
            if x.size != size:
                raise ArtifactError(f"{self.path.name}: input '{spec['name']}' takes {size} values a "
                                    f"sequence, got {x.size}")
            if spec["dtype"] == "int32":
                if not np.array_equal(np.asarray(x), np.round(x)):
                    raise ArtifactError(f"{self.path.name}: input '{spec['name']}' takes whole "
                                        "token ids")
                args.append(np.ascontiguousarray(x, np.int32))
            else:
                args.append(np.ascontiguousarray(x, np.float32))
        return args

    @staticmethod
    def _pointer(a: np.ndarray):
        return a.ctypes.data_as(ctypes.POINTER(ctypes.c_int32) if a.dtype == np.int32 else _FLOATS)

    def deactivate(self) -> None:
        self._tmp.cleanup()

    def _check(self, x: np.ndarray) -> np.ndarray:
        if x.size != self.steps * self.features:
            raise ArtifactError(f"{self.path.name}: takes {self.steps} x {self.features} values a "
                                f"sequence, got {x.size}")
        return np.ascontiguousarray(x, np.float32)

    def _run(self, arrays):
        if self.whole:
            args = self._whole_args(arrays)
            y = np.zeros_like(self._y)
            status = self._predict(*(self._pointer(a) for a in args), y.ctypes.data_as(_FLOATS))
            if self.ids and status != 0:
                raise ArtifactError(f"{self.path.name}: a token id is outside the vocabulary "
                                    f"({self.entry['c'].get('prefix')}_predict returned {status})")
            return [y.reshape(1, *self._out_shape)]
        (x,) = arrays
        x = self._check(x)
        y = np.zeros_like(self._y)
        self._predict(x.ctypes.data_as(_FLOATS), y.ctypes.data_as(_FLOATS))
        return [y.reshape(1, *self._out_shape)]

    def _bare(self, arrays):
        if self.whole:
            args = self._whole_args(arrays)
            pointers = [self._pointer(a) for a in args] + [self._y.ctypes.data_as(_FLOATS)]
            predict, keep = self._predict, args

            def whole_call():
                predict(*pointers)
                return keep

            return whole_call
        (x,) = arrays
        x = self._check(x)
        predict, xp, yp = self._predict, x.ctypes.data_as(_FLOATS), self._y.ctypes.data_as(_FLOATS)
        keep = (x,)  # the pointers stay valid while the closure lives

        def call():
            predict(xp, yp)
            return keep

        return call


class CStepRunner(CRunner):
    """NAME_reset, then NAME_step per time step: the streaming API, checked step by step."""

    runtime = "c-step"

    def _run(self, arrays):
        (x,) = arrays
        x = self._check(x).reshape(self.steps, self.features)
        state = ctypes.byref(self.state)
        self._reset(state)
        y_t = np.zeros(self.outputs, np.float32)
        ys = []
        for t in range(self.steps):
            self._step(state, x[t].ctypes.data_as(_FLOATS), y_t.ctypes.data_as(_FLOATS))
            ys.append(y_t.copy())
        y = np.concatenate(ys) if self.every_step else ys[-1]
        return [y.reshape(1, *self._out_shape)]

    def _bare(self, arrays):
        (x,) = arrays
        x = self._check(x).reshape(self.steps, self.features)
        rows = [np.ascontiguousarray(r) for r in x]
        pointers = [r.ctypes.data_as(_FLOATS) for r in rows]
        y_t = np.zeros(self.outputs, np.float32)
        yp, state, step, reset = y_t.ctypes.data_as(_FLOATS), ctypes.byref(self.state), \
            self._step, self._reset

        def call():
            reset(state)
            for p in pointers:
                step(state, p, yp)
            return rows

        return call
