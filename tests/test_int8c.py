"""Issue 34: the integer C (NAME.int8.c, NAME.int8.h), written with --c-source --quantize int8."""

import ctypes
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import read_manifest, read_measured, shared

from edge_echo import targets
from edge_echo.convert.csource import STRICT, compiler, integer
from edge_echo.export import export
from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES
from edge_echo.usermodel import convert
from edge_echo.verify import verify

CC = compiler()
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (cc, gcc or clang) found")
HERE = tuple(t for t in ("cortex-m0", "cortex-m3", "cortex-m4", "cortex-m55", "riscv32imac",
                         "aarch64") if targets.unavailable(t) is None)
FLOATS = ctypes.POINTER(ctypes.c_float)


@pytest.fixture(scope="module")
def int8_export(c_export, tmp_path_factory) -> Path:
    """The session's C export (the float C reused) with NAME.int8.c beside it."""
    def make(out: Path):
        shutil.copytree(c_export, out)
        export(out, list(MODEL_NAMES), seed=DEFAULT_SEED, forms=("tflite",), c_source=True,
               quantize=[("c", "int8")])

    return shared(tmp_path_factory, "int8c", make)[0]


def _library(source: Path, tmp: Path, *flags: str) -> ctypes.CDLL:
    # A name of its own per file and flags: dlopen returns a loaded library for a known path.
    lib = tmp / f"{source.parent.name}-{source.stem}{''.join(flags)}.so"
    subprocess.run([CC, *STRICT, "-O2", "-shared", "-fPIC", *flags, str(source), "-o", str(lib)],
                   check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(lib))


def _host(lib: ctypes.CDLL, prefix: str, x: np.ndarray, y_size: int) -> np.ndarray:
    predict = getattr(lib, f"{prefix}_predict")
    ys = np.zeros((len(x), y_size), np.float32)
    for i, row in enumerate(np.ascontiguousarray(x, np.float32)):
        predict(row.ctypes.data_as(FLOATS), ys[i].ctypes.data_as(FLOATS))
    return ys


def _inputs(c: dict, count: int = 6) -> np.ndarray:
    """Sequences inside and beyond the calibrated range (saturating), and a NaN."""
    x = np.random.default_rng(7).uniform(-0.5, 1.5, (count, c["steps"] * c["features"]))
    x[0, 0] = np.nan
    x[1] = 1e6
    return x.astype(np.float32)


def test_int8_files_and_manifest(int8_export):
    doc = read_manifest(int8_export)
    for name, entry in doc["models"].items():
        art = entry["artifacts"]["c_int8_source"]
        assert art["file"] == f"{name}.int8.c" and (int8_export / f"{name}.int8.h").is_file()
        assert art["variant"] == "int8" and art["base"] == "c_source"
        c = art["c"]
        assert c["prefix"].endswith("_int8") and c["header"] == f"{name}.int8.h"
        assert any("_predict_q(const int16_t *x, int16_t *y)" in a for a in c["api"])
        assert len(c["x_scale"]) == c["features"] and len(c["y_scale"]) == c["outputs"]
        q = art["quantization"]
        assert q["method"] == integer.SCHEME and "c_max_abs" in json.dumps(q["ranges"])
        for label in ("c:int8", "c-step:int8", "c@cortex-m0:int8", "c-step@aarch64:int8"):
            assert entry["tolerances"][label]["atol"] > 0
        # The float edges are quantize and scale: the header's scales are the manifest's.
        header = (int8_export / f"{name}.int8.h").read_text()
        assert f"#define {c['prefix'].upper()}_STEPS {c['steps']}" in header
        assert "EE_NO_FLOAT" in header


def test_int8_c_passes_the_int8_rule_on_the_host_and_every_core(int8_export):
    report = verify(int8_export, latency_runs=0, cores=HERE)
    ran = {(r.model, r.runtime): r for r in report.results if r.runtime.endswith(":int8")}
    for name in MODEL_NAMES:
        for rt in ("c:int8", "c-step:int8", *(f"c@{t}:int8" for t in HERE),
                   *(f"c-step@{t}:int8" for t in HERE)):
            result = ran[(name, rt)]
            assert result.passed, (name, rt, result.max_abs)
            # The echo models still print the echo.
            assert result.echo is None or result.echo.passed, (name, rt, result.echo)
    # Quantized, not the float C again: its error is an int8 file's, far above float32's.
    assert max(r.max_abs for r in ran.values()) > 1e-4


