"""The integer C (NAME.int8.c) against the float C (NAME.c), per model and Cortex-M core, side by
side in one run (issue 34).

Per model: `edge-echo convert MODEL --c-source --quantize c:int8` into a scratch directory, so both
files are made from the same Keras model and measured the same way (device.json: flash of the
model object at -Os, the deepest stack, state bytes, instructions per NAME_predict counted on
qemu-system-arm by SysTick under -icount, calibrated in the same run); then verify on the host and
on every emulated Cortex-M core, for each file's worst error against Keras and (for probability
outputs) its top-1 agreement.

Models: the three echo models of exported/ (their .keras), the weather-shaped LSTM(32) over
120 x 7 (bench_cortexm.weather_model), chargen at its published size (Keras's
lstm_character_level_text_generation: 40 x 57 > LSTM(128) > Dense(57, softmax); random weights,
seeded), and bench_examples.py's addition, seq2seq and imdb (whole-sequence models: RepeatVector,
two inputs with initial_state, Embedding with its mask and Bidirectional).

Targets (issue 34): weather <= 1,000,000 instructions on Cortex-M4F and <= 17,500,000 on M0; echo
many-to-many <= 40,000 on M0; flash <= params + 3 KiB; RAM (stack + state) <= the float C's;
chargen top-1 >= 99 %; every c:int8 runtime passes the int8 rule.

    .venv/bin/python benchmarks/bench_int8.py [EXPORT_DIR] [--json benchmarks/results/int8.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

TARGETS = {("weather", "cortex-m4"): 1_000_000, ("weather", "cortex-m0"): 17_500_000,
           ("many-to-many", "cortex-m0"): 40_000}
KiB = 1024


def chargen_model(path: Path) -> None:
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    i = keras.Input((40, 57))
    keras.Model(i, keras.layers.Dense(57, activation="softmax")(keras.layers.LSTM(128)(i))).save(path)


def measure(source: Path, out: Path, name: str) -> dict:
    from edge_echo.results import with_device
    from edge_echo.usermodel import convert
    from edge_echo.verify import verify

    # The weather model's int8 micro file too: its declared arena against the 7,952 bytes a
    # CMSIS-NN build of TFLM needed (issue 34).
    forms = ("tflite", "tflite_micro_int8") if name == "weather" else ("tflite",)
    convert(source, out, name=name, c_source=True, quantize=[("c", "int8")], forms=forms)
    doc = with_device(json.loads((out / "manifest.json").read_text()), out)
    arts = doc["models"][name]["artifacts"]
    report = verify(out, latency_runs=0, cores=("cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7",
                                                "cortex-m33", "cortex-m55"))
    errors = {r.runtime: {"max_abs": r.max_abs, "passed": r.passed,
                          "top1": [t["agreement"] for t in r.top1]}
              for r in report.results if r.runtime.startswith("c")}
    device = json.loads((out / "device.json").read_text())["models"][name]
    rows = []
    params = arts["c_int8_source"]["c"]["params"]
    for core, f8 in device["c_int8_source"]["cortex_m"]["cores"].items():
        ff = device["c_source"]["cortex_m"]["cores"][core]
        fs, is_ = arts["c_source"]["c"]["state_bytes"], arts["c_int8_source"]["c"]["state_bytes"]
        row = {"model": name, "core": core, "params": params,
               "float_instructions": ff.get("instructions_per_sequence"),
               "int8_instructions": f8.get("instructions_per_sequence"),
               "float_flash": ff.get("flash_bytes"), "int8_flash": f8.get("flash_bytes"),
               "flash_budget": params + 3 * KiB,
               "float_ram": ff.get("stack_bytes", 0) + fs, "int8_ram": f8.get("stack_bytes", 0) + is_,
               "int8_library_calls": f8.get("library_calls"),
               "float_error": errors.get(f"c@{core}", {}).get("max_abs"),
               "int8_error": errors.get(f"c@{core}:int8", {}).get("max_abs"),
               "int8_passed": errors.get(f"c@{core}:int8", {}).get("passed"),
               "int8_top1": errors.get(f"c@{core}:int8", {}).get("top1")}
        target = TARGETS.get((name, core))
        if target:
            row["instruction_target"] = target
        rows.append(row)
    host = {k: v for k, v in errors.items() if "@" not in k}
    micro = arts.get("tflite_micro_int8", {}).get("micro")
    if micro:
        print(f"{name}: int8 micro file arena: host minimum {micro['arena_min_bytes']:,} + "
              f"CMSIS-NN margin {micro['arena_margin']['bytes']:,} -> declared "
              f"{micro['arena_bytes']:,} (a CMSIS-NN build needed 7,952)", file=sys.stderr)
    return {"rows": rows, "host": host, "micro_int8": micro,
            "quantization": arts["c_int8_source"]["quantization"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export", nargs="?", default=str(ROOT / "exported"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "int8.json"))
    ap.add_argument("--models", default="many-to-many,many-to-one,one-to-one,weather,chargen,"
                                        "addition,seq2seq,imdb")
    args = ap.parse_args()
    from bench_cortexm import weather_model

    results = []
    with tempfile.TemporaryDirectory(prefix="edge-echo-int8-") as tmp:
        scratch = Path(tmp)
        for name in args.models.split(","):
            if name == "weather":
                source = scratch / "weather.keras"
                weather_model(source)
            elif name == "chargen":
                source = scratch / "chargen.keras"
                chargen_model(source)
            elif name in ("addition", "seq2seq", "imdb"):  # bench_examples.py's builders
                from bench_examples import build

                source = scratch / f"{name}.keras"
                build(name).save(source)
            else:
                source = Path(args.export) / f"{name}.keras"
            print(f"{name}: converting and measuring", file=sys.stderr)
            results.append(measure(source, scratch / name, name))
    head = (f"{'model':13} {'core':10} {'float instr':>12} {'int8 instr':>11} {'ratio':>6} "
            f"{'target':>11} {'flash f/i8 (budget)':>22} {'RAM f/i8':>11} {'int8 err':>9} "
            f"{'top-1':>6} verdict")
    print(head)
    for res in results:
        for r in res["rows"]:
            fi, ii = r["float_instructions"], r["int8_instructions"]
            ratio = f"{fi / ii:.1f}x" if fi and ii else "-"
            target = r.get("instruction_target")
            ok = [r["int8_passed"] is True, r["int8_flash"] is not None
                  and r["int8_flash"] <= r["flash_budget"], r["int8_ram"] <= r["float_ram"]]
            if target:
                ok.append(ii is not None and ii <= target)
            top1 = f"{min(r['int8_top1']):.1%}" if r["int8_top1"] else "-"
            print(f"{r['model']:13} {r['core']:10} {fi or 0:>12,} {ii or 0:>11,} {ratio:>6} "
                  f"{(f'{target:,}' if target else '-'):>11} "
                  f"{r['float_flash'] or 0:>6,}/{r['int8_flash'] or 0:,} ({r['flash_budget']:,}) "
                  f"{r['float_ram']:>5}/{r['int8_ram']:<5} {r['int8_error'] or 0:>9.2e} {top1:>6} "
                  f"{'meets' if all(ok) else 'MISSES'}")
        for rt, h in res["host"].items():
            if rt.endswith(":int8"):
                top1 = f", top-1 {min(h['top1']):.2%}" if h["top1"] else ""
                print(f"{res['rows'][0]['model']:13} host {rt:18} worst error {h['max_abs']:.3g}"
                      f"{top1}: {'pass' if h['passed'] else 'FAIL'}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
