import json
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_echo import manifest, memory, refdata
from edge_echo.bench import bench
from edge_echo.runners import BENCH_RUNNERS, RUNNERS, targets
from edge_echo.runners.onnxruntime import OnnxRunner
from edge_echo.specs import MODEL_NAMES


@pytest.fixture(scope="module")
def report(exported):
    # Memory children cost seconds a row: measured below for a few rows, and by the CLI test.
    return bench(exported, runs=30, warmup=3, predict_runs=3, batch=16, memory=False)


def test_every_model_and_runtime_is_timed(report):
    # The micro int8 file runs on both runtimes of the micro form.
    # The session export has no C source (--c-source; test_csource.py times it).
    # Nor a SavedModel (a serving graph's reference, test_readers.py).
    labels = [rt for rt, cls in BENCH_RUNNERS.items() if cls.artifact not in ("c_source", "savedmodel")]
    labels += ["tflm:int8", "litert-micro:int8"]
    assert {(r.model, r.runtime) for r in report.rows} == {
        (m, rt) for m in MODEL_NAMES for rt in labels}
    assert all((r.arena_bytes or 0) > 0 for r in report.rows if r.runtime.startswith("tflm"))
    assert all(r.arena_bytes is None for r in report.rows if not r.runtime.startswith("tflm"))


def test_every_row_has_its_memory(exported, report):
    for r in report.rows:
        assert r.file_bytes == (exported / r.file).stat().st_size > 0
        assert r.peak_rss_delta_bytes is None and "--no-memory" in r.memory_note
    # Keras, TFLM and the micro file on LiteRT (the CLI test measures ONNX Runtime and LiteRT).
    measured = bench(exported, ("keras", "tflm", "litert-micro"), runs=5, warmup=0, batch=2,
                     models=["many-to-one"])
    assert len(measured.rows) == 5  # tflm and litert-micro run the int8 micro file too
    for r in measured.rows:
        # Creating any session or interpreter and running it takes some memory of its own.
        assert r.peak_rss_delta_bytes > 0 and r.memory_note is None, (r.runtime, r.memory_note)
    assert "VmHWM" in measured.settings["memory"]


