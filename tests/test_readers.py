"""Issue 33: the models people already have (tf.keras HDF5, SavedModel and .keras, Keras 3's legacy
HDF5 and its other backends, a serving graph) convert like a .keras file, and a model that cannot
give a trustworthy export is refused in one line before anything is written."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import read_manifest, tree_digest

from edge_echo import readers
from edge_echo.errors import ArtifactError, EdgeEchoError
from edge_echo.usermodel import convert, describe_source, interface_of, reference_inputs
from edge_echo.verify import verify

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def k2():
    """tf-keras (Keras 2), as TensorFlow 2.x users trained and saved their models."""
    from edge_echo.readers.tfkeras import import_tf_keras

    return import_tf_keras()


@pytest.fixture(scope="module")
def k3():
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    return keras


def _randomized(model, seed: int):
    """Every weight drawn at random (moving variances positive): differences a default
    initialization would hide (zero biases, unit variances) show."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        shape, name = tuple(w.shape), w.name
        w.assign(rng.uniform(0.5, 2.0, shape).astype("float32") if "variance" in name
                 else rng.normal(0, 0.6, shape).astype("float32"))
    return model


def _keras2_zoo(k2):
    """(name, tf-keras model, input: (shape, vocabulary or None)): each Keras 2 config the
    translation must read exactly."""
    L = k2.layers
    i = k2.Input((6, 3))
    bi = k2.Model(i, L.Dense(2)(L.Bidirectional(L.LSTM(3))(i)))
    return [
        ("lstm-timedistributed", k2.Sequential([L.LSTM(5, return_sequences=True, input_shape=(5, 1)),
                                                L.TimeDistributed(L.Dense(1))]), ((5, 1), None)),
        ("gru-reset-after", k2.Sequential([L.GRU(4, input_shape=(7, 2)), L.Dense(2)]), ((7, 2), None)),
        ("gru-reset-before", k2.Sequential([L.GRU(4, reset_after=False, input_shape=(7, 2)),
                                            L.Dense(2)]), ((7, 2), None)),
        ("simplernn", k2.Sequential([L.SimpleRNN(4, return_sequences=True, input_shape=(6, 2)),
                                     L.TimeDistributed(L.Dense(1))]), ((6, 2), None)),
        ("bidirectional", bi, ((6, 3), None)),
        ("embedding-mask-zero", k2.Sequential([L.Embedding(20, 4, mask_zero=True, input_length=8),
                                               L.LSTM(3), L.Dense(2, activation="softmax")]),
         ((8,), 20)),
        ("masking", k2.Sequential([L.Masking(0.0, input_shape=(6, 2)),
                                   L.LSTM(3, return_sequences=True), L.TimeDistributed(L.Dense(1))]),
         ((6, 2), None)),
        ("batchnorm", k2.Sequential([L.GRU(4, return_sequences=True, input_shape=(5, 2)),
                                     L.BatchNormalization(), L.SimpleRNN(2)]), ((5, 2), None)),
        ("spatial-dropout-merge-modes", k2.Sequential([
            L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum", input_shape=(6, 2)),
            L.SpatialDropout1D(0.1), L.Bidirectional(L.LSTM(2), merge_mode="ave"),
            L.Dense(1, activation="sigmoid")]), ((6, 2), None)),
        ("stateful", k2.Sequential([L.LSTM(3, stateful=True, batch_input_shape=(1, 5, 1)),
                                    L.Dense(1)]), ((5, 1), None)),
    ]


def _inputs(shape, vocabulary, rng):
    if vocabulary:
        x = rng.integers(0, vocabulary, (16, *shape)).astype("int32")
        x[:5, :3] = 0  # padded sequences: the mask matters
        return x
    x = rng.uniform(0, 1, (16, *shape)).astype("float32")
    x[:5, -2:] = 0.0  # what Masking skips
    return x


