"""Issue 6: streaming step models carry the full model's weights and verify like it."""

import numpy as np
import onnx
import pytest
from conftest import read_manifest, rehash

from edge_echo import refdata
from edge_echo.runners import RUNNERS
from edge_echo.specs import MODEL_NAMES, get_spec


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_manifest_describes_the_state(exported, name):
    arts = read_manifest(exported)["models"][name]["artifacts"]
    spec = get_spec(name)
    for kind in ("tflite_step", "onnx_step"):
        step = arts[kind]["step"]
        assert [s["input"] for s in step["state"]] == ["h", "c"]
        assert all(s["shape"] == [None, spec.units] and s["initial"] == 0.0 for s in step["state"])
        assert step["sequence_output"] == ("every_step" if spec.return_sequences else "last_step")
        assert "zeros" in step["reset"]
        assert [d["shape"] for d in arts[kind]["inputs"]] == [[None, 1], [None, spec.units],
                                                             [None, spec.units]]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_step_onnx_is_a_native_lstm_with_explicit_state(exported, name):
    model = onnx.load(str(exported / f"{name}.step.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node].count("LSTM") == 1
    assert [i.name for i in model.graph.input] == ["x", "h", "c"]
    assert [o.name for o in model.graph.output] == ["y", "h_out", "c_out"]


@pytest.mark.parametrize("runtime", ["onnxruntime-step", "litert-step"])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_stepping_reproduces_the_full_model(exported, name, runtime):
    entry = read_manifest(exported)["models"][name]
    art = entry["artifacts"][RUNNERS[runtime].artifact]
    ref = refdata.load(exported / f"{name}.reference.npz")
    with RUNNERS[runtime](exported / art["file"], ["x"], ["y"], artifact=art) as runner:
        first = runner.infer({"x": ref["random_x"][:64]})["y"]
        again = runner.infer({"x": ref["random_x"][:64]})["y"]  # no state kept in the file
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, ref["random_y"][:64], atol=1e-5)


def test_perturbed_step_weight_fails_verify(export_copy, cli):
    path = export_copy / "many-to-many.step.onnx"
    model = onnx.load(str(path))
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    kernel = next(t for t in model.graph.initializer if t.name == lstm.input[1])  # W
    values = onnx.numpy_helper.to_array(kernel).copy()
    values.flat[0] += 0.5
    kernel.CopyFrom(onnx.numpy_helper.from_array(values, kernel.name))
    onnx.save(model, str(path))
    rehash(export_copy, path.name)
    result = cli("verify", export_copy, "--no-keras")
    assert result.exit_code == 1
    assert "FAIL many-to-many / onnxruntime-step" in result.stderr
    assert "many-to-many / onnxruntime:" not in result.stderr
