import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import BLOCK_TF, rehash, run_module

from edge_echo.cli import _used
from edge_echo.compare import DEFAULT_TOLERANCE, compare, echo_check
from edge_echo.runners import JS_RUNNERS, JS_STEP_RUNNERS, RUNTIMES
from edge_echo.specs import MODEL_NAMES


def test_committed_export_verifies_without_tensorflow(cli):
    """exported/ is what device-app developers take from the repository."""
    committed = Path(__file__).resolve().parents[1] / "exported"
    result = cli("verify", committed, "--no-keras", "--quiet")
    assert result.exit_code == 0, result.output


# The micro int8 file runs on both runtimes of the micro form.
# The session export has no C source (--c-source): test_csource.py verifies c and c-step; nor a
# SavedModel (test_readers.py verifies tensorflow on a converted serving graph).
# The JavaScript runtimes are left out here (tests/conftest.py); tests/test_js.py runs them.
JS = {cls.runtime for cls in (*JS_RUNNERS, *JS_STEP_RUNNERS)}
LABELS = (*(rt for rt in RUNTIMES if not rt.startswith("c") and rt != "tensorflow" and rt not in JS),
          "tflm:int8", "litert-micro:int8")


def test_passes_on_a_fresh_export(exported, cli, tmp_path):
    report_path = tmp_path / "report.json"
    result = cli("verify", exported, "--json", report_path, "--plot", tmp_path / "parity.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"verdict: PASS (3 models x {len(LABELS)} runtimes" in result.stdout
    report = json.loads(report_path.read_text())
    assert report["passed"] is True
    # one-to-one takes one time step: its micro file is its own step form.
    assert {(r["model"], r["runtime"]) for r in report["results"]} == {
        (m, rt) for m in MODEL_NAMES for rt in LABELS
        if not (m == "one-to-one" and rt in ("tflm-step", "litert-micro-step"))}
    for r in report["results"]:
        # Every number of the table is in the report, as printed.
        row = next(line for line in result.stdout.splitlines()
                   if r["model"] in line and f" {r['runtime']} " in line)
        assert f"{r['max_abs']:.2e}" in row and f" {_used(r['worst_diff_over_allowed'])} " in row
        assert r["worst_diff_over_allowed"] <= 1
        assert " ".join(r["echo"]["printed"]) in row
        if ":int8" not in r["runtime"]:  # the micro int8 file has its precision's tolerance
            assert r["tolerance"] == {"atol": DEFAULT_TOLERANCE.atol, "rtol": DEFAULT_TOLERANCE.rtol}
        batches = {(c["inputs"], c["batch"]) for c in r["checks"]}
        assert {("reference", 1), ("reference", 7), ("reference", 64)} <= batches
        if r["runtime"] != "keras":
            assert {("random", 1), ("random", 7), ("random", 64)} <= batches
    assert report["versions"]["onnxruntime"]


def _perturb_onnx(path, tensor_role: str, delta: float) -> None:
    model = onnx.load(str(path))
    if tensor_role == "lstm":
        name = next(n for n in model.graph.node if n.op_type == "LSTM").input[1]  # W
    else:  # the Dense bias: the initializer added after the last MatMul
        name = next(i for n in reversed(model.graph.node) if n.op_type == "Add"
                    for i in n.input if any(t.name == i for t in model.graph.initializer))
    init = next(t for t in model.graph.initializer if t.name == name)
    values = onnx.numpy_helper.to_array(init).copy()
    if tensor_role == "lstm":
        values.flat[0] += delta
    else:
        values += delta
    init.CopyFrom(onnx.numpy_helper.from_array(values, name))
    onnx.save(model, str(path))


def test_fails_when_one_onnx_weight_is_perturbed(export_copy, cli):
    _perturb_onnx(export_copy / "many-to-one.onnx", "lstm", 0.05)
    rehash(export_copy, "many-to-one.onnx")
    result = cli("verify", export_copy)
    assert result.exit_code == 1
    assert "FAIL many-to-one / onnxruntime: output 'y'" in result.stderr
    assert "needs atol >=" in result.stderr
    assert "litert" not in result.stderr and "many-to-many" not in result.stderr


def _perturb_tflite(path, delta: float) -> None:
    """Add delta to the first value of the largest float32 constant (an LSTM kernel)."""
    from ai_edge_litert import schema_py_generated as schema

    data = bytearray(path.read_bytes())
    model = schema.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    candidates = []
    for t in range(sub.TensorsLength()):
        tensor = sub.Tensors(t)
        buf = model.Buffers(tensor.Buffer())
        if tensor.Type() == schema.TensorType.FLOAT32 and buf.DataLength() > 0:
            candidates.append((buf.DataLength(), buf.DataAsNumpy()))
    _, raw = max(candidates, key=lambda c: c[0])
    offset = raw.__array_interface__["data"][0] - np.frombuffer(data, np.uint8).__array_interface__["data"][0]
    value = np.frombuffer(bytes(data[offset:offset + 4]), np.float32)[0] + np.float32(delta)
    data[offset:offset + 4] = np.float32(value).tobytes()
    path.write_bytes(bytes(data))


def test_fails_when_one_tflite_weight_is_perturbed(export_copy, cli):
    _perturb_tflite(export_copy / "many-to-many.tflite", 0.05)
    rehash(export_copy, "many-to-many.tflite")
    result = cli("verify", export_copy, "--no-keras")
    assert result.exit_code == 1
    assert "FAIL many-to-many / litert: output" in result.stderr
    # The same file through LiteRT's CompiledModel API, by its signature: it fails too.
    assert "FAIL many-to-many / litert-compiled: output" in result.stderr
    assert "onnxruntime" not in result.stderr


def test_stale_hash_is_an_artifact_error_and_nothing_loads(export_copy, cli):
    path = export_copy / "one-to-one.tflite"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = cli("verify", export_copy)
    assert result.exit_code == 2
    assert "one-to-one.tflite" in result.stderr and "sha256" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_file_is_named(export_copy, cli):
    (export_copy / "many-to-one.onnx").unlink()
    result = cli("verify", export_copy, "--no-keras")
    assert result.exit_code == 2 and "many-to-one.onnx" in result.stderr


def test_echo_fails_when_outputs_shift_by_a_tenth(export_copy, cli):
    _perturb_onnx(export_copy / "many-to-many.onnx", "bias", 0.1)
    rehash(export_copy, "many-to-many.onnx")
    result = cli("verify", export_copy, "--no-keras")
    assert result.exit_code == 1
    assert "many-to-many / onnxruntime: echo check failed: printed 0.1 0.3 0.5 0.7 0.9" in result.stderr


def test_echo_check_semantics():
    seq = np.array([0.0, 0.2, 0.4, 0.6, 0.8], np.float32)
    assert echo_check(seq + 0.04, seq).passed
    assert echo_check(seq - 0.04, seq).passed  # -0.04 rounds to -0.0, which equals 0.0
    assert echo_check(seq - 0.04, seq).printed[0] == "0.0"  # and prints as the notebook's 0.0
    assert not echo_check(seq + 0.1, seq).passed
    assert not echo_check(seq[:4], seq).passed
    # Length 128 holds 32/128 = 0.25, a tie of '%.1f' (it prints 0.2): a float's error above
    # prints 0.3, and is accepted there only, never a tenth further, never beside a non-tie.
    tie = np.array([0.25, 0.75], np.float32)
    assert echo_check(tie + 1e-7, tie).passed and echo_check(tie - 1e-7, tie).passed
    assert not echo_check(tie + 0.1, tie).passed
    assert not echo_check(np.float32([0.2500001]), np.float32([0.24])).passed


def test_compare_semantics():
    expected = np.array([[1.0, 0.0], [2.0, -3.0]])
    tol = DEFAULT_TOLERANCE
    assert compare("y", expected, expected, tol).passed
    inside = expected + tol.atol * 0.9
    assert compare("y", inside, expected, tol).passed
    # worst |diff| / allowed: 0.9 of the allowed error at the expected 0, where the relative
    # error is infinite and says nothing.
    assert compare("y", inside, expected, tol).used == pytest.approx(0.9)
    assert compare("y", inside, expected, tol).max_rel == np.inf
    worse = expected.copy()
    worse[1, 1] += 0.01
    result = compare("y", worse, expected, tol)
    assert not result.passed and result.worst_index == (1, 1)
    assert result.worst_expected == -3.0 and result.max_abs == pytest.approx(0.01)
    assert result.min_atol == pytest.approx(0.01 - tol.rtol * 3.0)
    assert result.used == pytest.approx(0.01 / (tol.atol + tol.rtol * 3.0)) and result.used > 1
    # The smallest atol reported would indeed pass.
    assert compare("y", worse, expected, type(tol)(result.min_atol * 1.000001, tol.rtol)).passed
    nan = expected.copy()
    nan[0, 0] = np.nan
    assert not compare("y", nan, expected, tol).passed
    assert compare("y", expected[:1], expected, tol).error.startswith("shape")


def test_zero_tolerance_fails_and_says_what_would_pass(exported, cli):
    result = cli("verify", exported, "--no-keras", "--atol", "0", "--rtol", "0")
    assert result.exit_code == 1
    assert "needs atol >=" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--atol", "-1"], "--atol"),
    (["--samples", "0"], "--samples"),
])
def test_bad_options(exported, cli, args, message):
    result = cli("verify", exported, *args)
    assert result.exit_code == 2 and message in result.stderr


