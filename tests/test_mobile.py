"""Issue 26: the conventions phone and gateway apps load files by: a serving_default signature
on every .tflite, and LiteRT's CompiledModel API (litert-compiled) verified like any runtime."""

import re

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
            io = art.get("step") if kind in ("tflite_step", "tflite_web_step") else model
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


# ONNX Runtime Mobile: the .ort files.

def _ort_session(path, direct: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.load_model_format", "ORT")
    if direct:  # initializers read in place from the file's bytes: the alignment matters
        options.add_session_config_entry("session.use_ort_model_bytes_directly", "1")
        options.add_session_config_entry("session.use_ort_model_bytes_for_initializers", "1")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def test_every_onnx_form_has_an_ort_file_that_verify_runs(full_export):
    out, _ = full_export
    doc = read_manifest(out)
    kinds = set()
    for model in doc["models"].values():
        arts = model["artifacts"]
        onnx = {k: a for k, a in arts.items() if a["format"] == "onnx"}
        ort = {k: a for k, a in arts.items() if a["format"] == "ort"}
        assert sorted(a["of"] for a in ort.values()) == sorted(a["file"] for a in onnx.values())
        for kind, art in ort.items():
            kinds.add(kind)
            source = arts["onnx" + kind[len("ort"):]]
            assert art["file"] == source["file"].replace(".onnx", ".ort")
            assert art["inputs"] == source["inputs"] and art["outputs"] == source["outputs"]
            assert art.get("step") == source.get("step") and art.get("variant") == source.get("variant")
            assert art["ort"]["optimization"]["level"] == "all"
            session = _ort_session(out / art["file"])
            assert [i.name for i in session.get_inputs()] == [i["name"] for i in art["inputs"]]
    assert kinds == {"ort", "ort_step", "ort_int8", "ort_float16", "ort_dynamic"}
    report = verify(out, keras=False, latency_runs=0)
    ran = {r.runtime for r in report.results if r.runtime.startswith("onnxruntime-ort")}
    assert ran == {"onnxruntime-ort", "onnxruntime-ort-step", "onnxruntime-ort:int8",
                   "onnxruntime-ort:float16", "onnxruntime-ort:dynamic"}
    assert report.passed, [line for r in report.results for line in r.failures()]


def test_ort_bytes_are_one_canonical_layout_of_what_onnx_runtime_wrote(exported, tmp_path):
    """ONNX Runtime's own .ort bytes follow heap addresses; the canonical rewrite has the same
    content (every field compared), runs the same, also from the file's bytes in place, and is
    a fixed point. A flipped weight byte is a content difference."""
    import subprocess
    import sys

    from edge_echo import ortformat

    source = exported / "many-to-many.onnx"
    raws = []
    for k in range(3):  # separate processes, as separate exports are
        target = tmp_path / f"raw{k}.ort"
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                        "from edge_echo.convert.ort import to_ort; "
                        "Path(sys.argv[2]).write_bytes(to_ort(Path(sys.argv[1]), canonical=False))",
                        str(source), str(target)], check=True)
        raws.append(target.read_bytes())
    canon = [ortformat.canonical(raw) for raw in raws]
    assert canon[0] == canon[1] == canon[2] == ortformat.canonical(canon[0])
    assert canon[0] == (exported / "many-to-many.ort").read_bytes()
    for raw in raws:
        assert ortformat.content(raw) == ortformat.content(canon[0])
    (tmp_path / "canon.ort").write_bytes(canon[0])
    x = np.random.default_rng(5).uniform(0, 1, (4, 5, 1)).astype(np.float32)
    want = _ort_session(tmp_path / "raw0.ort").run(None, {"x": x})[0]
    for direct in (False, True):
        got = _ort_session(tmp_path / "canon.ort", direct).run(None, {"x": x})[0]
        np.testing.assert_array_equal(got, want)
    # The comparison can fail: one byte of one initializer's raw data changed.
    doc = ortformat.content(canon[0])
    weights = doc["Model"]["Graph"]["Initializers"][0]["RawData"]
    at = canon[0].find(weights)
    flipped = bytearray(canon[0])
    flipped[at] ^= 0x01
    assert at > 0 and ortformat.content(bytes(flipped)) != doc


def test_not_an_ort_file_is_one_line(tmp_path):
    import pytest

    from edge_echo import ortformat

    for data in (b"", b"\x00" * 16, b"\x10\x00\x00\x00ORTM" + b"\xff" * 8):
        with pytest.raises(ortformat.FormatError) as info:
            ortformat.canonical(data)
        assert "\n" not in str(info.value)