def test_keras2_configs_translate_to_the_same_outputs(k2, tmp_path):
    """Each layer tf.keras saved reads as a Keras 3 model that computes what tf-keras computes on
    the original file, to float32 round-off (the stateful model one sequence at a time from a
    zero state, as its export's contract says)."""
    rng = np.random.default_rng(0)
    for k, (name, model, (shape, vocabulary)) in enumerate(_keras2_zoo(k2)):
        _randomized(model, k)
        model.save(tmp_path / f"{name}.h5")
        source = readers.prepare(readers.read(tmp_path / f"{name}.h5"))
        assert source.translated and source.provenance["writer"] == "tf-keras", name
        x = _inputs(shape, vocabulary, rng)
        ours = np.asarray(source.model(x, training=False))
        theirs = source.original([x])[0]
        np.testing.assert_allclose(ours, theirs, atol=1e-6, rtol=1e-6, err_msg=name)
        rules = source.provenance["translation"]["rules"]
        assert any("stateful" in r for r in rules) == (name == "stateful"), (name, rules)


def test_a_translation_that_drifts_is_refused(k2, tmp_path):
    """The check at convert compares the Keras 3 model with tf-keras on the reference inputs: a
    weight changed by 1e-3 after the translation is caught (and the check itself is what passes
    the untouched model)."""
    L = k2.layers
    _randomized(k2.Sequential([L.GRU(4, input_shape=(5, 2)), L.Dense(1)]), 3).save(tmp_path / "g.h5")
    source = readers.prepare(readers.read(tmp_path / "g.h5"))
    interface = interface_of(source.model, None)
    feed, _ = reference_inputs(interface, 0, 0.0, 1.0, None)
    outputs = [np.asarray(source.model(feed["x"], training=False))]
    doc = describe_source(source, interface, feed, outputs, "g")
    assert doc["translation"]["check"]["max_abs_diff"] <= 1e-6
    kernel = source.model.layers[0].weights[0]
    kernel.assign(kernel.numpy() + 1e-3)
    outputs = [np.asarray(source.model(feed["x"], training=False))]
    with pytest.raises(ArtifactError, match="does not reproduce tf-keras"):
        describe_source(source, interface, feed, outputs, "g")


@pytest.fixture(scope="module")
def sources(k2, k3, tmp_path_factory):
    """The seed's many-to-many model saved every way a user has it, and what the original
    framework computes on a fixed input (the comparison the closing table makes)."""
    root = tmp_path_factory.mktemp("sources")
    x = np.linspace(0, 0.8, 5, dtype="float32").reshape(1, 5, 1)
    L = k2.layers
    m2 = k2.Sequential([L.LSTM(5, return_sequences=True, input_shape=(5, 1)),
                        L.TimeDistributed(L.Dense(1))])
    _randomized(m2, 7)
    m2.save(root / "tfkeras.h5")
    m2.save(root / "tfkeras_savedmodel")
    m2.save(root / "tfkeras.keras")
    m3 = k3.Sequential([k3.Input((5, 1)), k3.layers.LSTM(5, return_sequences=True),
                        k3.layers.TimeDistributed(k3.layers.Dense(1))])
    m3.set_weights(m2.get_weights())
    m3.save(root / "keras3.h5")
    m3.export(root / "keras3_export", verbose=False)
    return root, x, np.asarray(m2(x))


