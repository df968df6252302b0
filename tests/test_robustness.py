"""Issue 8: bad input never crashes edge-echo or touches the user's files.

Every case answers with one line on stderr naming the problem, exit code 2
(or 1 where a verification fails), no traceback, and the files as they were.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import read_manifest, rehash, tree_digest

from edge_echo import manifest

CLI = [sys.executable, "-m", "edge_echo"]
ECHO = ["0.0", "0.2", "0.4", "0.6", "0.8"]


def _edit_manifest(d: Path, change) -> None:
    doc = read_manifest(d)
    change(doc)
    (d / "manifest.json").write_text(json.dumps(doc))


def _replace_and_rehash(d: Path, name: str, data: bytes) -> None:
    (d / name).write_bytes(data)
    rehash(d, name)


def _lambda_keras(d: Path) -> None:
    from edge_echo.tfenv import import_tensorflow

    import_tensorflow()
    import keras

    inputs = keras.Input((5, 1), name="x")
    outputs = keras.layers.Lambda(lambda t: t[:, :, 0] * 2.0)(inputs)
    keras.Model(inputs, outputs).save(d / "many-to-one.keras")
    rehash(d, "many-to-one.keras")


# (id, setup(d) -> target path or None for d itself, extra args, exit code, message)
VERIFY_CASES = [
    ("dir-missing", lambda d: d / "nope", [], 2, "no such directory"),
    ("dir-empty", lambda d: (d / "empty").mkdir() or d / "empty", [], 2, "manifest.json: missing"),
    ("dir-is-a-file", lambda d: d / "manifest.json", [], 2, "not a directory"),
    ("manifest-missing", lambda d: (d / "manifest.json").unlink(), [], 2, "manifest.json: missing"),
    ("manifest-not-json", lambda d: (d / "manifest.json").write_text("{nope"), [], 2,
     "not valid JSON"),
    ("manifest-not-object", lambda d: (d / "manifest.json").write_text("[1, 2]"), [], 2,
     "expected a JSON object"),
    ("manifest-unknown-schema", lambda d: _edit_manifest(d, lambda m: m.update(schema_version=99)),
     [], 2, "schema_version 99 is not supported"),
    ("manifest-missing-field", lambda d: _edit_manifest(
        d, lambda m: m["models"]["many-to-one"].pop("inputs")), [], 2,
     "models/many-to-one/inputs: expected a value (missing)"),
    ("manifest-bad-shape", lambda d: _edit_manifest(
        d, lambda m: m["models"]["one-to-one"]["inputs"][0].update(shape="5")), [], 2,
     "models/one-to-one/inputs/0/shape"),
    ("manifest-negative-tolerance", lambda d: _edit_manifest(
        d, lambda m: m["models"]["one-to-one"]["tolerances"]["litert"].update(atol=-1)), [], 2,
     "tolerances/litert/atol: expected a number >= 0"),
    ("manifest-path-escapes", lambda d: _edit_manifest(
        d, lambda m: m["models"]["one-to-one"]["artifacts"]["onnx"].update(file="../x.onnx")),
     [], 2, "outside the export directory"),
    ("manifest-absolute-path", lambda d: _edit_manifest(
        d, lambda m: m["models"]["one-to-one"]["artifacts"]["onnx"].update(file="/etc/passwd")),
     [], 2, "outside the export directory"),
    ("artifact-missing", lambda d: (d / "many-to-one.onnx").unlink(), [], 2,
     "many-to-one.onnx: listed in the manifest but missing"),
    ("hash-mismatch", lambda d: (d / "one-to-one.onnx").write_bytes(
        (d / "one-to-one.onnx").read_bytes() + b"\0"), [], 2, "sha256 does not match"),
    ("artifact-empty", lambda d: _replace_and_rehash(d, "many-to-one.tflite", b""), [], 2,
     "many-to-one.tflite"),
    ("artifact-truncated", lambda d: _replace_and_rehash(
        d, "many-to-one.onnx", (d / "many-to-one.onnx").read_bytes()[:700]), [], 2,
     "many-to-one.onnx"),
    ("artifact-random-bytes", lambda d: _replace_and_rehash(
        d, "many-to-many.tflite", random.Random(1).randbytes(5000)), [], 2, "many-to-many.tflite"),
    ("artifact-wrong-format", lambda d: _replace_and_rehash(
        d, "one-to-one.tflite", (d / "one-to-one.onnx").read_bytes()), [], 2, "one-to-one.tflite"),
    ("reference-corrupt", lambda d: _replace_and_rehash(
        d, "one-to-one.reference.npz", b"PK\x03\x04 not really"), [], 2,
     "unreadable reference data"),
    ("keras-lambda-layer", _lambda_keras, ["--keras"], 2, "Lambda"),
    ("bad-atol", lambda d: None, ["--atol", "-1"], 2, "--atol must be a finite number >= 0"),
    ("bad-samples", lambda d: None, ["--samples", "0"], 2, "--samples must be between"),
    ("samples-not-a-number", lambda d: None, ["--samples", "many"], 2, "'--samples'"),
    ("unknown-option", lambda d: None, ["--fast"], 2, "No such option: --fast"),
    ("json-unwritable", lambda d: None, ["--json", "/proc/edge-echo-report.json"], 2,
     "cannot write the report"),
]


@pytest.mark.parametrize("case", VERIFY_CASES, ids=[c[0] for c in VERIFY_CASES])
def test_verify_catalogue(export_copy, cli, case):
    def verify_args(target, args):
        keras = args[:1] == ["--keras"]
        return ["verify", target, *([] if keras else ["--no-keras"]), *args[1 if keras else 0:]]

    _directory_case(export_copy, cli, case, verify_args)


def _directory_case(directory: Path, cli, case, command) -> None:
    """Set the case up in the directory, run command(target, args); one clear line, no file
    of the directory touched."""
    _, setup, args, code, message = case
    made = setup(directory)
    target = made if isinstance(made, Path) else directory
    before = tree_digest(directory) if directory.is_dir() else None
    _one_clear_line(cli(*command(target, args)), code, message)
    if before is not None:
        assert tree_digest(directory) == before


# report takes the manifest cases of verify (no page without a readable manifest), and its own.
REPORT_CASES = [c for c in VERIFY_CASES if c[0].startswith(("dir-", "manifest-"))] + [
    ("out-unwritable", lambda d: None, ["-o", "/proc/edge-echo-report.html"], 2,
     "cannot write the report"),
    ("out-is-a-directory", lambda d: (d / "page").mkdir(), ["-o", "{d}/page"], 2,
     "cannot write the report"),
    ("unknown-option", lambda d: None, ["--fast"], 2, "No such option: --fast"),
]


@pytest.mark.parametrize("case", REPORT_CASES, ids=[c[0] for c in REPORT_CASES])
def test_report_catalogue(export_copy, cli, case):
    _directory_case(export_copy, cli, case, lambda target, args: [
        "report", target, *(a.replace("{d}", str(export_copy)) for a in args)])


EXPORT_CASES = [
    ("length-zero", ["--length", "0"], "--length must be between 1 and 128"),
    ("length-huge", ["--length", "100000"], "--length must be between 1 and 128"),
    ("epochs-negative", ["--epochs", "-3"], "--epochs must be between"),
    ("epochs-not-a-number", ["--epochs", "lots"], "'--epochs'"),
    ("seed-negative", ["--seed", "-1"], "'--seed'"),
    ("unknown-model", ["--models", "two-to-two"], "unknown model two-to-two"),
    ("unknown-variant", ["--quantize", "int4"], "--quantize 'int4'"),
    ("unknown-form", ["--forms", "tflite,tflite_nano"], "unknown form tflite_nano; choose from"),
    ("empty-forms", ["--forms", ","], "--forms is empty"),
    ("jobs-zero", ["--jobs", "0"], "'--jobs'"),
    ("out-under-a-file", None, "cannot write the export here"),
    ("out-unwritable", ["--out", "/proc/edge-echo-out"], "cannot write the export here"),
]


@pytest.mark.parametrize("case", EXPORT_CASES, ids=[c[0] for c in EXPORT_CASES])
def test_export_catalogue(tmp_path, cli, case):
    _, args, message = case
    if args is None:
        (tmp_path / "file").write_text("keep")
        args = ["--out", tmp_path / "file" / "sub"]
    elif "--out" not in args:
        args = [*args, "--out", tmp_path / "out"]
    result = cli("export", "--epochs", "1", *args) if "--epochs" not in args else \
        cli("export", *args)
    _one_clear_line(result, 2, message)
    assert not (tmp_path / "out").exists()
    if (tmp_path / "file").exists():
        assert (tmp_path / "file").read_text() == "keep"


PREDICT_CASES = [
    ("too-few-values", "many-to-one.onnx", ["1", "2", "3"], "takes 5 value(s)"),
    ("not-a-number", "many-to-one.onnx", ["0", "0.2", "x", "0.6", "0.8"], "'x' is not a number"),
    ("nan", "many-to-one.tflite", ["0", "0.2", "nan", "0.6", "0.8"], "not finite"),
    ("infinity", "many-to-one.tflite", ["0", "0.2", "-inf", "0.6", "0.8"], "not finite"),
    ("step-model", "many-to-one.step.onnx", ECHO, "use `edge-echo stream`"),
    ("wrong-extension", "manifest.json", ECHO, "expected a .onnx, .ort or .tflite"),
    ("no-such-file", "missing.onnx", ECHO, "no such file"),
    ("no-values", "many-to-one.onnx", [], "Missing argument"),
]


@pytest.mark.parametrize("case", PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES])
def test_predict_catalogue(exported, cli, case):
    _, name, values, message = case
    before = tree_digest(exported)
    _one_clear_line(cli("predict", exported / name, *values), 2, message)
    assert tree_digest(exported) == before


def _one_clear_line(result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edge-echo: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_catalogue_size():
    """The closing note counts these; keep at least the issue's list."""
    assert len(VERIFY_CASES) + len(EXPORT_CASES) + len(PREDICT_CASES) + len(REPORT_CASES) >= 55


