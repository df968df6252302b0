"""How file size, latency and the TFLM arena grow with sequence length, per form and runtime.

Two families, each at lengths 5, 25, 100 and 250 (training is not what is
measured, so 2 epochs):

- echo: the echo models (many-to-one, many-to-many) through `edge-echo
  export`. Their LSTM has as many units as the sequence has steps, so the
  width grows with T too.
- lstm24: a fixed LSTM(24) -> Dense(1) over T steps of 5 features through
  `edge-echo convert`: only the length changes.

Per form (ONNX, unrolled .tflite, micro, step) and per runtime: file bytes,
the batch-1 p50 of one whole sequence (the bare call of bench; the step
forms' stepping loop, one bare call per step), and the arena TFLM needs.
Prints the table, fits the log-log slope of each line over T, and writes
a log-log PNG and the figures as JSON.

    .venv/bin/python benchmarks/bench_scaling.py [OUT_DIR]   (default benchmarks/results)
    .venv/bin/python benchmarks/bench_scaling.py OUT_DIR/scaling.json   (table and plot again)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bare import p50_us

from edge_echo import manifest, refdata
from edge_echo.runners import RUNNERS, targets

LENGTHS = (5, 25, 100, 250)
EPOCHS = 2
ECHO_MODELS = ("many-to-one", "many-to-many")
# (artifact kind, runtime label, legend): one line per pair.
PAIRS = (
    ("onnx", "onnxruntime", "ONNX on ORT (native LSTM)"),
    ("tflite", "litert", "unrolled .tflite on LiteRT"),
    ("tflite_micro", "tflm", "micro (fused) on TFLM"),
    ("tflite_micro", "litert-micro", "micro (fused) on LiteRT"),
    ("tflite_micro_int8", "tflm:int8", "micro int8 on TFLM"),
    ("onnx_step", "onnxruntime-step", "step .onnx on ORT, T calls"),
    ("tflite_step", "litert-step", "step .tflite on LiteRT, T calls"),
    ("tflite_micro_step", "tflm-step", "micro step on TFLM, T calls"),
)
BUDGET_S = 1.5  # timing per file: enough runs for a stable p50 without taking all day


def p50_budget(call) -> tuple[float, int]:
    """p50 in µs with as many runs as fit the budget (15 to 2000), and that count."""
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-6)
    runs = int(min(2000, max(15, BUDGET_S / once)))
    return p50_us(call, runs, warmup=min(20, runs // 5)), runs


def measure(directory: Path, family: str, length: int) -> list[dict]:
    doc = manifest.load(directory)
    rows = []
    for model, entry in doc["models"].items():
        arts = entry["artifacts"]
        x = refdata.load(manifest.artifact_path(directory, arts["reference"]))[refdata.RANDOM_X]
        name, out = entry["inputs"][0]["name"], entry["outputs"][0]["name"]
        found = {label: (cls, art) for label, cls, art in targets(arts, RUNNERS)}
        for kind, label, _ in PAIRS:
            if label not in found:  # e.g. one-to-one has no micro step file
                continue
            cls, art = found[label]
            with cls(manifest.artifact_path(directory, art), [name], [out], artifact=art) as r:
                us, runs = p50_budget(r.prepared({name: x[:1]}))
            micro = art.get("micro") or {}
            rows.append({"family": family, "model": model, "length": length, "form": kind,
                         "runtime": label, "file": art["file"], "bytes": art["size"],
                         "p50_us": us, "runs": runs, "arena_bytes": micro.get("arena_bytes")})
    return rows


def echo_export(tmp: Path, length: int) -> Path:
    from edge_echo.export import export

    out = tmp / f"echo-{length}"
    # 250 is past the CLI's --length range (1-128): there an export of the three models takes
    # minutes and the unrolled .tflite megabytes, which is what this measures.
    export(out, list(ECHO_MODELS), length=length, epochs=EPOCHS, seed=1, max_length=max(LENGTHS))
    return out


def lstm24_convert(tmp: Path, length: int) -> Path:
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    from edge_echo.usermodel import convert

    keras.utils.set_random_seed(3)
    i = keras.Input((length, 5))
    model = keras.Model(i, keras.layers.Dense(1)(keras.layers.LSTM(24)(i)))
    path = tmp / f"lstm24-{length}.keras"
    model.save(path)
    out = tmp / f"lstm24-{length}"
    convert(path, out, name="lstm24")
    return out


def slope(rows: list[dict], key: str) -> float | None:
    pts = [(r["length"], r[key]) for r in rows if r[key]]
    if len(pts) < 2:
        return None
    t, v = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(t, v, 1)[0])


def lines(rows: list[dict]):
    keys = dict.fromkeys((r["family"], r["model"], r["form"], r["runtime"]) for r in rows)
    for key in keys:
        yield key, sorted((r for r in rows if (r["family"], r["model"], r["form"],
                                               r["runtime"]) == key), key=lambda r: r["length"])


def print_table(rows: list[dict]) -> None:
    print(f"{'family':<7} {'model':<13} {'form':<18} {'runtime':<17} "
          + " ".join(f"{'T=' + str(t):>24}" for t in LENGTHS)
          + f" {'slope bytes':>11} {'slope p50':>9}")
    print(f"{'':<58}" + " ".join(f"{'KiB / p50 µs / arena KiB':>24}" for _ in LENGTHS))
    for (family, model, form, runtime), line in lines(rows):
        by_t = {r["length"]: r for r in line}
        cells = []
        for t in LENGTHS:
            r = by_t.get(t)
            if r is None:
                cells.append(f"{'-':>24}")
                continue
            arena = "-" if r["arena_bytes"] is None else f"{r['arena_bytes'] / 1024:.1f}"
            cells.append(f"{r['bytes'] / 1024:>8,.1f} /{r['p50_us']:>8,.0f} /{arena:>5}")
        sb, sp = slope(line, "bytes"), slope(line, "p50_us")
        print(f"{family:<7} {model:<13} {form:<18} {runtime:<17} " + " ".join(cells)
              + f" {sb:>11.2f} {sp:>9.2f}")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(dict.fromkeys(r["family"] for r in rows))
    fig, axes = plt.subplots(len(families), 3, figsize=(17, 4.6 * len(families)), squeeze=False)
    styles = {label: (f"C{k}", "o" if "step" not in label else "s") for k, (_, label, _)
              in enumerate(PAIRS)}
    legends = {label: text for _, label, text in PAIRS}
    handles = {}
    for row_axes, family in zip(axes, families, strict=True):
        for (fam, model, _form, runtime), line in lines(rows):
            if fam != family:
                continue
            color, marker = styles[runtime]
            dash = "--" if model == "many-to-many" else "-"
            t = [r["length"] for r in line]
            (handle,) = row_axes[0].plot(t, [r["bytes"] / 1024 for r in line], dash, color=color,
                                         marker=marker)
            handles.setdefault(legends[runtime], handle)
            row_axes[1].plot(t, [r["p50_us"] for r in line], dash, color=color, marker=marker)
            if runtime.startswith("tflm"):  # the arena is TFLM's; LiteRT allocates its own
                row_axes[2].plot(t, [r["arena_bytes"] / 1024 for r in line], dash, color=color,
                                 marker=marker)
        for ax, ylabel in zip(row_axes, ("file (KiB)", "p50 per sequence, batch 1 (µs)",
                                         "TFLM arena (KiB)"), strict=True):
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(LENGTHS, [str(t) for t in LENGTHS])
            ax.minorticks_off()
            ax.set_xlabel("sequence length T")
            ax.set_ylabel(ylabel)
            ax.grid(which="both", alpha=0.3)
        title = ("echo models: LSTM units = T (solid many-to-one, dashed many-to-many)"
                 if family == "echo" else "LSTM(24) -> Dense(1) over T steps of 5 features")
        row_axes[1].set_title(title)
    fig.legend(list(handles.values()), list(handles), loc="center right", fontsize=8)
    fig.suptitle("edge-echo: growth with sequence length (log-log)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.83, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1].endswith(".json"):
        replot(Path(sys.argv[1]))
        return 0
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="edge-echo-scaling-") as scratch:
        tmp = Path(scratch)
        for length in LENGTHS:
            for family, make in (("echo", echo_export), ("lstm24", lstm24_convert)):
                start = time.perf_counter()
                directory = make(tmp, length)
                made = time.perf_counter() - start
                rows += measure(directory, family, length)
                print(f"T={length} {family}: made in {made:.0f} s, measured", flush=True)
    print()
    print_table(rows)
    (out / "scaling.json").write_text(json.dumps(rows, indent=1) + "\n")
    plot(rows, out / "scaling.png")
    print(f"\nwrote {out / 'scaling.json'} and {out / 'scaling.png'}")
    return 0


def replot(json_path: Path) -> None:
    """Table and plot again from a scaling.json, without measuring."""
    rows = json.loads(json_path.read_text())
    print_table(rows)
    plot(rows, json_path.with_suffix(".png"))


if __name__ == "__main__":
    sys.exit(main())
