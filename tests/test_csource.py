"""Issue 15: plain C99 source for every model, compiled and verified against Keras."""

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import read_manifest, read_measured, rehash

from edge_echo import targets
from edge_echo.convert.csource import STRICT, compiler
from edge_echo.export import export
from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES
from edge_echo.targets import TARGETS
from edge_echo.usermodel import convert
from edge_echo.verify import EMULATED_SEQUENCES, verify

ROOT = Path(__file__).resolve().parents[1]
# The device targets the test zoo's models run on: a Cortex-M core without an FPU and one with,
# and one target of every other family (targets/).
ZOO_TARGETS = ("cortex-m0", "cortex-m4", "riscv32imac", "riscv32imafc", "aarch64", "wasm32")
CC = compiler()
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler here")


def test_the_export_does_not_depend_on_the_tools_installed(exported, c_export, tmp_path,
                                                          monkeypatch):
    """What the C source costs is measured on optional tools (the host compiler, the cross
    compilers, QEMU and Node) and kept in device.json: an export made where none of them is
    found writes the same manifest and files, byte for byte, but for the WebAssembly forms."""
    import json

    from conftest import tree_digest

    from edge_echo.export import wasm_section

    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    assert compiler() is None and all(targets.unavailable(t) for t in TARGETS)
    out = tmp_path / "exported"
    shutil.copytree(exported, out)
    export(out, list(MODEL_NAMES), seed=DEFAULT_SEED, forms=("tflite",), c_source=True)
    bare, tooled = tree_digest(out), tree_digest(c_export)
    assert bare.pop("device.json") != tooled.pop("device.json")
    # The WebAssembly forms are files clang makes: without it they are not written, and the
    # manifest says why. Nothing else moves.
    for name in MODEL_NAMES:
        assert tooled.pop(f"{name}.wasm") and tooled.pop(f"{name}.mjs")
    docs = [json.loads((d / "manifest.json").read_text()) for d in (out, c_export)]
    for name in MODEL_NAMES:
        why = docs[0]["models"][name]["not_written"]["wasm"]
        assert why.startswith("no clang or wasm-ld here") and "apt-get install clang lld" in why
        for doc in docs:
            for part in ("artifacts", "not_written", "reuse_keys"):
                for kind in ("wasm", "wasm_loader"):
                    doc["models"][name].get(part, {}).pop(kind, None)
            if doc["models"][name].get("not_written") == {}:
                del doc["models"][name]["not_written"]
    assert docs[0] == docs[1]
    assert bare.pop("manifest.json") != tooled.pop("manifest.json")
    texts = [(d / "README.md").read_text() for d in (out, c_export)]
    section = wasm_section(read_manifest(c_export))
    assert "## WebAssembly: NAME.wasm and NAME.mjs" in section and section in texts[1]
    assert "## WebAssembly" not in texts[0] and texts[1].replace(section, "") == texts[0]
    assert bare.pop("README.md") != tooled.pop("README.md")
    assert bare == tooled
    text = (out / "manifest.json").read_text()
    assert "cortex_m" not in text and "footprint" not in text
    measured = json.loads((out / "device.json").read_text())["models"]["many-to-one"]["c_source"]
    assert measured["footprint"]["measured"].startswith("not measured: no C compiler")
    assert measured["cortex_m"]["measured"].startswith("not measured: no arm-none-eabi-gcc")