@pytest.mark.parametrize("fmt", ["tfkeras.h5", "tfkeras_savedmodel", "tfkeras.keras", "keras3.h5"])
def test_every_keras_format_converts_and_verifies(sources, fmt, tmp_path):
    root, x, expected = sources
    out = tmp_path / "out"
    result = convert(root / fmt, out, forms=("tflite", "onnx", "ort"))
    assert not result.missing
    (entry,) = read_manifest(out)["models"].values()
    assert {"keras", "tflite", "onnx", "ort"} <= set(entry["artifacts"])
    source = entry["source"]
    assert source["format"] == {"h5": "hdf5", "keras": "keras"}.get(fmt.split(".")[-1], "savedmodel")
    assert source["writer"] == ("keras" if fmt.startswith("keras3") else "tf-keras")
    assert ("translation" in source) == fmt.startswith("tfkeras")
    import onnxruntime as ort

    got = ort.InferenceSession(out / entry["artifacts"]["onnx"]["file"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)  # the original framework's output
    report = verify(out, latency_runs=0, cores=())
    assert report.passed and {r.runtime for r in report.results} >= {"keras", "onnxruntime", "litert"}
    # The page and the export's README say where the model came from.
    from edge_echo import report as page

    page.write(page.gather(out), out / "report.html")
    html, readme = (out / "report.html").read_text(), (out / "README.md").read_text()
    assert f"read from `{fmt}`" in readme and source["reference"] in readme
    assert ("translation check" in html) == fmt.startswith("tfkeras") and "written by" in html


def test_a_tf_keras_h5_gets_every_form(sources, tmp_path):
    """C, micro, step, quantized and .ort files from a tf.keras HDF5 file, all verified."""
    root, _, _ = sources
    out = tmp_path / "out"
    result = convert(root / "tfkeras.h5", out, quantize=[("tflite", "float16"), ("onnx", "float16")],
                     c_source=True)
    assert not result.missing
    (entry,) = read_manifest(out)["models"].values()
    assert {"c_source", "tflite_micro", "tflite_micro_step", "tflite_step", "onnx_step",
            "tflite_float16", "onnx_float16", "ort"} <= set(entry["artifacts"])
    report = verify(out, latency_runs=0, cores=())
    assert report.passed, [r.runtime for r in report.results if not r.passed]
    assert {"c", "c-step", "tflm", "tflm-step", "litert:float16"} <= {r.runtime for r in report.results}


@pytest.mark.parametrize("name", ["jax_many_to_many", "jax_bigru"])
def test_a_keras3_file_saved_under_jax_reads_as_it_is(name, tmp_path):
    """Files saved under the JAX backend (tools/make-backend-fixtures): the ONNX file gives what
    JAX computed."""
    import onnxruntime as ort

    stored = np.load(DATA / f"{name}.outputs.npz")
    assert str(stored["backend"]) == "jax"
    out = tmp_path / "out"
    convert(DATA / f"{name}.keras", out, forms=("onnx",))
    (entry,) = read_manifest(out)["models"].values()
    assert entry["source"]["keras_file"] == "copied" and "translation" not in entry["source"]
    got = ort.InferenceSession(out / entry["artifacts"]["onnx"]["file"]).run(
        None, {"x": stored["x"]})[0]
    np.testing.assert_allclose(got, stored["y"], atol=1e-5)


@pytest.mark.js  # its .onnx, .ort and .web.tflite (a WHILE loop) in the JavaScript runtimes too
def test_a_serving_graph_gets_the_graph_forms(sources, tmp_path):
    """Keras 3's model.export (no Keras config): ONNX, TFLite at batch 1 (its LSTM loop as a
    builtin WHILE), their variants and .ort, TensorFlow on the signature as the reference in
    convert and verify; the forms that need layers say why."""
    root, x, expected = sources
    out = tmp_path / "out"
    result = convert(root / "keras3_export", out, quantize=[("onnx", "float16"), ("tflite", "float16")])
    assert not result.missing
    (entry,) = read_manifest(out)["models"].values()
    assert {"savedmodel", "onnx", "onnx_float16", "ort", "tflite", "tflite_float16"} <= set(
        entry["artifacts"])
    assert entry["artifacts"]["tflite"]["conversion"]["route"] == "graph-batch-1"
    assert "keras" not in entry["artifacts"]
    for kind in ("tflite_step", "tflite_micro", "onnx_step"):
        assert "Keras config" in entry["not_written"][kind]
    assert entry["source"]["writer"].startswith("tensorflow") and "translation" not in entry["source"]
    from edge_echo.runners import RUNNERS

    report = verify(out, latency_runs=0, cores=())
    runtimes = {r.runtime: r for r in report.results}
    assert report.passed and {"tensorflow", "onnxruntime", "onnxruntime:float16", "litert",
                              "litert:float16"} <= set(runtimes)
    # The web twin of a batch-1 file is the same bytes, and LiteRT.js runs its WHILE loop.
    web = {rt for rt in ("onnxruntime-node", "onnxruntime-web", "litertjs", "litertjs:float16")
           if not RUNNERS[rt.split(":")[0]].unavailable()}
    assert web <= set(runtimes), set(runtimes)
    if "litertjs" in web:
        assert entry["artifacts"]["tflite_web"]["sha256"] == entry["artifacts"]["tflite"]["sha256"]
    assert runtimes["litert"].looped and runtimes["litert"].max_abs <= 1e-6
    from edge_echo.bench import bench

    # bench times TensorFlow's bare signature call too, against a one-reshape SavedModel floor.
    rows = {r.runtime: r for r in bench(out, runs=5, warmup=1, batch=2, memory=False).rows}
    assert {"tensorflow", "onnxruntime", "onnxruntime-ort"} <= set(rows)
    assert rows["tensorflow"].floor.p50_us > 0
    art = entry["artifacts"]["savedmodel"]
    with RUNNERS["tensorflow"](out / art["file"], ["x"], None, artifact=art) as runner:
        got = runner.infer({"x": x})
    np.testing.assert_allclose(next(iter(got.values())), expected, atol=1e-6)


def test_a_graph_the_tflite_converter_takes_gets_a_tflite_too(k3, tmp_path):
    """tf.saved_model.save of a plain module: TFLite where the converter lowers the graph."""
    import tensorflow as tf

    class Smooth(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.random.default_rng(0).normal(size=(3, 2)).astype("float32"))

        @tf.function(input_signature=[tf.TensorSpec((None, 4, 3), tf.float32)])
        def __call__(self, x):
            return {"y": tf.tanh(tf.matmul(x, self.w))}

    module = Smooth()
    tf.saved_model.save(module, str(tmp_path / "smooth"), signatures=module.__call__)
    out = tmp_path / "out"
    convert(tmp_path / "smooth", out, forms=("tflite", "onnx"))
    (entry,) = read_manifest(out)["models"].values()
    assert {"tflite", "onnx"} <= set(entry["artifacts"])
    conversion = entry["artifacts"]["tflite"]["conversion"]
    assert conversion["route"] == "graph-frozen" and "batch" not in conversion  # any batch
    report = verify(out, latency_runs=0, cores=())
    assert report.passed and not {r.runtime: r for r in report.results}["litert"].looped


def _lambda_marker(tmp_path):
    marker = tmp_path / "ran"
    return marker, f"lambda t: (open({str(marker)!r}, 'w').write('x'), t)[1]"


def _refusals(k2, k3, tmp_path):
    """(file, what the one line must say): every way a file is refused before it is read."""
    import tensorflow as tf

    marker, code = _lambda_marker(tmp_path)
    made = []
    # A Lambda layer, in every format that can carry one. Saving traces it (the marker is
    # written then): it is removed before the convert, which must not write it again.
    lam2 = k2.Sequential([k2.layers.Lambda(eval(code), input_shape=(5, 1)), k2.layers.LSTM(2)])
    for name in ("lambda2.h5", "lambda2.keras", "lambda2_savedmodel"):
        lam2.save(tmp_path / name)
        made.append((name, "is a Lambda"))
    i = k3.Input((5, 1))
    k3.Model(i, k3.layers.LSTM(2)(k3.layers.Lambda(eval(code))(i))).save(tmp_path / "lambda3.keras")
    made.append(("lambda3.keras", "is a Lambda"))

    @k3.saving.register_keras_serializable(package="mine")
    class Twice(k3.layers.Layer):
        def call(self, t):
            return t * 2

    k3.Sequential([k3.Input((5, 1)), Twice(), k3.layers.LSTM(2)]).save(tmp_path / "custom.keras")
    made.append(("custom.keras", "is a custom object ('mine>Twice'"))
    # A graph that reaches outside the process, by op name.
    class Writes(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 5, 1), tf.float32)])
        def __call__(self, x):
            tf.io.write_file(str(marker), "x")
            return {"y": x}

    class Python(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 5, 1), tf.float32)])
        def __call__(self, x):
            return {"y": tf.py_function(lambda t: t, [x], tf.float32)}

    for name, module in (("writes", Writes()), ("python", Python())):
        tf.saved_model.save(module, str(tmp_path / name), signatures=module.__call__)
    made += [("writes", "op WriteFile"), ("python", "op EagerPyFunc")]
    # Weights a diverged run left.
    nan = k2.Sequential([k2.layers.LSTM(3, input_shape=(5, 1)), k2.layers.Dense(1)])
    nan.layers[1].bias.assign([np.inf])
    nan.layers[0].weights[1].assign(np.full((3, 12), np.nan, "float32"))
    nan.save(tmp_path / "nan.h5")
    made.append(("nan.h5", "layer 'lstm"))
    # A Keras 2 layer with no Keras 3 form.
    k2.Sequential([k2.layers.LSTM(2, time_major=True, input_shape=(5, 1))]).save(
        tmp_path / "timemajor.h5")
    made.append(("timemajor.h5", "timemajor.h5: layer 'lstm"))
    k2.Sequential([k2.layers.GRU(2, recurrent_activation="hard_sigmoid", input_shape=(5, 1))]).save(
        tmp_path / "hard.h5")
    made.append(("hard.h5", "uses recurrent_activation 'hard_sigmoid'"))
    # Weights alone, an HDF5 file that links outside itself.
    k2.Sequential([k2.layers.LSTM(2, input_shape=(5, 1))]).save_weights(tmp_path / "weights.h5")
    made.append(("weights.h5", "save_weights"))
    import shutil

    import h5py

    shutil.copyfile(tmp_path / "timemajor.h5", tmp_path / "linked.h5")
    with h5py.File(tmp_path / "linked.h5", "a") as f:
        f["model_weights"]["elsewhere"] = h5py.ExternalLink("/etc/hostname", "/")
    made.append(("linked.h5", "ExternalLink"))
    # Files that are not a model edge-echo reads.
    (tmp_path / "model.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07\x12\x07onnx")
    (tmp_path / "frozen.pb").write_bytes(b"\n\x0c\n\x01x\x12\x0bPlaceholder")
    with zipfile.ZipFile(tmp_path / "model.pt", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"weights": [1.0]}))
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0]}))
    (tmp_path / "notes.h5").write_text("not hdf5")
    made += [("model.tflite", "what edge-echo writes"), ("model.onnx", "ONNX"),
             ("frozen.pb", "SavedModel directory"), ("model.pt", "PyTorch"),
             ("model.pkl", "never read"), ("notes.h5", "not an HDF5 file")]
    marker.unlink(missing_ok=True)
    return marker, made


