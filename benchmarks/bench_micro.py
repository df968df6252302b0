"""The micro forms against issue 12's targets, measured on TensorFlow Lite Micro and LiteRT.

Per micro file of an export: flash (file bytes), the smallest arena TFLM
allocates in (from the manifest, measured at export by bisection on the TFLM
interpreter), the bare-call p50 on TFLM and on LiteRT (reset, set, invoke,
get: what a device app does per sequence, or per step for the step files),
and the worst error against the Keras outputs stored at export. Then a
user's long-sequence LSTM through `edge-echo convert` against its size
targets, and the LiteRT p50 of the three forms of an LSTM(24) over 150 steps.

    .venv/bin/python benchmarks/bench_micro.py [EXPORT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from bare import litert_call, p50_us, tflm_call

from edge_echo import manifest, refdata

KIB = 1024
TARGETS = {  # kind: (flash, arena)
    "tflite_micro": (4 * KIB, 4 * KIB),
    "tflite_micro_int8": (5 * KIB, 5 * KIB),
    "tflite_micro_step": (4 * KIB, 4 * KIB),
}


def worst_error(call, xs: np.ndarray, ys: np.ndarray, step: bool) -> float:
    worst = 0.0
    for x, y in zip(xs, ys, strict=True):
        if step:
            outs = []
            first = True
            for t in range(x.shape[0]):
                out = call(x[None, t:t + 1], first)
                first = False
                outs.append(np.ravel(out))
            got = np.stack(outs) if y.ndim == 2 else outs[-1]
            got = got.reshape(y.shape)
        else:
            got = np.asarray(call(x[None], True)).reshape(y.shape)
        worst = max(worst, float(np.abs(got - y).max()))
    return worst


def echo_files(directory: Path) -> None:
    from tflite_micro.python.tflite_micro import runtime

    doc = manifest.load(directory)
    print(f"{'file':<32} {'flash':>6} {'target':>6} {'arena':>6} {'target':>6} "
          f"{'tflm µs':>8} {'litert µs':>9} {'worst err':>9} {'allowed':>8}  verdict")
    for entry in doc["models"].values():
        ref = refdata.load(directory / entry["artifacts"]["reference"]["file"])
        xs, ys = ref[refdata.RANDOM_X][:64], ref[refdata.RANDOM_Y][:64]
        for kind, (flash_target, arena_target) in TARGETS.items():
            art = entry["artifacts"].get(kind)
            if art is None:
                continue
            path, micro = directory / art["file"], art["micro"]
            step = "step" in art
            label = "tflm:int8" if kind.endswith("int8") else ("tflm-step" if step else "tflm")
            tol = entry["tolerances"][label]
            x1 = xs[:1, :1] if step else xs[:1]
            t_us = p50_us(tflm_call(path, micro["arena_bytes"], x1))
            l_us = p50_us(litert_call(path, x1, reset=True))
            it = runtime.Interpreter.from_file(str(path), arena_size=micro["arena_bytes"])

            def run(x, fresh, it=it):
                if fresh:
                    it.reset()
                it.set_input(np.ascontiguousarray(x, np.float32), 0)
                it.invoke()
                return it.get_output(0)

            err = worst_error(run, xs, ys, step)
            allowed = tol["atol"] + tol["rtol"] * float(np.abs(ys).max())
            if step:
                allowed = min(allowed, 1e-4)  # issue 12: streamed steps within 1e-4 of Keras
            ok = (art["size"] <= flash_target and micro["arena_min_bytes"] <= arena_target
                  and err <= allowed)
            print(f"{art['file']:<32} {art['size']:>6} {flash_target:>6} "
                  f"{micro['arena_min_bytes']:>6} {arena_target:>6} {t_us:>8.1f} {l_us:>9.1f} "
                  f"{err:>9.2e} {allowed:>8.1e}  {'ok' if ok else 'MISS'}")


def user_lstm(tmp: Path) -> None:
    """A forecaster, LSTM(32) over 120 steps of 7 features, through edge-echo convert."""
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    from edge_echo.usermodel import convert
    from edge_echo.verify import verify

    keras.utils.set_random_seed(7)
    i = keras.Input((120, 7))
    model = keras.Model(i, keras.layers.Dense(1)(keras.layers.LSTM(32)(i)))
    x = np.random.default_rng(0).uniform(0, 1, (512, 120, 7)).astype(np.float32)
    y = x[:, -24:, :3].mean(axis=(1, 2))[:, None]  # something smooth to learn
    model.compile("adam", "mse")
    model.fit(x, y, epochs=3, verbose=0)
    model.save(tmp / "forecaster.keras")
    convert(tmp / "forecaster.keras", tmp / "f")
    report = verify(tmp / "f", latency_runs=0)
    errors = {r.runtime: (r.max_abs, r.tolerance.atol, r.passed) for r in report.results}
    (entry,) = manifest.load(tmp / "f")["models"].values()
    params = entry["spec"]["param_count"]
    arts = entry["artifacts"]
    print(f"\nuser LSTM(32) x 120 steps x 7 features, {params} params, edge-echo convert:")
    for kind, label, target, rule in (
            ("tflite", "litert", None, ""),
            ("tflite_int8", "litert:int8", None, ""),
            ("tflite_micro", "tflm", 4 * params + 4 * KIB, "4 x params + 4 KiB"),
            ("tflite_micro_int8", "tflm:int8", params + 5 * KIB, "params + 5 KiB")):
        art = arts.get(kind)
        if art is None:
            continue
        err, atol, passed = errors.get(label, (float("nan"), float("nan"), False))
        arena = art.get("micro", {}).get("arena_min_bytes")
        verdict = "" if target is None else ("ok" if art["size"] <= target and passed else "MISS")
        print(f"  {art['file']:<30} {art['size']:>8,} B  arena {arena or '-':>6}  "
              f"err {err:.2e} (atol {atol:.1e}, verify {'pass' if passed else 'FAIL'})"
              + (f"  target <= {target:,} ({rule}) {verdict}" if target else ""))


def long_sequence_latency(tmp: Path) -> None:
    """LiteRT p50 at batch 1 of the unrolled, fused and fused int8 forms of an LSTM(24) x 150 x 5."""
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    from edge_echo.usermodel import convert

    keras.utils.set_random_seed(3)
    i = keras.Input((150, 5))
    keras.Model(i, keras.layers.Dense(1)(keras.layers.LSTM(24)(i))).save(tmp / "long.keras")
    convert(tmp / "long.keras", tmp / "long", quantize=[("tflite", "int8")])
    arts = manifest.load(tmp / "long")["models"]["long"]["artifacts"]
    x = np.random.default_rng(1).uniform(0, 1, (1, 150, 5)).astype(np.float32)
    print("\nLSTM(24) x 150 steps x 5 features, LiteRT, batch 1, 1 thread (reset included for "
          "the stateful micro files):")
    for kind in ("tflite", "tflite_int8", "tflite_micro", "tflite_micro_int8"):
        art = arts[kind]
        call = litert_call(tmp / "long" / art["file"], x, reset="micro" in art)
        print(f"  {art['file']:<28} {art['size']:>9,} B  p50 {p50_us(call, runs=500):>8.1f} µs")
    micro = arts["tflite_micro"]
    call = tflm_call(tmp / "long" / micro["file"], micro["micro"]["arena_bytes"], x)
    print(f"  {micro['file'] + ' on TFLM':<28} {micro['size']:>9,} B  "
          f"p50 {p50_us(call, runs=200):>8.1f} µs")


def main() -> int:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("exported")
    echo_files(directory)
    with tempfile.TemporaryDirectory(prefix="edge-echo-bench-micro-") as tmp:
        user_lstm(Path(tmp))
        long_sequence_latency(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
