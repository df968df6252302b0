"""Issue 9: edge-echo convert on a zoo of user architectures, each verified in every runtime."""

import io
import re
import sys

import numpy as np
import pytest
from conftest import read_manifest

from edge_echo.errors import UsageError
from edge_echo.runners import RUNNERS
from edge_echo.usermodel import convert
from edge_echo.verify import verify


def _zoo():
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    L = keras.layers

    def lstm_features():
        i = keras.Input((6, 3))
        return i, L.Dense(2)(L.LSTM(8)(i))

    def gru_sequences():
        i = keras.Input((6, 2))
        return i, L.TimeDistributed(L.Dense(1))(L.GRU(5, return_sequences=True)(i))

    def simple_rnn():
        i = keras.Input((6, 1))
        return i, L.Dense(3)(L.SimpleRNN(4)(i))

    def stacked_lstm():
        i = keras.Input((5, 2))
        return i, L.Dense(1)(L.LSTM(4)(L.LSTM(6, return_sequences=True)(i)))

    def bidirectional_lstm():
        i = keras.Input((5, 1))
        return i, L.Dense(2)(L.Bidirectional(L.LSTM(4))(i))

    def bidirectional_gru_sequences():
        i = keras.Input((5, 2))
        return i, L.Dense(1)(L.Bidirectional(L.GRU(3, return_sequences=True))(i))

    def conv1d_front_end():
        i = keras.Input((8, 2))
        return i, L.Dense(1)(L.LSTM(4)(L.Conv1D(6, 3, activation="relu")(i)))

    def two_outputs():
        i = keras.Input((5, 1))
        h = L.LSTM(6)(i)
        return i, [L.Dense(1, name="level")(h), L.Dense(3, name="trend")(h)]

    def variable_timesteps():
        i = keras.Input((None, 2))
        return i, L.Dense(1)(L.LSTM(5)(i))

    # Issue 14: token ids, several inputs, GRU and SimpleRNN as native ONNX nodes, step models.
    def text_classifier():
        i = keras.Input((12,), dtype="int32", name="tokens")
        return i, L.Dense(3, activation="softmax")(L.LSTM(6)(L.Embedding(40, 4)(i)))

    def float_token_input():
        # An Input without a dtype feeding an Embedding: the files still take int32 ids.
        i = keras.Input((10,))
        return i, L.Dense(1)(L.GRU(5, return_sequences=True)(L.Embedding(30, 3)(i)))

    def series_and_static():
        # Two inputs of the same shape: pairing them by position would go unnoticed.
        series, static = keras.Input((6, 2), name="series"), keras.Input((6, 2), name="static")
        both = L.Concatenate()([L.LSTM(4)(series), L.Dense(3)(L.Flatten()(static))])
        return [series, static], L.Dense(2)(both)

    def gru_reset_before():
        i = keras.Input((7, 3))
        return i, L.Dense(2)(L.GRU(6, reset_after=False)(i))

    def backwards_rnn_stack():
        i = keras.Input((6, 2))
        h = L.Bidirectional(L.SimpleRNN(3, return_sequences=True), name="bidirectional")(i)
        return i, L.Dense(1)(L.GRU(4, go_backwards=True)(h))

    def mixed_step_stack():
        i = keras.Input((6, 3))
        h = L.Dropout(0.3)(L.GRU(6, return_sequences=True, name="gru")(i))
        h = L.SimpleRNN(4, return_sequences=True, name="simple_rnn")(h)
        h = L.LSTM(5, return_sequences=True, name="lstm")(h)
        return i, L.TimeDistributed(L.Dense(2))(L.LayerNormalization()(h))

    def pooled_gru():
        i = keras.Input((6, 2))
        pool = L.GlobalAveragePooling1D(name="global_average_pooling1d")
        return i, L.Dense(1)(pool(L.GRU(4, return_sequences=True)(i)))

    def masked_text():
        # mask_zero: id 0 is padding, skipped; a small vocabulary draws it often.
        i = keras.Input((10,), dtype="int32")
        return i, L.Dense(1)(L.GRU(6)(L.Embedding(8, 4, mask_zero=True)(i)))

    def masked_bidirectional():
        i = keras.Input((10,), dtype="int32")
        h = L.Bidirectional(L.GRU(3, return_sequences=True))(L.Embedding(8, 4, mask_zero=True)(i))
        return i, L.Dense(1)(L.LSTM(4)(h))

    keras.utils.set_random_seed(11)
    models = {f.__name__.replace("_", "-"): keras.Model(*f()) for f in (
        lstm_features, gru_sequences, simple_rnn, stacked_lstm, bidirectional_lstm,
        bidirectional_gru_sequences, conv1d_front_end, two_outputs, variable_timesteps,
        text_classifier, float_token_input, series_and_static, gru_reset_before,
        backwards_rnn_stack, mixed_step_stack, pooled_gru, masked_text, masked_bidirectional)}
    # A Sequential with open time steps, recurrent dropout (a seed variable no converter can
    # freeze) and a TimeDistributed head (which Keras cannot trace over an open time axis).
    sequential = keras.Sequential([
        keras.Input((None, 3)), L.GRU(6, return_sequences=True, dropout=0.2, recurrent_dropout=0.2),
        L.TimeDistributed(L.Dense(4, activation="softmax"))])
    # An adapted Normalization: its mean and variance are state a clone must finalize, and
    # constants a traced function captures (tf2onnx would make them graph inputs).
    norm = L.Normalization()
    norm.adapt(np.random.default_rng(0).normal(3, 2, (50, 8, 3)).astype("float32"))
    models |= {"sequential-dropout": sequential,
               "normalized-gru": keras.Sequential([keras.Input((8, 3)), norm, L.GRU(5), L.Dense(1)])}
    # Untrained biases are zero; these get some, so that a wrong bias layout shows.
    rng = np.random.default_rng(5)
    for name in ("gru-reset-before", "gru-sequences", "simple-rnn", "mixed-step-stack", "masked-text",
                 "masked-bidirectional"):
        model = models[name]
        model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype)
                           for w in model.get_weights()])
    return models


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo")
    paths = {}
    for name, model in _zoo().items():
        paths[name] = d / f"{name}.keras"
        model.save(paths[name])
    return paths


