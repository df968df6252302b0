"""Issue 33's table: each source format x the seed's three models and a GRU / Bidirectional /
Embedding model, converted with every default form and the C source, verified, and compared with
the original model's own framework (tf-keras on the original file, Keras 3, TensorFlow on a
serving signature, or the outputs JAX stored); then every refusal with its one line.

    .venv/bin/python benchmarks/bench_readers.py [--out benchmarks/results/readers.json]

"worst vs original" is the largest |diff| between any float file (every runtime verify runs but
the quantized variants and the emulated cores) and the original framework's outputs on the
reference inputs of the export.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_echo import refdata  # noqa: E402
from edge_echo.readers.tfkeras import import_tf_keras, original_call  # noqa: E402
from edge_echo.runners import RUNNERS, targets  # noqa: E402
from edge_echo.specs import get_spec  # noqa: E402
from edge_echo.usermodel import convert  # noqa: E402
from edge_echo.verify import _run_batched, verify  # noqa: E402

DATA = ROOT / "tests" / "data"


def keras2_models(k2):
    """The seed's three models, trained briefly in tf-keras as the notebook did, and one of ours."""
    L = k2.layers
    made = {}
    for name in ("one-to-one", "many-to-one", "many-to-many"):
        spec = get_spec(name)
        x, y = spec.training_data()
        t, f = spec.input_shape
        if name == "many-to-many":
            m = k2.Sequential([L.LSTM(5, return_sequences=True, input_shape=(t, f)),
                               L.TimeDistributed(L.Dense(1))])
        else:
            m = k2.Sequential([L.LSTM(5, input_shape=(t, f)), L.Dense(y.shape[-1])])
        m.compile(loss="mse", optimizer="adam")
        m.fit(x, y, epochs=30, batch_size=5, verbose=0)
        made[name] = m
    own = k2.Sequential([L.Embedding(30, 8, mask_zero=True, input_length=12),
                         L.Bidirectional(L.GRU(8, return_sequences=True)),
                         L.GRU(6, reset_after=False), L.Dense(3, activation="softmax")])
    own.build((None, 12))
    rng = np.random.default_rng(5)
    for w in own.weights:
        w.assign(rng.normal(0, 0.4, tuple(w.shape)).astype("float32"))
    made["ids-bigru-gru"] = own
    return made


def to_keras3(model2):
    from edge_echo.readers.translate import to_keras3 as translate

    return translate(model2)[0]


def write_sources(k2, models, root: Path) -> list[tuple[str, str, Path, object]]:
    """(format, model, path, the original's call on a list of arrays)."""
    out = []
    for name, m2 in models.items():
        call2 = original_call(m2)
        m2.save(root / f"{name}.h5")
        m2.save(root / f"{name}.tfkeras.keras")
        m2.save(root / f"{name}-savedmodel")
        out += [("tf-keras HDF5", name, root / f"{name}.h5", call2),
                ("tf-keras SavedModel", name, root / f"{name}-savedmodel", call2),
                ("tf-keras .keras", name, root / f"{name}.tfkeras.keras", call2)]
        m3 = to_keras3(m2)

        def call3(arrays, m3=m3):
            return [np.asarray(m3(arrays[0] if len(arrays) == 1 else arrays, training=False))]

        m3.save(root / f"{name}.keras")
        m3.save(root / f"{name}.k3.h5")
        m3.export(root / f"{name}-export", verbose=False)
        import tensorflow as tf

        loaded = tf.saved_model.load(str(root / f"{name}-export"))
        sig = loaded.signatures["serving_default"]
        (key,) = sig.structured_input_signature[1]

        def call_tf(arrays, sig=sig, key=key, loaded=loaded):
            return [np.asarray(v) for _, v in sorted(sig(**{key: arrays[0]}).items())]

        out += [("Keras 3 .keras", name, root / f"{name}.keras", call3),
                ("Keras 3 HDF5", name, root / f"{name}.k3.h5", call3),
                ("Keras 3 export (graph)", name, root / f"{name}-export", call_tf)]
    for fixture in ("jax_many_to_many", "jax_bigru"):
        stored = np.load(DATA / f"{fixture}.outputs.npz")
        out.append(("Keras 3 .keras (JAX)", fixture, DATA / f"{fixture}.keras",
                    {"x": stored["x"], "y": stored["y"]}))
    return out


def worst_against_original(directory: Path, original) -> tuple[float, str]:
    doc = json.loads((directory / "manifest.json").read_text())
    (entry,) = doc["models"].values()
    arts = entry["artifacts"]
    ins = [i["name"] for i in entry["inputs"]]
    outs = [o["name"] for o in entry["outputs"]]
    if isinstance(original, dict):
        feed, expected = {ins[0]: original["x"]}, [original["y"]]
    else:
        ref = refdata.load(directory / arts["reference"]["file"])
        feed = refdata.inputs(ref, refdata.RANDOM_X, ins)
        expected = original([feed[n] for n in ins])
    worst, where = 0.0, "-"
    for label, cls, art in targets(arts, RUNNERS):
        if ":" in label or getattr(cls, "emulated", False) or cls.unavailable():
            continue
        with cls(directory / art["file"], ins, outs, artifact=art) as runner:
            got = _run_batched(runner, feed, 1 if runner.fixed_batch else 64)
        for name, want in zip(outs, expected, strict=True):
            d = float(np.abs(got[name].astype(np.float64) - want).max())
            if d > worst:
                worst, where = d, label
    return worst, where


