"""Shared fixtures: one real export of the three seed models per test run.

The suite runs across the cores (pytest-xdist, `make test`): the session exports are made
once, by whichever worker asks first, in the run's shared temporary directory under a lock,
and read by every worker (tests must not modify them: export_copy gives a private copy).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge_echo import fsutil, manifest
from edge_echo.export import export
from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES


def shared(tmp_path_factory, name: str, make):
    """make(path) -> result, run once per test run whatever the number of xdist workers; every
    caller gets (path, result). The result travels between workers pickled beside the path."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's directory, above each worker's own
    target, saved = root / "shared" / name, root / "shared" / f"{name}.pickle"
    # A lock of the fixture's own: export() takes the export directory's lock inside.
    with fsutil.exclusive(target.with_name(f"{name}.fixture")):
        if not saved.is_file():
            result = make(target)
            saved.write_bytes(pickle.dumps(result))
        return target, pickle.loads(saved.read_bytes())


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> Path:
    """The default export, trained with the full seed epochs; tests must not modify it."""
    out, _ = shared(tmp_path_factory, "exported",
                    lambda out: export(out, list(MODEL_NAMES), seed=DEFAULT_SEED) and None)
    return out


# What `make run` asks for beside the default forms (--c-array, --c-source, --quantize), and the TFLite
# dynamic variant, which these models cannot have: it must be reported, not written.
FULL_OPTIONS = {"c_array": True, "c_source": True, "quantize": [("tflite", "float16"), ("tflite", "int8"),
                                              ("onnx", "dynamic"), ("onnx", "float16"),
                                              ("onnx", "int8"), ("tflite", "dynamic")]}


@pytest.fixture(scope="session")
def full_export(exported, tmp_path_factory):
    """The session export plus every quantized variant and the C arrays (weights and default
    forms reused), and the export result: tflite dynamic cannot be made for these models, so it
    is reported missing."""
    def make(out: Path):
        shutil.copytree(exported, out)
        return export(out, list(MODEL_NAMES), seed=DEFAULT_SEED, **FULL_OPTIONS)

    return shared(tmp_path_factory, "full", make)


@pytest.fixture(scope="session")
def c_export(exported, tmp_path_factory) -> Path:
    """The session export's weights with only the .tflite beside the C source and its
    WebAssembly (fast), measured on every device target here; tests must not modify it."""
    def make(out: Path):
        shutil.copytree(exported, out)
        export(out, list(MODEL_NAMES), seed=DEFAULT_SEED, forms=("tflite",), c_source=True)

    return shared(tmp_path_factory, "c", make)[0]


@pytest.fixture
def export_copy(exported, tmp_path) -> Path:
    """A private copy of the session export that a test may alter."""
    target = tmp_path / "copy"
    shutil.copytree(exported, target)
    return target


def read_manifest(directory: Path) -> dict:
    return json.loads((directory / manifest.FILENAME).read_text())


def read_measured(directory: Path) -> dict:
    """The manifest with what the export measured on this machine's tools (device.json) put
    back into each C source's entry, as report reads it."""
    from edge_echo.results import with_device

    return with_device(read_manifest(directory), directory)


def rehash(directory: Path, file_name: str) -> None:
    """Update the manifest after a deliberate change, so integrity passes and the comparison is tested."""
    doc = read_manifest(directory)
    for model in doc["models"].values():
        for art in model["artifacts"].values():
            if art["file"] == file_name:
                path = directory / file_name
                art["size"] = path.stat().st_size
                art["sha256"] = manifest.sha256_file(path)
    (directory / manifest.FILENAME).write_text(manifest.dumps(doc))


def tree_digest(directory: Path) -> dict[str, str]:
    return {p.name: manifest.sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file()}


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def cli(capsys):
    """The real console entry point (edge_echo.cli.run), in process, with its exit code and streams."""
    from edge_echo.cli import run

    def invoke(*args) -> Result:
        capsys.readouterr()
        saved = sys.argv
        sys.argv = ["edge-echo", *map(str, args)]
        try:
            run()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = saved
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


# Makes TensorFlow, Keras and tf2onnx unimportable, and reports at exit whether TF got loaded.
BLOCK_TF = """
import importlib.abc, sys
class _NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx'):
            raise ImportError(f'{name} is blocked in this test')
sys.meta_path.insert(0, _NoTensorFlow())
import atexit
atexit.register(lambda: print('tensorflow imported:', 'tensorflow' in sys.modules))
"""


def run_module(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    """Run `python -m edge_echo ARGS` in a fresh interpreter, after an optional prelude."""
    code = (f"{prelude}\nimport sys\nfrom edge_echo.cli import run\n"
            f"sys.argv = ['edge-echo', *{list(map(str, args))!r}]\nrun()\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def worker_processes(pid: int) -> list[int]:
    """The edge_echo.workers processes whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"edge_echo.workers" in cmdline:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """pid is running (not gone, not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(autouse=True)
def _javascript_runtimes_where_marked(request, tmp_path_factory, monkeypatch):
    """The JavaScript runtimes (onnxruntime-node, onnxruntime-web, litertjs) run in the tests
    marked js (tests/test_js.py, the zoo); elsewhere verify and bench find no npm packages and
    skip them, as on a machine without them, so that every other verify run is not also a run
    in Node and Chromium."""
    if request.node.get_closest_marker("js") is None:
        monkeypatch.setenv("EDGE_ECHO_NODE_MODULES", str(tmp_path_factory.getbasetemp() / "no-npm"))


# Which Python the runtime-only smoke test ran on (test_runtime_install.py).
RAN_ON = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter, config):
    """Say which Python the runtime-only smoke test ran on: it must never pass unseen."""
    line = config.stash.get(RAN_ON, None)
    if line:
        terminalreporter.write_line(line)
