"""Issue 12: the micro forms, run and measured on TensorFlow Lite Micro (the tflite-micro package)."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import read_manifest, rehash

from edge_echo import refdata
from edge_echo.artifacts import describe_tflite
from edge_echo.errors import ArtifactError
from edge_echo.runners import RUNNERS
from edge_echo.runners.tflm import TFLMRunner, _Trial
from edge_echo.specs import MODEL_NAMES, get_spec
from edge_echo.verify import reset_effect, verify

ROOT = Path(__file__).resolve().parents[1]
ECHO = ["0.0", "0.2", "0.4", "0.6", "0.8"]
MICRO = ("tflite_micro", "tflite_micro_int8", "tflite_micro_step")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_micro_forms_are_one_fused_lstm_at_batch_one(exported, name):
    entry = read_manifest(exported)["models"][name]
    arts, spec = entry["artifacts"], get_spec(name)
    kinds = [k for k in MICRO if k in arts]
    # one-to-one takes one time step: its micro file is already its step form, and says so.
    assert kinds == (list(MICRO[:2]) if spec.input_shape[0] == 1 else list(MICRO))
    if spec.input_shape[0] == 1:
        assert "already its step form" in entry["not_written"]["tflite_micro_step"]
    for kind in kinds:
        art = arts[kind]
        described = describe_tflite(exported / art["file"])
        assert described["operators"]["UNIDIRECTIONAL_SEQUENCE_LSTM"] == 1
        steps = 1 if kind == "tflite_micro_step" else spec.input_shape[0]
        assert described["inputs"][0]["shape"] == [1, steps, *spec.input_shape[1:]]
        assert [d["dtype"] for d in described["inputs"] + described["outputs"]] == ["float32"] * 2
        micro = art["micro"]
        assert micro["batch"] == 1 and micro["flash_bytes"] == art["size"]
        assert micro["reset"]["tflm_cpp"] == "interpreter.Reset();"
        # The declared arena holds for a CMSIS-NN build (issue 34): the host's smallest plus what
        # those kernels take beyond the reference ones, derived per operator from their source.
        margin = micro["arena_margin"]
        units = spec.units
        if kind == "tflite_micro_int8":
            lstm, fc = margin["per_operator"]
            assert lstm["operator"] == "UNIDIRECTIONAL_SEQUENCE_LSTM" and fc["operator"] == \
                "FULLY_CONNECTED"
            assert lstm["bytes"] == 8 * (-(-4 * units // 16) * 16 + 16) + 224 + 16
        else:  # float files run the reference kernels on a CMSIS-NN build too
            assert margin == {**margin, "bytes": 0, "per_operator": []}
        assert "CMSIS-NN" in margin["covers"] and margin["bytes"] == sum(
            p["bytes"] for p in margin["per_operator"])
        assert micro["arena_min_bytes"] + margin["bytes"] <= micro["arena_bytes"] < \
            micro["arena_min_bytes"] + margin["bytes"] + 512
        assert sorted(micro["resolver"]) == micro["resolver"]
        assert "AddUnidirectionalSequenceLSTM()" in micro["resolver"]
    int8 = describe_tflite(exported / arts["tflite_micro_int8"]["file"])["tensor_types"]
    assert int8.get("int8") and int8.get("int16")  # int8 activations, int16 cell state


def test_verify_runs_every_micro_file_on_tflm_and_litert(exported):
    report = verify(exported, keras=False, latency_runs=0)
    assert report.passed, [line for r in report.results for line in r.failures()]
    labels = {(r.model, r.runtime) for r in report.results}
    for name in MODEL_NAMES:
        expected = {"tflm", "tflm:int8", "litert-micro", "litert-micro:int8"}
        if name != "one-to-one":
            expected |= {"tflm-step", "litert-micro-step"}
        assert {(name, rt) for rt in expected} <= labels
    for r in report.results:
        if r.runtime.startswith(("tflm", "litert-micro")):
            assert r.echo is not None and r.echo.passed
            # The contract matters: skipping the reset moves the output far past the tolerance.
            assert r.without_reset > 4 * r.tolerance.atol + 1e-3, (r.model, r.runtime)
        else:
            assert r.without_reset is None


def test_the_reset_check_can_find_nothing_on_a_stateless_file(exported):
    """reset_effect is a measurement, not a constant: on the unrolled file it is exactly zero."""
    ref = refdata.load(exported / "many-to-one.reference.npz")
    art = read_manifest(exported)["models"]["many-to-one"]["artifacts"]["tflite"]
    with RUNNERS["litert"](exported / art["file"], ["x"], ["y"], artifact=art) as runner:
        assert runner.stateful is False
        assert reset_effect(runner, {"x": ref["random_x"][:1]}) == 0.0


@pytest.mark.parametrize("runtime", ["tflm", "tflm-step"])
def test_step_and_whole_sequence_match_keras_step_by_step(exported, runtime):
    name = "many-to-many"
    art = read_manifest(exported)["models"][name]["artifacts"][RUNNERS[runtime].artifact]
    ref = refdata.load(exported / f"{name}.reference.npz")
    with RUNNERS[runtime](exported / art["file"], ["x"], ["y"], artifact=art) as runner:
        got = runner.infer({"x": ref["random_x"][:32]})["y"]
        again = runner.infer({"x": ref["random_x"][:32]})["y"]
    np.testing.assert_array_equal(got, again)  # reset before each sequence: no drift
    np.testing.assert_allclose(got, ref["random_y"][:32], atol=1e-4)


def _perturb_first_weight(path: Path) -> None:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    sub = model.subgraphs[0]
    fc = next(op for op in sub.operators
              if model.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.FULLY_CONNECTED)
    weights = model.buffers[sub.tensors[fc.inputs[1]].buffer]
    values = np.frombuffer(bytes(bytearray(weights.data)), np.float32).copy()
    values[0] += 0.5
    weights.data = np.frombuffer(values.tobytes(), np.uint8)
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))


def test_a_perturbed_micro_weight_fails_verify_on_tflm(export_copy, cli):
    path = export_copy / "many-to-one.micro.tflite"
    _perturb_first_weight(path)
    rehash(export_copy, path.name)
    result = cli("verify", export_copy, "--no-keras")
    assert result.exit_code == 1, result.output
    assert "FAIL many-to-one / tflm:" in result.stderr
    assert "FAIL many-to-one / litert-micro:" in result.stderr
    assert "many-to-one / tflm:int8" not in result.stderr  # only the altered file fails


def test_the_declared_arena_is_measured_and_the_smallest(exported):
    path = exported / "many-to-one.micro.tflite"
    micro = read_manifest(exported)["models"]["many-to-one"]["artifacts"]["tflite_micro"]["micro"]
    trial = _Trial(path, 1)
    try:
        assert trial.allocates(micro["arena_min_bytes"])
        assert trial.allocates(micro["arena_bytes"])
        assert not trial.allocates(micro["arena_min_bytes"] - 16)
        # TFLM segfaults on some too-small arenas (256 B measured): the child dies, we do not.
        assert not trial.allocates(256)
        assert trial.allocates(micro["arena_bytes"])  # a fresh child after a crash
    finally:
        trial.close()


def test_tflm_refuses_float16_in_one_line(exported, tmp_path):
    from ai_edge_litert import schema_py_generated as schema

    from edge_echo.floors import tflite_floor

    floor = tflite_floor(tmp_path / "f.tflite", "x", "y", [5, 1], [5])
    model = schema.ModelT.InitFromPackedBuf(floor.read_bytes(), 0)
    model.subgraphs[0].tensors[0].type = schema.TensorType.FLOAT16
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    half = tmp_path / "half.tflite"
    half.write_bytes(bytes(builder.Output()))
    with pytest.raises(ArtifactError, match="TFLM cannot run float16"), \
            TFLMRunner(half, ["x"], ["y"]):
        pass
    # The same floor in float32 runs: the refusal is about float16, not about the file.
    with TFLMRunner(floor, ["x"], ["y"]) as runner:
        out = runner.infer({"x": np.arange(5, dtype=np.float32).reshape(1, 5, 1)})["y"]
    np.testing.assert_array_equal(out, np.arange(5, dtype=np.float32).reshape(1, 5))


@pytest.mark.parametrize("file, last", [("many-to-one.micro.tflite", ECHO),
                                        ("many-to-one.micro.int8.tflite", ECHO),
                                        ("many-to-many.micro.step.tflite", ECHO)])
def test_the_python_tflm_example_echoes(exported, file, last):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "micro_echo.py"),
                             str(exported / file), *ECHO], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    if ".step." in file:
        assert [line.split()[-1] for line in result.stdout.splitlines()] == last
    else:
        assert result.stdout.split() == last


def test_convert_gives_a_long_sequence_lstm_micro_forms_and_explains_a_gru(tmp_path):
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    from edge_echo.usermodel import convert

    keras.utils.set_random_seed(5)
    L = keras.layers
    i = keras.Input((120, 7))
    forecaster = keras.Model(i, L.Dense(1)(L.LSTM(32)(L.LSTM(16, return_sequences=True)(i))))
    forecaster.save(tmp_path / "forecaster.keras")
    out = tmp_path / "f"
    # The forms this test reads (the unrolled file for the size, the micro ones); the ONNX and
    # step files of the same model are convert's own tests'.
    result = convert(tmp_path / "forecaster.keras", out,
                     forms=("tflite", "tflite_micro", "tflite_micro_int8", "tflite_micro_step"))
    assert result.missing == []
    (entry,) = read_manifest(out)["models"].values()
    arts = entry["artifacts"]
    assert {"tflite_micro", "tflite_micro_step"} <= set(arts)
    # Untrained and stacked, its outputs span a narrow range: int8 is kept only within its
    # tolerance, and otherwise the reason is given (benchmarks/bench_micro.py: a trained one).
    if "tflite_micro_int8" not in arts:
        assert "exceeds its tolerance" in entry["not_written"]["tflite_micro_int8"]
    assert describe_tflite(out / arts["tflite_micro"]["file"])["operators"][
        "UNIDIRECTIONAL_SEQUENCE_LSTM"] == 2  # stacked: one fused op per layer
    assert arts["tflite_micro"]["size"] < arts["tflite"]["size"] / 10  # no per-step copies
    report = verify(out, latency_runs=0)
    assert report.passed, [line for r in report.results for line in r.failures()]
    assert {"tflm", "tflm-step"} <= {r.runtime for r in report.results}

    g = keras.Input((6, 2))
    keras.Model(g, L.Dense(1)(L.GRU(4, name="gru")(g))).save(tmp_path / "gru.keras")
    result = convert(tmp_path / "gru.keras", tmp_path / "g")
    assert result.missing == []
    assert any("no tflite_micro form: layer 'gru' (GRU)" in n for n in result.notes), result.notes


def _issue23_micro_models():
    """imdb (token ids, Embedding, two Bidirectional LSTMs) and addition (LSTM > RepeatVector >
    LSTM > softmax), small; and a mask_zero Embedding, which the fused LSTM cannot take."""
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(7)
    L = keras.layers
    i = keras.Input((10,), dtype="int32")
    h = L.Bidirectional(L.LSTM(6, return_sequences=True))(L.Embedding(30, 8)(i))
    imdb = keras.Model(i, L.Dense(1, activation="sigmoid")(L.Bidirectional(L.LSTM(5))(h)))
    i = keras.Input((7, 12))
    h = L.LSTM(16, return_sequences=True)(L.RepeatVector(4)(L.LSTM(16)(i)))
    addition = keras.Model(i, L.Dense(12, activation="softmax")(h))
    i = keras.Input((10,), dtype="int32")
    masked = keras.Model(i, L.Dense(1)(L.LSTM(4)(L.Embedding(30, 8, mask_zero=True,
                                                             name="masking")(i))))
    return {"imdb": imdb, "addition": addition, "masked": masked}


@pytest.mark.parametrize("name, operators", [
    ("imdb", {"GATHER": 1, "UNIDIRECTIONAL_SEQUENCE_LSTM": 4, "REVERSE_V2": 3}),
    ("addition", {"UNIDIRECTIONAL_SEQUENCE_LSTM": 2, "CONCATENATION": 1})])
def test_micro_forms_for_token_ids_bidirectional_and_repeat_vector(name, operators, tmp_path):
    """Issue 23: GATHER for the ids, two fused LSTMs per Bidirectional (REVERSE_V2 around the
    backward one: input, and output where it returns sequences), and
    RepeatVector as a CONCATENATION of copies (TFLM has no TILE), each run on TFLM within the
    float tolerance (int8 within its own, where it is kept); no step form, and why."""
    from edge_echo.usermodel import convert

    _issue23_micro_models()[name].save(tmp_path / f"{name}.keras")
    out = tmp_path / "out"
    result = convert(tmp_path / f"{name}.keras", out,
                     forms=("tflite_micro", "tflite_micro_int8", "tflite_micro_step"))
    assert result.missing == []
    (entry,) = read_manifest(out)["models"].values()
    arts = entry["artifacts"]
    ops = describe_tflite(out / arts["tflite_micro"]["file"])["operators"]
    assert {k: ops.get(k) for k in operators} == operators and "TILE" not in ops, ops
    assert "tflite_micro_step" not in arts
    assert "a step model sees one step at a time" in entry["not_written"]["tflite_micro_step"]
    report = verify(out, latency_runs=0)
    assert report.passed, [line for r in report.results for line in r.failures()]
    ran = {r.runtime for r in report.results}
    assert "tflm" in ran and ("tflite_micro_int8" not in arts or "tflm:int8" in ran)


def test_a_masked_embedding_has_no_micro_form_and_says_why(tmp_path):
    from edge_echo.usermodel import convert

    _issue23_micro_models()["masked"].save(tmp_path / "masked.keras")
    result = convert(tmp_path / "masked.keras", tmp_path / "out", forms=("tflite_micro",))
    assert result.missing == []
    (entry,) = read_manifest(tmp_path / "out")["models"].values()
    why = entry["not_written"]["tflite_micro"]
    assert "layer 'masking' (Embedding)" in why and "mask_zero" in why and "\n" not in why


@pytest.mark.parametrize("file", ["many-to-one.micro.tflite", "many-to-one.micro.int8.tflite",
                                  "many-to-one.tflite"])
def test_predict_runs_any_tflite_on_tflm(full_export, cli, file):
    result = cli("predict", full_export[0] / file, *ECHO, "--runtime", "tflm", "--decimals", "1")
    assert result.exit_code == 0, result.output
    assert [f"{float(v) + 0.0:.1f}" for v in result.stdout.split()] == ECHO


@pytest.mark.parametrize("file, args, message", [
    ("many-to-one.float16.tflite", ["--runtime", "tflm"], "TFLM cannot run float16 weights"),
    ("many-to-one.onnx", ["--runtime", "tflm"], "--runtime tflm does not run .onnx files"),
    ("many-to-one.tflite", ["--runtime", "tpu"], "choose litert or tflm"),
])
def test_predict_refuses_what_tflm_cannot_run_in_one_line(full_export, cli, file, args, message):
    result = cli("predict", full_export[0] / file, *ECHO, *args)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", MICRO)
def test_no_unreferenced_buffer_holds_data(exported, kind):
    """The int8 converter leaves calibration leftovers (0x7f.., 0xff..) in buffers nothing
    refers to, different in a process's first conversion: they must be zero, or two exports of
    the same model differ."""
    from ai_edge_litert import schema_py_generated as schema

    art = read_manifest(exported)["models"]["many-to-one"]["artifacts"][kind]
    model = schema.ModelT.InitFromPackedBuf((exported / art["file"]).read_bytes(), 0)
    used = {t.buffer for sub in model.subgraphs for t in sub.tensors}
    used |= {m.buffer for m in model.metadata or []}
    orphans = [bytes(bytearray(b.data)) for k, b in enumerate(model.buffers)
               if k not in used and b.data is not None]
    if kind == "tflite_micro_int8":
        assert orphans  # the converter does leave them; the check below is not vacuous
    assert all(not any(data) for data in orphans)


def test_forms_help_names_exactly_the_registered_forms():
    from edge_echo.cli import FORMS_HELP
    from edge_echo.forms import ASKED, DERIVED, registered

    listed = FORMS_HELP.split(": ", 1)[1].split(". Default")[0].split(", ")
    # The C source has an option of its own (--c-source), not a --forms name.
    assert listed == [f.kind for f in registered() if not f.optional] + list(DERIVED) + list(ASKED)


def test_a_path_that_looks_like_a_tflm_item_is_probed_as_a_file(exported, tmp_path, monkeypatch):
    from edge_echo.probe import probe, probe_many, tflm_item

    monkeypatch.chdir(tmp_path)
    odd = Path("tflm:64:odd")  # relative, as a user may give it
    odd.mkdir()
    shutil.copy(exported / "many-to-one.micro.tflite", odd / "m.tflite")
    assert probe(odd / "m.tflite") is None  # LiteRT, not TFLM with a 64-byte arena
    item = tflm_item((odd / "m.tflite").resolve(), 4096)
    assert probe_many([item]) == {item: None}
