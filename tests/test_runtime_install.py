"""Issues 6 and 16: the runtime-only install verifies, predicts, streams and benchmarks without
TensorFlow, on the newest supported CPython found here.

Builds a fresh virtual environment from requirements-runtime.lock and the
package itself (no extras), as `pip install edge-echo` gives a device user,
with the newest of CPython 3.11, 3.12 and 3.13 that tools/find-python finds
(3.13 on this project's machines). Where none is found the module is skipped
with the reason, and the summary line at the end of the run says which
Python it ran on.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RAN_ON

ROOT = Path(__file__).resolve().parents[1]
ECHO = ["0.0", "0.2", "0.4", "0.6", "0.8"]


def newest_python() -> str:
    found = subprocess.run([str(ROOT / "tools" / "find-python"), "--newest"], capture_output=True,
                           text=True)
    if found.returncode != 0:
        pytest.skip(f"runtime-only smoke test not run: {found.stderr.strip()}")
    return found.stdout.strip()


@pytest.fixture(scope="module")
def venv(tmp_path_factory, pytestconfig):
    python = newest_python()
    base = tmp_path_factory.mktemp("runtime")
    source = base / "src"
    source.mkdir()
    for item in ("edge_echo", "pyproject.toml", "README.md"):
        copy = shutil.copytree if (ROOT / item).is_dir() else shutil.copy
        copy(ROOT / item, source / item)
    env = base / "venv"
    subprocess.run([python, "-m", "venv", str(env)], check=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet",
           "--disable-pip-version-check", "--no-deps"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements-runtime.lock")], check=True)
    subprocess.run([*pip, str(source)], check=True, capture_output=True)
    version = subprocess.run([str(env / "bin" / "python"), "-c",
                              "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()
    pytestconfig.stash[RAN_ON] = f"runtime-only smoke test ran on CPython {version} ({python})"
    return env / "bin"


def test_the_newest_supported_python_is_used(venv):
    newest = subprocess.run([str(ROOT / "tools" / "find-python"), "--newest"],
                            capture_output=True, text=True, check=True).stdout.strip()
    code = "import sys; print(sys.version_info[0], sys.version_info[1])"
    want = subprocess.run([newest, "-c", code], capture_output=True, text=True, check=True).stdout
    got = subprocess.run([str(venv / "python"), "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert got == want and got.split() in (["3", "11"], ["3", "12"], ["3", "13"])
    # Never older than the interpreter running the tests.
    assert tuple(map(int, got.split())) >= sys.version_info[:2]


def run(bin_dir, *args, stdin=None):
    return subprocess.run([str(bin_dir / "edge-echo"), *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=300)


def test_no_tensorflow_in_the_runtime_install(venv):
    probe = subprocess.run([str(venv / "python"), "-c", "import tensorflow"], capture_output=True)
    assert probe.returncode != 0
    freeze = subprocess.run([str(venv / "python"), "-m", "pip", "freeze"], capture_output=True,
                            text=True).stdout.lower()
    assert "onnxruntime" in freeze and "tensorflow" not in freeze and "tf2onnx" not in freeze


def test_verify_no_keras(venv, exported):
    result = run(venv, "verify", exported, "--no-keras")
    assert result.returncode == 0, result.stderr
    assert "verdict: PASS" in result.stdout
    # The ORT-format files run on the runtime install's ONNX Runtime too (issue 26).
    assert "onnxruntime-ort " in result.stdout and "onnxruntime-ort-step " in result.stdout
    without = run(venv, "verify", exported)
    assert without.returncode == 2 and "--no-keras" in without.stderr


def test_predict_and_stream(venv, exported):
    result = run(venv, "predict", exported / "many-to-one.tflite", *ECHO, "--decimals", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ECHO
    on_ort = run(venv, "predict", exported / "many-to-one.ort", *ECHO, "--decimals", "1")
    assert on_ort.returncode == 0, on_ort.stderr
    assert on_ort.stdout.split() == ECHO
    streamed = run(venv, "stream", exported / "many-to-many.step.onnx", "--decimals", "1",
                   stdin="\n".join(ECHO) + "\n")
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout.split() == ECHO


def test_bench_times_the_installed_runtimes(venv, exported):
    result = run(venv, "bench", exported, "--runs", "5", "--warmup", "1", "--batch", "2")
    assert result.returncode == 0, result.stderr
    assert "onnxruntime" in result.stdout and "litert" in result.stdout
    assert "keras" not in result.stdout


def test_export_says_what_is_missing(venv, tmp_path):
    result = run(venv, "export", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert "edge-echo[export]" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_example_device_app(venv, exported):
    result = subprocess.run([str(venv / "python"), str(ROOT / "examples" / "stream_echo.py"),
                             str(exported / "many-to-many.step.tflite"), *ECHO],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert [line.split()[-1] for line in result.stdout.splitlines()] == ECHO


def test_report_runs_verify_and_bench_without_tensorflow(venv, exported, tmp_path):
    """Issue 25: report --run on the runtime-only install verifies against the stored Keras
    outputs, benchmarks the installed runtimes, and writes the page."""
    directory = tmp_path / "exported"
    shutil.copytree(exported, directory)
    bare = run(venv, "report", directory)
    assert bare.returncode == 0, bare.stderr
    assert "no verify results" in (directory / "report.html").read_text()
    result = run(venv, "report", directory, "--run")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    page = (directory / "report.html").read_text()
    checked = json.loads((directory / "verify.json").read_text())
    timed = json.loads((directory / "bench.json").read_text())
    assert checked["keras"] is False and checked["passed"] is True
    assert {r["runtime"] for r in timed["rows"]} >= {"onnxruntime", "litert", "tflm"}
    assert not any(r["runtime"].startswith("keras") for r in timed["rows"])
    assert "no verify results" not in page and "no bench results" not in page
    assert "Keras outputs stored at export (--no-keras)" in page
    # Up to date now: a second --run measures nothing again.
    again = run(venv, "report", directory, "--run")
    assert again.returncode == 0 and "wrote" in again.stdout and "verify: wrote" not in again.stdout