def test_the_same_bits_on_the_host_and_every_core(int8_export, tmp_path):
    """Exact integer arithmetic: the host (scalar code), the DSP cores (SMLALD, SMLAD, SMLAWB
    through ACLE) and the cores without an FPU give the same bits, NaN and saturated inputs too.
    A file with one weight changed gives other bits: the comparison can fail."""
    doc = read_manifest(int8_export)
    for name, entry in doc["models"].items():
        art = entry["artifacts"]["c_int8_source"]
        c, source = art["c"], int8_export / art["file"]
        x, size = _inputs(c), targets.y_size(c)
        host = _host(_library(source, tmp_path), c["prefix"], x, size)
        scalar = _host(_library(source, tmp_path, "-DEE_SCALAR", "-O0"), c["prefix"], x, size)
        assert np.array_equal(host.view(np.uint32), scalar.view(np.uint32))
        for target in HERE:
            ys, _ = targets.program(target, source, c).run(x, step=False, y_size=size)
            assert np.array_equal(ys.view(np.uint32), host.view(np.uint32)), (name, target)
            stepped, _ = targets.program(target, source, c).run(x, step=True, y_size=size)
            assert np.array_equal(stepped.view(np.uint32), host.view(np.uint32)), (name, target)
    changed = tmp_path / "changed" / source.name
    changed.parent.mkdir()
    shutil.copy(source.with_suffix(".h"), changed.with_suffix(".h"))
    text = source.read_text()
    first = re.search(r"_W\[\d+\] = \{\s*(0x[0-9a-f]{8})u", text).group(1)
    changed.write_text(text.replace(first, f"0x{int(first, 16) ^ 0x7f7f:08x}", 1))
    other = _host(_library(changed, tmp_path), c["prefix"], x, size)
    assert not np.array_equal(other.view(np.uint32), host.view(np.uint32))


def test_integer_entry_point_is_the_float_one_inside(int8_export, tmp_path):
    """NAME_int8_predict is NAME_int8_predict_q between quantizing x and scaling y."""
    doc = read_manifest(int8_export)
    art = doc["models"]["many-to-many"]["artifacts"]["c_int8_source"]
    c = art["c"]
    lib = _library(int8_export / art["file"], tmp_path)
    x = _inputs(c)[2:]
    y = _host(lib, c["prefix"], x, targets.y_size(c))
    scale = np.float32(c["x_scale"])
    predict_q = getattr(lib, f"{c['prefix']}_predict_q")
    for row, want in zip(x, y, strict=True):
        xq = np.clip(np.round(row.reshape(-1, c["features"]) / scale), -32768, 32767)
        xq = np.ascontiguousarray(xq.ravel(), np.int16)
        yq = np.zeros(targets.y_size(c), np.int16)
        predict_q(xq.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
                  yq.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)))
        got = yq.astype(np.float32).reshape(-1, c["outputs"]) * np.float32(c["y_scale"])
        np.testing.assert_array_equal(got.ravel(), want)


@pytest.mark.skipif(targets.unavailable("cortex-m0") is not None,
                    reason=targets.unavailable("cortex-m0") or "")
def test_no_float_library_on_cortex_m0_with_the_float_edges_out(int8_export, tmp_path):
    source = int8_export / "many-to-many.int8.c"

    def undefined(*flags: str) -> set[str]:
        obj = tmp_path / "m.o"
        subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft",
                        *STRICT, "-Os", *flags, "-c", str(source), "-o", str(obj)], check=True)
        out = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True)
        return set(out.stdout.split()) - {"U"}

    without = undefined("-DEE_NO_FLOAT")
    assert without <= {"memcpy", "memset"}, without
    assert not any(re.match(r"__aeabi_[fd]|exp|log|tanh|sqrt", s) for s in without)
    # The check can fail: with the float edges in, the soft-float routines are called.
    assert any(s.startswith("__aeabi_f") for s in undefined())


@pytest.mark.skipif(targets.unavailable("cortex-m0") is not None,
                    reason=targets.unavailable("cortex-m0") or "")
