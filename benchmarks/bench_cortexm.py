"""The C source on emulated Cortex-M cores, before and after issue 21, side by side in one run.

Per model and core: flash of the model object (.text + .rodata + .data at -Os), the deepest
stack (-fcallgraph-info=su), state bytes, and instructions per whole sequence (NAME_predict)
and per step (NAME_step), counted on qemu-system-arm by SysTick under -icount shift=0,
calibrated in the same run (edge_echo/targets/cortexm.py). "before" is the C that edge-echo generated
at BASE (default 32b6905, the commit before the work): for the echo models the committed
exported/NAME.c of that commit (the same weights), for the user model the C that commit's
`convert --c-source` writes, run from a git worktree. Both sides are measured here, now, on
the same input (the first reference sequence) with the same firmware. Then the worst error
of every c@ runtime against Keras (verify), and the host's ns per NAME_predict before and after
(bench_c.py's C driver loop at -O2, the two interleaved).

Targets (issue 21): echo many-to-many <= 7,000 instructions on Cortex-M4F and <= 300,000 on
Cortex-M0; a user LSTM(32) x 120 steps x 7 features <= 2,500,000 on Cortex-M4F; flash within
4 x params + 2 KiB; every C runtime within 1e-6 of Keras on the echo models; `nm -u` of the
object lists no math function; the host `c` runtime no slower.

    .venv/bin/python benchmarks/bench_cortexm.py [EXPORT_DIR] [--base REV]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_c import c_predict_ns

from edge_echo import manifest, refdata, targets
from edge_echo.targets import cortexm
from edge_echo.verify import verify

ROOT = Path(__file__).resolve().parents[1]
CORES = tuple(cortexm.CORES)
TARGETS = {("many-to-many", "cortex-m4"): 7000, ("many-to-many", "cortex-m0"): 300000,
           ("weather", "cortex-m4"): 2500000}
ECHO_ERROR = 1e-6


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout


def weather_model(path: Path) -> None:
    """The Keras weather-forecasting example's shape with random weights: (120, 7) > LSTM(32) >
    Dense(1)."""
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    i = keras.Input((120, 7))
    keras.Model(i, keras.layers.Dense(1)(keras.layers.LSTM(32)(i))).save(path)


def convert_with(code: Path, model: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(code)}
    # cwd: with -m the current directory comes first on sys.path.
    subprocess.run([sys.executable, "-m", "edge_echo", "convert", str(model), "--out", str(out),
                    "--c-source", "--forms", "tflite", "--quiet"], check=True, env=env,
                   capture_output=True, text=True, cwd=out.parent)


def host_ns(paths: tuple[Path, Path], art: dict, x: np.ndarray, rounds: int = 5) -> tuple[float, float]:
    """ns per NAME_predict on the host before and after, from bench_c.py's C driver loop at -O2
    (the bare call, as a host app makes it): the two interleaved for rounds rounds on this
    shared machine, the lowest median of each kept. About a millisecond a timed round."""
    calls = max(5, 200_000 // (art["c"]["params"] * art["c"]["steps"]))
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for k, path in enumerate(paths):
            best[k] = min(best[k], c_predict_ns(path.parent, art, x, rounds=100, calls=calls))
    return best[0], best[1]


def main() -> int:
    why = targets.unavailable("cortex-m4")
    if why:
        print(f"bench_cortexm: {why}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser()
    parser.add_argument("export", nargs="?", default=str(ROOT / "exported"))
    parser.add_argument("--base", default="32b6905")
    args = parser.parse_args()
    export = Path(args.export)
    doc = manifest.load(export)
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-cortexm-") as tmp:
        tmp = Path(tmp)
        # The user model, converted by today's code and by BASE's.
        weather_model(tmp / "weather.keras")
        convert_with(ROOT, tmp / "weather.keras", tmp / "after")
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tmp / "base"),
                        args.base], check=True, capture_output=True)
        try:
            convert_with(tmp / "base", tmp / "weather.keras", tmp / "before")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(tmp / "base")], capture_output=True)
        cases = []
        for name, entry in doc["models"].items():
            before = tmp / "echo-before" / f"{name}.c"
            before.parent.mkdir(exist_ok=True)
            before.write_text(git("show", f"{args.base}:exported/{name}.c"))
            before.with_suffix(".h").write_text(git("show", f"{args.base}:exported/{name}.h"))
            cases.append((name, export, entry, before))
        wdoc = manifest.load(tmp / "after")
        cases.append(("weather", tmp / "after", wdoc["models"]["weather"],
                      tmp / "before" / "weather.c"))
        for name, directory, entry, before in cases:
            art = entry["artifacts"]["c_source"]
            after = manifest.artifact_path(directory, art)
            ref = refdata.load(manifest.artifact_path(directory, entry["artifacts"]["reference"]))
            x = next(iter(refdata.inputs(ref, refdata.RANDOM_X,
                                         [i["name"] for i in entry["inputs"]]).values()))[0]
            old = targets.measure(before, art["c"], x, CORES)["cortex_m"]["cores"]
            new = targets.measure(after, art["c"], x, CORES)["cortex_m"]["cores"]
            results[name] = {"params": art["c"]["params"],
                             "host_predict_ns": host_ns((before, after), art, x),
                             "cores": {c: {"before": old[c], "after": new[c]} for c in new}}
            for core in CORES:
                rows.append((name, core, art["c"]["params"], old[core], new[core]))
        report = verify(export, latency_runs=0, cores=CORES)
        # The user model against its stored Keras outputs, on every core (the soft-float ones
        # take a few seconds a sequence).
        weather = verify(tmp / "after", keras=False, latency_runs=0, cores=CORES)
    errors = {(r.model, r.runtime): r.max_abs for r in report.results + weather.results
              if r.runtime.startswith("c")}
    print(f"{'model':13} {'core':11} {'flash B':>14} {'bound':>6} {'stack':>9} {'state':>5} "
          f"{'instr/sequence before -> after':>32} {'ratio':>6} {'instr/step':>16} {'target':>10} "
          f"{'worst |err|':>11}  libm calls")
    for name, core, params, old, new in rows:
        target = TARGETS.get((name, core))
        seq = new["instructions_per_sequence"]
        ok = "" if target is None else ("  ok" if seq <= target else "  MISSED")
        err = max((v for (m, rt), v in errors.items() if m == name and rt.endswith(f"@{core}")),
                  default=float("nan"))
        libm = [c for c in new["library_calls"] if not c.startswith("__aeabi_")
                and c not in ("memset", "memcpy")]
        print(f"{name:13} {core:11} {old['flash_bytes']:>6,} -> {new['flash_bytes']:>5,} "
              f"{4 * params + 2048:>6,} {old['stack_bytes']:>3} -> {new['stack_bytes']:>3} "
              f"{new['state_bytes']:>5} {old['instructions_per_sequence']:>14,} -> {seq:>12,} "
              f"{old['instructions_per_sequence'] / seq:>5.2f}x "
              f"{old['instructions_per_step']['mean']:>7,} -> {new['instructions_per_step']['mean']:>6,} "
              f"{'' if target is None else f'{target:,}':>10}{ok} {err:>10.2g}  {libm or 'none'}")
    print()
    for name, r in results.items():
        before, after = r["host_predict_ns"]
        print(f"host C, {name}: {before:,.0f} ns a predict before, {after:,.0f} ns after "
              f"({before / after:.2f}x; C driver loop at -O2)")
    echo_worst = max(v for (m, _), v in errors.items() if m != "weather")
    print(f"worst error of any C runtime on the echo models: {echo_worst:.2g} (target {ECHO_ERROR:g})")
    print(f"counted by: {cortexm.METHOD}")
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "cortexm.json").write_text(json.dumps(
        {"base": args.base, "toolchain": cortexm.toolchain(), "models": results,
         "errors": {f"{m} {rt}": v for (m, rt), v in errors.items()}}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