def _dense_onnx(path, width):
    """y = x @ W: a model whose weights alone take 4 * width**2 bytes."""
    w = numpy_helper.from_array(np.full((width, width), 0.5, np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "dense",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])],
                              [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def test_peak_rss_delta_grows_with_the_model(tmp_path):
    """The measurement can tell a 16 KiB model from a 16 MiB one: it measures the model."""
    deltas = memory.measure_all([
        {"cls": OnnxRunner, "path": _dense_onnx(tmp_path / f"d{w}.onnx", w), "artifact": {},
         "inputs": [{"name": "x", "shape": [1, w]}], "outputs": ["y"]} for w in (64, 2048)])
    small, large = deltas
    assert isinstance(small, int) and isinstance(large, int), deltas
    assert large - small >= 16 << 20 and small < 16 << 20


def test_a_row_that_cannot_be_measured_says_why(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    why = memory.peak_rss_delta(OnnxRunner, tmp_path / "bad.onnx", {},
                                [{"name": "x", "shape": [1, 2]}], ["y"])
    assert isinstance(why, str) and "cannot load it" in why and "\n" not in why


def test_the_bare_call_is_the_model(exported):
    """bench times Runner.prepared: it must compute what infer computes, reset included."""
    doc = manifest.load(exported)
    checked = 0
    for model, entry in doc["models"].items():
        arts = entry["artifacts"]
        x = refdata.load(manifest.artifact_path(exported, arts["reference"]))[refdata.RANDOM_X]
        name, out = entry["inputs"][0]["name"], entry["outputs"][0]["name"]
        # The JavaScript runtimes have no bare call here: they time theirs inside their host
        # (Runner.clock; tests/test_js.py).
        here = {rt: cls for rt, cls in {**RUNNERS, **BENCH_RUNNERS}.items()
                if not hasattr(getattr(cls, "inner", cls), "clock")}
        for label, cls, art in targets(arts, here):
            with cls(manifest.artifact_path(exported, art), [name], [out], artifact=art) as r:
                want = r.infer({name: x[:1]})[out]
                call = r.prepared({name: x[:1]})
                for _ in range(2):  # twice: a stateful file is reset before each sequence
                    got = call()
                    got = got[0] if isinstance(got, list) else got
                    # A stepped runner's bare loop returns the last step, as it streams.
                    got = np.asarray(got).reshape(-1)[-want[0].size:]
                    np.testing.assert_allclose(got, want.reshape(-1)[-got.size:], rtol=1e-5,
                                               atol=1e-6, err_msg=f"{model} {label}")
                checked += 1
                if r.stateful and label in ("tflm", "litert-micro") and model != "one-to-one":
                    # Without the reset the same sequence gives another answer: the check can fail.
                    r.reset_per_sequence = False
                    again = r.prepared({name: x[:1]})
                    again()
                    assert np.abs(np.asarray(again()[0]) - want).max() > 1e-3, (model, label)
    assert checked >= 3 * 10


def test_figures_are_positive_and_ordered(report):
    for r in report.rows:
        for t in (r.timing, r.floor):
            assert 0 < t.p50_us <= t.p90_us <= t.p99_us
            assert t.first_us > 0 and t.mean_us > 0 and t.std_us >= 0
            assert t.sequences_per_s > 0 and t.batch == 16
        assert r.floor_ratio > 0 and math.isfinite(r.floor_ratio)
        assert r.speedup_vs_predict is not None and r.speedup_vs_predict > 0
    assert report.settings["threads"]["requested"] == 1
    assert report.machine["cpu"]


def test_json_round_trips_and_plot_is_png(exported, report, cli, tmp_path):
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["versions"]["onnxruntime"]
    result = cli("bench", exported, "-r", "onnxruntime,litert", "--runs", "10", "--warmup", "1",
                 "--batch", "4", "--json", tmp_path / "b.json", "--plot", tmp_path / "b.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((tmp_path / "b.json").read_text())
    assert {r["runtime"] for r in written["rows"]} == {"onnxruntime", "litert"}
    assert len(written["rows"]) == 2 * len(MODEL_NAMES)
    for row in written["rows"]:
        assert f"{row['floor_ratio']:.2f}" in result.stdout
        assert set(row["memory"]) == {"file_bytes", "peak_rss_delta_bytes", "arena_bytes"}
        assert row["memory"]["peak_rss_delta_bytes"] > 0 and row["memory"]["arena_bytes"] is None
        # The table shows memory in KiB, as the JSON has it in bytes.
        line = next(x for x in result.stdout.splitlines()
                    if row["model"] in x and f" {row['runtime']} " in x)
        assert f" {row['memory']['peak_rss_delta_bytes'] / 1024:,.0f} " in line
        assert row["timing"]["wrapped_p50_us"] > 0
    result = cli("bench", exported, "-r", "tflm", "-m", "many-to-one", "--runs", "5", "--warmup",
                 "0", "--batch", "2", "--no-memory", "--json", tmp_path / "n.json")
    assert result.exit_code == 0, result.output
    (row,) = [r for r in json.loads((tmp_path / "n.json").read_text())["rows"]
              if r["runtime"] == "tflm"]
    assert row["memory"]["peak_rss_delta_bytes"] is None and row["memory"]["arena_bytes"] > 0
    assert "--no-memory" in row["memory"]["note"]


@pytest.mark.parametrize("args, message", [
    (["-r", "tensorrt"], "unknown runtime"),
    (["--runs", "0"], "--runs"),
    (["--threads", "0"], "--threads"),
])
def test_bad_options(exported, cli, args, message):
    result = cli("bench", exported, *args)
    assert result.exit_code == 2 and message in result.stderr