# ---- mutated model files: never a signal, always a clear end -------------------------------

# Each of the 12 files gets every kind of damage (bit flips, truncation, splices) twice, in
# turn: 72 files, each a CLI process (120 random kinds showed nothing more, at 1.7x the time).
MUTATIONS_PER_FILE = 6
KINDS = ("flip", "truncate", "splice")
MUTATED_SOURCES = [f"{m}.{f}" for m in ("one-to-one", "many-to-one", "many-to-many")
                   for f in ("onnx", "tflite", "step.onnx", "step.tflite")]


def _mutate(data: bytes, rng: random.Random, kind: str) -> bytes:
    data = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del data[rng.randrange(1, len(data)):]
    else:
        at = rng.randrange(len(data))
        data[at:at + rng.randint(1, 64)] = rng.randbytes(rng.randint(1, 64))
    return bytes(data)


def test_mutated_files_never_crash_the_cli(exported, tmp_path):
    rng = random.Random(20261128)
    jobs = []
    for source in MUTATED_SOURCES:
        original = (exported / source).read_bytes()
        for i in range(MUTATIONS_PER_FILE):
            path = tmp_path / f"m{i:03d}.{source}"
            path.write_bytes(_mutate(original, rng, KINDS[i % len(KINDS)]))
            jobs.append(path)
    assert len(jobs) == len(MUTATED_SOURCES) * MUTATIONS_PER_FILE

    def run(path: Path):
        if ".step." in path.name:
            return path, subprocess.run([*CLI, "stream", str(path)], input="0.1\n0.2\n",
                                        capture_output=True, text=True, timeout=300)
        return path, subprocess.run([*CLI, "predict", str(path), *ECHO], capture_output=True,
                                    text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(run, jobs))
    rejected = 0
    for path, done in outcomes:
        assert done.returncode in (0, 1, 2), (path.name, done.returncode, done.stderr[-300:])
        assert "Traceback" not in done.stderr, (path.name, done.stderr[-500:])
        if done.returncode:
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("edge-echo: error: "), lines
            rejected += 1
    print(f"\nmutated files: {len(jobs)}; rejected with one line: {rejected}; "
          f"ran to the end: {len(jobs) - rejected}")
    # Most mutations must be caught; if none were, the mutator or the check is broken.
    assert rejected > len(jobs) // 2


