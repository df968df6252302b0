"""The tool's own speed (issue 22): export, re-export, --help and --version, side by side.

One run measures, each in a fresh process (TensorFlow's import included) and each the median
of --repeat runs:
- `edge-echo export --retrain` of the three default models with every default form, across
  the cores (the default --jobs) and one model after another (--jobs 1), and checks with
  tools/compare-exports that both wrote the same bytes;
- the same export again into the same directory (weights and files reused);
- `edge-echo --help` and `edge-echo --version`.
Targets: export <= 15 s, re-export <= 5 s, --help and --version <= 0.3 s. With --training it
also trains each seed model with model.fit and with edge-echo's compiled loop (issue 5:
>= 20x faster than fit, the same final loss).

    .venv/bin/python benchmarks/bench_export.py [--repeat 3] [--training]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "edge_echo"]
COMPARE = Path(__file__).resolve().parent.parent / "tools" / "compare-exports"


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def line(what: str, seconds: list[float], target: float | None, note: str = "") -> bool:
    median = statistics.median(seconds)
    ok = target is None or median <= target
    runs = ", ".join(f"{s:.2f}" for s in seconds)
    verdict = "(for comparison)" if target is None else \
        f"target <= {target:g} s  {'ok' if ok else 'MISS'}"
    print(f"{what:<44} {median:7.2f} s  (runs {runs})  {verdict}{note}")
    return ok


def training() -> None:
    from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES, get_spec
    from edge_echo.train import train, train_with_fit

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
          f"{'ok' if min(speedups) >= 20 else 'MISS'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median shown)")
    parser.add_argument("--training", action="store_true", help="also time fit against the loop")
    args = parser.parse_args()
    from edge_echo.workers import cores

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        parallel, serial = Path(tmp) / "parallel", Path(tmp) / "serial"
        cold, one, again = [], [], []
        for _ in range(args.repeat):  # taking turns, so load on the machine hits both alike
            cold.append(wall([*CLI, "export", "--out", str(parallel), "--retrain", "--quiet"]))
            one.append(wall([*CLI, "export", "--out", str(serial), "--retrain", "--quiet",
                             "--jobs", "1"]))
            again.append(wall([*CLI, "export", "--out", str(parallel), "--quiet"]))
        same = subprocess.run([sys.executable, str(COMPARE), str(serial), str(parallel)],
                              capture_output=True, text=True)
        ok &= line(f"export, 3 models, --jobs {cores()} (default)", cold, 15)
        line("export, 3 models, --jobs 1", one, None,
             f"  ({statistics.median(one) / statistics.median(cold):.2f}x the default's time)")
        print(f"  same bytes either way (tools/compare-exports): "
              f"{'yes' if same.returncode == 0 else 'NO'} ({same.stdout.splitlines()[0]})")
        ok &= same.returncode == 0
        ok &= line("re-export, weights and files reused", again, 5)
    helps = [wall([*CLI, "--help"]) for _ in range(max(5, args.repeat))]
    version = [wall([*CLI, "--version"]) for _ in range(max(5, args.repeat))]
    ok &= line("edge-echo --help", helps, 0.3)
    ok &= line("edge-echo --version", version, 0.3)
    if args.training:
        training()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