def test_what_cannot_give_a_trustworthy_export_is_refused_before_anything_is_written(
        k2, k3, tmp_path, cli):
    marker, made = _refusals(k2, k3, tmp_path)
    assert len(made) == 18
    for name, says in made:
        out = tmp_path / f"out-{name}"
        with pytest.raises(EdgeEchoError) as caught:
            convert(tmp_path / name, out)
        line = str(caught.value)
        assert says in line and "\n" not in line, (name, line)
        assert not out.exists() and not list(tmp_path.glob(f".out-{name}.partial-*")), name
        assert not marker.exists(), f"{name}: the Lambda ran"
    # Through the CLI: one line on stderr, exit 2, no traceback.
    result = cli("convert", tmp_path / "lambda2.h5", "--out", tmp_path / "cli-out")
    assert result.exit_code == 2 and not (tmp_path / "cli-out").exists()
    assert result.stderr.strip() == ("edge-echo: error: lambda2.h5: layer 'lambda' is a Lambda: "
                                     "it carries Python code, which edge-echo never runs; rebuild "
                                     "it from built-in layers")
    assert not marker.exists()
    # What the check prevents: tf-keras 2.21's HDF5 loader ignores safe_mode and runs it.
    k2.models.load_model(tmp_path / "lambda2.h5", safe_mode=True)(np.zeros((1, 5, 1), "float32"))
    assert marker.exists()


