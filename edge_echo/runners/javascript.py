"""What the JavaScript runtimes share: a model file opened in an engine inside a JavaScript
host (jshost: Node, or a page in headless Chromium), run on the feed, and timed there.

The file's bytes go to the host, which opens them as an app does (ONNX Runtime's
InferenceSession.create, LiteRT.js's loadAndCompile), and each feed goes across as raw bytes,
so float32 values arrive bit for bit. bench times the bare call inside the host (clock()), on
a feed prepared there once, not a round trip through this process.
"""

from __future__ import annotations

import base64
import contextlib

import numpy as np

from .. import jshost
from ..errors import ArtifactError
from .base import Runner, dims, pair


class JsRunner(Runner):
    host_kind = "node"
    engine = "onnxruntime"
    # The npm packages this runtime loads (their versions go into verify's and bench's JSON).
    packages: tuple[str, ...] = ()
    # The Python runtime that runs the same file (the .web.tflite's: LiteRT on its source).
    twin = "?"
    # Session options the engine takes (ONNX Runtime's config entries).
    options: dict = {}
    # The runtime runs in another process: this one's peak RSS says nothing about it.
    memory_note = "not measured: the runtime runs in {where}, outside this process"
    where = "Node"

    @classmethod
    def unavailable(cls) -> str | None:
        return jshost.why(cls.host_kind, cls.packages)

    def activate(self) -> None:
        why = self.unavailable()
        if why:
            raise ArtifactError(f"{self.path.name}: {why}")
        self.host = jshost.host(self.host_kind)
        data = base64.b64encode(self.path.read_bytes()).decode()
        try:
            opened = self.host.call("open", self.engine, data, self.options)
        except ArtifactError as exc:
            raise ArtifactError(f"{self.path.name}: {self.runtime} cannot load it ({exc})") from None
        self.handle = opened["id"]
        found_in, found_out = opened["inputs"], opened["outputs"]
        self.input_names, self._at = pair(self.path, self.input_names,
                                          [d["name"] for d in found_in], "input")
        self.output_names, self._out_at = pair(self.path, self.output_names,
                                               [d["name"] for d in found_out], "output")
        self._count = len(found_in)
        chosen = [found_in[k] for k in self._at]
        self.input_dtypes = [np.dtype(d["dtype"]) for d in chosen]
        self.file_inputs = [dims(d["shape"]) for d in chosen]
        self.file_outputs = [dims(found_out[k]["shape"]) for k in self._out_at]
        first = chosen[0]["shape"][0] if chosen[0]["shape"] else -1
        # LiteRT.js gives a dynamic batch as the size it allocated (1), and cannot resize.
        self.fixed_batch = None if first < 0 else int(first)

    def deactivate(self) -> None:
        if getattr(self, "handle", None) is not None:
            with contextlib.suppress(ArtifactError):
                self.host.call("close", self.handle, timeout=30)
            self.handle = None

    def _call(self, method: str, *params):
        try:
            return self.host.call(method, *params)
        except ArtifactError as exc:
            raise ArtifactError(f"{self.path.name}: {self.runtime} failed on this input "
                                f"({exc})") from None

    def _packed(self, arrays: list[np.ndarray]) -> list[dict]:
        if len(arrays) != self._count:
            raise ArtifactError(f"{self.path.name}: the file takes {self._count} inputs, "
                                f"given {len(arrays)}")
        ordered: list = [None] * self._count
        for k, array in zip(self._at, arrays, strict=True):
            ordered[k] = jshost.encode(array)
        return ordered

    def _infer(self, arrays):
        # A file with a fixed batch of 1 gets a batch one sequence at a time inside the host.
        if self.fixed_batch == 1 and arrays[0].shape[0] != 1:
            self.looped = True
            return dict(zip(self.output_names, self._sequence(arrays), strict=True))
        return super()._infer(arrays)

    def _run(self, arrays):
        outs = self._call("run", self.handle, self._packed(arrays))
        return [jshost.decode(outs[k]) for k in self._out_at]

    def run_many(self, batches: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
        """_run on each list of arrays (in input_names order), in one request to the host."""
        if self.fixed_batch == 1 and any(b[0].shape[0] != 1 for b in batches):
            self.looped = True
        outs = self._call("runs", self.handle, [self._packed(b) for b in batches])
        return [[jshost.decode(out[k]) for k in self._out_at] for out in outs]

    def infer_batches(self, feeds):
        try:
            outs = self.run_many([self.arrays(feed) for feed in feeds])
        except (ArtifactError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise ArtifactError(f"{self.path.name}: {self.runtime} failed on this input "
                                f"({exc})") from None
        return [dict(zip(self.output_names, out, strict=True)) for out in outs]

    def clock(self, arrays: list[np.ndarray], runs: int, warmup: int) -> tuple[float, np.ndarray]:
        """The bare call timed inside the host on a feed prepared there once: the first call's
        µs, then `runs` samples of µs per call after `warmup` calls."""
        batch = arrays[0].shape[0]
        if self.fixed_batch is not None and batch != self.fixed_batch:
            raise ArtifactError(f"{self.path.name}: {self.runtime} runs a batch of "
                                f"{self.fixed_batch}, not {batch}")
        done = self._call("time", self.handle, self._packed(arrays), runs, warmup)
        return float(done["first_us"]), np.asarray(done["samples_us"], dtype=np.float64)