# ---- interrupted and concurrent exports -----------------------------------------------------

def _export_process(out: Path, *extra: str) -> subprocess.Popen:
    # Two forms: what an interruption can break (staging, the swap, the lock) does not depend on
    # which files are being written, and each export here costs a third of the time.
    return subprocess.Popen([*CLI, "export", "--out", str(out), "--quiet", "--retrain",
                             "--forms", "tflite,onnx", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _verify_ok(out: Path) -> None:
    done = subprocess.run([*CLI, "verify", str(out), "--no-keras", "--quiet"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_ctrl_c_exits_130_and_changes_nothing(export_copy):
    before = tree_digest(export_copy)
    process = _export_process(export_copy)
    time.sleep(4)  # past the TensorFlow import, into training or conversion
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines() == ["edge-echo: interrupted; nothing was changed"]
    assert tree_digest(export_copy) == before
    assert not list(export_copy.parent.glob(".*.partial-*"))


def test_sigkill_at_any_moment_leaves_a_verifiable_export(export_copy):
    # One model, for the same reason as the two forms (_export_process).
    _export_process(export_copy, "--models", "many-to-one").communicate(timeout=300)
    before = tree_digest(export_copy)
    start = time.perf_counter()
    full = _export_process(export_copy, "--models", "many-to-one")
    full.communicate(timeout=300)
    duration = time.perf_counter() - start
    assert full.returncode == 0
    new = tree_digest(export_copy)
    assert new == before  # deterministic: retraining gives the same bytes
    # Early (imports, training), mid-conversion, and at the swap.
    for fraction in (0.15, 0.65, 0.98):
        process = _export_process(export_copy, "--models", "many-to-one")
        time.sleep(duration * fraction)
        process.kill()
        process.communicate(timeout=60)
        assert tree_digest(export_copy) == before, f"killed at {fraction:.0%}"
        _verify_ok(export_copy)
    # The next export clears what the killed ones left beside the directory.
    finished = _export_process(export_copy, "--models", "many-to-one")
    finished.communicate(timeout=300)
    assert finished.returncode == 0
    assert not list(export_copy.parent.glob(".*.partial-*"))


def test_a_second_export_waits_for_the_first(tmp_path):
    """Hold the export lock here, as a running export would: the export must wait, then finish."""
    import fcntl

    out = tmp_path / "shared"
    with open(tmp_path / ".shared.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiting = _export_process(out, "--models", "many-to-one")
        time.sleep(8)  # ample for an unlocked export of one model to have finished
        assert waiting.poll() is None, "the export did not wait for the lock"
        assert not out.exists() and not list(tmp_path.glob(".shared.partial-*"))
        fcntl.flock(lock, fcntl.LOCK_UN)
    _, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    _verify_ok(out)


def test_concurrent_exports_take_turns(tmp_path):
    out = tmp_path / "shared"
    first = _export_process(out, "--models", "many-to-one")
    second = _export_process(out, "--models", "many-to-one")
    for process in (first, second):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    _verify_ok(out)
    assert list(read_manifest(out)["models"]) == ["many-to-one"]
    assert not list(tmp_path.glob(".*.partial-*"))
    assert manifest.check_integrity(out, read_manifest(out))


def test_a_tensorflow_error_gives_its_last_line():
    """Errors from inside a traced function begin with TensorFlow's header and frames: the
    line a user is shown is the one that says what went wrong (a step form's reason once read
    'not written: in user code:')."""
    from edge_echo.errors import first_line

    traced = ValueError("in user code:\n\n    File \"m.py\", line 3, in step\n        y = f(x)\n\n"
                        "    ValueError: Input 0 of layer 'bn' is incompatible with the layer\n")
    assert first_line(traced) == "ValueError: Input 0 of layer 'bn' is incompatible with the layer"
    assert first_line(ValueError("first\nsecond")) == "first"
    assert first_line(ValueError("  ")) == "ValueError"
