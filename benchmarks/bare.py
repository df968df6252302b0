"""Bare runtime loops written straight against each runtime's Python API, for the benchmarks.

No edge-echo code runs here: these are what a device app would write, and the
independent side of every comparison the benchmark scripts print.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def p50_us(call, runs: int = 2000, warmup: int = 200) -> float:
    """Median microseconds of call() over runs, after warmup untimed calls."""
    for _ in range(warmup):
        call()
    samples = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        call()
        samples[i] = time.perf_counter_ns() - start
    return float(np.median(samples) / 1e3)


def ort_call(path: Path, x: np.ndarray):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    names = [o.name for o in session.get_outputs()]
    return lambda: session.run(names, feed)


def litert_call(path: Path, x: np.ndarray, reset: bool):
    """set, invoke, get on LiteRT; reset first for a stateful (micro) file, as its contract says."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    (i,), (o,) = it.get_input_details(), it.get_output_details()
    if tuple(i["shape"]) != x.shape:
        it.resize_tensor_input(i["index"], x.shape)
        it.allocate_tensors()

    def call():
        if reset:
            it.reset_all_variables()
        it.set_tensor(i["index"], x)
        it.invoke()
        return it.get_tensor(o["index"])

    return call


def tflm_call(path: Path, arena: int, x: np.ndarray):
    """reset, set, invoke, get on TensorFlow Lite Micro, in the arena the manifest declares."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_file(str(path), arena_size=arena)

    def call():
        it.reset()
        it.set_input(x, 0)
        it.invoke()
        return it.get_output(0)

    return call