def test_fits_where_the_float_c_fits(int8_export):
    doc = read_measured(int8_export)
    for name, entry in doc["models"].items():
        arts = entry["artifacts"]
        i8, fl = arts["c_int8_source"]["c"], arts["c_source"]["c"]
        for core, f in i8["cortex_m"]["cores"].items():
            ff = fl["cortex_m"]["cores"][core]
            assert f["flash_bytes"] <= i8["params"] + 3 * 1024, (name, core, f["flash_bytes"])
            assert f["stack_bytes"] + i8["state_bytes"] <= ff["stack_bytes"] + fl["state_bytes"]
            assert f["ram_bytes"] == 0
    m0 = doc["models"]["many-to-many"]["artifacts"]["c_int8_source"]["c"]["cortex_m"]["cores"]
    assert m0["cortex-m0"]["instructions_per_sequence"] <= 40_000


FLOAT_USE = """
float ee_use(float *z, const float *w, const float *x);
float ee_use(float *z, const float *w, const float *x)
{
    ee_mv(z, w, 0, x, 3, x, 2, 13);
    return ee_exp(x[0]) + ee_log(x[1]) + ee_rsqrt(x[2]) + ee_softplus(x[3]) + ee_erf(x[4])
        + ee_abs(x[5]) + ee_sigmoid(x[6]) + ee_tanh(x[7]);
}
"""


def test_the_c_templates_compile_on_their_own(tmp_path):
    """templates/float.c and templates/int8.c, each with every part, warning-free under the
    strict flags, scalar and (where the cross compiler is) for Cortex-M0 and M4 (the int8 DSP
    code); int8.c's tables are the functions'."""
    from edge_echo.convert.csource import cmath

    (tmp_path / "float.c").write_text(cmath.TEMPLATE.read_text() + FLOAT_USE)
    source = tmp_path / "all.c"
    source.write_text(integer.TEMPLATE.read_text() + """
int ee_use(const int16_t *v, int16_t *z, int16_t *c);
int ee_use(const int16_t *v, int16_t *z, int16_t *c)
{
    static const uint32_t w[8] = {0x01020304u, 0xfffefdfcu, 3u, 4u, 5u, 6u, 7u, 8u};
    static const int16_t b[4] = {1, 2, 3, 4};
    static const uint8_t m[4] = {100, 200, 30, 255};
    ee_mv(z, w, b, 0, m, 20, v, 2, 3, 0, 0, 0);
    ee_mv(z, w, b, 3, m, 20, v, 1, 3, 1, 0, 4);
    ee_lstm(z + 4, c, w, b, 2, m, 20, v, 2, 1, 15, 1, 3, 0, 0, 0);
    ee_softmax(z, z + 8, 3, 1000, 16);
    return ee_sigmoid(z[0]) + ee_quantize(0.5f, 2.0f);
}
""")
    for src in (source, tmp_path / "float.c"):
        flags = [*STRICT, "-Wdouble-promotion", "-Os", "-c", str(src), "-o", str(tmp_path / "a.o")]
        for extra in ([], ["-DEE_SCALAR"]):
            subprocess.run([CC, *flags, *extra], check=True)
        if targets.unavailable("cortex-m4") is None:
            for cpu in (["-mcpu=cortex-m0", "-mfloat-abi=soft"],
                        ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]):
                subprocess.run(["arm-none-eabi-gcc", "-mthumb", *cpu, *flags], check=True)
    text = integer.TEMPLATE.read_text()

    def table(name: str, n: int) -> np.ndarray:
        body = re.search(rf"{name}\[{n}\] = \{{(.*?)\}};", text, re.S).group(1)
        return np.array([int(v) for v in body.replace("\n", " ").split(",")])

    x = -8 + np.arange(257) / 16
    assert np.array_equal(table("EE_TANH", 257), np.clip(np.round(np.tanh(x) * 32768), -32767, 32767))
    assert np.array_equal(table("EE_EXP2", 33), np.clip(np.round(2.0 ** (-np.arange(33) / 32) * 32768),
                                                        0, 32767))


