"""Issue 23, rule 3: int8 judged as a user judges a classifier.

A softmax or sigmoid output gets its int8 tolerance on the probability scale (8 steps of 1/255),
and verify reports how often each runtime picks Keras's class on the reference inputs (pass at
99%). Other outputs keep the rule of the reference's range.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import read_manifest

from edge_echo.compare import top1
from edge_echo.usermodel import convert
from edge_echo.verify import verify


def test_top1_counts_picks_and_forgives_only_near_ties():
    keras = np.array([[0.7, 0.2, 0.1], [0.40, 0.39, 0.21], [0.1, 0.1, 0.8]])
    same = top1("y", keras + 0.001, keras, "softmax", atol=0.02)
    assert same["agreement"] == 1.0 and same["passed"]
    # Row 1's classes are 0.01 apart in Keras: a swap there is within the tolerance.
    near = keras.copy()
    near[1] = [0.39, 0.40, 0.21]
    assert top1("y", near, keras, "softmax", atol=0.02)["disagreements"] == 0
    assert top1("y", near, keras, "softmax", atol=0.001)["disagreements"] == 1
    # A clear wrong pick is counted, and fails the 99% rule.
    wrong = keras.copy()
    wrong[0] = [0.1, 0.2, 0.7]
    result = top1("y", wrong, keras, "softmax", atol=0.02)
    assert result["disagreements"] == 1 and not result["passed"]
    # sigmoid: each probability against 0.5.
    s = np.array([0.9, 0.2, 0.51, 0.3])
    assert top1("p", np.array([0.8, 0.3, 0.49, 0.3]), s, "sigmoid", atol=0.02)["agreement"] == 1.0
    assert top1("p", np.array([0.4, 0.3, 0.49, 0.3]), s, "sigmoid", atol=0.02)["agreement"] == 0.75


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    L = keras.layers
    root = tmp_path_factory.mktemp("classifiers")
    keras.utils.set_random_seed(11)
    # chargen at a smaller size: an untrained softmax over 20 classes sits near 1/20.
    i = keras.Input((10, 20))
    keras.Model(i, L.Dense(20, activation="softmax")(L.LSTM(24)(i))).save(root / "chargen.keras")
    i = keras.Input((8, 3))
    keras.Model(i, L.Dense(1, activation="sigmoid")(L.GRU(8)(i))).save(root / "alarm.keras")
    i = keras.Input((8, 3))
    keras.Model(i, L.Dense(2)(L.LSTM(8)(i))).save(root / "regressor.keras")
    out = {}
    for name in ("chargen", "alarm", "regressor"):
        convert(root / f"{name}.keras", root / name, quantize=[("tflite", "int8"),
                                                               ("onnx", "int8")])
        out[name] = root / name
    return out


def test_probability_outputs_get_the_probability_scale(classifiers):
    chargen = read_manifest(classifiers["chargen"])["models"]["chargen"]
    assert chargen["outputs"][0]["probability"] == "softmax"
    arts = chargen["artifacts"]
    # The int8 micro file is written now (it was declined under the range rule).
    assert "tflite_micro_int8" in arts, chargen.get("not_written")
    for kind in ("tflite_int8", "onnx_int8", "tflite_micro_int8"):
        assert "probability scale" in arts[kind]["quantization"]["tolerance_rule"]
    assert chargen["tolerances"]["litert:int8"]["atol"] == pytest.approx(8 / 255)
    alarm = read_manifest(classifiers["alarm"])["models"]["alarm"]
    assert alarm["outputs"][0]["probability"] == "sigmoid"
    # Other outputs keep the reference-range rule.
    regressor = read_manifest(classifiers["regressor"])["models"]["regressor"]
    assert "probability" not in regressor["outputs"][0]
    assert "output range" in regressor["artifacts"]["tflite_int8"]["quantization"]["tolerance_rule"]


def test_verify_reports_top1_for_probability_outputs(classifiers):
    for name, kind in (("chargen", "softmax"), ("alarm", "sigmoid")):
        report = verify(classifiers[name], keras=False, latency_runs=0)
        assert report.passed, [line for r in report.results for line in r.failures()]
        for r in report.results:
            (t,) = r.top1
            assert t["kind"] == kind and t["decisions"] > 0 and t["agreement"] >= 0.99
            assert r.to_dict()["top1"] == [t]
        ran = {r.runtime for r in report.results}
        assert {"litert:int8", "onnxruntime:int8"} <= ran, ran
        if name == "chargen":  # micro forms are for LSTM chains
            assert "tflm:int8" in ran
    regressor = verify(classifiers["regressor"], keras=False, latency_runs=0)
    assert all(r.top1 == [] for r in regressor.results)


def test_a_runtime_that_picks_other_classes_fails_top1(classifiers, tmp_path):
    """The rule can fail: in a copy whose stored Keras answer puts each row's second class
    on top, every runtime picks another class than Keras, and verify says so."""
    import shutil

    from conftest import rehash

    from edge_echo import refdata

    directory = tmp_path / "chargen"
    shutil.copytree(classifiers["chargen"], directory)
    path = directory / "chargen.reference.npz"
    arrays = dict(np.load(path))
    key = next(k for k in arrays if k.startswith(refdata.RANDOM_Y))
    y = arrays[key]
    # Make Keras's stored answer put the runtime's second choice on top by a clear margin.
    order = np.argsort(y, axis=1)
    rows = np.arange(len(y))
    y = y.copy()
    y[rows, order[:, -2]] = y[rows, order[:, -1]] + 0.01
    arrays[key] = y
    np.savez(path, **arrays)
    rehash(directory, path.name)
    report = verify(directory, keras=False, latency_runs=0)
    onnx = next(r for r in report.results if r.runtime == "onnxruntime")
    assert not onnx.passed
    assert onnx.top1[0]["agreement"] < 0.99
    assert any("picks Keras's class" in line for line in onnx.failures())
