import json
import math

import pytest

from edge_echo.bench import bench
from edge_echo.runners import BENCH_RUNNERS
from edge_echo.specs import MODEL_NAMES


@pytest.fixture(scope="module")
def report(exported):
    return bench(exported, runs=30, warmup=3, predict_runs=3, batch=16)


def test_every_model_and_runtime_is_timed(report):
    # The micro int8 file runs on both runtimes of the micro form.
    labels = [*BENCH_RUNNERS, "tflm:int8", "litert-micro:int8"]
    assert {(r.model, r.runtime) for r in report.rows} == {
        (m, rt) for m in MODEL_NAMES for rt in labels}
    assert all((r.arena_bytes or 0) > 0 for r in report.rows if r.runtime.startswith("tflm"))


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


@pytest.mark.parametrize("args, message", [
    (["-r", "tensorrt"], "unknown runtime"),
    (["--runs", "0"], "--runs"),
    (["--threads", "0"], "--threads"),
])
def test_bad_options(exported, cli, args, message):
    result = cli("bench", exported, *args)
    assert result.exit_code == 2 and message in result.stderr