def test_every_echo_model_gets_c_within_its_targets(c_export):
    doc = read_measured(c_export)
    for name, entry in doc["models"].items():
        arts = entry["artifacts"]
        assert arts["c_source"]["file"] == f"{name}.c" and arts["c_header"]["file"] == f"{name}.h"
        c = arts["c_source"]["c"]
        prefix = name.replace("-", "_")
        assert c["prefix"] == prefix
        text = (c_export / f"{name}.h").read_text()
        for api in (f"void {prefix}_reset({prefix}_state *s);",
                    f"void {prefix}_step({prefix}_state *s, const float *x_t, float *y_t);",
                    f"void {prefix}_predict(const float *x, float *y);",
                    'extern "C"',
                    f"#define {prefix.upper()}_STEPS {entry['inputs'][0]['shape'][1]}\n"):
            assert api in text, api
        source = (c_export / f"{name}.c").read_text()
        # Weights in flash: every array is static const; no heap.
        arrays = re.findall(r"^(.*)\[\d+\] = \{", source, re.M)
        assert arrays and all(a.startswith(("static const float ", "static const uint32_t "))
                              for a in arrays), arrays
        assert "malloc" not in source
        footprint = c["footprint"]
        params = entry["spec"]["param_count"]
        assert c["params"] == params
        assert 0 < footprint["flash_bytes"] <= 4 * params + 2048, (name, footprint)
        assert footprint["mutable_global_bytes"] == 0
        assert c["state_bytes"] == 2 * 4 * entry["spec"]["units"]