ZOO = ["lstm-features", "gru-sequences", "simple-rnn", "stacked-lstm", "bidirectional-lstm",
       "bidirectional-gru-sequences", "conv1d-front-end", "two-outputs", "variable-timesteps",
       "text-classifier", "float-token-input", "series-and-static", "gru-reset-before",
       "backwards-rnn-stack", "mixed-step-stack", "pooled-gru", "masked-text",
       "masked-bidirectional", "sequential-dropout", "normalized-gru"]


STEPPABLE = ("lstm-features", "gru-sequences", "simple-rnn", "stacked-lstm", "variable-timesteps",
             "text-classifier", "float-token-input", "gru-reset-before", "mixed-step-stack",
             "masked-text", "sequential-dropout", "normalized-gru")


@pytest.mark.js
@pytest.mark.parametrize("name", ZOO)
def test_zoo_converts_and_verifies_everywhere(zoo, tmp_path, name):
    out = tmp_path / name
    timesteps = 7 if name in ("variable-timesteps", "sequential-dropout") else None
    result = convert(zoo[name], out, timesteps=timesteps)
    assert result.missing == []
    doc = read_manifest(out)
    (entry,) = doc["models"].values()
    assert {"keras", "tflite", "onnx", "reference"} <= set(entry["artifacts"])
    assert not entry["artifacts"]["tflite"]["custom_operators"]
    assert "FILL" not in entry["artifacts"]["tflite"]["operators"]  # no dynamic zero state
    report = verify(out, latency_runs=0)
    # Chains of LSTM and Dense layers also get the micro forms; the others say why not.
    # The micro forms: LSTM chains, token ids through an Embedding (GATHER), and a Bidirectional
    # LSTM (two fused LSTMs; no step form, it reads the sequence from both ends).
    has_micro = name in ("lstm-features", "stacked-lstm", "variable-timesteps", "text-classifier",
                         "bidirectional-lstm")
    micro = {"tflm", "litert-micro"} if has_micro else set()
    if has_micro and name != "bidirectional-lstm":
        micro |= {"tflm-step", "litert-micro-step"}
    # The int8 micro file is kept only within its tolerance (these models are untrained).
    if "tflite_micro_int8" in entry["artifacts"]:
        runs_on = entry["artifacts"]["tflite_micro_int8"].get("runs_on", ["tflm", "litert-micro"])
        micro |= {f"{rt}:int8" for rt in runs_on}
    elif has_micro:
        assert any("exceeds its tolerance" in n for n in result.notes), result.notes
    # Chains of unidirectional recurrent layers and per-step layers get step models too.
    steps = ({"onnxruntime-step", "onnxruntime-ort-step", "litert-step", "litert-compiled-step"}
             if name in STEPPABLE else set())
    # And in JavaScript (issue 36), where Node, Chromium and the npm packages are here: the
    # .onnx and .ort in ONNX Runtime Node and Web, the .web.tflite in LiteRT.js.
    js = {rt for rt in ("onnxruntime-node", "onnxruntime-node-ort", "onnxruntime-web",
                        "onnxruntime-web-ort", "litertjs") if not RUNNERS[rt].unavailable()}
    js_steps = {f"{rt}-step" for rt in js} if steps else set()
    assert {r.runtime for r in report.results} == \
        {"keras", "onnxruntime", "onnxruntime-ort", "litert", "litert-compiled"} | micro | steps \
        | js | js_steps
    assert any("no tflite_micro form" in n for n in result.notes) != has_micro, result.notes
    assert any("no onnx_step form" in n for n in result.notes) != bool(steps), result.notes
    # Every recurrence is a native node: no Loop or Scan (GRU and SimpleRNN included).
    assert not {"Loop", "Scan"} & set(entry["artifacts"]["onnx"]["operators"])
    assert report.passed, [line for r in report.results for line in r.failures()]


