"""Issue 23: the five Keras recurrent examples at their published sizes, through every form.

Each architecture is rebuilt as published, with random weights (seeded), saved, and given to
`edge-echo convert --c-source` as a new user would; then `verify` runs every form it wrote
against Keras. Per example and per form the table gives the file's bytes (the C object's flash
at -Os for the C source, measured at export), the worst error against Keras on each runtime
that ran it, and the verdict; and per form not written, the reason.

    .venv/bin/python benchmarks/bench_examples.py [--only NAME,...] [--json FILE]

Writes benchmarks/results/examples.json and prints the table the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edge_echo.results import with_device  # noqa: E402
from edge_echo.tfenv import import_tensorflow  # noqa: E402
from edge_echo.usermodel import convert  # noqa: E402
from edge_echo.verify import verify  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "examples.json"


def build(name: str):
    """The published architecture (keras.io examples), random weights."""
    import_tensorflow()
    import keras

    L = keras.layers
    keras.utils.set_random_seed(23)
    if name == "addition":  # addition_rnn: DIGITS 3, MAXLEN 7, 12 characters
        i = keras.Input((7, 12))
        h = L.LSTM(128, return_sequences=True)(L.RepeatVector(4)(L.LSTM(128)(i)))
        return keras.Model(i, L.Dense(12, activation="softmax")(h))
    if name == "chargen":  # lstm_character_level_text_generation: maxlen 40, 57 characters
        i = keras.Input((40, 57))
        return keras.Model(i, L.Dense(57, activation="softmax")(L.LSTM(128)(i)))
    if name == "imdb":  # bidirectional_lstm_imdb: 20000 words, 200 per review
        i = keras.Input((200,), dtype="int32")
        h = L.Bidirectional(L.LSTM(64, return_sequences=True))(L.Embedding(20000, 128)(i))
        return keras.Model(i, L.Dense(1, activation="sigmoid")(L.Bidirectional(L.LSTM(64))(h)))
    if name == "weather":  # timeseries_weather_forecasting: 120 steps of 7 features
        i = keras.Input((120, 7))
        return keras.Model(i, L.Dense(1)(L.LSTM(32)(i)))
    if name == "seq2seq":  # lstm_seq2seq: 71 and 93 characters, latent 256; 14 and 59 steps
        e, d = keras.Input((14, 71)), keras.Input((59, 93))
        _, h, c = L.LSTM(256, return_state=True)(e)
        y = L.LSTM(256, return_sequences=True)(d, initial_state=[h, c])
        return keras.Model([e, d], L.Dense(93, activation="softmax")(y))
    raise SystemExit(f"unknown example {name}")


EXAMPLES = ("addition", "chargen", "imdb", "weather", "seq2seq")


def measure(name: str, scratch: Path) -> dict:
    source = scratch / f"{name}.keras"
    build(name).save(source)
    out = scratch / name
    began = time.perf_counter()
    result = convert(source, out, name=name, c_source=True)
    convert_s = time.perf_counter() - began
    doc = with_device(json.loads((out / "manifest.json").read_text()), out)
    entry = doc["models"][name]
    report = verify(out, latency_runs=0)
    runs: dict[str, list] = {}
    for r in report.results:
        runs.setdefault(r.file, []).append({"runtime": r.runtime, "max_abs": r.max_abs,
                                            "passed": r.passed,
                                            **({"top1": r.top1} if getattr(r, "top1", None) else {})})
    forms = []
    for kind, art in entry["artifacts"].items():
        if art["format"] in ("npz", "c-header", "c-source") or kind == "c_header":
            continue
        c = art.get("c", {})
        forms.append({"form": kind, "file": art["file"], "bytes": art["size"],
                      "c_flash_bytes": c.get("footprint", {}).get("flash_bytes"),
                      "c_api": c.get("api"), "runs": runs.get(art["file"], [])})
    return {"example": name, "params": int(build(name).count_params()),
            "convert_seconds": round(convert_s, 1), "forms": forms,
            "not_written": entry.get("not_written", {}), "missing": result.missing,
            "verdict": "PASS" if report.passed else "FAIL"}


def table(rows: list[dict]) -> str:
    """One row per form: its bytes (flash for the C source), the worst error against Keras over
    every runtime that ran it (how many), top-1 agreement where the output is a probability."""
    lines = ["| example | params | form | bytes | C flash | worst error vs Keras (runtimes) | "
             "top-1 | verdict |", "|---|---:|---|---:|---:|---|---:|---|"]
    for row in rows:
        for f in row["forms"]:
            if f["form"] == "keras":
                continue
            runs = f["runs"]
            worst = max((r["max_abs"] for r in runs), default=None)
            errors = f"{worst:.2g} ({len(runs)})" if runs else "-"
            agree = [t["agreement"] for r in runs for t in r.get("top1", [])]
            top1 = f"{min(agree):.1%}" if agree else ""
            ok = "pass" if runs and all(r["passed"] for r in runs) else ("-" if not runs else "FAIL")
            flash = f"{f['c_flash_bytes']:,}" if f["c_flash_bytes"] else ""
            lines.append(f"| {row['example']} | {row['params']:,} | {f['form']} | {f['bytes']:,} | "
                         f"{flash} | {errors} | {top1} | {ok} |")
        for kind, why in row["not_written"].items():
            if kind != "c_header":
                lines.append(f"| {row['example']} | | {kind} | not written: {why} | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(EXAMPLES))
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-echo-examples-") as scratch:
        for name in names:
            print(f"{name} ...", file=sys.stderr, flush=True)
            rows.append(measure(name, Path(scratch)))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if args.json.is_file():  # --only refreshes those examples and keeps the others
        done = {r["example"]: r for r in json.loads(args.json.read_text()).get("examples", [])}
    done.update({r["example"]: r for r in rows})
    rows = [done[n] for n in EXAMPLES if n in done]
    args.json.write_text(json.dumps({"examples": rows}, indent=2) + "\n")
    print(table(rows))
    failed = [r["example"] for r in rows if r["verdict"] != "PASS" or r["missing"]]
    if failed:
        raise SystemExit(f"not every form passed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