def _models():
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(3)
    made = {}
    i = keras.Input((6, 3))
    h = L.GRU(8, return_sequences=True)(L.BatchNormalization()(i))
    h = L.SimpleRNN(6, activation="relu", return_sequences=True)(h)
    h = L.Dense(7, activation="relu")(h)  # seven rows: two pairs, then two single pairs
    made["gru_rnn_softmax"] = keras.Model(i, L.Dense(5, activation="softmax")(h))
    i = keras.Input((5, 2))
    h = L.GRU(6, reset_after=False)(i)
    made["gru_before_sigmoid"] = keras.Model(i, L.Dense(3, activation="sigmoid")(h))
    i = keras.Input((5, 2))
    h = L.LSTM(9, return_sequences=True)(L.LSTM(7, return_sequences=True)(i))
    made["stacked_lstm"] = keras.Model(i, L.TimeDistributed(L.Dense(2, activation="tanh"))(h))
    i = keras.Input((6, 3))
    h = L.SimpleRNN(7, activation="elu", return_sequences=True)(i)  # activations by tables
    made["tabled_activations"] = keras.Model(i, L.Dense(2, activation="selu")(
        L.Dense(9, activation="gelu")(h)))
    i = keras.Input((5, 2))
    made["log_softmax"] = keras.Model(i, L.Dense(3, activation="log_softmax")(L.LSTM(4)(i)))
    # Whole sequences (NAME_int8_predict alone): both ends, backwards, repeated.
    i = keras.Input((7, 3))
    made["bidirectional"] = keras.Model(i, L.Dense(3, activation="softmax")(
        L.Bidirectional(L.LSTM(6))(i)))
    i = keras.Input((6, 2))
    h = L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="mul")(i)
    made["bidirectional_merges"] = keras.Model(i, L.TimeDistributed(L.Dense(2))(
        L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="sum")(h)))
    i = keras.Input((6, 2))
    h = L.RepeatVector(4)(L.LSTM(8, go_backwards=True)(i))
    made["repeat_backwards"] = keras.Model(i, L.TimeDistributed(L.Dense(2))(
        L.LSTM(8, return_sequences=True)(h)))
    i = keras.Input((8,), dtype="int32")  # int8 rows, the mask skipping id 0's steps
    h = L.Bidirectional(L.LSTM(5, return_sequences=True))(L.Embedding(20, 4, mask_zero=True)(i))
    made["token_ids"] = keras.Model(i, L.Dense(1, activation="sigmoid")(L.LSTM(4)(h)))
    i = keras.Input((6, 2))
    made["masking"] = keras.Model(i, L.Dense(1)(L.LSTM(4)(L.Masking(0.0)(i))))
    e, d = keras.Input((6, 5), name="enc"), keras.Input((4, 3), name="dec")  # two inputs
    _, h, c = L.LSTM(8, return_state=True)(e)
    made["seq2seq"] = keras.Model([e, d], L.Dense(3, activation="softmax")(
        L.LSTM(8, return_sequences=True)(d, initial_state=[h, c])))
    i = keras.Input((5, 2))
    made["layer_norm"] = keras.Model(i, L.Dense(1)(L.LayerNormalization()(L.LSTM(4)(i))))
    return made


def test_other_layers_in_integers_or_one_line_why_not(tmp_path):
    for name, model in _models().items():
        model.save(tmp_path / f"{name}.keras")
        out = tmp_path / name
        convert(tmp_path / f"{name}.keras", out, forms=("tflite",), c_source=True,
                quantize=[("c", "int8")])
        (entry,) = read_manifest(out)["models"].values()
        if name == "masking":
            why = entry["not_written"]["c_int8_source"]
            assert why.startswith("integer C, whole sequence: layer") and "Masking" in why
            assert "\n" not in why
            assert "c_int8_header" not in entry["artifacts"] and "c_source" in entry["artifacts"]
            continue
        if name == "layer_norm":
            assert "LayerNormalization has no integer C form" in entry["not_written"]["c_int8_source"]
            continue
        if name == "log_softmax":
            assert "log_softmax has no integer C form" in entry["not_written"]["c_int8_source"]
            continue
        ran = {r.runtime: r for r in verify(out, latency_runs=0, cores=()).results}
        whole = entry["artifacts"]["c_int8_source"]["c"].get("mode") == "whole_sequence"
        assert whole == name.startswith(("bidirectional", "repeat", "token_ids", "seq2seq"))
        for rt in ("c:int8",) if whole else ("c:int8", "c-step:int8"):
            assert ran[rt].passed, (name, rt, ran[rt].max_abs)
        assert ("c-step:int8" in ran) != whole
        assert ran["c:int8"].max_abs > 1e-6  # integers, not the float C
        if name == "token_ids":  # an id outside the vocabulary: -1, y untouched
            art = entry["artifacts"]["c_int8_source"]
            lib = _library(out / art["file"], tmp_path)
            predict = getattr(lib, f"{art['c']['prefix']}_predict")
            ids, y = np.zeros(8, np.int32), np.full(1, 7.0, np.float32)
            ids[3] = 20
            assert predict(ids.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                           y.ctypes.data_as(FLOATS)) == -1 and y[0] == 7.0