def test_two_outputs_are_each_compared(zoo, tmp_path):
    out = tmp_path / "two"
    convert(zoo["two-outputs"], out)
    (entry,) = read_manifest(out)["models"].values()
    assert [o["name"] for o in entry["outputs"]] == ["level", "trend"]
    assert [o["shape"] for o in entry["outputs"]] == [[None, 1], [None, 3]]
    report = verify(out, keras=False, latency_runs=0)
    for r in report.results:
        assert {c.output for ch in r.checks for c in ch.comparisons} == {"level", "trend"}


def test_variable_timesteps_stay_open_in_onnx(zoo, tmp_path):
    with pytest.raises(UsageError, match="--timesteps"):
        convert(zoo["variable-timesteps"], tmp_path / "no")
    out = tmp_path / "vt"
    convert(zoo["variable-timesteps"], out, timesteps=9)
    (entry,) = read_manifest(out)["models"].values()
    assert entry["artifacts"]["onnx"]["inputs"][0]["shape"] == [None, None, 2]
    assert entry["artifacts"]["tflite"]["inputs"][0]["shape"] == [None, 9, 2]


def test_real_samples_and_input_range(zoo, tmp_path):
    samples = np.random.default_rng(0).normal(size=(40, 5, 2)).astype(np.float32)
    np.save(tmp_path / "samples.npy", samples)
    out = tmp_path / "data"
    convert(zoo["stacked-lstm"], out, data=tmp_path / "samples.npy")
    ref = np.load(out / "stacked-lstm.reference.npz")
    np.testing.assert_array_equal(ref["random_x"], samples)
    assert verify(out, latency_runs=0).passed
    ranged = tmp_path / "ranged"
    convert(zoo["stacked-lstm"], ranged, input_range=(-3.0, -2.0))
    x = np.load(ranged / "stacked-lstm.reference.npz")["random_x"]
    assert x.min() >= -3.0 and x.max() <= -2.0
    with pytest.raises(UsageError, match="samples of shape"):
        np.save(tmp_path / "bad.npy", samples[:, :4])
        convert(zoo["stacked-lstm"], tmp_path / "bad", data=tmp_path / "bad.npy")


