"""Issue 7: quantized variants, each with its own precision-derived tolerance."""

import json

import numpy as np
import onnx
import pytest
from ai_edge_litert import schema_py_generated as schema
from conftest import read_manifest

from edge_echo.bench import bench
from edge_echo.convert.quantize import STEPS, parse, tolerance
from edge_echo.errors import UsageError
from edge_echo.specs import MODEL_NAMES

WRITTEN = [("tflite", "float16"), ("tflite", "int8"), ("onnx", "dynamic"), ("onnx", "float16"),
           ("onnx", "int8")]


@pytest.fixture
def quantized(full_export):
    return full_export


def test_variants_written_and_the_impossible_one_reported(quantized):
    out, result = quantized
    assert len(result.missing) == len(MODEL_NAMES)
    assert all("tflite dynamic not produced" in line and "1024" in line for line in result.missing)
    doc = read_manifest(out)
    for name in MODEL_NAMES:
        arts = doc["models"][name]["artifacts"]
        for fmt, variant in WRITTEN:
            art = arts[f"{fmt}_{variant}"]
            assert art["file"] == f"{name}.{variant}.{fmt}" and (out / art["file"]).is_file()
            assert art["variant"] == variant and art["quantization"]["method"]
            label = {"tflite": "litert", "onnx": "onnxruntime"}[fmt] + f":{variant}"
            assert doc["models"][name]["tolerances"][label]["atol"] > 1e-5
        assert "tflite_dynamic" not in arts


def test_every_variant_verifies(quantized, cli, tmp_path):
    out, _ = quantized
    result = cli("verify", out, "--no-keras", "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    labels = {r["runtime"] for r in report["results"]}
    assert {"litert:int8", "litert:float16", "onnxruntime:int8", "onnxruntime:dynamic",
            "onnxruntime:float16"} <= labels
    assert all(r["echo"]["passed"] for r in report["results"])


def test_float32_tolerance_fails_the_int8_variants(quantized, cli, tmp_path):
    out, _ = quantized
    result = cli("verify", out, "--no-keras", "--atol", "1e-5", "--rtol", "1e-4",
                 "--json", tmp_path / "r.json")
    assert result.exit_code == 1
    report = json.loads((tmp_path / "r.json").read_text())
    for r in report["results"]:
        if ":" not in r["runtime"]:
            assert r["passed"], r["runtime"]  # the float files still pass at float tolerance
        if r["runtime"].endswith(":int8") or r["runtime"].endswith(":dynamic"):
            assert not r["passed"], r["runtime"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_int8_tflite_tensors_really_are_int8(quantized, name):
    out, _ = quantized
    data = (out / f"{name}.int8.tflite").read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    fc = [i for i in range(model.OperatorCodesLength())
          if max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
          == schema.BuiltinOperator.FULLY_CONNECTED]
    checked = 0
    for o in range(sub.OperatorsLength()):
        op = sub.Operators(o)
        if op.OpcodeIndex() in fc:
            assert sub.Tensors(op.Inputs(0)).Type() == schema.TensorType.INT8   # activations
            assert sub.Tensors(op.Inputs(1)).Type() == schema.TensorType.INT8   # weights
            assert sub.Tensors(op.Outputs(0)).Type() == schema.TensorType.INT8
            checked += 1
    assert checked >= 1
    io = [sub.Tensors(i).Type() for i in [*sub.InputsAsNumpy(), *sub.OutputsAsNumpy()]]
    assert io == [schema.TensorType.FLOAT32] * 2  # the stated float interface


def test_onnx_dynamic_uses_the_quantized_lstm(quantized):
    out, _ = quantized
    ops = {n.op_type for n in onnx.load(str(out / "many-to-one.dynamic.onnx")).graph.node}
    assert "DynamicQuantizeLSTM" in ops and "LSTM" not in ops


def test_tolerance_follows_precision():
    y = np.array([0.0, 0.51, 1.02])
    assert tolerance("int8", y)["atol"] == pytest.approx(STEPS * 1.02 / 255)
    assert tolerance("float16", y)["atol"] == pytest.approx(STEPS * 2.0 ** -11 * 1.02)
    assert tolerance("float16", y)["atol"] < tolerance("int8", y)["atol"]


def test_parse_quantize():
    # int8 includes the integer C (written where the C source is asked for); only int8 does.
    assert parse(["int8"]) == [("tflite", "int8"), ("onnx", "int8"), ("c", "int8")]
    assert parse(["onnx:dynamic,float16"]) == [("onnx", "dynamic"), ("tflite", "float16"),
                                               ("onnx", "float16")]
    assert parse(["c:int8"]) == [("c", "int8")]
    with pytest.raises(UsageError, match="the c format has int8 alone"):
        parse(["c:dynamic"])
    with pytest.raises(UsageError, match="--quantize 'int4'"):
        parse(["int4"])
    with pytest.raises(UsageError):
        parse(["coreml:int8"])


def test_cli_reports_a_missing_variant_and_exits_3(export_copy, cli):
    result = cli("export", "--out", export_copy, "--models", "one-to-one", "--quantize",
                 "tflite:dynamic", "--quiet")
    assert result.exit_code == 3
    assert result.stderr.count("not produced") == 1
    assert list(read_manifest(export_copy)["models"]) == ["one-to-one"]


def test_table_generator(quantized, cli, tmp_path):
    out, _ = quantized
    result = cli("table", out)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("| many-to-one |")]
    # float32 full and step in two formats, the TFLite ones on both LiteRT APIs (Interpreter and
    # CompiledModel), the variants (TFLite ones on both APIs too), the micro forms (float32,
    # int8, step) on TFLM and LiteRT, then the C source whole and step by step. Host runtimes
    # only: the emulated Cortex-M cores are not timed and have their own per-core table. The
    # ONNX files (full, step, variants) once more as .ort.
    tflite_variants = sum(fmt == "tflite" for fmt, _ in WRITTEN)
    onnx_variants = sum(fmt == "onnx" for fmt, _ in WRITTEN)
    assert len(rows) == 6 + len(WRITTEN) + tflite_variants + 6 + 2 + 2 + onnx_variants
    assert any("| onnxruntime-ort | ort | full | float32 |" in row for row in rows)
    assert any("| onnxruntime-ort | ort | full | int8 |" in row for row in rows)
    assert not any("@cortex" in row for row in rows)
    assert any("| litert-compiled | tflite | full | int8 |" in row for row in rows)
    assert any("| c-step | c | step | float32 |" in row for row in rows)
    assert any("| c | c | full | float32 |" in row for row in rows)
    assert any("| litert | tflite | full | int8 |" in row for row in rows)
    assert any("| tflm-step | tflite | micro step | float32 |" in row for row in rows)
    assert any("| tflm | tflite | micro | int8 |" in row for row in rows)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- variant-table:start -->\nold\n<!-- variant-table:end -->\ntail\n")
    assert cli("table", out, "--readme", readme).exit_code == 0
    text = readme.read_text()
    assert "old" not in text and "| one-to-one | onnxruntime | onnx | full | dynamic |" in text
    assert text.endswith("tail\n")


def test_bench_covers_every_variant(quantized):
    out, _ = quantized
    report = bench(out, runtimes=("onnxruntime", "litert"), runs=5, warmup=1, batch=2)
    labels = {r.runtime for r in report.rows}
    assert {"litert:int8", "litert:float16", "onnxruntime:int8", "onnxruntime:dynamic",
            "onnxruntime:float16"} <= labels