def test_quantize_c_takes_int8_alone(cli):
    result = cli("export", "--quantize", "c:float16", "--out", "unused")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].endswith("the c format has int8 alone")


@pytest.mark.skipif(targets.unavailable("cortex-m0") is not None,
                    reason=targets.unavailable("cortex-m0") or "")
def test_bench_times_the_integer_c_and_counts_it_on_each_core(int8_export):
    from edge_echo.bench import bench

    report = bench(int8_export, runtimes=("c",), runs=5, warmup=1, batch=2, memory=False,
                   models=["many-to-many"], cores=("cortex-m0", "cortex-m4"))
    assert {r.runtime for r in report.rows} >= {"c", "c:int8"}
    rows = {d["runtime"]: d for d in report.device}
    assert {"c@cortex-m0:int8", "c@cortex-m4:int8", "c@cortex-m0"} <= set(rows)
    stored = read_measured(int8_export)["models"]["many-to-many"]["artifacts"]["c_int8_source"]["c"]
    for core in ("cortex-m0", "cortex-m4"):
        d = rows[f"c@{core}:int8"]
        assert d["file"] == "many-to-many.int8.c"
        assert d["instructions_per_sequence"] == \
            stored["cortex_m"]["cores"][core]["instructions_per_sequence"]
    # On the core without an FPU the integers are what pays.
    assert rows["c@cortex-m0:int8"]["instructions_per_sequence"] * 5 < \
        rows["c@cortex-m0"]["instructions_per_sequence"]


def test_inputs_far_larger_than_h_keep_the_recurrent_weights(tmp_path, monkeypatch):
    """Raw inputs in [0, 3000] beside an h in [-1, 1]: one scale per row would round the h
    weights to a few levels. Their segment is stored finer and its sum shifted (ee_mv's k): the
    error is a fraction of the one-scale file's, which the test builds too (and which fails the
    int8 rule). The requantization shift is below 16 here, so the one-byte multipliers take
    EE_RQ8's shifted SMLAWB."""
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(5)
    i = keras.Input((10, 3))
    h = L.LSTM(8, kernel_initializer=keras.initializers.RandomUniform(-2e-3, 2e-3))(i)
    keras.Model(i, L.Dense(1)(h)).save(tmp_path / "raw.keras")

    def error(out: Path) -> tuple[float, bool, list[str]]:
        convert(tmp_path / "raw.keras", out, forms=("tflite",), c_source=True,
                quantize=[("c", "int8")], input_range=(0.0, 3000.0))
        ran = {r.runtime: r for r in verify(out, latency_runs=0, cores=()).results}
        args = next(line for line in (out / "raw.int8.c").read_text().splitlines()
                    if "ee_lstm(hn, " in line).rstrip(");").split(", ")
        return ran["c:int8"].max_abs, ran["c-step:int8"].passed, args

    split, passed, args = error(tmp_path / "split")
    assert passed
    assert args[-3:] != ["0", "0", "0"] and int(args[6]) < 16  # a second segment; shift < 16
    one_scale = integer._op

    def one(label, segments, bias, out_scale, halved=None):
        w = np.concatenate([np.pad(s[0] * np.asarray(s[1]).reshape(-1, 1),
                                   ((0, s[2] - s[0].shape[0]), (0, 0))) for s in segments])
        return one_scale(label, [(w, np.ones(w.shape[0]), w.shape[0])], bias, out_scale, halved)

    monkeypatch.setattr(integer, "_op", one)
    joined, _, args = error(tmp_path / "joined")
    assert args[-3:] == ["0", "0", "0"]
    assert split * 3 < joined, (split, joined)