def test_a_format_that_cannot_express_a_layer_is_named_and_the_rest_written(tmp_path, cli):
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    # Seeded: an LSTM output within float rounding of a bucket boundary would flip its bucket.
    keras.utils.set_random_seed(2)
    i = keras.Input((5, 1))
    h = keras.layers.Discretization(bin_boundaries=[-0.1, 0.0, 0.1], output_mode="int")(
        keras.layers.LSTM(4, return_sequences=True)(i))
    model = keras.Model(i, keras.layers.Dense(1)(keras.layers.Flatten()(keras.ops.cast(h, "float32"))))
    model.save(tmp_path / "buckets.keras")
    result = cli("convert", tmp_path / "buckets.keras", "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 3, result.output
    line = next(x for x in result.stderr.splitlines() if "not written" in x)
    assert "onnx not written: layer 'discretization' (Discretization)" in line
    assert "Bucketize" in line
    (entry,) = read_manifest(tmp_path / "out")["models"].values()
    assert "tflite" in entry["artifacts"] and "onnx" not in entry["artifacts"]


def test_code_in_a_model_file_is_refused(tmp_path, cli):
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    i = keras.Input((5, 1))
    keras.Model(i, keras.layers.Lambda(lambda t: t * 2)(i)).save(tmp_path / "code.keras")
    result = cli("convert", tmp_path / "code.keras", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "code.keras: layer 'lambda' is a Lambda" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_convert_prints_the_verify_table(zoo, tmp_path, cli):
    result = cli("convert", zoo["conv1d-front-end"], "--out", tmp_path / "c", "--name", "sensor",
                 "--quantize", "onnx:dynamic")
    assert result.exit_code == 0, result.output
    assert "verdict: PASS (1 models x 7 runtimes" in result.stdout
    assert "note: sensor: no tflite_micro form: layer 'conv1d' (Conv1D)" in result.stderr
    assert (tmp_path / "c" / "sensor.dynamic.onnx").is_file()


def test_static_zero_state_covers_plain_recurrent_layers_and_changes_no_value(monkeypatch):
    import keras

    from edge_echo.convert import zero_state
    from edge_echo.convert.zero_state import use_static_zero_states

    keras.utils.set_random_seed(3)
    inputs = keras.Input((4, 2))
    hidden = keras.layers.LSTM(3, return_sequences=True)(inputs)
    outputs = keras.layers.Bidirectional(keras.layers.GRU(2))(hidden)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).uniform(-1, 1, (5, 4, 2)).astype(np.float32)
    before = np.asarray(model(x))
    assert use_static_zero_states(model) == 3  # the LSTM and both directions of the GRU
    assert use_static_zero_states(model) == 0  # once only
    np.testing.assert_array_equal(np.asarray(model(x)), before)
    # The comparison can fail: the layers do start from zero_state_like now.
    monkeypatch.setattr(zero_state, "zero_state_like",
                        lambda seqs, size: keras.ops.ones_like(seqs[:, 0, :1]) + keras.ops.zeros((1, size)))
    assert np.abs(np.asarray(model(x)) - before).max() > 1e-3

    conv = keras.Sequential([keras.Input((4, 6, 1)), keras.layers.ConvLSTM1D(2, 3)])
    assert use_static_zero_states(conv) == 0  # its state is not (batch, width)


# Issue 14: token ids, several inputs, native GRU and RNN nodes, step models for user models.

@pytest.fixture(scope="module")
def converted(zoo, tmp_path_factory):
    """Some zoo models converted once (the forms these tests read), shared by the tests below."""
    d = tmp_path_factory.mktemp("converted")
    forms = {"text-classifier": ("tflite", "onnx", "tflite_step", "onnx_step"),
             "series-and-static": ("tflite", "onnx"),
             "gru-reset-before": ("tflite", "onnx"),
             "masked-text": ("onnx", "onnx_step"),
             "mixed-step-stack": ("tflite", "onnx", "tflite_step", "onnx_step")}
    return {name: convert(zoo[name], d / name, forms=kinds).directory
            for name, kinds in forms.items()}


def _keras(zoo, name):
    import keras

    return keras.saving.load_model(zoo[name], compile=False)


def test_token_ids_are_integers_end_to_end(zoo, converted, cli, tmp_path):
    out = converted["text-classifier"]
    (entry,) = read_manifest(out)["models"].values()
    assert entry["inputs"] == [{"name": "x", "shape": [None, 12], "dtype": "int32", "vocabulary": 40}]
    for kind in ("tflite", "onnx", "tflite_step", "onnx_step"):
        assert entry["artifacts"][kind]["inputs"][0]["dtype"] == "int32", kind
    ref = np.load(out / "text-classifier.reference.npz")
    assert ref["random_x"].dtype == np.int32 and ref["random_x"].min() >= 0 and ref["random_x"].max() < 40
    assert len(np.unique(ref["random_x"])) > 30  # the whole vocabulary is drawn, not [0, 1)
    ids = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]
    want = np.asarray(_keras(zoo, "text-classifier")(np.array([ids], np.int32)))[0]
    for suffix in ("onnx", "tflite"):
        result = cli("predict", out / f"text-classifier.{suffix}", *map(str, ids), "--decimals", "7")
        assert result.exit_code == 0, result.stderr
        np.testing.assert_allclose([float(v) for v in result.stdout.split()], want, atol=2e-6)
    # The comparison can fail: other ids give other outputs.
    other = cli("predict", out / "text-classifier.onnx", *map(str, ids[::-1]), "--decimals", "7")
    assert np.abs(np.array([float(v) for v in other.stdout.split()]) - want).max() > 1e-4
    for bad, message in (("2.5", "takes integer token ids; got 2.5"),
                         ("-1", "token id -1 is outside 0 or more")):
        result = cli("predict", out / "text-classifier.tflite", *map(str, ids[:-1]), bad)
        assert result.exit_code == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    for bad, message in ((np.full((2, 12), 2.5), "takes integer token ids; got 2.5"),
                         (np.full((2, 12), 40), "token id 40 is outside [0, 40)")):
        np.save(tmp_path / "bad.npy", bad)
        with pytest.raises(UsageError, match=re.escape(message)):
            convert(zoo["text-classifier"], tmp_path / "bad", data=tmp_path / "bad.npy")
    past = cli("predict", out / "text-classifier.onnx", *map(str, ids[:-1]), "40")
    assert past.exit_code != 0 and "out of" in past.stderr and "Traceback" not in past.stderr
    assert len(past.stderr.strip().splitlines()) == 1