def test_required_operators_config_covers_every_ort_file(full_export):
    out, _ = full_export
    doc = read_manifest(out)
    entry = doc["files"]["ort_required_operators"]
    config = (out / entry["file"]).read_text()
    ort_files = sorted(a["file"] for m in doc["models"].values() for a in m["artifacts"].values()
                       if a["format"] == "ort")
    assert entry["of"] == ort_files and all(f"# - {f}\n" in config for f in ort_files)
    listed = set()
    for line in config.splitlines():
        if line and not line.startswith("#"):
            domain, opset, ops = line.split(";", 2)
            # op{"inputs": {...}} entries: the op name is what precedes its type information
            for op in re.findall(r"(?:^|,)(\w+)(?=\{|,|$)", ops):
                listed.add(op if domain == "ai.onnx" else f"{domain}:{op}")
    used = {op for m in doc["models"].values() for a in m["artifacts"].values()
            if a["format"] == "ort" for op in a["operators"]}
    assert used == listed
    assert '"inputs": {"0": ["float"]}' in config  # with the types, for a reduced type build


def test_mobile_usability_is_the_tools_verdict(full_export):
    """Per .ort file, the manifest's summary agrees with the check's own answer (any execution
    provider worth trying), and names the operators NNAPI would not take."""
    from onnxruntime.tools.mobile_helpers.usability_checker import analyze_model

    out, _ = full_export
    arts = read_manifest(out)["models"]["many-to-one"]["artifacts"]
    for kind in ("ort", "ort_step"):
        usable = arts[kind]["mobile_usability"]
        verdicts = [usable[ep]["with_fixed_shapes"] for ep in
                    ("nnapi", "coreml_neuralnetwork", "coreml_mlprogram")]
        assert set(verdicts) <= {"YES", "MAYBE", "NO"}
        assert analyze_model(out / arts[kind]["of"]) == any(v != "NO" for v in verdicts)
        assert usable["dynamic_inputs"] == sorted(i["name"] for i in arts[kind]["inputs"])
    assert "ai.onnx:LSTM" in arts["ort"]["mobile_usability"]["nnapi"]["unsupported_operators"]


def test_a_wrong_ort_file_fails_verify_and_predict_reads_one(export_copy, cli):
    """An .ort made from other weights fails onnxruntime-ort only; predict runs an .ort."""
    import onnx
    from onnx import numpy_helper

    from edge_echo.convert.ort import to_ort

    result = cli("predict", export_copy / "many-to-one.ort", "0", "0.2", "0.4", "0.6", "0.8",
                 "--decimals", "1")
    assert result.exit_code == 0 and result.stdout.split() == ["0.0", "0.2", "0.4", "0.6", "0.8"]
    model = onnx.load(str(export_copy / "many-to-one.onnx"))
    first = model.graph.initializer[0]
    first.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(first) * 1.05, first.name))
    other = export_copy.parent / "other.onnx"
    onnx.save(model, str(other))
    (export_copy / "many-to-one.ort").write_bytes(to_ort(other))
    rehash(export_copy, "many-to-one.ort")
    report = verify(export_copy, keras=False, latency_runs=0, models=["many-to-one"])
    failed = {r.runtime for r in report.results if not r.passed}
    assert failed == {"onnxruntime-ort"}, failed


def test_the_operator_config_is_checked_like_every_file(export_copy, cli):
    """required_operators.config is hashed in the manifest's files: altered, verify refuses the
    directory in one line; a malformed entry is one line too."""
    import json

    config = export_copy / "required_operators.config"
    config.write_text(config.read_text().replace("LSTM", "GRU"))
    result = cli("verify", export_copy, "--no-keras")
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "required_operators.config: sha256 does not match" in lines[0], lines
    doc = json.loads((export_copy / "manifest.json").read_text())
    doc["files"]["ort_required_operators"]["sha256"] = "00"
    (export_copy / "manifest.json").write_text(json.dumps(doc))
    result = cli("verify", export_copy, "--no-keras")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1
    assert "files/ort_required_operators/sha256: expected a sha256 hex digest" in lines[0], lines


def test_a_conversion_that_kills_its_process_costs_that_file_only(exported, tmp_path, monkeypatch):
    """ONNX Runtime's optimizer is native code: the .ort conversions run in a child, and one
    that dies (here by SIGSEGV, sent to itself before converting many-to-one) is one line for
    its file while the next file is still converted, by a new child."""
    from edge_echo.convert import ort

    dies = ort._CHILD.replace(
        "Path(target).write_bytes(to_ort(Path(source)))",
        "import os, signal\n        if 'many-to-one' in source: os.kill(os.getpid(), signal.SIGSEGV)"
        "\n        Path(target).write_bytes(to_ort(Path(source)))")
    assert dies != ort._CHILD
    monkeypatch.setattr(ort, "_CHILD", dies)
    first, second = tmp_path / "a.ort", tmp_path / "b.ort"
    found = ort._convert_in_child([(exported / "many-to-one.onnx", first),
                                   (exported / "one-to-one.onnx", second)])
    assert found[first] == (False, "the runtime crashed (SIGSEGV) converting it")
    assert found[second][0] and second.read_bytes() == (exported / "one-to-one.ort").read_bytes()
