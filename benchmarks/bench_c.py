"""The generated C source against issue 15's targets, beside LiteRT and TFLM on the same models.

Per model of an export made with --c-source (and the default forms):
- flash: text + data of the object at -Os (from the manifest, measured at export), against
  4 x params + 2 KiB; mutable globals (data + bss) must be 0;
- static RAM: the state struct plus the deepest stack frame (-fstack-usage);
- predict: ns per whole sequence from a C driver loop (-O2, the same inputs), against
  1.5 µs and against the LiteRT bare call (set, invoke, get; >= 3x faster) and TFLM;
- the worst error against Keras, whole sequence (c) and step by step (c-step), against 1e-5.
Then the same for a user's model through `edge-echo convert --c-source`.

    .venv/bin/python benchmarks/bench_c.py [EXPORT_DIR]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from bare import litert_call, p50_us, tflm_call

from edge_echo import manifest, refdata
from edge_echo.convert.csource import compiler
from edge_echo.results import with_device
from edge_echo.verify import verify

PREDICT_NS = 1500
LITERT_SPEEDUP = 3.0
MAX_ERROR = 1e-5

DRIVER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>
#include "{header}"

static const float X[{n_in}] = {{ {values} }};

static double now_ns(void)
{{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}}

int main(void)
{{
    static float y[{n_out}];
    volatile float sink = 0.0f;
    double best[{rounds}];
    int r, i;
    for (i = 0; i < 2000; i++) {{ {prefix}_predict(X, y); sink += y[0]; }}
    for (r = 0; r < {rounds}; r++) {{
        const double start = now_ns();
        for (i = 0; i < {calls}; i++) {{ {prefix}_predict(X, y); sink += y[0]; }}
        best[r] = (now_ns() - start) / {calls};
    }}
    for (r = 0; r < {rounds}; r++) printf("%.3f\n", best[r]);
    return sink == 12345.0f;
}}
"""


def c_predict_ns(directory: Path, art: dict, x: np.ndarray, rounds: int = 200,
                 calls: int = 500) -> float:
    """ns per NAME_predict of directory's art["file"]: the median of rounds rounds of calls."""
    c = art["c"]
    with tempfile.TemporaryDirectory(prefix="edge-echo-bench-c-") as tmp:
        driver = Path(tmp) / "driver.c"
        driver.write_text(DRIVER.format(
            header=c["header"], n_in=x.size, n_out=c["outputs"] * (
                c["steps"] if c["sequence_output"] == "every_step" else 1),
            values=", ".join(f"{v:.9g}f" for v in x.ravel()), prefix=c["prefix"],
            rounds=rounds, calls=calls))
        binary = Path(tmp) / "driver"
        subprocess.run([compiler(), "-std=c99", "-O2", "-I", str(directory), str(driver),
                        str(directory / art["file"]), "-o", str(binary), "-lm"], check=True)
        out = subprocess.run([str(binary)], capture_output=True, text=True)
    return float(np.median([float(v) for v in out.stdout.split()]))


def report(directory: Path) -> None:
    doc = with_device(manifest.load(directory), directory)
    checked = verify(directory, latency_runs=0)
    errors = {(r.model, r.runtime): r.max_abs for r in checked.results}
    print(f"{'model':<14} {'params':>6} {'flash B':>8} {'<=4p+2K':>8} {'globals':>7} "
          f"{'state B':>7} {'stack B':>7} {'C ns':>7} {'<=1500':>6} {'LiteRT ns':>9} "
          f"{'x':>5} {'>=3':>4} {'TFLM ns':>8} {'err c':>8} {'err step':>8} {'<=1e-5':>6}")
    for name, entry in doc["models"].items():
        arts = entry["artifacts"]
        art = arts["c_source"]
        c, fp = art["c"], art["c"]["footprint"]
        x = refdata.load(manifest.artifact_path(directory, arts["reference"]))[
            refdata.RANDOM_X][:1].astype(np.float32)
        c_ns = c_predict_ns(directory, art, x)
        lite = 1e3 * p50_us(litert_call(directory / arts["tflite"]["file"], x, reset=False)) \
            if "tflite" in arts else float("nan")
        micro = arts.get("tflite_micro")
        tflm = 1e3 * p50_us(tflm_call(directory / micro["file"], micro["micro"]["arena_bytes"], x)) \
            if micro else float("nan")
        flash_target = 4 * c["params"] + 2048
        err = max(errors[(name, "c")], errors[(name, "c-step")])
        print(f"{name:<14} {c['params']:>6} {fp['flash_bytes']:>8} "
              f"{'ok' if fp['flash_bytes'] <= flash_target else 'MISS':>8} "
              f"{fp['mutable_global_bytes']:>7} {c['state_bytes']:>7} "
              f"{fp['max_stack_frame_bytes']:>7} {c_ns:>7.0f} "
              f"{'ok' if c_ns <= PREDICT_NS else 'MISS':>6} {lite:>9.0f} {lite / c_ns:>5.1f} "
              f"{'ok' if lite / c_ns >= LITERT_SPEEDUP else 'MISS':>4} {tflm:>8.0f} "
              f"{errors[(name, 'c')]:>8.1e} {errors[(name, 'c-step')]:>8.1e} "
              f"{'ok' if err <= MAX_ERROR else 'MISS':>6}")
    print(f"flash and stack: {fp['measured']}")


def user_model(tmp: Path) -> Path:
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    from edge_echo.usermodel import convert

    keras.utils.set_random_seed(2)
    i = keras.Input((24, 4))
    h = keras.layers.GRU(16, return_sequences=True)(i)
    keras.Model(i, keras.layers.Dense(1)(keras.layers.LSTM(12)(h))).save(tmp / "sensor.keras")
    convert(tmp / "sensor.keras", tmp / "sensor", c_source=True)
    return tmp / "sensor"


def main() -> int:
    if compiler() is None:
        print("no C compiler (cc, gcc or clang) found: nothing to measure")
        return 1
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("exported")
    print(f"{directory} (edge-echo export --c-source):")
    report(directory)
    with tempfile.TemporaryDirectory(prefix="edge-echo-bench-c-user-") as tmp:
        print("\nuser model GRU(16) -> LSTM(12) -> Dense(1) over 24 steps x 4 features "
              "(edge-echo convert --c-source; the flash and speed targets are the echo models'):")
        report(user_model(Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
