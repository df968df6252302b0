"""Export speed: the fast training loop against model.fit, and the CLI's wall times.

One run measures, side by side: each seed model trained by model.fit and by
edge-echo's compiled loop (time, speed-up, both final losses); then, each in a
fresh process, a full `edge-echo export` of the three models, a repeated
export that reuses the trained weights, and `edge-echo --help`.
Targets (issue 5): training >= 20x faster than fit; export < 15 s; cached
re-export < 6 s; --help < 0.5 s.

    .venv/bin/python benchmarks/bench_export.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES, get_spec
from edge_echo.train import train, train_with_fit

CLI = [sys.executable, "-m", "edge_echo"]


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def main() -> int:
    print(f"{'model':<13} {'epochs':>6} {'fit s':>7} {'loop s':>7} {'speed-up':>9} "
          f"{'fit loss':>11} {'loop loss':>11}")
    speedups = []
    for name in MODEL_NAMES:
        spec = get_spec(name)
        slow = train_with_fit(spec, DEFAULT_SEED)
        fast = train(spec, DEFAULT_SEED)
        speedups.append(slow.seconds / fast.seconds)
        print(f"{name:<13} {spec.epochs:>6} {slow.seconds:7.2f} {fast.seconds:7.2f} "
              f"{speedups[-1]:8.1f}x {slow.final_loss:11.4g} {fast.final_loss:11.4g}")
    print(f"training speed-up: min {min(speedups):.1f}x (target >= 20x) "
          f"{verdict(min(speedups) >= 20)}")

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "exported")
        first = wall([*CLI, "export", "--out", out, "--quiet"])
        cached = wall([*CLI, "export", "--out", out, "--quiet"])
    helps = [wall([*CLI, "--help"]) for _ in range(5)]
    print(f"export, 3 models, fresh process: {first:.2f} s (target < 15 s) {verdict(first < 15)}")
    print(f"re-export, weights reused:       {cached:.2f} s (target < 6 s) {verdict(cached < 6)}")
    print(f"--help, median of 5:             {statistics.median(helps):.3f} s (target < 0.5 s) "
          f"{verdict(statistics.median(helps) < 0.5)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