def test_several_inputs_are_paired_by_name(zoo, converted, cli, tmp_path):
    from edge_echo.runners import LiteRTRunner, OnnxRunner

    out = converted["series-and-static"]
    (entry,) = read_manifest(out)["models"].values()
    assert [i["name"] for i in entry["inputs"]] == ["series", "static"]
    rng = np.random.default_rng(1)
    series, static = (rng.uniform(0, 1, (3, 6, 2)).astype(np.float32) for _ in range(2))
    want = np.asarray(_keras(zoo, "series-and-static")([series, static]))
    for cls, suffix in ((OnnxRunner, "onnx"), (LiteRTRunner, "tflite")):
        # The manifest lists the inputs in another order than the feed: names decide.
        with cls(out / f"series-and-static.{suffix}", ["static", "series"], ["y0"]) as runner:
            got = runner.infer({"series": series, "static": static})
            np.testing.assert_allclose(got[next(iter(got))], want, atol=1e-5)
            swapped = runner.infer({"series": static, "static": series})
            assert np.abs(swapped[next(iter(got))] - want).max() > 1e-3  # the check can fail
    values = {name: ",".join(map(str, x[0].ravel())) for name, x in (("series", series),
                                                                     ("static", static))}
    for suffix in ("onnx", "tflite"):
        result = cli("predict", out / f"series-and-static.{suffix}", f"static={values['static']}",
                     f"series={values['series']}", "--decimals", "7")
        assert result.exit_code == 0, result.stderr
        np.testing.assert_allclose([float(v) for v in result.stdout.split()], want[0], atol=1e-5)
    np.savez(tmp_path / "both.npz", static=static, series=series)
    result = cli("predict", out / "series-and-static.onnx", tmp_path / "both.npz", "--decimals", "7")
    got = np.array([[float(v) for v in line.split()] for line in result.stdout.splitlines()])
    np.testing.assert_allclose(got, want, atol=1e-5)
    one = cli("predict", out / "series-and-static.onnx", "0.1", "0.2")
    assert one.exit_code == 2 and "takes 2 inputs (series, static)" in one.stderr
    # --data takes the same .npz for the reference inputs.
    again = convert(zoo["series-and-static"], tmp_path / "data", data=tmp_path / "both.npz",
                    forms=("onnx",))
    ref = np.load(again.directory / "series-and-static.reference.npz")
    np.testing.assert_array_equal(ref["random_x"], series)
    np.testing.assert_array_equal(ref["random_x.1"], static)
    assert verify(again.directory, latency_runs=0).passed
    np.savez(tmp_path / "one.npz", series=series)
    with pytest.raises(UsageError, match="no array for input static"):
        convert(zoo["series-and-static"], tmp_path / "bad", data=tmp_path / "one.npz")


