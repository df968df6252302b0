"""Latency of ONNX Runtime and LiteRT against their floors and against Keras predict.

Everything is measured in one process, side by side, so the ratios stay
comparable on a shared, noisy machine. Targets (issue 4): at batch 1 each
runtime within 2x of its floor, and over 5,000x faster than Keras predict.

    .venv/bin/python benchmarks/bench_runtimes.py [EXPORT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from edge_echo.bench import bench

FLOOR_TARGET = 2.0
PREDICT_TARGET = 5000.0


def main() -> int:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("exported")
    report = bench(directory, runs=2000, warmup=200, predict_runs=30)
    print(f"cpu: {report.machine['cpu']}; 1 thread; batch 1; p50 of "
          f"{report.settings['runs']} runs (keras-predict: {report.settings['predict_runs']})")
    print(f"{'model':<13} {'runtime':<12} {'p50 us':>9} {'floor us':>9} {'x floor':>8} "
          f"{'target':>7} {'x predict':>10} {'target':>7}")
    for r in report.rows:
        if r.runtime not in ("onnxruntime", "litert"):
            continue
        floor_ok = "ok" if r.floor_ratio <= FLOOR_TARGET else "MISS"
        predict_ok = "ok" if r.speedup_vs_predict >= PREDICT_TARGET else "MISS"
        print(f"{r.model:<13} {r.runtime:<12} {r.timing.p50_us:9.1f} {r.floor.p50_us:9.1f} "
              f"{r.floor_ratio:8.2f} {floor_ok:>7} {r.speedup_vs_predict:10,.0f} {predict_ok:>7}")
    for r in report.rows:
        if r.runtime in ("keras-predict", "keras"):
            print(f"{r.model:<13} {r.runtime:<13} p50 {r.timing.p50_us:,.0f} us "
                  f"(floor {r.floor.p50_us:,.0f} us)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
