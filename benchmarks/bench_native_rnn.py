"""Issue 14: GRU and SimpleRNN as native ONNX nodes, against the same-size LSTM, in ONNX Runtime.

For each shape, an LSTM, a GRU (reset_after=True, Keras 3's default, and
False) and a SimpleRNN with the same units, each followed by a Dense (and,
for the text shape, after an Embedding with mask_zero=True), are
converted by `edge-echo convert` (ONNX form only) and, for the before
figure, by the same route with the native GRU/RNN rewrite switched off
(what tf2onnx alone writes: a Loop). Each file is timed with a bare
onnxruntime loop (benchmarks/bare.py, batch 1, one thread), the files taking
turns, best of three rounds.

Targets: no Loop or Scan in the files convert writes; each GRU within 1.5x of
the same-size LSTM's p50.

    .venv/bin/python benchmarks/bench_native_rnn.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from bare import ort_call, p50_us

GRU_TARGET = 1.5
# (units, time steps, features): the measured shape, then a larger one; features 0 is a
# text model: token ids (vocabulary 100, a quarter of them padding) into Embedding(100, 16,
# mask_zero=True), whose mask tf2onnx turned into a Loop for the LSTM too.
SHAPES = ((8, 12, 4), (64, 50, 8), (32, 40, 0))
LAYERS = ("LSTM", "GRU", "GRU reset_after=False", "SimpleRNN")
REPEATS = 3


def build(kind: str, units: int, steps: int, features: int):
    import keras

    layer = {"LSTM": lambda: keras.layers.LSTM(units),
             "GRU": lambda: keras.layers.GRU(units),
             "GRU reset_after=False": lambda: keras.layers.GRU(units, reset_after=False),
             "SimpleRNN": lambda: keras.layers.SimpleRNN(units)}[kind]()
    if not features:
        inputs = keras.Input((steps,), dtype="int32")
        embedded = keras.layers.Embedding(100, 16, mask_zero=True)(inputs)
        return keras.Model(inputs, keras.layers.Dense(1)(layer(embedded)))
    inputs = keras.Input((steps, features))
    return keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))


def sample(steps: int, features: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    if not features:
        ids = rng.integers(1, 100, (1, steps)).astype(np.int32)
        ids[0, : steps // 4] = 0  # padding in front, as pad_sequences writes it
        return ids
    return rng.uniform(0, 1, (1, steps, features)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    runs, warmup = (200, 20) if args.quick else (2000, 200)

    import onnx

    from edge_echo.convert import native_rnn
    from edge_echo.tfenv import import_tensorflow
    from edge_echo.usermodel import convert

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-echo-rnn-") as tmp:
        files = []  # (shape, kind, variant, path)
        for units, steps, features in SHAPES:
            for kind in LAYERS:
                source = Path(tmp) / f"{kind.split()[0]}-{units}-{len(files)}.keras"
                build(kind, units, steps, features).save(source)
                native = convert(source, Path(tmp) / f"n{len(files)}", forms=("onnx",))
                files.append(((units, steps, features), kind, "native",
                              native.directory / f"{native.name}.onnx"))
                if kind != "LSTM" or not features:
                    # Before: the same route with the rewrite off (tf2onnx alone: a Loop).
                    saved = native_rnn.native_recurrences
                    native_rnn.native_recurrences = lambda model: None
                    try:
                        loop = convert(source, Path(tmp) / f"l{len(files)}", forms=("onnx",))
                    finally:
                        native_rnn.native_recurrences = saved
                    files.append(((units, steps, features), kind, "loop",
                                  loop.directory / f"{loop.name}.onnx"))
        timings: dict[int, list[float]] = {k: [] for k in range(len(files))}
        for _ in range(REPEATS):
            for k, (shape, _, _, path) in enumerate(files):
                x = sample(*shape[1:])
                timings[k].append(p50_us(ort_call(path, x), runs, warmup))
        for k, (shape, kind, variant, path) in enumerate(files):
            ops = sorted({n.op_type for n in onnx.load(str(path)).graph.node})
            rows.append({"units": shape[0], "steps": shape[1], "features": shape[2],
                         "layer": kind, "onnx": variant, "p50_us": min(timings[k]),
                         "operators": ops})
    for row in rows:
        lstm = next(r for r in rows if r["layer"] == "LSTM" and r["units"] == row["units"]
                    and r["onnx"] == "native")
        row["x_lstm"] = row["p50_us"] / lstm["p50_us"]
    print(f"{'shape (units, steps, features)':32} {'layer':24} {'ONNX':7} {'p50 µs':>9} "
          f"{'x LSTM':>7}  operators")
    for r in rows:
        shape = (f"({r['units']}, {r['steps']}, {r['features']})" if r["features"] else
                 f"({r['units']}, {r['steps']}, token ids, masked)")
        print(f"{shape:32} {r['layer']:24} {r['onnx']:7} {r['p50_us']:9.1f} {r['x_lstm']:7.2f}  "
              f"{' '.join(r['operators'])}")
    native = [r for r in rows if r["onnx"] == "native"]
    loops = [r["layer"] for r in native if {"Loop", "Scan"} & set(r["operators"])]
    worst = max(r["x_lstm"] for r in native if r["layer"].startswith("GRU"))
    print(f"\nLoop or Scan in a file convert writes: {', '.join(loops) or 'none'} (target: none)")
    print(f"worst GRU / same-size LSTM p50: {worst:.2f} (target <= {GRU_TARGET})")
    for r in native:
        before = next((b for b in rows if b["onnx"] == "loop" and b["layer"] == r["layer"]
                       and b["units"] == r["units"]), None)
        if before is not None:
            what = "masked, " if not r["features"] else ""
            print(f"  {r['layer']} ({what}{r['units']} units): {before['p50_us']:.1f} µs as a Loop -> "
                  f"{r['p50_us']:.1f} µs native ({before['p50_us'] / r['p50_us']:.1f}x faster)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "worst_gru_x_lstm": worst,
                                         "target": GRU_TARGET}, indent=1) + "\n")


if __name__ == "__main__":
    main()