@pytest.mark.skipif(targets.unavailable("cortex-m0") is not None,
                    reason=targets.unavailable("cortex-m0") or "")
def test_a_whole_sequence_model_has_the_same_bits_everywhere_and_no_float(tmp_path):
    """Bidirectional, then RepeatVector: NAME_int8_predict alone, on the host and the cores, the
    same bits; with EE_NO_FLOAT its Cortex-M0 object calls no soft-float routine."""
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(8)
    i = keras.Input((7, 3))
    h = L.RepeatVector(3)(L.Bidirectional(L.GRU(5))(i))
    keras.Model(i, L.TimeDistributed(L.Dense(2))(L.LSTM(6, return_sequences=True)(h))).save(
        tmp_path / "whole.keras")
    convert(tmp_path / "whole.keras", tmp_path / "out", forms=("tflite",), c_source=True,
            quantize=[("c", "int8")])
    art = read_manifest(tmp_path / "out")["models"]["whole"]["artifacts"]["c_int8_source"]
    c, source = art["c"], tmp_path / "out" / art["file"]
    assert c["mode"] == "whole_sequence" and "c-step:int8" not in art["runs_on"]
    x, size = _inputs(c), targets.y_size(c)
    host = _host(_library(source, tmp_path), c["prefix"], x, size)
    for target in HERE:
        ys, _ = targets.program(target, source, c).run(x, step=False, y_size=size)
        assert np.array_equal(ys.view(np.uint32), host.view(np.uint32)), target
    obj = tmp_path / "m.o"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft",
                    *STRICT, "-Os", "-DEE_NO_FLOAT", "-c", str(source), "-o", str(obj)], check=True)
    out = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True)
    assert set(out.stdout.split()) - {"U"} <= {"memcpy", "memset"}


@pytest.mark.skipif(targets.unavailable("cortex-m0") is not None,
                    reason=targets.unavailable("cortex-m0") or "")
def test_the_report_names_the_integer_c_for_a_core_without_an_fpu(int8_export, tmp_path, cli):
    """'Which file where' picks the passing C file with the fewest Cortex-M0 instructions: the
    integer C, and the float C once the integer C fails."""
    from test_report import _choices

    directory = tmp_path / "exported"
    shutil.copytree(int8_export, directory)
    checked = verify(directory, keras=False, latency_runs=0, models=["many-to-many"],
                     cores=("cortex-m0",)).to_dict()

    def choice() -> dict:
        (directory / "verify.json").write_text(json.dumps(checked))
        result = cli("report", directory)
        assert result.exit_code == 0, result.output
        page = (directory / "report.html").read_text(encoding="utf-8")
        return _choices(page)["many-to-many"]["core without an FPU"]

    picked = choice()
    assert picked["data-runtime"] == "c@cortex-m0:int8"
    assert picked["data-file"] == "many-to-many.int8.c"
    for r in checked["results"]:
        if r["runtime"] == "c@cortex-m0:int8":
            r["passed"] = False
    assert choice()["data-runtime"] == "c@cortex-m0"


def test_each_row_takes_the_exact_scale_that_rounds_its_weights_closest():
    """integer._multipliers: a row's one-byte multiplier is the smallest that holds its weights
    or up to 8 steps coarser, whichever rounds its weights closest (a few-weight row, as the
    echo models' head, can otherwise lose a few percent all one way)."""
    rng = np.random.default_rng(0)
    part = rng.normal(size=(5, 64)) * rng.uniform(0.2, 1.0, 64)   # 64 rows of 5 weights
    unit = np.full(64, 1e-4)
    least = np.abs(part).max(axis=0) / 127 / unit
    mult = integer._multipliers([part], [0], least, unit)
    low = np.ceil(least)

    def err(m):
        scale = m * unit
        return ((integer._quantized(part, scale) * scale - part) ** 2).sum(axis=0)

    assert (mult >= low).all() and (mult <= np.minimum(low + 8, 255)).all()
    assert (np.abs(part / (mult * unit)) <= 127.5).all()
    for step in range(9):
        assert (err(mult) <= err(np.minimum(low + step, 255)) * (1 + 1e-9)).all()
    assert (err(mult) < err(low)).sum() > 16   # the search moves many rows off the smallest