def test_a_refused_model_leaves_the_previous_export_as_it_was(k2, tmp_path, sources):
    root, _, _ = sources
    out = tmp_path / "out"
    convert(root / "tfkeras.h5", out, name="model", forms=("onnx",))
    before = tree_digest(out)
    bad = k2.Sequential([k2.layers.LSTM(3, input_shape=(5, 1)), k2.layers.Dense(1)])
    bad.layers[1].bias.assign([np.nan])
    bad.save(tmp_path / "model.h5")
    with pytest.raises(ArtifactError, match="layer 'dense.*' variable 'bias' \\(1 NaN of 1\\)"):
        convert(tmp_path / "model.h5", out, forms=("onnx",))
    assert tree_digest(out) == before


def test_a_manifest_that_fails_its_own_check_is_never_published(export_copy):
    """publish checks the manifest in the staging directory: an invalid one (a NaN tolerance,
    what a NaN model once produced) keeps the previous export whole."""
    from edge_echo.export import publish

    before = tree_digest(export_copy)
    old = read_manifest(export_copy)

    def build(staged, previous, tools):
        entry = json.loads(json.dumps(old["models"]["many-to-one"]))
        entry["artifacts"] = {k: entry["artifacts"][k] for k in ("keras", "reference")}
        for art in entry["artifacts"].values():
            shutil.copyfile(export_copy / art["file"], staged / art["file"])
        entry["tolerances"]["tflm:int8"]["atol"] = float("nan")
        return {"models": {"many-to-one": entry}}, None

    with pytest.raises(ArtifactError, match="own manifest fails its check .*tflm:int8/atol"):
        publish(export_copy, build, lambda model, stage: None)
    assert tree_digest(export_copy) == before