def test_missing_directory(tmp_path, cli):
    result = cli("verify", tmp_path / "nope")
    assert result.exit_code == 2 and "no such directory" in result.stderr




def test_device_mode_runs_without_tensorflow(exported):
    result = run_module("verify", exported, "--no-keras", prelude=BLOCK_TF)
    assert result.returncode == 0, result.stderr
    assert f"verdict: PASS (3 models x {len(LABELS) - 1} runtimes" in result.stdout
    assert "tensorflow imported: False" in result.stdout
    without = run_module("verify", exported, prelude=BLOCK_TF)
    assert without.returncode == 2
    assert "--no-keras" in without.stderr and "Traceback" not in without.stderr


def test_models_selects_what_verify_and_bench_run(exported, cli, tmp_path):
    result = cli("verify", exported, "--no-keras", "--models", "many-to-one", "--json",
                 tmp_path / "one.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "one.json").read_text())
    assert {r["model"] for r in report["results"]} == {"many-to-one"}
    timed = cli("bench", exported, "-m", "one-to-one", "-r", "litert,litert-micro", "--runs", "3",
                "--warmup", "0", "--batch", "2")
    assert timed.exit_code == 0, timed.output
    rows = [line.split()[0] for line in timed.stdout.splitlines() if " litert" in line]
    assert rows and set(rows) == {"one-to-one"}
    # Piped (as here, and in CI logs), a table gets the width it needs: nothing is cut.
    assert "…" not in timed.stdout + result.stdout
    assert "seq/s @2" in timed.stdout and "arena KiB" in timed.stdout
    for command in ("verify", "bench"):
        refused = cli(command, exported, "--no-keras" if command == "verify" else "-r", *(
            [] if command == "verify" else ["litert"]), "--models", "two-to-two")
        assert refused.exit_code == 2
        assert refused.stderr.strip() == ("edge-echo: error: no model two-to-two in this export; "
                                          "it has one-to-one, many-to-one, many-to-many")