def test_c_and_c_step_reproduce_keras(c_export, tmp_path):
    from edge_echo.cli import _write_plot
    from edge_echo.errors import EdgeEchoError
    from edge_echo.verify import plot

    # One device target: test_cortexm.py and test_targets.py run the others.
    report = verify(c_export, latency_runs=0, cores=("cortex-m4",))
    assert report.passed, [line for r in report.results for line in r.failures()]
    ran = {(r.model, r.runtime): r for r in report.results}
    for name in MODEL_NAMES:
        for rt in ("c", "c-step"):
            r = ran[(name, rt)]
            assert r.max_abs <= 1e-5 and r.echo.passed, (name, rt, r.max_abs)
            assert {c.inputs for c in r.checks} == {"seed", "reference", "random"}
    # verify --plot: each runtime against Keras on the stored reference, element by element.
    for r in report.results:
        expected, actual = r.parity
        # The emulated cores check the first EMULATED_SEQUENCES of each set, in one batch.
        batch = EMULATED_SEQUENCES if "@" in r.runtime else 64
        assert expected.shape == actual.shape and expected.size >= batch
        assert np.abs(actual - expected).max() == pytest.approx(
            max(c.max_abs for ch in r.checks if ch.inputs == "reference" and ch.batch == batch
                for c in ch.comparisons))
    _write_plot(plot, report, tmp_path / "parity.png")
    assert (tmp_path / "parity.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(EdgeEchoError, match="cannot write the plot"):
        _write_plot(plot, report, tmp_path / "missing" / "parity.png")


def test_a_perturbed_weight_in_the_c_makes_verify_fail(c_export, tmp_path, cli):
    target = tmp_path / "copy"
    shutil.copytree(c_export, target)
    path = target / "many-to-one.c"
    source = path.read_text()
    # The first weight of the Dense head, moved by 0.01.
    match = re.search(r"static const float D0_W\[\d+\] = \{\n\s+(-?[0-9.e-]+)f", source)
    value = float(match.group(1))
    path.write_text(source[:match.start(1)] + repr(value + 0.01) + source[match.end(1):])
    rehash(target, "many-to-one.c")
    result = cli("verify", target, "--no-keras", "--models", "many-to-one", "--targets",
                 "m0,m4,riscv32imac,aarch64")
    assert result.exit_code == 1
    failed = {line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("FAIL")}
    runtimes = ["c", "c-step"]
    # The same file fails on a core of every family that can run here (the .wasm, built from
    # the file before it was altered, is not this file).
    cores = [t for t in ("cortex-m0", "cortex-m4", "riscv32imac", "aarch64") if not targets.unavailable(t)]
    runtimes += [f"{kind}@{core}" for kind in ("c", "c-step") for core in cores]
    assert failed == {f"FAIL many-to-one / {rt}" for rt in runtimes}, result.stderr


@pytest.mark.parametrize("language", ["c99", "c++"])
def test_compiles_warning_free_as_c99_and_as_cxx(c_export, tmp_path, language):
    for name in MODEL_NAMES:
        src = c_export / f"{name}.c"
        if language == "c99":
            args = [CC, *STRICT, "-O2", "-c", str(src), "-o", str(tmp_path / "m.o")]
        else:
            cxx = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
            if cxx is None:
                pytest.skip("no C++ compiler here")
            args = [cxx, "-x", "c++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-c", str(src), "-o", str(tmp_path / "m.o")]
        done = subprocess.run(args, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert not done.stderr


def test_the_example_streams_the_echo_through_step(c_export, tmp_path):
    binary = tmp_path / "echo_stream"
    done = subprocess.run([CC, *STRICT, "-O2", "-I", str(c_export),
                           str(ROOT / "examples" / "c_echo_stream.c"),
                           str(c_export / "many-to-many.c"), "-o", str(binary), "-lm"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # Two sequences: the reset between them makes the second echo like the first.
    values = "0.0 0.2 0.4 0.6 0.8 " * 2
    run = subprocess.run([str(binary)], input=values.replace(" ", "\n"), capture_output=True,
                         text=True, timeout=30)
    assert run.stdout.split() == values.split()
    # Fed shifted values, it does not echo the sequence: the check can fail.
    run = subprocess.run([str(binary)], input="0.3\n0.5\n0.7\n0.9\n1.1\n", capture_output=True,
                         text=True, timeout=30)
    assert run.stdout.split() != ["0.0", "0.2", "0.4", "0.6", "0.8"]


def test_without_a_compiler_verify_says_so_in_one_line(c_export, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang on it
    result = cli("verify", c_export, "--no-keras", "--models", "one-to-one")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if "C compiler" in line]
    assert notes == ["note: c, c-step skipped: no C compiler (cc, gcc or clang) found, so the C "
                     "source was not compiled here"], result.stdout
    # One note for the twelve Cortex-M runtimes too (no cross tools on this PATH either).
    text = " ".join(result.stdout.split())
    assert text.count("skipped: no arm-none-eabi-gcc") == 1
    assert "c-step@cortex-m55 skipped: no arm-none-eabi-gcc" in text and "apt-get install" in text


def _user_models():
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    L = keras.layers
    keras.utils.set_random_seed(5)

    def build(inputs, outputs):
        return keras.Model(inputs, outputs)

    # GRU (Keras 3's reset_after) -> SimpleRNN (relu) -> LSTM -> two Dense layers.
    i = keras.Input((6, 3))
    h = L.SimpleRNN(5, activation="relu", return_sequences=True)(
        L.GRU(6, return_sequences=True)(i))
    mixed = build(i, L.Dense(2, activation="sigmoid")(L.Dense(4, activation="tanh")(L.LSTM(4)(h))))
    # GRU with the reset before the matmul, a stacked LSTM, a TimeDistributed head.
    i = keras.Input((7, 2))
    h = L.LSTM(3, return_sequences=True)(L.GRU(4, reset_after=False, return_sequences=True)(i))
    sequences = build(i, L.TimeDistributed(L.Dense(1, activation="relu"))(h))
    # Issue 23: a character-level generator's head (softmax over the classes, large logits).
    i = keras.Input((12, 9))
    head = L.Dense(9, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(
        stddev=3.0))
    chargen = build(i, head(L.LSTM(16)(i)))
    # Every element-wise activation Keras 3 has, in the cells and in a chain of Dense layers,
    # and log_softmax per step.
    i = keras.Input((6, 3))
    h = L.SimpleRNN(5, activation="elu", return_sequences=True)(i)
    h = L.GRU(5, activation="softsign", recurrent_activation="hard_sigmoid",
              return_sequences=True)(h)
    h = L.LSTM(5, activation="selu", recurrent_activation="hard_silu", return_sequences=True)(h)
    for act in ("softplus", "silu", "gelu", "leaky_relu", "relu6", "mish", "softsign",
                "exponential", "linear", "swish", "hard_swish"):
        h = L.TimeDistributed(L.Dense(4, activation=act))(h)
    activations = build(i, L.TimeDistributed(L.Dense(3, activation="log_softmax"))(h))
    return {"mixed-stack": mixed, "gru-reset-before-seq": sequences, "chargen-softmax": chargen,
            "every-activation": activations, "normalized": _normalized(keras)}


def _normalized(keras):
    """Issue 23: normalization at inference, over the features of each step, on the input,
    between recurrent layers and in the head: LayerNormalization (with and without its
    centre, and rms_scaling) and BatchNormalization (with and without its centre), with
    moving statistics and scales away from 0 and 1."""
    import warnings

    import numpy as np

    L = keras.layers
    keras.utils.set_random_seed(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rms_scaling is deprecated, not gone
        model = keras.Sequential([
            keras.Input((6, 3)), L.LayerNormalization(), L.LSTM(5, return_sequences=True),
            L.BatchNormalization(), L.LayerNormalization(center=False, epsilon=1e-5), L.GRU(4),
            L.LayerNormalization(rms_scaling=True), L.Dense(3), L.BatchNormalization(center=False),
            L.Dense(2)])
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, (L.BatchNormalization, L.LayerNormalization)):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32")
                               for w in layer.get_weights()])
    return model


USER_C_MODELS = ["mixed-stack", "gru-reset-before-seq", "chargen-softmax", "every-activation",
                 "normalized"]


def test_a_coarse_rsqrt_in_the_c_makes_verify_fail(tmp_path, monkeypatch):
    """The normalization test can fail: LayerNormalization's 1 / sqrt with one Newton step
    instead of three (relative error up to 1.8e-3) fails the c runtime."""
    from edge_echo.convert import csource

    deps, code = csource.MATH["ee_rsqrt"]
    coarse = code.replace("    y = y * (1.5f - 0.5f * x * y * y);\n", "", 2)
    assert coarse != code
    monkeypatch.setitem(csource.MATH, "ee_rsqrt", (deps, coarse))
    _user_models()["normalized"].save(tmp_path / "n.keras")
    convert(tmp_path / "n.keras", tmp_path / "out", forms=("tflite",), c_source=True)
    ran = {r.runtime: r for r in verify(tmp_path / "out", latency_runs=0, cores=()).results}
    assert ran["litert"].passed
    assert not ran["c"].passed and ran["c"].max_abs > 1e-5


def test_a_wrong_activation_in_the_c_makes_verify_fail(tmp_path, monkeypatch):
    """The activation tests can fail: gelu's tanh approximation instead of the exact erf form
    (they differ by up to about 5e-4) fails the c runtime."""
    from edge_echo.convert import csource

    monkeypatch.setitem(csource.ACTIVATIONS, "gelu", "(0.5f * {x} * (1.0f + ee_tanh(0.7978846f * "
                        "({x} + 0.044715f * {x} * {x} * {x}))))")
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(3)
    i = keras.Input((4, 2))
    big = keras.initializers.RandomNormal(stddev=4.0)
    keras.Model(i, keras.layers.Dense(2, activation="gelu", kernel_initializer=big)(
        keras.layers.LSTM(3)(i))).save(tmp_path / "gelu.keras")
    convert(tmp_path / "gelu.keras", tmp_path / "out", forms=("tflite",), c_source=True)
    ran = {r.runtime: r for r in verify(tmp_path / "out", latency_runs=0).results}
    assert ran["litert"].passed
    assert not ran["c"].passed and ran["c"].max_abs > 1e-5


@pytest.mark.parametrize("name", USER_C_MODELS)
def test_convert_c_source_for_user_stacks(name, tmp_path):
    model = _user_models()[name]
    model.save(tmp_path / f"{name}.keras")
    result = convert(tmp_path / f"{name}.keras", tmp_path / "out", forms=("tflite",),
                     c_source=True)
    assert not result.missing, result.missing
    # A core without an FPU and one with (every activation's own math on both float ABIs), and
    # a target of every other family: RISC-V's soft float, aarch64's NEON, WebAssembly.
    report = verify(tmp_path / "out", latency_runs=0, cores=ZOO_TARGETS)
    ran = {r.runtime: r for r in report.results}
    arm = targets.unavailable("cortex-m4") is None
    here = [t for t in ZOO_TARGETS if not targets.unavailable(t)]
    for rt in ("c", "c-step", *(f"{k}@{c}" for k in ("c", "c-step") for c in here)):
        assert ran[rt].passed and ran[rt].max_abs <= 1e-5, (rt, ran[rt].max_abs)
    if arm:  # nm -u of the object on every core: no libm, whatever the activations
        device = read_measured(tmp_path / "out")["models"][name]["artifacts"]["c_source"]["c"][
            "cortex_m"]["cores"]
        for core, f in device.items():
            assert all(c in ("memset", "memcpy") or c.startswith("__aeabi_")
                       for c in f["library_calls"]), (core, f["library_calls"])


def test_convert_says_why_a_model_has_no_c(tmp_path):
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    i = keras.Input((5, 1))
    keras.Model(i, keras.layers.Dense(1)(keras.layers.Conv1D(2, 3)(keras.layers.LSTM(
        3, return_sequences=True)(i)))).save(tmp_path / "conv.keras")
    convert(tmp_path / "conv.keras", tmp_path / "out", forms=("tflite",), c_source=True)
    doc = read_manifest(tmp_path / "out")
    (entry,) = doc["models"].values()
    assert "c_source" not in entry["artifacts"] and not list((tmp_path / "out").glob("*.c"))
    why = entry["not_written"]["c_source"]
    assert "Conv1D" in why and "\n" not in why
    assert not list((tmp_path / "out").glob("*.h"))


def _whole_sequence_models():
    """Issue 23's published architectures, small: imdb (token ids, Embedding with mask_zero over
    a vocabulary of 5, so a fifth of the steps are masked, two Bidirectional LSTMs), addition
    (LSTM > RepeatVector > LSTM > softmax), seq2seq (an encoder's state as the decoder's
    initial_state, two inputs; and a GRU one), and a go_backwards GRU with Bidirectional sum
    and ave merges."""
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    L = keras.layers
    keras.utils.set_random_seed(11)
    i = keras.Input((10,), dtype="int32", name="tokens")
    h = L.Bidirectional(L.LSTM(6, return_sequences=True))(L.Embedding(5, 4, mask_zero=True)(i))
    imdb = keras.Model(i, L.Dense(1, activation="sigmoid")(L.Bidirectional(L.LSTM(5))(h)))
    i = keras.Input((7, 12), name="query")
    h = L.LSTM(16, return_sequences=True)(L.RepeatVector(4)(L.LSTM(16)(i)))
    addition = keras.Model(i, L.Dense(12, activation="softmax")(h))
    e, d = keras.Input((6, 7), name="encoder_in"), keras.Input((5, 9), name="decoder_in")
    _, state_h, state_c = L.LSTM(16, return_state=True)(e)
    h = L.LSTM(16, return_sequences=True)(d, initial_state=[state_h, state_c])
    seq2seq = keras.Model([e, d], L.Dense(9, activation="softmax")(h))
    # A GRU encoder-decoder: one state tensor, passed bare (not in a list).
    e, d = keras.Input((6, 3), name="encoder_in"), keras.Input((4, 2), name="decoder_in")
    _, state = L.GRU(7, return_state=True)(e)
    gru_seq2seq = keras.Model([e, d], L.Dense(2)(L.GRU(7, return_sequences=True)(
        d, initial_state=state)))
    i = keras.Input((8, 3), name="x")
    h = L.GRU(6, go_backwards=True, return_sequences=True)(i)
    h = L.LayerNormalization()(L.Bidirectional(L.SimpleRNN(4, return_sequences=True),
                                               merge_mode="sum")(h))
    backwards = keras.Model(i, L.Dense(2)(L.Bidirectional(L.GRU(5, reset_after=False),
                                                         merge_mode="ave")(h)))
    return {"imdb": imdb, "addition": addition, "seq2seq": seq2seq, "gru-seq2seq": gru_seq2seq,
            "backwards": backwards}


@pytest.mark.parametrize("name", ["imdb", "addition", "seq2seq", "gru-seq2seq", "backwards"])
def test_whole_sequence_models_get_c_source(name, tmp_path):
    """NAME_predict alone, one pointer per input (int32 ids where the model takes them), within
    1e-5 of Keras on the host and on emulated Cortex-M cores (one without an FPU, one with);
    no NAME_step, the header says why, and c-step is not run."""
    _whole_sequence_models()[name].save(tmp_path / f"{name}.keras")
    result = convert(tmp_path / f"{name}.keras", tmp_path / "out", forms=("tflite",), c_source=True)
    assert not result.missing, result.missing
    out = tmp_path / "out"
    entry = read_measured(out)["models"][name]
    art = entry["artifacts"]["c_source"]
    c = art["c"]
    assert c["mode"] == "whole_sequence"
    on_c = [t for t, target in TARGETS.items() if target.artifact == "c_source"]
    assert art["runs_on"] == ["c", *(f"c@{core}" for core in on_c)]
    assert set(art["not_on"]) == {"c-step", *(f"c-step@{core}" for core in on_c)}
    assert [i["name"] for i in c["inputs"]] == [i["name"] for i in entry["inputs"]]
    header = (out / f"{name}.h").read_text()
    assert "_step" not in header and "No step function: " in header
    assert c["api"][0] in header.replace(";", "")
    arm = targets.unavailable("cortex-m4") is None
    ran = {r.runtime: r for r in verify(out, latency_runs=0, cores=ZOO_TARGETS).results}
    assert not any(rt.startswith("c-step") for rt in ran)
    for rt in ("c", *(f"c@{core}" for core in ZOO_TARGETS if not targets.unavailable(core))):
        assert ran[rt].passed and ran[rt].max_abs <= 1e-5, (rt, ran[rt].max_abs)
    if arm:  # measured at export on every core: NAME_predict's instructions, no step figures
        for core, f in c["cortex_m"]["cores"].items():
            assert f.get("instructions_per_sequence", 0) > 0 or "measured" in f, (core, f)
            assert "instructions_per_step" not in f
    if name == "imdb":
        ids_name = entry["inputs"][0]["name"]
        assert c["api"] == [f"int imdb_predict(const int32_t *{ids_name}, float *y)"]
        from edge_echo.errors import ArtifactError
        from edge_echo.runners import RUNNERS

        with RUNNERS["c"](out / art["file"], [ids_name], [entry["outputs"][0]["name"]],
                          artifact=art) as runner:
            for bad in (5, -1):
                ids = np.zeros((1, 10), np.int32)
                ids[0, 3] = bad
                with pytest.raises(ArtifactError, match="outside the vocabulary"):
                    runner.infer({ids_name: ids})


def test_a_c_source_that_ignores_the_mask_or_the_backward_order_fails(tmp_path, monkeypatch):
    """The whole-sequence tests can fail: masked steps run through the cells, or the
    Bidirectional's backward half left in the order it was read, each fail the c runtime."""
    from edge_echo.convert import csource

    models = _whole_sequence_models()
    models["imdb"].save(tmp_path / "imdb.keras")
    real = csource.sequence._recurrent_code

    def unmasked(s, src):
        mask = f"if ({s.reads_mask}[at])"
        return [line.replace(mask, f"if (1 || {s.reads_mask}[at])") for line in real(s, src)]

    def unturned(s, src):
        return [line.replace("+ (at) *", "+ (t) *") for line in real(s, src)]

    for name, broken in (("unmasked", unmasked), ("unturned", unturned)):
        monkeypatch.setattr(csource.sequence, "_recurrent_code", broken)
        made = convert(tmp_path / "imdb.keras", tmp_path / name, forms=("tflite",), c_source=True)
        assert not made.missing, made.missing
        ran = {r.runtime: r for r in verify(tmp_path / name, latency_runs=0, cores=()).results}
        assert ran["litert"].passed
        assert not ran["c"].passed and ran["c"].max_abs > 1e-5, (name, ran["c"].max_abs)


def test_c_is_timed_by_bench(c_export):
    from edge_echo.bench import bench

    report = bench(c_export, runtimes=("c",), runs=20, warmup=2, batch=4, memory=False)
    assert {r.model for r in report.rows} == set(MODEL_NAMES)
    for r in report.rows:
        assert r.timing.p50_us > 0 and r.floor.p50_us > 0 and r.file.endswith(".c")
    assert np.isfinite([r.floor_ratio for r in report.rows]).all()


def test_normalization_layers_get_step_forms_too(tmp_path):
    """The normalized stack streams in every step form: a BatchNormalization built on a
    sequence takes its step as a sequence of one (it accepted rank 3 only, and both step files
    were once refused for it)."""
    _user_models()["normalized"].save(tmp_path / "n.keras")
    result = convert(tmp_path / "n.keras", tmp_path / "out", forms=("tflite_step", "onnx_step"),
                     c_source=True)
    assert not result.missing, result.missing
    ran = {r.runtime: r for r in verify(tmp_path / "out", latency_runs=0, cores=()).results}
    for rt in ("onnxruntime-step", "litert-step", "c-step"):
        assert ran[rt].passed and ran[rt].max_abs <= 1e-5, (rt, ran[rt].max_abs)


def test_masking_padding_steps_in_c_as_keras_skips_them(tmp_path, monkeypatch):
    """Masking(0.0) > Bidirectional(GRU) > LSTM: on sequences padded with all-zero steps (at the
    end and inside) the C matches Keras; with the masked steps run through the cells it does
    not (verify's random inputs never hold a padding step, so this feeds its own)."""
    from edge_echo.convert import csource
    from edge_echo.runners import RUNNERS
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    L = keras.layers
    keras.utils.set_random_seed(8)
    i = keras.Input((8, 3))
    h = L.Bidirectional(L.GRU(4, return_sequences=True))(L.Masking(0.0)(i))
    model = keras.Model(i, L.Dense(1)(L.LSTM(3)(h)))
    model.save(tmp_path / "padded.keras")
    x = np.random.default_rng(2).uniform(0, 1, (6, 8, 3)).astype(np.float32)
    x[:, 5:] = 0.0   # padding at the end
    x[::2, 2] = 0.0  # and a padding step inside
    want = np.asarray(model(x))
    real = csource.sequence._recurrent_code

    def unmasked(s, src):
        mask = f"if ({s.reads_mask}[at])"
        return [line.replace(mask, f"if (1 || {s.reads_mask}[at])") for line in real(s, src)]

    errors = {}
    for name, code in (("c", real), ("unmasked", unmasked)):
        monkeypatch.setattr(csource.sequence, "_recurrent_code", code)
        out = tmp_path / name
        convert(tmp_path / "padded.keras", out, forms=("tflite",), c_source=True)
        (entry,) = read_manifest(out)["models"].values()
        art = entry["artifacts"]["c_source"]
        assert art["c"]["mode"] == "whole_sequence"
        with RUNNERS["c"](out / art["file"], [entry["inputs"][0]["name"]],
                          [entry["outputs"][0]["name"]], artifact=art) as runner:
            got = runner.infer({entry["inputs"][0]["name"]: x})[entry["outputs"][0]["name"]]
        errors[name] = float(np.abs(got - want).max())
    assert errors["c"] <= 1e-5 and errors["unmasked"] > 1e-3, errors


def test_input_parameters_never_collide():
    from edge_echo.convert.csource import _param_name

    assert _param_name("encoder_in", set()) == "encoder_in"
    assert _param_name("y", set()) == "in_y" and _param_name("int", set()) == "in_int"
    assert _param_name("b3", set()) == "in_b3"  # a layer buffer's name
    assert _param_name("a-b", {"a_b"}) == "a_b_2" and _param_name("a b", {"a_b", "a_b_2"}) == "a_b_3"