def test_layer_names_tensorflow_rejects_are_renamed_and_recorded(k3, tmp_path):
    i = k3.Input((5, 1))
    model = k3.Model(i, k3.layers.Dense(1, name="d d")(k3.layers.LSTM(4, name="<img src=x>")(i)))
    _randomized(model, 1).save(tmp_path / "names.keras")
    out = tmp_path / "out"
    convert(tmp_path / "names.keras", out, forms=("tflite", "onnx"))
    (entry,) = read_manifest(out)["models"].values()
    assert entry["source"]["renamed_layers"] == {"<img src=x>": "layer_img_src_x_", "d d": "d_d"}
    assert entry["source"]["keras_file"] == "saved"  # the renamed model is the reference
    assert verify(out, latency_runs=0, cores=()).passed


def test_a_fleet_finds_every_format(sources, tmp_path):
    from edge_echo.fleet import collect, is_fleet

    root, _, _ = sources
    assert not is_fleet([str(root / "tfkeras_savedmodel")])
    found = {p.name for p, _ in ((m.source, m.name) for m in collect([str(root)], tmp_path / "o"))}
    assert found == {"tfkeras.h5", "tfkeras_savedmodel", "tfkeras.keras", "keras3.h5",
                     "keras3_export"}


def test_a_savedmodel_directory_converts_in_a_fleet(sources, tmp_path):
    """In a fleet a SavedModel directory travels to its worker whole, beside an HDF5 file (one
    directory alone is one model: test_a_fleet_finds_every_format)."""
    root, _, _ = sources
    done = subprocess.run([sys.executable, "-m", "edge_echo", "convert",
                           str(root / "keras3_export"), str(root / "tfkeras.h5"), "--out",
                           str(tmp_path / "fleet"), "--forms", "onnx", "--quiet", "--jobs", "2"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    index = json.loads((tmp_path / "fleet" / "fleet.json").read_text())
    assert {n: m["verdict"] for n, m in index["models"].items()} == {
        "keras3-export": "pass", "tfkeras": "pass"}
    assert (tmp_path / "fleet" / "keras3-export" / "keras3-export.savedmodel.zip").is_file()


@pytest.mark.parametrize("config, says", [
    # The published safe-mode bypasses, as configs: a Lambda whose function is a module's callable
    # (CVE-2025-9906's keras.models.load_model with safe_mode off), an activation resolved from
    # another module, an activation helper that deserializes further objects, an initializer
    # from another module.
    ({"class_name": "Lambda", "config": {"name": "l", "function": {
        "module": "keras.models", "class_name": "function", "config": "load_model",
        "registered_name": "function"}, "arguments": {"safe_mode": False}}}, "is a Lambda"),
    ({"class_name": "Dense", "config": {"name": "d", "activation": {
        "module": "os", "class_name": "function", "config": "relu"}}}, "of module 'os'"),
    ({"class_name": "Dense", "config": {"name": "d", "activation": {
        "module": "keras.activations", "class_name": "function", "config": "deserialize"}}},
     "function 'deserialize'"),
    ({"class_name": "Dense", "config": {"name": "d", "kernel_initializer": {
        "module": "subprocess", "class_name": "GlorotUniform", "config": {}}}},
     "from module 'subprocess'"),
    ({"class_name": "Dense", "config": {"name": "d", "activation": "my_activation"}},
     "activation 'my_activation'"),
])
def test_configs_that_name_code_are_refused_as_data(k3, config, says):
    from edge_echo.readers.safety import check_config

    model = {"class_name": "Sequential", "config": {"name": "s", "layers": [config]}}
    with pytest.raises(ArtifactError, match=re.escape(says)):
        check_config(model, "m.keras")
    # The same layer with built-in values passes: the check refuses the names, not the layer.
    if config["class_name"] == "Dense":
        check_config({"class_name": "Sequential", "config": {"name": "s", "layers": [
            {"class_name": "Dense", "config": {"name": "d", "activation": "relu"}}]}}, "m.keras")
