"""The C source on every device target, side by side in one run (issue 35).

Per model and target: the worst error of c@TARGET and c-step@TARGET against Keras (verify, on
the first 16 sequences of each set), flash of the model object at -Os (or the .wasm's bytes and
its loader's), the deepest stack, and instructions per sequence as each target counts them
(Cortex-M: SysTick under -icount; RISC-V: minstret; aarch64: qemu-aarch64's trace) or, for
WebAssembly, the p50 of the loader's predict in Node beside the host `c` runtime's p50 (bench,
the bare call on a prepared input). Models: the three echo models (EXPORT_DIR's weights, the C
and .wasm made again here) and the Keras weather example's shape, LSTM(32) over 120 x 7.

Targets (issue 35): every echo model within 1e-5 of Keras on every new target; the weather
model measured on rv32imac and rv32imafc beside Cortex-M0 and M4F; NAME.wasm <= 4 x params +
2 KiB and the loader <= 2 KiB; Node's predict timed beside the host C.

    .venv/bin/python benchmarks/bench_targets.py [EXPORT_DIR]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from bench_cortexm import convert_with, weather_model

from edge_echo import manifest, refdata, targets
from edge_echo.bench import bench
from edge_echo.export import export
from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES
from edge_echo.verify import verify

ROOT = Path(__file__).resolve().parents[1]
NEW = ("riscv32imac", "riscv32imafc", "aarch64", "wasm32")
WEATHER = ("cortex-m0", "cortex-m4", "riscv32imac", "riscv32imafc", "aarch64", "wasm32")


def figures(directory: Path, name: str, entry: dict, names: tuple[str, ...]) -> dict[str, dict]:
    """Every target's figures for one model, by target name."""
    ref = refdata.load(manifest.artifact_path(directory, entry["artifacts"]["reference"]))
    x = next(iter(refdata.inputs(ref, refdata.RANDOM_X, [i["name"] for i in entry["inputs"]]).values()))[0]
    found = {}
    for kind in ("c_source", "wasm"):
        art = entry["artifacts"][kind]
        path = manifest.artifact_path(directory, art)
        timed = (2000, 200) if kind == "wasm" else None  # Node: the time of a predict call
        for family in targets.measure(path, art["c"], x, names, artifact=kind, timed=timed).values():
            found.update(family.get("cores", {}))
    return found


def main() -> int:
    missing = {n: targets.unavailable(n) for n in (*NEW, "cortex-m0") if targets.unavailable(n)}
    if missing:
        print(f"bench_targets: {'; '.join(dict.fromkeys(missing.values()))}", file=sys.stderr)
        return 2
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "exported"
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-targets-") as tmp:
        tmp = Path(tmp)
        echo = tmp / "echo"
        shutil.copytree(source, echo)
        export(echo, list(MODEL_NAMES), seed=DEFAULT_SEED, forms=("tflite",), c_source=True)
        weather_model(tmp / "weather.keras")
        (tmp / "weather").mkdir()
        convert_with(ROOT, tmp / "weather.keras", tmp / "weather" / "out")
        cases = [(echo, list(MODEL_NAMES), targets.TARGET_NAMES),
                 (tmp / "weather" / "out", ["weather"], WEATHER)]
        for directory, models, names in cases:
            doc = manifest.load(directory)
            checked = verify(directory, keras=directory == echo, latency_runs=0, cores=names)
            errors: dict[tuple[str, str], float] = {}
            for r in checked.results:
                if "@" in r.runtime:
                    key = (r.model, r.runtime.partition("@")[2])
                    errors[key] = max(errors.get(key, 0.0), r.max_abs)
            timed = bench(directory, runtimes=("c",), runs=2000, warmup=200, batch=1,
                          memory=False, cores=("wasm32",))
            host = {r.model: r.timing.p50_us for r in timed.rows if r.runtime == "c"}
            node = {d["model"]: d for d in timed.device}
            for model in models:
                entry = doc["models"][model]
                found = figures(directory, model, entry, names)
                params = entry["artifacts"]["c_source"]["c"]["params"]
                results[model] = {"params": params, "host_c_p50_us": host.get(model),
                                  "node_p50_us": node.get(model, {}).get("p50_us"),
                                  "targets": {n: {"worst_error": errors.get((model, n)), **found[n]}
                                              for n in names if n in found}}
    print(f"{'model':13} {'target':13} {'worst |err|':>11} {'flash B':>14} {'bound':>6} "
          f"{'stack':>5} {'instr/sequence':>15} {'instr/step':>10}")
    for model, r in results.items():
        bound = 4 * r["params"] + 2048
        for name, f in r["targets"].items():
            err = f["worst_error"]
            if "wasm_bytes" in f:
                size = f"{f['wasm_bytes']:,} + {f['loader_bytes']:,} js"
                ok = "ok" if f["wasm_bytes"] <= bound and f["loader_bytes"] <= 2048 else "MISSED"
                work = f"{f['p50_us']:,.2f} µs p50"
                step = "-"
            else:
                size, ok = f"{f['flash_bytes']:,}", ""
                work = f"{f['instructions_per_sequence']:,}"
                step = f"{f['instructions_per_step']['mean']:,}" if "instructions_per_step" in f else "-"
            print(f"{model:13} {name:13} {err if err is not None else float('nan'):>11.2g} "
                  f"{size:>14} {bound:>6,} {f.get('stack_bytes', 0):>5} {work:>15} {step:>10} {ok}")
        if r["node_p50_us"] is not None and r["host_c_p50_us"]:
            print(f"{model:13} Node predict p50 {r['node_p50_us']:.2f} µs, host c p50 "
                  f"{r['host_c_p50_us']:.2f} µs ({r['node_p50_us'] / r['host_c_p50_us']:.1f}x)")
    worst = max((f["worst_error"] or 0.0) for m, r in results.items() if m in MODEL_NAMES
                for n, f in r["targets"].items() if n in NEW)
    print(f"worst error of a new target on the echo models: {worst:.2g} (target 1e-5)")
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "targets.json").write_text(json.dumps(
        {"toolchains": {t: targets.TARGETS[t].toolchain() for t in ("cortex-m4", *NEW)},
         "models": results}, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