def refusal_files(k2, root: Path) -> list[Path]:
    L = k2.layers
    files = []
    lam = k2.Sequential([L.Lambda(lambda t: t * 2, input_shape=(5, 1)), L.LSTM(2)])
    lam.save(root / "lambda.h5")
    files.append(root / "lambda.h5")
    nan = k2.Sequential([L.LSTM(3, input_shape=(5, 1)), L.Dense(1)])
    nan.layers[0].weights[0].assign(np.full((1, 12), np.nan, "float32"))
    nan.save(root / "diverged.h5")
    files.append(root / "diverged.h5")
    k2.Sequential([L.LSTM(2, input_shape=(5, 1))]).save_weights(root / "weights.h5")
    files.append(root / "weights.h5")
    k2.Sequential([L.LSTM(2, time_major=True, input_shape=(5, 1))]).save(root / "timemajor.h5")
    files.append(root / "timemajor.h5")
    k2.Sequential([L.GRU(2, recurrent_activation="hard_sigmoid", input_shape=(5, 1))]).save(
        root / "hard-sigmoid.h5")
    files.append(root / "hard-sigmoid.h5")
    import shutil

    import h5py

    shutil.copyfile(root / "timemajor.h5", root / "linked.h5")
    with h5py.File(root / "linked.h5", "a") as f:
        f["model_weights"]["elsewhere"] = h5py.ExternalLink("/etc/hostname", "/")
    files.append(root / "linked.h5")
    import keras

    @keras.saving.register_keras_serializable(package="mine")
    class Twice(keras.layers.Layer):
        def call(self, t):
            return t * 2

    keras.Sequential([keras.Input((5, 1)), Twice(), keras.layers.LSTM(2)]).save(root / "custom.keras")
    files.append(root / "custom.keras")
    i = keras.Input((5, 1))
    keras.Model(i, keras.layers.LSTM(2)(keras.layers.Lambda(lambda t: t * 2)(i))).save(
        root / "lambda3.keras")
    files.append(root / "lambda3.keras")
    import tensorflow as tf

    class Writes(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 5, 1), tf.float32)])
        def __call__(self, x):
            tf.io.write_file("/tmp/edge-echo-should-not-exist", "x")
            return {"y": x}

    module = Writes()
    tf.saved_model.save(module, str(root / "writes-savedmodel"), signatures=module.__call__)
    files.append(root / "writes-savedmodel")
    (root / "model.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    (root / "model.onnx").write_bytes(b"\x08\x07")
    with zipfile.ZipFile(root / "model.pt", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({}))
    (root / "model.pkl").write_bytes(pickle.dumps({}))
    (root / "frozen.pb").write_bytes(b"\n\x00")
    files += [root / n for n in ("model.tflite", "model.onnx", "model.pt", "model.pkl", "frozen.pb")]
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "readers.json")
    args = parser.parse_args()
    k2 = import_tf_keras()
    k2.utils.set_random_seed(0)
    rows, refusals = [], []
    with tempfile.TemporaryDirectory(prefix="edge-echo-readers-") as tmp:
        root = Path(tmp)
        for fmt, name, path, original in write_sources(k2, keras2_models(k2), root):
            out = root / "out" / f"{path.name}"
            result = convert(path, out, c_source=True)
            doc = json.loads((out / "manifest.json").read_text())
            (entry,) = doc["models"].values()
            forms = [k for k in entry["artifacts"] if k not in ("reference", "c_header")]
            report = verify(out, latency_runs=0, cores=())
            worst, where = worst_against_original(out, original)
            rows.append({"format": fmt, "model": name, "forms": forms,
                         "not_written": sorted(entry.get("not_written", {})),
                         "missing": result.missing, "worst_vs_original": worst, "where": where,
                         "verify": "PASS" if report.passed else "FAIL",
                         "runtimes": len(report.results)})
            print(f"| {fmt} | {name} | {len(forms)}: {', '.join(forms)} | {worst:.2g} ({where}) | "
                  f"{rows[-1]['verify']} ({len(report.results)} runtimes) |"
                  + "".join(f" MISSING {line}" for line in result.missing), flush=True)
        print()
        (root / "bad").mkdir()
        for path in refusal_files(k2, root / "bad"):
            done = subprocess.run([sys.executable, "-m", "edge_echo", "convert", str(path), "--out",
                                   str(root / "refused")], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            refusals.append({"file": path.name, "exit": done.returncode, "stderr": lines,
                             "out_written": (root / "refused").exists()})
            print(f"| `{path.name}` | {done.returncode} | {' / '.join(lines)} |", flush=True)
    args.out.write_text(json.dumps({"rows": rows, "refusals": refusals}, indent=2) + "\n")
    ok = all(r["verify"] == "PASS" and r["worst_vs_original"] <= 1e-4 and not r["missing"]
             for r in rows) and all(
        r["exit"] == 2 and len(r["stderr"]) == 1 and not r["out_written"] for r in refusals)
    print(f"\n{'all within targets' if ok else 'OUT OF TARGET'}: {len(rows)} conversions, "
          f"{len(refusals)} refusals -> {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