@pytest.mark.parametrize("name, op, linear_before_reset", [
    ("gru-sequences", "GRU", 1), ("gru-reset-before", "GRU", 0), ("simple-rnn", "RNN", None)])
def test_gru_and_simple_rnn_are_native_onnx_nodes(zoo, converted, tmp_path, name, op, linear_before_reset):
    import onnx

    from edge_echo.runners import OnnxRunner

    out = converted.get(name) or convert(zoo[name], tmp_path / name, forms=("onnx",)).directory
    model = onnx.load(str(out / f"{name}.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count(op) == 1 and "Loop" not in ops and "Scan" not in ops, ops
    node = next(n for n in model.graph.node if n.op_type == op)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if linear_before_reset is not None:
        assert attrs["linear_before_reset"] == linear_before_reset
    ref = np.load(out / f"{name}.reference.npz")
    with OnnxRunner(out / f"{name}.onnx", ["x"], None) as runner:
        got = next(iter(runner.infer({"x": ref["random_x"]}).values()))
    assert np.abs(got - ref["random_y"]).max() < 1e-5
    # The check can fail: the other reset placement (or a reversed direction) is another model.
    for attribute, value in (("linear_before_reset", 1 - (linear_before_reset or 0)),
                             ("direction", b"reverse")):
        if attribute == "linear_before_reset" and linear_before_reset is None:
            continue
        changed = onnx.load(str(out / f"{name}.onnx"))
        target = next(n for n in changed.graph.node if n.op_type == op)
        for a in target.attribute:
            if a.name == attribute:
                a.CopyFrom(onnx.helper.make_attribute(attribute, value))
        onnx.save(changed, str(tmp_path / "changed.onnx"))
        with OnnxRunner(tmp_path / "changed.onnx", ["x"], None) as runner:
            wrong = next(iter(runner.infer({"x": ref["random_x"]}).values()))
        assert np.abs(wrong - ref["random_y"]).max() > 1e-3, attribute


def test_user_step_models_carry_one_state_pair_per_layer(zoo, converted, cli, monkeypatch):
    from edge_echo.runners import RUNNERS

    out = converted["mixed-step-stack"]
    (entry,) = read_manifest(out)["models"].values()
    step = entry["artifacts"]["onnx_step"]["step"]
    assert [(s["layer"], s["input"], s["output"]) for s in step["state"]] == [
        ("gru", "gru_h", "gru_h_out"), ("simple_rnn", "simple_rnn_h", "simple_rnn_h_out"),
        ("lstm", "lstm_h", "lstm_h_out"), ("lstm", "lstm_c", "lstm_c_out")]
    assert [s["shape"] for s in step["state"]] == [[None, 6], [None, 4], [None, 5], [None, 5]]
    assert step["sequence_output"] == "every_step" and step["steps"] == 6
    assert entry["artifacts"]["tflite_step"]["step"] == step
    ref = np.load(out / "mixed-step-stack.reference.npz")
    for kind in ("onnx_step", "tflite_step"):
        art = entry["artifacts"][kind]
        runtime = next(rt for rt, cls in RUNNERS.items() if cls.artifact == kind)
        with RUNNERS[runtime](out / art["file"], ["x"], ["y0"], artifact=art) as runner:
            got = runner.infer({"x": ref["random_x"][:16]})["y0"]
            np.testing.assert_allclose(got, ref["random_y"][:16], atol=5e-5)
    # By hand, as a device app does it; the check can fail: a GRU state not fed back is wrong.
    from edge_echo.runners import OnnxRunner

    x = ref["random_x"][:16]
    with OnnxRunner(out / "mixed-step-stack.step.onnx", None, None) as runner:
        for fed_back in ("all", "all but gru_h"):
            state = {s["input"]: np.zeros((16, s["shape"][1]), np.float32) for s in step["state"]}
            ys = []
            for t in range(x.shape[1]):
                got = runner.infer({"x": x[:, t], **state})
                ys.append(got[step["outputs"][0]["name"]])
                state = {s["input"]: got[s["output"]] for s in step["state"]
                         if fed_back == "all" or s["input"] != "gru_h"} | (
                    {} if fed_back == "all" else {"gru_h": state["gru_h"]})
            error = np.abs(np.stack(ys, axis=1) - ref["random_y"][:16]).max()
            assert (error < 5e-5) if fed_back == "all" else (error > 1e-3), (fed_back, error)
    # A device streams it: the last line is Keras's last step.
    lines = "\n".join(" ".join(map(str, row)) for row in ref["random_x"][0])
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines + "\n"))
    result = cli("stream", out / "mixed-step-stack.step.tflite", "--decimals", "7")
    assert result.exit_code == 0, result.stderr
    last = [float(v) for v in result.stdout.strip().splitlines()[-1].split()]
    np.testing.assert_allclose(last, ref["random_y"][0, -1], atol=5e-5)


