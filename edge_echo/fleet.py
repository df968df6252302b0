"""edge-echo convert over many models at once: a fleet.

Each model is converted and verified exactly as a single `edge-echo convert` would, in a fresh
process of its own (TensorFlow's state never carries from one model to the next), and lands in
OUT/NAME/. The unit of work is one task per model (`run_task`): the model's bytes and the
options go in, the converted directory's files and the model's record come out. Where a task
runs is an engine's business:

- `LocalEngine` (the default, `--jobs N`) starts one `python -m edge_echo.workers` per model;
- `DaskEngine` (`--cluster ADDRESS`) submits the same function to an existing Dask cluster,
  whose worker runs it, again, in a fresh child process (`remote_task`).

The directory is published here, staged beside OUT/NAME and swapped in whole, as a single
convert publishes, so a killed worker or a Ctrl-C never leaves half a model. The index,
OUT/fleet.json, is rewritten atomically after every model, so it is always valid JSON and lists
every finished one. A model whose source, options and tool versions match a verified export
already in OUT is skipped (resume); `force` redoes them all.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import fsutil, manifest, workers
from .errors import ArtifactError, EdgeEchoError, UsageError, first_line
from .readers import digest, is_savedmodel, is_source_file, pack, unpack
from .versions import versions

INDEX = "fleet.json"
SCHEMA = {"name": "edge-echo-fleet", "version": 1}
# Verdicts, best first. pass: every form written and verified; partial: verified, but some
# requested variant could not be made (a single convert exits 3); fail: written, and verify
# failed or could not run; error: nothing written (not a model, the converter failed, ...).
VERDICTS = ("pass", "partial", "fail", "error")
VERIFIED = ("pass", "partial")
_PATTERN = set("*?[")

Progress = Callable[[str, str], None]


@dataclass
class Model:
    """One model of the fleet: where it is, what it is called under OUT, its resume key."""

    source: Path
    name: str
    sha256: str = ""
    key: str = ""


@dataclass
class FleetResult:
    directory: Path
    records: dict[str, dict]
    skipped: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed(self) -> list[str]:
        return [n for n, r in self.records.items() if r["verdict"] in ("fail", "error")]

    @property
    def partial(self) -> list[str]:
        return [n for n, r in self.records.items() if r["verdict"] == "partial"]


def is_fleet(args: list[str]) -> bool:
    """Several arguments, a directory or a pattern make a fleet; one file is a single convert."""
    if len(args) == 1 and is_savedmodel(Path(args[0])):
        return False
    return len(args) != 1 or Path(args[0]).is_dir() or (
        not Path(args[0]).exists() and bool(_PATTERN & set(args[0])))


def models_under(directory: Path) -> list[Path]:
    """Every model file (.keras, .h5, .hdf5) and SavedModel directory under directory, at any
    depth; nothing inside a SavedModel is taken apart from it."""
    found = []
    for root, dirs, files in os.walk(directory):
        here = Path(root)
        if is_savedmodel(here) and here != Path(directory):
            found.append(here)
            dirs[:] = []
            continue
        found += [here / f for f in files if is_source_file(here / f)]
        dirs.sort()
    return sorted(found)


def collect(args: list[str], out: Path) -> list[Model]:
    """The models the arguments name: files and SavedModel directories as given, every model
    under a directory (at any depth, models_under), the files a pattern matches (** included).
    Anything under out is left out (the .keras copies a fleet writes there), a file named twice
    is taken once."""
    out = Path(out).resolve()
    found: list[Path] = []
    seen: set[Path] = set()
    for arg in args:
        path = Path(arg)
        if is_savedmodel(path):
            paths, what = [path], "this SavedModel is under --out"
        elif path.is_dir():
            paths = models_under(path)
            what = "no model (.keras, .h5, .hdf5 or SavedModel directory) under this directory"
        elif path.exists():
            paths, what = [path], "this file is under --out"
        elif _PATTERN & set(arg):
            paths = sorted(Path(p) for p in glob.glob(arg, recursive=True)
                           if Path(p).is_file() or is_savedmodel(Path(p)))
            what = "no file matches this pattern"
        else:
            raise UsageError(f"{arg}: no such file or directory")
        paths = [p for p in paths if not p.resolve().is_relative_to(out)]
        if not paths:
            raise UsageError(f"{arg}: {what}" + (f" (outside --out {out})" if path.is_dir() else ""))
        for p in paths:
            if p.resolve() not in seen:
                seen.add(p.resolve())
                found.append(p)
    return [Model(p, n) for p, n in zip(found, _names(found), strict=True)]


def _names(paths: list[Path]) -> list[str]:
    """Each model's directory under OUT: its file's name as a single convert names it, or, where
    two files share a name, their paths below the directory they share, joined by dashes."""
    from .usermodel import model_name as clean

    names = [clean(p.stem) for p in paths]
    clashing = {n for n in names if names.count(n) > 1}
    if clashing:
        common = Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))
        names = [clean("-".join(p.resolve().with_suffix("").relative_to(common).parts))
                 if n in clashing else n for p, n in zip(paths, names, strict=True)]
    taken: set[str] = set()
    unique = []
    for n in names:
        k, name = 1, n
        while name in taken or name == Path(INDEX).stem:
            k += 1
            name = f"{n}-{k}"
        taken.add(name)
        unique.append(name)
    return unique


def resume_key(model_sha256: str, options: dict, tools: dict) -> str:
    """What a finished model's export depends on: its source, the options and the tool versions
    (edge-echo's own source digest among them)."""
    text = json.dumps({"source_sha256": model_sha256, "options": options, "versions": tools},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run_task(task: dict) -> dict:
    """One model, converted into a scratch directory and verified there, in this process (a
    fresh one). Returns {"record": ..., "files": {name: bytes} or None}; never raises for the
    model's own faults, which its record names in one line."""
    import tempfile

    started = time.monotonic()
    name, options = task["name"], task["options"]
    record: dict = {"verdict": "error", "reason": None, "worker": _where()}
    files = None
    with tempfile.TemporaryDirectory(prefix="edge-echo-fleet-") as scratch:
        scratch = Path(scratch)
        source = scratch / "source" / task["filename"]
        source.parent.mkdir()
        unpack(task["model"] if task.get("model") is not None else pack(Path(task["path"])),
               source)
        data = None
        if options.get("data"):
            data = scratch / "data" / options["data"]["file"]
            data.parent.mkdir()
            data.write_bytes(task["data"])
        out = scratch / "out" / name
        try:
            files, record = _convert_and_verify(source, out, name, options, data, record)
        except EdgeEchoError as exc:
            record["reason"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - a converter's fault, kept to this one model
            record["reason"] = f"{type(exc).__name__}: {first_line(exc)}"
    record["wall_seconds"] = round(time.monotonic() - started, 2)
    return {"record": record, "files": files}


def _convert_and_verify(source: Path, out: Path, name: str, options: dict, data: Path | None,
                        record: dict) -> tuple[dict[str, bytes] | None, dict]:
    from .targets import parse_targets
    from .usermodel import convert
    from .verify import verify

    def progress(_model: str, stage: str) -> None:
        workers.report(name, stage)

    result = convert(source, out, name=name, timesteps=options["timesteps"],
                     input_range=tuple(options["input_range"]), data=data, seed=options["seed"],
                     quantize=[tuple(q) for q in options["quantize"]], c_array=options["c_array"],
                     progress=progress, forms=(tuple(options["forms"]) if options["forms"] is not None
                                               else None),
                     c_source=options["c_source"], force=True)
    entry = result.manifest["models"][name]
    record.update({
        "forms": {kind: {"file": art["file"], "bytes": art["size"]}
                  for kind, art in entry["artifacts"].items()},
        "not_written": dict(entry.get("not_written", {})),
        "missing": list(result.missing),
        "bytes": sum(art["size"] for art in entry["artifacts"].values()),
    })
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    progress(name, "verifying")
    try:
        verified = verify(out, cores=parse_targets(options["targets"] or ["none"]))
    except EdgeEchoError as exc:
        record.update(verdict="fail", reason=f"verify could not run: {exc}")
        return files, record
    worst: dict[str, dict] = {}
    for r in verified.results:
        worst[r.runtime] = {"max_abs": max(r.max_abs, worst.get(r.runtime, {}).get("max_abs", 0.0)),
                            "passed": r.passed and worst.get(r.runtime, {}).get("passed", True)}
    failures = [line for r in verified.results for line in r.failures()]
    record.update(worst_error=worst, failures=failures)
    if not verified.passed:
        record.update(verdict="fail", reason=failures[0] if failures else "verify failed")
    elif result.missing:
        record.update(verdict="partial", reason=result.missing[0])
    else:
        record.update(verdict="pass")
    return files, record


def _where() -> str:
    """The Dask worker's address, inside one; else host:pid."""
    if "distributed" in sys.modules:
        from distributed import get_worker

        try:
            return get_worker().address
        except ValueError:
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


def remote_task(task: dict) -> dict:
    """run_task on a Dask worker, in a fresh child process of its own (TensorFlow's state never
    outlives the model); a child that dies is run again once, as locally."""
    where = _where()
    for _k, value, attempts in workers.fresh(run_task, [task], 1, retries=1):
        if isinstance(value, workers.Died):
            return {"record": {"verdict": "error", "worker": where,
                               "reason": f"the worker process converting it {value.how}, twice"},
                    "files": None, "attempts": attempts}
        if isinstance(value, BaseException):
            raise value
        value["record"]["worker"] = where
        value["attempts"] = attempts
        return value
    raise RuntimeError("no result")  # fresh() yields once per item


class LocalEngine:
    """Each model in a fresh local worker process, jobs at a time."""

    def __init__(self, jobs: int):
        self.jobs = jobs

    def describe(self) -> dict:
        return {"engine": "local", "jobs": self.jobs}

    def threads(self) -> dict[str, str]:
        """Each worker's share of the cores for TensorFlow's and OpenMP's pools: jobs processes
        that each start a pool per core would oversubscribe the cores (measured: 1.66x at
        two jobs on two cores with a pool per core each)."""
        share = str(max(1, workers.cores() // self.jobs))
        return {"TF_NUM_INTRAOP_THREADS": share, "TF_NUM_INTEROP_THREADS": share,
                "OMP_NUM_THREADS": share}

    def run(self, tasks: list[dict], progress: Progress) -> Iterator[tuple[int, dict]]:
        for k, value, attempts in workers.fresh(run_task, tasks, self.jobs, progress, retries=1,
                                                env=self.threads()):
            if isinstance(value, workers.Died):
                value = {"record": {"verdict": "error", "reason": f"the worker process converting "
                                    f"it {value.how}, on both attempts"}, "files": None}
            elif isinstance(value, BaseException):
                value = {"record": {"verdict": "error", "reason": first_line(value)}, "files": None}
            value["attempts"] = attempts
            yield k, value

    def close(self) -> None:
        pass


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


class DaskEngine:
    """The same tasks on an existing Dask cluster (the scheduler at address). A worker that dies
    mid-task has its task rescheduled on another by the scheduler (its allowed-failures, 3 by
    default); each task converts its model in a fresh child process on its worker."""

    def __init__(self, address: str):
        if not dask_available():
            raise UsageError("--cluster needs Dask's distributed scheduler; install it with "
                             "pip install 'edge-echo[fleet]'")
        from distributed import Client

        try:
            self.client = Client(address, timeout="5s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--cluster {address}: cannot reach a Dask scheduler there "
                             f"({first_line(exc)})") from None
        self.address = address

    def workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def describe(self) -> dict:
        return {"engine": "dask", "address": self.address, "workers": self.workers()}

    def run(self, tasks: list[dict], progress: Progress) -> Iterator[tuple[int, dict]]:
        from distributed import as_completed

        # A window of tasks in flight, not all: each carries its model's bytes.
        window = max(4, 2 * self.workers())
        pending = list(range(len(tasks)))
        futures = {}
        done = as_completed(loop=self.client.loop)

        def submit() -> None:
            while pending and len(futures) < window:
                k = pending.pop(0)
                task = dict(tasks[k], model=pack(Path(tasks[k]["path"])))
                future = self.client.submit(remote_task, task, pure=False,
                                            key=f"edge-echo-{task['name']}-{os.urandom(4).hex()}")
                futures[future] = k
                done.add(future)

        submit()
        try:
            for future in done:
                k = futures.pop(future)
                try:
                    value = future.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker and the like
                    value = {"record": {"verdict": "error", "reason": f"the cluster could not run "
                                        f"it: {type(exc).__name__}: {first_line(exc)}"},
                             "files": None, "attempts": None}
                progress(tasks[k]["name"], "done")
                yield k, value
                submit()
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self.client.close()


def options_of(timesteps, input_range, data: Path | None, seed, quantize, c_array, c_source,
               forms, targets) -> dict:
    """convert's options as one JSON-able dict: the same for every model of the fleet."""
    return {"timesteps": timesteps, "input_range": [float(v) for v in input_range],
            "data": ({"file": Path(data).name, "sha256": manifest.sha256_file(Path(data))}
                     if data else None),
            "seed": seed, "quantize": [list(q) for q in quantize or []], "c_array": c_array,
            "c_source": c_source, "forms": list(forms) if forms is not None else None,
            "targets": list(targets) if targets else None}


def _previous(out: Path) -> dict:
    try:
        doc = json.loads((out / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        return {}
    return doc.get("models", {}) if isinstance(doc.get("models"), dict) else {}


def up_to_date(out: Path, model: Model, old: dict | None) -> bool:
    """A verified export of this model, from the same key, intact in OUT/NAME."""
    if not isinstance(old, dict) or old.get("key") != model.key or old.get("verdict") not in VERIFIED:
        return False
    try:
        doc = manifest.load(out / model.name)
        manifest.check_integrity(out / model.name, doc)
    except (ArtifactError, OSError, KeyError, TypeError):
        return False
    return model.name in doc.get("models", {})


def publish(out: Path, name: str, files: dict[str, bytes]) -> None:
    """OUT/NAME becomes exactly these files, staged beside it and swapped in whole."""
    from .export import check_target

    target = out / name
    for file in files:
        if Path(file).name != file or file in ("", ".", ".."):
            raise ArtifactError(f"{name}: the worker returned a file named {file!r}; not written")
    with fsutil.exclusive(target):
        check_target(target)
        staged = fsutil.staging_dir(target)
        try:
            for file, data in files.items():
                (staged / file).write_bytes(data)
            fsutil.replace_dir(staged, target)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise


class Index:
    """OUT/fleet.json, rewritten whole and atomically whenever a model finishes."""

    def __init__(self, out: Path, command: list[str], options: dict, tools: dict, engine: dict):
        self.path = out / INDEX
        self.doc = {"schema": SCHEMA, "command": command, "options": options, "versions": tools,
                    "engine": engine, "complete": False, "interrupted": False, "models": {},
                    "summary": {}}

    def put(self, name: str, record: dict) -> None:
        self.doc["models"][name] = record
        self.write()

    def write(self, complete: bool = False, interrupted: bool = False) -> None:
        models = self.doc["models"]
        self.doc.update(complete=complete, interrupted=interrupted, summary={
            "models": len(models),
            **{v: sum(r["verdict"] == v for r in models.values()) for v in VERDICTS},
            "skipped": sum(bool(r.get("skipped")) for r in models.values())})
        text = json.dumps(self.doc, indent=2) + "\n"
        try:
            fsutil.write_file(self.path, text.encode("utf-8"))
        except OSError as exc:
            raise ArtifactError(f"{self.path}: cannot write the fleet index ({exc.strerror})") from None


def run(models: list[Model], out: Path, options: dict, engine, command: list[str],
        data: Path | None = None, force: bool = False, progress: Progress | None = None,
        on_done: Callable[[str, dict], None] | None = None) -> FleetResult:
    """Convert and verify every model through engine; publish each under out as it finishes."""
    progress = progress or (lambda model, stage: None)
    on_done = on_done or (lambda name, record: None)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    tools = versions()
    old = {} if force else _previous(out)
    index = Index(out, command, options, tools, engine.describe())
    result = FleetResult(out, index.doc["models"])
    tasks, todo = [], []
    data_bytes = Path(data).read_bytes() if data else None
    for model in models:
        model.sha256 = digest(model.source)
        model.key = resume_key(model.sha256, options, tools)
        base = {"source": str(model.source), "source_sha256": model.sha256, "key": model.key,
                "directory": model.name}
        if up_to_date(out, model, old.get(model.name)):
            record = {**old[model.name], **base, "skipped": True}
            index.doc["models"][model.name] = record
            result.skipped.append(model.name)
            on_done(model.name, record)
            continue
        problem = _cannot_publish(out, model.name)
        if problem:
            index.doc["models"][model.name] = {**base, "verdict": "error", "reason": problem}
            on_done(model.name, index.doc["models"][model.name])
            continue
        tasks.append({"name": model.name, "filename": model.source.name,
                      "path": str(model.source.resolve()), "options": options,
                      "data": data_bytes})
        todo.append(base)
    index.write()
    # The largest models first, so that no worker idles at the end while one converts alone.
    order = sorted(range(len(tasks)), key=lambda k: -Path(tasks[k]["path"]).stat().st_size)
    tasks, todo = [tasks[k] for k in order], [todo[k] for k in order]
    try:
        for k, value in engine.run(tasks, progress):
            name = tasks[k]["name"]
            record = {**todo[k], **value["record"], "attempts": value.get("attempts")}
            if value.get("files") is not None:
                try:
                    publish(out, name, value["files"])
                except (EdgeEchoError, OSError) as exc:
                    record.update(verdict="error", reason=f"not published: {first_line(exc)}")
            index.put(name, record)
            on_done(name, record)
    except KeyboardInterrupt:
        result.interrupted = True
        index.write(interrupted=True)
        raise
    except EdgeEchoError:
        index.write()
        raise
    except Exception as exc:  # noqa: BLE001 - the engine itself failed (a cluster went away)
        index.write()
        raise ArtifactError(f"the fleet stopped: {type(exc).__name__}: {first_line(exc)}; the "
                            f"{len(index.doc['models'])} models listed in {index.path} are kept; "
                            "run the same command again to go on") from None
    order = {m.name: k for k, m in enumerate(models)}
    index.doc["models"] = result.records = dict(sorted(index.doc["models"].items(),
                                                       key=lambda kv: order[kv[0]]))
    index.write(complete=True)
    return result


def _cannot_publish(out: Path, name: str) -> str | None:
    """Why OUT/NAME could not be replaced (something not ours is there), checked before the work."""
    from .export import check_target

    try:
        check_target(out / name)
    except EdgeEchoError as exc:
        return str(exc)
    return None
