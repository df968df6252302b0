"""`edge-echo bench` against an independent bare loop, and each runtime against its floor.

Everything is measured in one process, side by side, so the ratios stay
comparable on a shared, noisy machine.

- Issue 13: bench times what a device app does. For every ORT and LiteRT
  row, bench's p50 must be within 1.3x of a bare loop written here straight
  against onnxruntime and ai_edge_litert (no edge-echo code) on the same file.
- Issue 4: at batch 1 each runtime within 2x of its floor (a trivial model
  in the same runtime), and over 5,000x faster than Keras predict. Since
  issue 13 both sides are bare calls, which makes x floor larger than the
  wrapped figures did: the call overhead no longer hides the model.

    .venv/bin/python benchmarks/bench_runtimes.py [EXPORT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from bare import litert_call, ort_call, p50_us

from edge_echo import manifest, refdata
from edge_echo.bench import bench

BARE_TARGET = 1.3
FLOOR_TARGET = 2.0
PREDICT_TARGET = 5000.0
RUNS = 2000
WARMUP = 200
REPEATS = 3


def bare_loop(directory: Path, row, x: np.ndarray) -> float:
    path = directory / row.file
    if row.runtime.startswith("onnxruntime"):
        return p50_us(ort_call(path, x), RUNS, WARMUP)
    return p50_us(litert_call(path, x, reset=row.runtime.startswith("litert-micro")), RUNS, WARMUP)


def main() -> int:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("exported")
    doc = manifest.load(directory)
    # bench and the bare loop take turns, file group by file group, REPEATS times; each side
    # keeps its best p50. A shared machine's speed drifts by 2x over minutes, so figures taken
    # minutes apart would compare the machine, not the code.
    best_bench: dict[tuple[str, str], float] = {}
    best_bare: dict[tuple[str, str], float] = {}
    for model, entry in doc["models"].items():
        x = refdata.load(manifest.artifact_path(directory, entry["artifacts"]["reference"]))[
            refdata.RANDOM_X][:1].astype(np.float32)
        for runtime in ("onnxruntime", "litert", "litert-micro"):
            for _ in range(REPEATS):
                part = bench(directory, (runtime,), runs=RUNS, warmup=WARMUP, models=[model],
                             memory=False)
                for r in part.rows:
                    key = (r.model, r.runtime)
                    best_bench[key] = min(best_bench.get(key, np.inf), r.timing.p50_us)
                    best_bare[key] = min(best_bare.get(key, np.inf), bare_loop(directory, r, x))
    report = bench(directory, runs=RUNS, warmup=WARMUP, predict_runs=30, memory=False)
    print(f"cpu: {report.machine['cpu']}; 1 thread; batch 1; p50 of {RUNS} runs "
          f"(keras-predict: {report.settings['predict_runs']}); bench and bare: best of {REPEATS} "
          "alternating runs")
    print(f"{'model':<13} {'runtime':<20} {'bench':>7} {'bare':>7} {'ratio':>6} {'<=1.3':>5} "
          f"{'floor':>7} {'x floor':>7} {'<=2':>4} {'x predict':>9} {'>5000':>5}")
    worst = 0.0
    for r in report.rows:
        key = (r.model, r.runtime)
        if key not in best_bench:
            continue
        ratio = best_bench[key] / best_bare[key]
        worst = max(worst, ratio)
        print(f"{r.model:<13} {r.runtime:<20} {best_bench[key]:7.2f} {best_bare[key]:7.2f} "
              f"{ratio:6.2f} {'ok' if ratio <= BARE_TARGET else 'MISS':>5} {r.floor.p50_us:7.2f} "
              f"{r.floor_ratio:7.2f} {'ok' if r.floor_ratio <= FLOOR_TARGET else 'MISS':>4} "
              f"{r.speedup_vs_predict:9,.0f} "
              f"{'ok' if r.speedup_vs_predict >= PREDICT_TARGET else 'MISS':>5}")
    for r in report.rows:
        if r.runtime.startswith(("keras", "tflm")):
            print(f"{r.model:<13} {r.runtime:<20} p50 {r.timing.p50_us:,.1f} us "
                  f"(floor {r.floor.p50_us:,.1f} us)")
    print(f"worst bench / bare: {worst:.2f} (target <= {BARE_TARGET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