@pytest.mark.parametrize("name, reason", [
    ("backwards-rnn-stack", "layer 'bidirectional' (Bidirectional) also reads the sequence backwards"),
    ("pooled-gru", "layer 'global_average_pooling1d' (GlobalAveragePooling1D) needs the whole sequence"),
    ("series-and-static", "step models are made for models with one input and one output")])
def test_models_that_cannot_be_stepped_say_why_in_one_line(zoo, tmp_path, name, reason):
    result = convert(zoo[name], tmp_path / name, forms=("onnx_step", "tflite_step"))
    (entry,) = result.manifest["models"].values()
    for kind in ("onnx_step", "tflite_step"):
        assert entry["not_written"][kind].startswith(reason), entry["not_written"]
        assert "\n" not in entry["not_written"][kind]
    assert result.missing == []


def test_bench_feeds_every_input_in_its_dtype(converted):
    from edge_echo.bench import bench

    for name in ("series-and-static", "text-classifier"):
        report = bench(converted[name], runtimes=("onnxruntime", "litert"), runs=5, warmup=1,
                       predict_runs=1, batch=4, memory=name == "text-classifier")
        assert {r.runtime for r in report.rows} == {"onnxruntime", "litert"}, name
        for row in report.rows:
            assert row.timing.p50_us > 0 and row.floor.p50_us > 0 and row.timing.batch == 4
            if name == "text-classifier":  # the memory child fed int32 ids too
                assert row.peak_rss_delta_bytes and row.peak_rss_delta_bytes > 0, row.memory_note


