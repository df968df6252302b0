"""Issue 26: the conventions phone and gateway apps load files by: a serving_default signature
on every .tflite, and LiteRT's CompiledModel API (litert-compiled) verified like any runtime."""

import numpy as np
from conftest import read_manifest, rehash

from edge_echo.convert.tflite import SIGNATURE
from edge_echo.verify import verify


def _names(items: list[dict]) -> list[str]:
    return sorted(i["name"] for i in items)


def test_every_tflite_has_a_serving_default_signature_named_as_the_manifest(full_export):
    """Unrolled, step, quantized and micro files: the signature's names are the manifest's, and
    get_signature_runner() gives what the interpreter's tensors give."""
    from ai_edge_litert.interpreter import Interpreter

    out, _ = full_export
    seen = set()
    for model in read_manifest(out)["models"].values():
        for kind, art in model["artifacts"].items():
            if art["format"] != "tflite":
                continue
            seen.add(kind)
            it = Interpreter(model_path=str(out / art["file"]))
            signatures = it.get_signature_list()
            assert list(signatures) == [SIGNATURE], (art["file"], signatures)
            io = art.get("step") if kind == "tflite_step" else model
            assert sorted(signatures[SIGNATURE]["inputs"]) == _names(io["inputs"]), art["file"]
            assert sorted(signatures[SIGNATURE]["outputs"]) == _names(io["outputs"]), art["file"]
            runner = it.get_signature_runner(SIGNATURE)
            details = runner.get_input_details()
            rng = np.random.default_rng(3)
            feed = {n: rng.uniform(0, 1, [1, *d["shape"][1:]]).astype(d["dtype"])
                    for n, d in details.items()}
            got = runner(**feed)  # a fresh interpreter: a micro file's state starts at zero
            plain = Interpreter(model_path=str(out / art["file"]))
            plain.allocate_tensors()
            by_name = {d["name"]: d for d in plain.get_input_details()}
            for name, value in feed.items():
                index = next(d["index"] for n, d in by_name.items() if n.endswith(name) or
                             n == f"serving_default_{name}:0")
                plain.set_tensor(index, value)
            plain.invoke()
            for d in plain.get_output_details():
                np.testing.assert_array_equal(got[d["name"]], plain.get_tensor(d["index"]))
    assert {"tflite", "tflite_step", "tflite_micro", "tflite_micro_step", "tflite_int8",
            "tflite_float16", "tflite_micro_int8"} <= seen


def test_compiled_model_runs_every_stateless_tflite(full_export):
    out, _ = full_export
    report = verify(out, keras=False, latency_runs=0)
    ran = {r.runtime for r in report.results if r.runtime.startswith("litert-compiled")}
    assert {"litert-compiled", "litert-compiled-step", "litert-compiled:int8",
            "litert-compiled:float16"} <= ran
    assert report.passed, [line for r in report.results for line in r.failures()]


def test_a_file_without_the_signature_is_refused_in_one_line(export_copy, cli):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    path = export_copy / "many-to-one.tflite"
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(path.read_bytes(), 0))
    model.signatureDefs = []
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    rehash(export_copy, path.name)
    result = cli("verify", export_copy, "--no-keras", "--models", "many-to-one")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "many-to-one.tflite: no 'serving_default' signature" in lines[0], lines
