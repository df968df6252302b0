"""Issue 9: edge-echo convert on a zoo of user architectures, each verified in every runtime."""

import numpy as np
import pytest
from conftest import read_manifest

from edge_echo.errors import UsageError
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

    keras.utils.set_random_seed(11)
    return {f.__name__.replace("_", "-"): keras.Model(*f()) for f in (
        lstm_features, gru_sequences, simple_rnn, stacked_lstm, bidirectional_lstm,
        bidirectional_gru_sequences, conv1d_front_end, two_outputs, variable_timesteps)}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    d = tmp_path_factory.mktemp("zoo")
    paths = {}
    for name, model in _zoo().items():
        paths[name] = d / f"{name}.keras"
        model.save(paths[name])
    return paths


ZOO = ["lstm-features", "gru-sequences", "simple-rnn", "stacked-lstm", "bidirectional-lstm",
       "bidirectional-gru-sequences", "conv1d-front-end", "two-outputs", "variable-timesteps"]


STEPPABLE = ("lstm-features", "gru-sequences", "simple-rnn", "stacked-lstm", "variable-timesteps")


@pytest.mark.parametrize("name", ZOO)
def test_zoo_converts_and_verifies_everywhere(zoo, tmp_path, name):
    out = tmp_path / name
    timesteps = 7 if name == "variable-timesteps" else None
    result = convert(zoo[name], out, timesteps=timesteps)
    assert result.missing == []
    doc = read_manifest(out)
    (entry,) = doc["models"].values()
    assert {"keras", "tflite", "onnx", "reference"} <= set(entry["artifacts"])
    assert not entry["artifacts"]["tflite"]["custom_operators"]
    assert "FILL" not in entry["artifacts"]["tflite"]["operators"]  # no dynamic zero state
    report = verify(out, latency_runs=0)
    # Chains of LSTM and Dense layers also get the micro forms; the others say why not.
    has_micro = name in ("lstm-features", "stacked-lstm", "variable-timesteps")
    micro = {"tflm", "litert-micro", "tflm-step", "litert-micro-step"} if has_micro else set()
    # The int8 micro file is kept only within its tolerance (these models are untrained).
    if "tflite_micro_int8" in entry["artifacts"]:
        runs_on = entry["artifacts"]["tflite_micro_int8"].get("runs_on", ["tflm", "litert-micro"])
        micro |= {f"{rt}:int8" for rt in runs_on}
    elif has_micro:
        assert any("exceeds its tolerance" in n for n in result.notes), result.notes
    # Chains of unidirectional recurrent layers and per-step layers get step models too.
    steps = {"onnxruntime-step", "litert-step"} if name in STEPPABLE else set()
    assert {r.runtime for r in report.results} == {"keras", "onnxruntime", "litert"} | micro | steps
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
    assert "code.keras: Keras cannot load it" in result.stderr and "Lambda" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cli_convert_prints_the_verify_table(zoo, tmp_path, cli):
    result = cli("convert", zoo["conv1d-front-end"], "--out", tmp_path / "c", "--name", "sensor",
                 "--quantize", "onnx:dynamic")
    assert result.exit_code == 0, result.output
    assert "verdict: PASS (1 models x 4 runtimes" in result.stdout
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