def test_masked_steps_are_skipped_by_the_native_nodes_and_the_step_model(zoo, converted):
    """Embedding(mask_zero=True): the ONNX GRU node (no Loop) and the step model skip padding
    as Keras does, wherever it is (before, after, between and instead of the tokens)."""
    from edge_echo.runners import RUNNERS, OnnxRunner

    out = converted["masked-text"]
    (entry,) = read_manifest(out)["models"].values()
    assert "GRU" in entry["artifacts"]["onnx"]["operators"]
    assert "Loop" not in entry["artifacts"]["onnx"]["operators"]
    ids = np.array([[0, 0, 0, 3, 5, 1, 7, 2, 4, 6], [3, 5, 1, 7, 2, 4, 6, 0, 0, 0],
                    [3, 0, 5, 0, 1, 7, 0, 2, 4, 6], [0] * 10], np.int32)
    want = np.asarray(_keras(zoo, "masked-text")(ids))
    art = entry["artifacts"]["onnx_step"]
    with OnnxRunner(out / "masked-text.onnx", ["x"], None) as full, \
            RUNNERS["onnxruntime-step"](out / art["file"], ["x"], ["y"], artifact=art) as step:
        for runner in (full, step):
            got = next(iter(runner.infer({"x": ids}).values()))
            np.testing.assert_allclose(got, want, atol=1e-5)
            # The check can fail: the same ids with the padding read as token 1 give other values.
            unmasked = next(iter(runner.infer({"x": np.where(ids == 0, 1, ids)}).values()))
            assert np.abs(unmasked - want).max() > 1e-3


def test_masked_backward_layers_are_unrolled_as_keras_runs_them(zoo, tmp_path, monkeypatch):
    """Keras's own unrolled loop zeroes a masked backward layer's outputs in the wrong order;
    the TFLite clone reverses the sequence itself. Without that the file does not match."""
    from edge_echo.convert import tflite

    result = convert(zoo["masked-bidirectional"], tmp_path / "fixed", forms=("tflite",))
    assert verify(result.directory, latency_runs=0).passed
    monkeypatch.setattr(tflite, "_reverse_before_unrolling", lambda model: None)
    broken = convert(zoo["masked-bidirectional"], tmp_path / "broken", forms=("tflite",))
    report = verify(broken.directory, latency_runs=0)
    assert not next(r for r in report.results if r.runtime == "litert").passed


def test_int8_variants_calibrate_every_input_in_its_dtype(zoo, tmp_path):
    """int8 calibration draws token ids from the vocabulary (and each input by name): the
    quantized files keep int32 inputs and stay near Keras (how near, verify says)."""
    result = convert(zoo["text-classifier"], tmp_path / "q", forms=("tflite", "onnx"),
                     quantize=[("tflite", "int8"), ("onnx", "int8")])
    assert result.missing == []
    (entry,) = result.manifest["models"].values()
    for kind in ("tflite_int8", "onnx_int8"):
        art = entry["artifacts"][kind]
        assert art["inputs"][0]["dtype"] == "int32", kind
        assert art["quantization"]["calibration"] == "2000 input sequences"
    report = verify(result.directory, latency_runs=0)
    for runtime in ("litert:int8", "onnxruntime:int8"):
        r = next(r for r in report.results if r.runtime == runtime)
        assert 0 < r.max_abs < 0.05, (runtime, r.max_abs)
