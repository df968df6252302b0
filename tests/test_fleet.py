"""Issue 24: fleets. Many models in one convert, each in a fresh process, locally or on a real
two-worker Dask cluster; faults (a file that is not a model, a killed worker, Ctrl-C) lose
nothing; a second run skips what is already verified.

Each model here is tiny and converted to two forms only (--forms tflite,onnx): what is under
test is the fleet around the single convert, which the rest of the suite covers form by form.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import alive, run_module, worker_processes

from edge_echo import fleet, manifest

FORMS = ("--forms", "tflite,onnx")


def _model(path: Path, layer: str, units: int, seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)
    cell = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "rnn": keras.layers.SimpleRNN}[layer]
    model = keras.Sequential([keras.Input((6, 2)), cell(units), keras.layers.Dense(1)])
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    """lstm.keras, gru.keras, sub/rnn.keras (a directory is searched at any depth)."""
    root = tmp_path_factory.mktemp("fleet-sources")
    _model(root / "lstm.keras", "lstm", 5, 1)
    _model(root / "gru.keras", "gru", 4, 2)
    _model(root / "sub" / "rnn.keras", "rnn", 3, 3)
    return root


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge_echo", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def index(out: Path) -> dict:
    return json.loads((out / fleet.INDEX).read_text())


def no_partial(out: Path) -> None:
    assert not [p.name for p in out.rglob("*") if ".partial-" in p.name]


def test_a_fleet_converts_each_model_as_one_convert_would_and_a_rerun_skips_them(
        sources, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(sources, models)
    (models / "notes.keras").write_text("not a model\n")
    out = tmp_path / "out"

    run = run_module("convert", models, "--out", out, "--jobs", "2", *FORMS)
    # One file is not a model: it is recorded with its reason, the others go on.
    assert run.returncode == 1, run.stderr
    assert "notes: ERROR: notes.keras: not a Keras 3 .keras file" in run.stderr
    assert "1 of 4 models failed: notes" in run.stderr
    assert "Traceback" not in run.stderr
    doc = index(out)
    assert doc["schema"] == {"name": "edge-echo-fleet", "version": 1} and doc["complete"]
    assert doc["engine"] == {"engine": "local", "jobs": 2}
    assert list(doc["models"]) == ["gru", "lstm", "notes", "rnn"]  # the sources' order
    assert doc["summary"] == {"models": 4, "pass": 3, "partial": 0, "fail": 0, "error": 1,
                              "skipped": 0}
    for name in ("gru", "lstm", "rnn"):
        record = doc["models"][name]
        assert record["verdict"] == "pass" and record["attempts"] == 1
        source = Path(record["source"])
        assert record["source_sha256"] == manifest.sha256_file(source)
        assert sorted(record["forms"]) == ["keras", "onnx", "reference", "tflite"]
        for form in record["forms"].values():
            assert (out / name / form["file"]).stat().st_size == form["bytes"]
        assert record["bytes"] == sum(f["bytes"] for f in record["forms"].values())
        assert set(record["worst_error"]) >= {"onnxruntime", "litert", "keras"}
        assert all(0 <= w["max_abs"] < 1e-5 and w["passed"] for w in record["worst_error"].values())
        assert record["wall_seconds"] > 0
    assert doc["models"]["notes"]["reason"].startswith("notes.keras: not a Keras 3 .keras file")
    assert not (out / "notes").exists()
    no_partial(out)

    # A model's directory is byte for byte what a single convert writes, manifest included.
    single = tmp_path / "single"
    one = run_module("convert", models / "sub" / "rnn.keras", "--out", single, *FORMS)
    assert one.returncode == 0, one.stderr
    assert {p.name: p.read_bytes() for p in single.iterdir()} == \
        {p.name: p.read_bytes() for p in (out / "rnn").iterdir()}

    # Again: every verified model is skipped (the one that is not a model is tried again).
    (models / "notes.keras").unlink()
    again = run_module("convert", models, "--out", out, *FORMS)
    assert again.returncode == 0, again.stderr
    assert "skipped 3 of 3 models" in again.stdout
    doc = index(out)
    assert all(r["skipped"] for r in doc["models"].values())
    assert doc["summary"]["skipped"] == 3

    # A changed source is converted again; a model whose files were altered in OUT too; the
    # rest are skipped.
    _model(models / "gru.keras", "gru", 4, 7)
    with open(out / "rnn" / "rnn.onnx", "ab") as f:
        f.write(b"\0")
    changed = run_module("convert", models, "--out", out, *FORMS)
    assert changed.returncode == 0, changed.stderr
    assert "skipped 1 of 3 models" in changed.stdout
    doc = index(out)
    assert not doc["models"]["gru"].get("skipped") and not doc["models"]["rnn"].get("skipped")
    assert doc["models"]["lstm"]["skipped"]
    assert doc["models"]["gru"]["source_sha256"] == manifest.sha256_file(models / "gru.keras")
    assert manifest.check_integrity(out / "rnn", manifest.load(out / "rnn"))

    # --force redoes an up-to-date one (a pattern of one file is a fleet of one).
    forced = run_module("convert", f"{models}/lst*.keras", "--out", out, "--force", *FORMS)
    assert forced.returncode == 0, forced.stderr
    assert "skipped" not in forced.stdout
    assert list(index(out)["models"]) == ["lstm"] and not index(out)["models"]["lstm"].get("skipped")


def test_a_killed_worker_is_retried_once_and_ctrl_c_keeps_every_finished_model(sources, tmp_path):
    out = tmp_path / "out"
    run = start("convert", sources / "lstm.keras", sources / "gru.keras", "--out", out,
                "--jobs", "2", "--forms", "onnx")
    deadline = time.monotonic() + 60
    while len(worker_processes(run.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers_now = worker_processes(run.pid)
    assert len(workers_now) == 2
    time.sleep(1.5)  # into the task (its imports or its conversion)
    os.kill(workers_now[0], signal.SIGKILL)
    _, err = run.communicate(timeout=240)
    assert run.returncode == 0, err
    doc = index(out)
    assert sorted(r["attempts"] for r in doc["models"].values()) == [1, 2]
    assert all(r["verdict"] == "pass" for r in doc["models"].values())
    no_partial(out)

    # Ctrl-C once the first model is in: exit 130, one line, the finished model kept and listed.
    out = tmp_path / "interrupted"
    run = start("convert", sources, "--out", out, "--jobs", "1", "--forms", "onnx")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if index(out)["models"]:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    time.sleep(1)  # the second model under way
    busy = worker_processes(run.pid)
    assert busy
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("edge-echo: interrupted; every finished model "
                                                   "is kept in")
    assert "Traceback" not in err
    doc = index(out)
    assert doc["interrupted"] and not doc["complete"]
    finished = list(doc["models"])
    assert 1 <= len(finished) < 3
    for name in finished:
        manifest.check_integrity(out / name, manifest.load(out / name))
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(finished)
    no_partial(out)
    # The worker that was converting is gone with the run, not left converting for nobody.
    assert not [pid for pid in busy if alive(pid)]


@pytest.fixture
def cluster(tmp_path):
    """A real Dask cluster on this machine: a scheduler and two single-thread workers (each under
    its nanny, which replaces a worker that dies, as on a real cluster)."""
    pytest.importorskip("distributed", reason="Dask is part of the dev install (edge-echo[fleet])")
    file = tmp_path / "scheduler.json"
    bin_dir = Path(sys.executable).parent
    scheduler = subprocess.Popen([bin_dir / "dask", "scheduler", "--scheduler-file", file,
                                  "--port", "0", "--host", "127.0.0.1", "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        worker = subprocess.Popen([bin_dir / "dask", "worker", "--scheduler-file", file,
                                   "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                                   "--host", "127.0.0.1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from distributed import Client

        client = Client(address, timeout="30s")
        client.wait_for_workers(2, timeout=60)
        yield address, client
        client.close()
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def test_the_same_tasks_on_a_two_worker_dask_cluster_survive_a_killed_worker(
        cluster, sources, tmp_path):
    address, client = cluster
    out = tmp_path / "out"
    run = start("convert", sources / "lstm.keras", sources / "gru.keras", "--out", out,
                "--cluster", address, "--forms", "onnx")
    victim = None
    deadline = time.monotonic() + 90
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.2)
        victim = next((w for w, keys in client.processing().items() if keys), None)
    assert victim is not None
    running = client.processing()[victim][0]
    time.sleep(1.5)  # into the task (its imports or its conversion)
    os.kill(client.run(os.getpid)[victim], signal.SIGKILL)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    doc = index(out)
    assert doc["engine"] == {"engine": "dask", "address": address, "workers": 2}
    assert doc["summary"]["pass"] == 2
    # The killed worker's model was run again, by another worker.
    name = next(n for n in doc["models"] if running.startswith(f"edge-echo-{n}-"))
    assert doc["models"][name]["worker"] != victim
    for name in doc["models"]:
        manifest.check_integrity(out / name, manifest.load(out / name))
    no_partial(out)


# Makes Dask unimportable, as on an install without edge-echo[fleet].
BLOCK_DASK = """
import importlib.abc, sys
class _NoDask(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('distributed', 'dask'):
            raise ImportError(f'No module named {name!r}')
sys.meta_path.insert(0, _NoDask())
"""


def test_cluster_without_dask_is_refused_in_one_line(sources, tmp_path):
    run = run_module("convert", sources, "--out", tmp_path / "out", "--cluster",
                     "tcp://127.0.0.1:9", prelude=BLOCK_DASK)
    assert run.returncode == 2
    assert run.stderr.strip() == ("edge-echo: error: --cluster needs Dask's distributed "
                                  "scheduler; install it with pip install 'edge-echo[fleet]'")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra, message", [
    (("--cluster", "tcp://127.0.0.1:9"), "--cluster tcp://127.0.0.1:9: cannot reach a Dask "
                                         "scheduler there"),
    (("--name", "x"), "--name names one model; a fleet names each model's directory after its file"),
    (("{dir}/nothing-*.keras",), "nothing-*.keras: no file matches this pattern"),
    (("{dir}/missing.keras",), "missing.keras: no such file or directory"),
    (("--data", "{dir}/missing.npy"), "missing.npy: no such file"),
])
def test_bad_fleet_arguments_get_one_line(sources, tmp_path, extra, message):
    extra = [e.format(dir=sources) for e in extra]
    run = run_module("convert", sources, "--out", tmp_path / "out", *extra)
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and message in run.stderr
    assert "Traceback" not in run.stderr


def test_cluster_with_one_model_is_refused(sources, tmp_path):
    run = run_module("convert", sources / "lstm.keras", "--out", tmp_path / "o", "--cluster", "x")
    assert run.returncode == 2
    assert run.stderr.strip() == ("edge-echo: error: --cluster runs a fleet (several FILEs, a "
                                  "directory or a pattern); one model converts here")


def test_model_names_under_out(tmp_path):
    for p in ("a/m.keras", "b/m.keras", "b/other_one.keras", "fleet.keras"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_bytes(b"")
    found = fleet.collect([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "fleet.keras"),
                           str(tmp_path / "a" / "m.keras")], tmp_path / "out")
    # Files sharing a name are told apart by their paths; none is named after the index; a
    # file named twice is taken once.
    assert [m.name for m in found] == ["a-m", "b-m", "other-one", "fleet-2"]
    # The .keras files a fleet writes under --out are never taken as sources.
    (tmp_path / "out" / "m").mkdir(parents=True)
    (tmp_path / "out" / "m" / "m.keras").write_bytes(b"")
    assert [m.name for m in fleet.collect([str(tmp_path / "a"), str(tmp_path)], tmp_path / "out")] \
        == ["a-m", "b-m", "other-one", "fleet-2"]
