"""Issues 5 and 22: the same seed and versions give the same bytes, in parallel or not;
unchanged models are not retrained, and unchanged files are not converted again."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import (
    BLOCK_TF,
    FULL_OPTIONS,
    alive,
    read_manifest,
    rehash,
    run_module,
    tree_digest,
    worker_processes,
)

from edge_echo.export import export
from edge_echo.forms import Subject, reuse_key
from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES
from edge_echo.versions import SOURCE

# Weight reuse and retraining do not depend on which files are written: the fast ones.
FAST = ("tflite", "onnx")


def test_two_exports_are_byte_identical(full_export, tmp_path):
    """Every form, quantized variant and C array, trained again in a fresh directory, one model
    after another in this process (--jobs 1): the same bytes, manifest included, as the session
    export (one worker process per model) completed by a re-export that reused its files."""
    again = tmp_path / "again"
    result = export(again, list(MODEL_NAMES), seed=DEFAULT_SEED, jobs=1, **FULL_OPTIONS)
    assert not any(m.reused or m.reused_files for m in result.models)  # nothing to reuse here
    assert tree_digest(again) == tree_digest(full_export[0])


def test_a_re_export_reuses_the_files_made_from_the_same_inputs(exported, full_export):
    """full_export is the session export exported again with the variants and C files added:
    every default form is taken from it, and only what it lacked is made."""
    doc = read_manifest(exported)
    _, result = full_export
    for m in result.models:
        before = {a["file"] for k, a in doc["models"][m.spec.name]["artifacts"].items()
                  if k not in ("keras", "reference")}
        assert set(m.reused_files) == before, m.spec.name
        made = {a["file"] for a in m.entry["artifacts"].values()} - before
        assert {f"{m.spec.name}.int8.tflite", f"{m.spec.name}.c"} <= made
        assert not made & set(m.reused_files)


def test_an_altered_file_is_converted_again(export_copy):
    """A file that no longer matches its sha256 is not reused: converted again, to the bytes
    it had."""
    before = tree_digest(export_copy)
    path = export_copy / "many-to-one.onnx"
    path.write_bytes(path.read_bytes()[:-10])
    result = export(export_copy, ["many-to-one"], seed=DEFAULT_SEED)
    assert "many-to-one.onnx" not in result.models[0].reused_files
    assert "many-to-one.tflite" in result.models[0].reused_files
    assert tree_digest(export_copy)["many-to-one.onnx"] == before["many-to-one.onnx"]


def test_a_reused_file_is_probed_again(export_copy):
    """A reused file runs in a child first, like a new one: one that no longer loads (its
    manifest entry rehashed, so only the probe can tell) is dropped and named, not shipped."""
    path = export_copy / "many-to-one.step.onnx"
    path.write_bytes(b"not an onnx model at all")
    rehash(export_copy, path.name)
    result = export(export_copy, ["many-to-one"], seed=DEFAULT_SEED)
    assert any(line.startswith("many-to-one: many-to-one.step.onnx not written")
               for line in result.missing), result.missing
    assert "many-to-one.step.onnx" not in result.models[0].reused_files
    assert not path.exists()


def test_the_reuse_key_covers_the_form_the_subject_and_every_tool():
    subject = Subject("m", None, None, None, None, basis={"keras_sha256": "a", "seed": 1})
    tools = {"python": "3.11.7", "tensorflow": "2.21.0", SOURCE: "abc"}
    key = reuse_key(subject, "tflite", tools)
    assert key == reuse_key(subject, "tflite", {**tools, "python": "3.13.0"})  # same bytes
    assert key != reuse_key(subject, "onnx", tools)
    assert key != reuse_key(subject, "tflite", {**tools, SOURCE: "abd"})  # edge-echo's code
    assert key != reuse_key(subject, "tflite", {**tools, "tensorflow": "2.22.0"})
    other = Subject("m", None, None, None, None, basis={"keras_sha256": "b", "seed": 1})
    assert key != reuse_key(other, "tflite", tools)
    assert reuse_key(Subject("m", None, None, None, None), "tflite", tools) is None


def test_a_worker_killed_mid_export_is_one_line_and_changes_nothing(export_copy):
    before = tree_digest(export_copy)
    process = subprocess.Popen([sys.executable, "-m", "edge_echo", "export", "--out",
                                str(export_copy), "--retrain", "--quiet", "--forms", "tflite,onnx",
                                "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    while not (workers := worker_processes(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers, "no worker process started"
    time.sleep(1.0)  # inside the worker's imports or training
    workers = worker_processes(process.pid)  # both, by now
    os.kill(workers[0], signal.SIGKILL)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "worker process exporting it was killed by SIGKILL" in lines[0], lines
    assert tree_digest(export_copy) == before
    # The other worker is gone with the export, not left converting for nobody.
    assert not [pid for pid in workers if alive(pid)]
    assert not list(export_copy.parent.glob(".*.partial-*"))


def test_unchanged_models_reuse_their_weights(exported, full_export):
    """full_export is the session export exported again into a copy of itself."""
    out, result = full_export
    assert [m.reused for m in result.models] == [True] * len(MODEL_NAMES)
    assert all(m.train_seconds == 0.0 for m in result.models)
    again = tree_digest(out)
    # The directory's own files describe all its files, so more files change them.
    assert {k: v for k, v in tree_digest(exported).items()
            if k not in ("manifest.json", "README.md", "required_operators.config")}.items() \
        <= again.items()


def test_retrain_and_changed_specs_train_again(export_copy):
    before = tree_digest(export_copy)
    forced = export(export_copy, ["many-to-one"], seed=DEFAULT_SEED, retrain=True, forms=FAST)
    assert not forced.models[0].reused
    assert tree_digest(export_copy)["many-to-one.onnx"] == before["many-to-one.onnx"]
    changed = export(export_copy, ["many-to-one"], seed=DEFAULT_SEED, epochs=7, forms=FAST)
    assert not changed.models[0].reused
    assert read_manifest(export_copy)["models"]["many-to-one"]["spec"]["epochs"] == 7


def test_altered_weights_are_not_reused(export_copy):
    keras_file = export_copy / "many-to-one.keras"
    data = bytearray(keras_file.read_bytes())
    data[-100] ^= 0xFF
    keras_file.write_bytes(bytes(data))
    result = export(export_copy, ["many-to-one"], seed=DEFAULT_SEED, forms=FAST)
    assert not result.models[0].reused


def test_cli_says_which_models_were_reused(export_copy, cli):
    result = cli("export", "--out", export_copy, "--models", "one-to-one", "--forms", "onnx")
    assert result.exit_code == 0
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("one-to-one"))
    assert "reused" in row


@pytest.mark.parametrize("command", [[], ["export"], ["verify"], ["bench"]])
def test_help_imports_no_tensorflow(command):
    result = run_module(*command, "--help", prelude=BLOCK_TF)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert "tensorflow imported: False" in result.stdout


def test_help_does_not_even_load_tensorflow_modules():
    """Nor numpy or a runtime: --help and --version start in a fraction of a second (issue 22,
    benchmarks/bench_export.py measures it)."""
    code = ("import sys\nfrom edge_echo.cli import app\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'tf2onnx', 'onnx', 'matplotlib', 'numpy', 'onnxruntime', "
            "'ai_edge_litert', 'tflite_micro')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["export", "convert", "verify", "bench", "predict", "stream",
                                     "table"])
def test_help_shows_conventional_metavars(cli, command, monkeypatch):
    """MODELS, N, FILE rather than Python types, and nothing on flags (issue 13)."""
    monkeypatch.setenv("COLUMNS", "160")
    result = cli(command, "--help")
    assert result.exit_code == 0
    options = [line for line in result.stdout.splitlines()
               if line.lstrip("│ ").startswith("--") or re.match(r"│ +[A-Z]+ ", line)]
    assert any("--help" in line for line in options) and len(options) > 1
    assert "{" not in next(line for line in result.stdout.splitlines() if "Usage:" in line)
    # <bool>, <int>, <list[str]>, <path>, ... (a range such as [0<=x<=12] is fine).
    assert not [line for line in options if re.search(r"<[a-z]", line)], options
