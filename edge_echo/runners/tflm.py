"""TensorFlow Lite for Microcontrollers (the tflite-micro package: TFLM's C++ kernels, no TensorFlow).

TFLM runs a model in one fixed arena that the app declares. Too small an
arena makes the interpreter fail, and at some sizes segfault (256 B and
2-3 KiB measured for the many-to-one micro file), so the smallest arena is
found by bisection, each size tried in a process of its own (forked from a child),
and verify loads every micro file in a child first (probe.py) with the arena
the manifest declares.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from ..errors import ArtifactError
from ..tfenv import native_stderr_silenced
from .base import Runner, SteppedRunner, pair

ALIGN = 16
# The largest arena the bisection tries; a model needing more does not fit a microcontroller.
MAX_ARENA = 64 << 20


def refusal(path: Path) -> str | None:
    """Why TFLM cannot run this file, read from the flatbuffer; None if nothing says it cannot."""
    from ai_edge_litert import schema_py_generated as schema

    from ..artifacts import describe_tflite

    described = describe_tflite(path)
    if "float16" in described["tensor_types"]:
        return ("TFLM cannot run float16 weights (it has no float16 DEQUANTIZE); use the float32 "
                "or int8 micro form")
    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    sub = model.Subgraphs(0)
    for k in range(sub.TensorsLength()):
        shape = sub.Tensors(k).ShapeAsNumpy() if sub.Tensors(k).ShapeLength() else []
        if any(int(d) < 0 for d in shape):
            return (f"tensor '{sub.Tensors(k).Name().decode()}' has a dynamic shape, and TFLM "
                    "needs every shape fixed")
    return None


def declared_arena(smallest: int) -> int:
    """The arena to declare: the smallest that allocates, plus room for an arena buffer that is
    not 16-byte aligned, rounded up to 256 bytes."""
    return -(-(smallest + ALIGN) // 256) * 256


_TRY = """
import os, sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
inputs = int(sys.argv[2])
for line in sys.stdin:
    size = int(line)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # each size in a process of its own, forked from one that never ran TFLM
        os.close(read)
        try:
            it = runtime.Interpreter.from_bytes(data, arena_size=size)
            for k in range(inputs):
                d = it.get_input_details(k)
                it.set_input(np.zeros(d["shape"], d["dtype"]), k)
            it.invoke()
            answer = "OK"
        except Exception as exc:
            answer = "FAIL " + (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    print(answer if os.WIFEXITED(status) and answer else "CRASH", flush=True)
"""


class _Trial:
    """A child process that tries arena sizes, each in a process forked from it: a size that
    kills its process (TFLM segfaults on some arenas too small) counts as too small, and costs a
    fork rather than a new interpreter."""

    def __init__(self, path: Path, inputs: int):
        self.args = [sys.executable, "-c", _TRY, str(path), str(inputs)]
        self.child: subprocess.Popen | None = None
        self.last_error = ""

    def allocates(self, size: int) -> bool:
        if self.child is None:
            self.child = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
        try:
            self.child.stdin.write(f"{size}\n")
            self.child.stdin.flush()
            answer = self.child.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if not answer:  # the trial process itself died
            self.close()
            self.last_error = f"the arena trial process died at an arena of {size} bytes"
            return False
        word, _, why = answer.strip().partition(" ")
        if word == "CRASH":
            self.last_error = f"the interpreter crashed with an arena of {size} bytes"
        elif word != "OK":
            self.last_error = why
        return word == "OK"

    def close(self) -> None:
        if self.child is not None:
            self.child.stdin.close()
            self.child.kill()
            self.child.wait()
            self.child = None


def smallest_arena(path: Path) -> int:
    """The smallest arena (a multiple of 16 bytes) in which TFLM allocates and runs the file.

    Every size is tried in a fresh process (forked from one that has only imported TFLM), so
    the answer does not depend on what earlier trials left behind."""
    from ..artifacts import describe_tflite

    inputs = len(describe_tflite(path)["inputs"])
    trial = _Trial(path, inputs)
    try:
        high = 16 * 1024 + 4 * path.stat().st_size
        while not trial.allocates(high):
            if high >= MAX_ARENA:
                raise ArtifactError(f"{path.name}: TFLM does not run it in a {MAX_ARENA >> 20} MiB "
                                    f"arena ({trial.last_error})")
            high *= 2
        low = 0  # never allocates
        while high - low > ALIGN:
            mid = (low + high) // 2 // ALIGN * ALIGN
            if trial.allocates(mid):
                high = mid
            else:
                low = mid
    finally:
        trial.close()
    return high


# What CMSIS-NN's kernels (the optimized kernels a Cortex-M build of TFLM links) take from the
# arena beyond the reference kernels this host runs, read from their source (tflite-micro
# 90b983c kernels/cmsis_nn, CMSIS-NN 4ab83cc): each allocation rounded up to TFLM's 16-byte
# alignment, plus 16 for the allocation's own alignment.
# - UNIDIRECTIONAL_SEQUENCE_LSTM, int8 in and int16 cell (CMSIS_NN_PortOpData): eight persistent
#   kernel sums of `units` int32 (input and hidden, per gate), and cmsis_nn_lstm_params inside
#   its OpData (15 int32 and four cmsis_nn_lstm_gate of 10 words: 220 bytes on a 32-bit core).
#   It asks for 3 scratch buffers where the reference asks for 4; that one is not subtracted.
# - FULLY_CONNECTED, int8 in: the kernel sums of its output channels (output_depth int32; MVE
#   cores such as Cortex-M55, and CMSIS-NN releases that precompute them on DSP cores too).
# Float files run the reference kernels on CMSIS-NN builds too: no margin.
CMSIS_NN_LSTM_PARAMS = 15 * 4 + 4 * 10 * 4
ARENA_MARGIN_COVERS = (
    "CMSIS-NN's kernels (tflite-micro 90b983c, CMSIS-NN 4ab83cc): per int8 LSTM, 8 persistent "
    "kernel sums of units int32 and its 220-byte parameter struct; per int8 FULLY_CONNECTED, "
    "output_depth int32 kernel sums; each rounded to 16 bytes plus 16; derived from the kernels' "
    "source as an upper bound, not measured on a device build")


def _up16(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def device_margin(path: Path) -> dict:
    """The bytes an optimized (CMSIS-NN) build's kernels take beyond the reference kernels, per
    operator of the file's main graph: what arena_bytes adds to the host's measurement."""
    from ai_edge_litert import schema_py_generated as schema

    from ..artifacts import _tflite_names

    model = schema.Model.GetRootAs(path.read_bytes(), 0)
    names = _tflite_names(schema.BuiltinOperator)
    sub = model.Subgraphs(0)
    per_op = []
    for o in range(sub.OperatorsLength()):
        op = sub.Operators(o)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "")
        inputs = op.InputsAsNumpy()
        if not len(inputs) or inputs[0] < 0:
            continue
        if sub.Tensors(int(inputs[0])).Type() != schema.TensorType.INT8:
            continue
        out = sub.Tensors(int(op.OutputsAsNumpy()[0])).ShapeAsNumpy()
        if name == "UNIDIRECTIONAL_SEQUENCE_LSTM":
            units = int(out[-1])
            extra = 8 * (_up16(4 * units) + ALIGN) + _up16(CMSIS_NN_LSTM_PARAMS) + ALIGN
        elif name == "FULLY_CONNECTED":
            extra = _up16(4 * int(out[-1])) + ALIGN
        else:
            continue
        per_op.append({"operator": name, "index": o, "bytes": extra})
    return {"bytes": sum(p["bytes"] for p in per_op), "per_operator": per_op,
            "covers": ARENA_MARGIN_COVERS}


def tflm_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        return None


def micro_contract(path: Path, reset: dict) -> dict:
    """What a TFLM app must know about a micro file: measured on the TFLM interpreter."""
    from ..artifacts import describe_tflite
    from ..embed import resolver_method

    why = refusal(path)
    if why:
        raise ArtifactError(f"{path.name}: {why}")
    operators = describe_tflite(path)["operators"]
    smallest = smallest_arena(path)
    margin = device_margin(path)
    return {
        "batch": 1,
        "stateful": True,
        "reset": reset,
        "resolver": [f"{resolver_method(op)}()" for op in sorted(operators)],
        "flash_bytes": path.stat().st_size,
        "arena_min_bytes": smallest,
        "arena_bytes": declared_arena(smallest + margin["bytes"]),
        "arena_margin": margin,
        "arena_rule": ("arena_min_bytes is the smallest arena in which the TFLM interpreter "
                       "allocated and ran the file, found by bisection; arena_bytes adds "
                       "arena_margin (what CMSIS-NN's kernels take beyond the reference kernels), "
                       "16 bytes for an unaligned buffer, and rounds up to 256"),
        "measured_with": (f"tflite-micro {tflm_version()} Python interpreter (reference kernels, "
                          "64-bit host); arena_margin covers a CMSIS-NN build's kernels"),
    }


class TFLMRunner(Runner):
    runtime = "tflm"
    artifact = "tflite_micro"
    # The flatbuffer schema (refusal, describe_tflite) reads the file before TFLM loads it.
    imports = ("tflite_micro.python.tflite_micro.runtime", "ai_edge_litert.schema_py_generated",
               "edge_echo.artifacts")

    def activate(self) -> None:
        from ..artifacts import describe_tflite

        why = refusal(self.path)
        if why:
            raise ArtifactError(f"{self.path.name}: {why}")
        from tflite_micro.python.tflite_micro import runtime

        micro = self.entry.get("micro") or {}
        arena = int(micro.get("arena_bytes") or declared_arena(smallest_arena(self.path)))
        with native_stderr_silenced():
            self.interpreter = runtime.Interpreter.from_file(str(self.path), arena_size=arena)
        described = describe_tflite(self.path)
        self.input_names, self._in_at = pair(self.path, self.input_names,
                                             [d["name"] for d in described["inputs"]], "input")
        self.output_names, self._out_at = pair(self.path, self.output_names,
                                               [d["name"] for d in described["outputs"]], "output")
        details = [self.interpreter.get_input_details(k) for k in self._in_at]
        self.input_dtypes = [np.dtype(d["dtype"]) for d in details]
        # TFLM runs the shapes the file stores and ignores a dynamic signature: batch 1.
        self.file_inputs = [[int(d) for d in detail["shape"]] for detail in details]
        self.file_outputs = [[int(d) for d in self.interpreter.get_output_details(k)["shape"]]
                             for k in self._out_at]
        self.fixed_batch = self.file_inputs[0][0]
        self.arena_bytes = arena
        self.stateful = True

    def reset(self) -> None:
        self.interpreter.reset()

    def _run(self, arrays):
        it = self.interpreter
        for k, array in zip(self._in_at, arrays, strict=True):
            it.set_input(array, k)
        it.invoke()
        return [it.get_output(k).copy() for k in self._out_at]

    def _bare(self, arrays):
        it = self.interpreter
        set_input, invoke, get_output = it.set_input, it.invoke, it.get_output
        sets = list(zip(self._in_at, arrays, strict=True))
        gets = self._out_at
        reset = it.reset if self.reset_per_sequence else None

        def call():
            if reset is not None:
                reset()
            for k, array in sets:
                set_input(array, k)
            invoke()
            return [get_output(k) for k in gets]

        return call


class TFLMStepRunner(SteppedRunner):
    runtime = "tflm-step"
    artifact = "tflite_micro_step"
    inner = TFLMRunner
