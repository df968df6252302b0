"""Latency, throughput and memory of every runtime, each against its own floor.

What is timed is what a device app does: the bare runtime call of the runners
verify uses (Runner.prepared: set, invoke, get on a feed prepared once), with
perf_counter_ns: the first call, then percentiles of single-sequence calls
after a warm-up, then sequences per second at a larger batch. edge-echo's own
wrapper (Runner.infer) is timed apart. Each runtime's floor (floors.py) is
timed the same way in the same process, so model / floor separates the model's
cost from the cost of one call into the runtime. Memory (memory.py) is measured
first, in a child process per row.
"""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import floors, jshost, refdata
from . import manifest as manifest_mod
from . import memory as _memory
from .defaults import DEFAULT_BATCH, DEFAULT_PREDICT_RUNS, DEFAULT_RUNS, DEFAULT_WARMUP
from .errors import HostUnavailable, UsageError
from .probe import check_loadable
from .results import BENCH_SCHEMA
from .runners import BENCH_RUNNERS, Runner, targets
from .tfenv import require_tensorflow, tensorflow_available
from .versions import versions


@dataclass
class Timing:
    runs: int
    warmup: int
    first_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    std_us: float
    batch: int
    sequences_per_s: float
    # p50 of the same call through Runner.infer (dict, dtype conversion, copies): what
    # edge-echo's own wrapper adds is wrapped_p50_us - p50_us, and is not in the figures above.
    wrapped_p50_us: float | None = None  # None: not timed (verify times the bare call only)


def _samples(call, runs: int) -> np.ndarray:
    samples = np.empty(runs, dtype=np.float64)
    clock = time.perf_counter_ns
    for i in range(runs):
        start = clock()
        call()
        samples[i] = clock() - start
    return samples / 1e3


def time_runner(runner: Runner, one: dict[str, np.ndarray], batch: dict[str, np.ndarray],
                runs: int, warmup: int, wrapped: bool = True) -> Timing:
    """Times the bare runtime call (Runner.prepared) on a feed prepared once, as a device app
    makes it: the first call, percentiles of single-sequence calls after a warm-up, and
    sequences per second at a larger batch. The wrapper is timed after, as its own figure.
    A runtime in another process (JavaScript) times its bare call there (Runner.clock)."""
    if hasattr(runner, "clock"):
        return _clocked(runner, one, batch, runs, warmup, wrapped)
    feed_one = one
    call = runner.prepared(feed_one)
    start = time.perf_counter_ns()
    call()
    first = time.perf_counter_ns() - start
    for _ in range(warmup):
        call()
    us = _samples(call, runs)
    wrapped_us = _samples(lambda: runner.infer(feed_one), runs) if wrapped else None
    call_batch = runner.prepared(batch)  # resizes where the file allows it
    call_batch()
    batch_us = _samples(call_batch, max(3, runs // 10))
    p50, p90, p99 = np.percentile(us, [50, 90, 99])
    size = len(next(iter(batch.values())))
    return Timing(runs, warmup, first / 1e3, float(p50), float(p90), float(p99),
                  float(us.mean()), float(us.std()), size,
                  float(size / (np.median(batch_us) / 1e6)),
                  None if wrapped_us is None else float(np.median(wrapped_us)))


def _clocked(runner, one, batch, runs, warmup, wrapped) -> Timing:
    """time_runner for a runtime that times itself: the same figures, taken inside its host.
    A file with a fixed batch of 1 runs a batch one sequence at a time, so its throughput is
    one sequence per single-sequence call."""
    first, us = runner.clock(runner.arrays(one), runs, warmup)
    wrapped_us = _samples(lambda: runner.infer(one), runs) if wrapped else None
    size = len(next(iter(batch.values())))
    if runner.fixed_batch is not None and size != runner.fixed_batch:
        per_sequence = float(np.median(us)) / runner.fixed_batch
    else:
        _, batch_us = runner.clock(runner.arrays(batch), max(3, runs // 10), 1)
        per_sequence = float(np.median(batch_us)) / size
    p50, p90, p99 = np.percentile(us, [50, 90, 99])
    return Timing(runs, warmup, first, float(p50), float(p90), float(p99), float(us.mean()),
                  float(us.std()), size, float(1e6 / per_sequence),
                  None if wrapped_us is None else float(np.median(wrapped_us)))


@dataclass
class BenchRow:
    model: str
    runtime: str
    file: str
    timing: Timing
    floor: Timing
    speedup_vs_predict: float | None = None
    # TFLM rows: the arena the manifest declares, in which the file ran here.
    arena_bytes: int | None = None
    file_bytes: int = 0
    # How far the peak RSS grew to create and run the session or interpreter (memory.py);
    # None with memory_note saying why when it was not measured.
    peak_rss_delta_bytes: int | None = None
    memory_note: str | None = None
    # The manifest's artifact kind of the file, and the sha256 of the bytes that were timed.
    form: str = ""
    sha256: str = ""

    @property
    def floor_ratio(self) -> float:
        return self.timing.p50_us / self.floor.p50_us

    def to_dict(self) -> dict:
        return {"model": self.model, "runtime": self.runtime, "file": self.file,
                "form": self.form, "sha256": self.sha256, "timing": asdict(self.timing),
                "floor": asdict(self.floor),
                "floor_ratio": self.floor_ratio, "speedup_vs_predict": self.speedup_vs_predict,
                "memory": {"file_bytes": self.file_bytes,
                           "peak_rss_delta_bytes": self.peak_rss_delta_bytes,
                           "arena_bytes": self.arena_bytes,
                           **({"note": self.memory_note} if self.memory_note else {})}}


@dataclass
class BenchReport:
    directory: str
    settings: dict
    machine: dict
    rows: list[BenchRow]
    # The C source on device targets: instructions (or Node's time), not host time (device_rows).
    device: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"schema": BENCH_SCHEMA, "directory": self.directory, "settings": self.settings,
                "machine": self.machine,
                "versions": {**versions(), **jshost.installed()}, "rows": [r.to_dict() for r in self.rows],
                "device": self.device}


def device_rows(directory: Path, doc: dict, cores: tuple[str, ...], runs: int = 2000,
                warmup: int = 200) -> tuple[list[dict], str | None]:
    """Per model with C source (or its .wasm) and per device target: flash, deepest stack,
    state, and instructions per sequence and per step (in Node: time per predict call), for
    the first reference sequence. ([], why) where no target can run here."""
    from . import targets

    runnable = tuple(n for n in cores if not targets.unavailable(n))
    if not runnable:
        why = "; ".join(dict.fromkeys(targets.unavailable(n) for n in cores)) if cores else None
        return [], why or "no --targets"
    rows = []
    for model, entry in doc["models"].items():
        kinds = [k for k in ("c_source", "c_int8_source", "wasm")
                 if "c" in entry["artifacts"].get(k, {})]
        if not kinds:
            continue
        ref = refdata.load(manifest_mod.artifact_path(directory, entry["artifacts"]["reference"]))
        x = refdata.inputs(ref, refdata.RANDOM_X, [i["name"] for i in entry["inputs"]])
        for kind in kinds:
            art = entry["artifacts"][kind]
            path = manifest_mod.artifact_path(directory, art)
            first = (targets.pack(art["c"], [x[i["name"]][:1] for i in art["c"]["inputs"]])
                     if art["c"].get("mode") == "whole_sequence" else next(iter(x.values()))[0])
            # The integer C runs where the C source runs, as c@TARGET:int8.
            variant = f":{art['variant']}" if art.get("variant") else ""
            families = targets.measure(path, art["c"], first, runnable,
                                       artifact=art.get("base") or kind, timed=(runs, warmup))
            for family in families.values():
                for core, f in family.get("cores", {}).items():
                    if "measured" in f:
                        continue  # did not build or fit on that target: the manifest says why
                    rows.append({"model": model, "runtime": f"c@{core}{variant}", "core": core,
                                 "file": path.name, "form": manifest_mod.artifact_kind(entry, art),
                                 "sha256": art["sha256"], "method": family["method"], **f})
    return rows, None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _floor_file(kind: str, directory: Path, entry: dict) -> tuple[Path, dict | None]:
    """The floor file of a format, and the manifest entry its runner needs (C, SavedModel)."""
    name_in, name_out = entry["inputs"][0]["name"], entry["outputs"][0]["name"]
    shape_in = entry["inputs"][0]["shape"][1:]
    shape_out = entry["outputs"][0]["shape"][1:]
    if kind == "onnx":
        return floors.onnx_floor(directory / "floor.onnx", name_in, name_out, shape_in,
                                 shape_out), None
    if kind == "ort":
        return floors.ort_floor(directory / "floor.ort", name_in, name_out, shape_in,
                                shape_out), None
    if kind == "tflite":
        return floors.tflite_floor(directory / "floor.tflite", name_in, name_out, shape_in,
                                   shape_out), None
    if kind == "c":
        return floors.c_floor(directory / "floor.c", shape_in, shape_out)
    if kind == "savedmodel":
        return floors.savedmodel_floor(directory / "floor.savedmodel.zip", name_in, name_out,
                                       shape_in, shape_out)
    return floors.keras_floor(directory / "floor.keras", name_in, shape_in, shape_out), None


def check_settings(runs: int, warmup: int, predict_runs: int, batch: int, threads: int) -> None:
    for option, value, low in (("--runs", runs, 1), ("--warmup", warmup, 0),
                               ("--predict-runs", predict_runs, 1), ("--batch", batch, 1),
                               ("--threads", threads, 1)):
        if not low <= value <= 1_000_000:
            raise UsageError(f"{option} must be between {low} and 1000000, got {value}")


def bench(
    directory: Path,
    runtimes: tuple[str, ...] | None = None,
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    predict_runs: int = DEFAULT_PREDICT_RUNS,
    batch: int = DEFAULT_BATCH,
    threads: int = 1,
    models: list[str] | None = None,
    memory: bool = True,
    cores: tuple[str, ...] | None = None,
) -> BenchReport:
    """cores: the device targets the C source (and its .wasm) is measured on (None: all)."""
    check_settings(runs, warmup, predict_runs, batch, threads)
    if not runtimes:
        # On the runtime-only install, time what is installed.
        runtimes = tuple(rt for rt, cls in BENCH_RUNNERS.items()
                         if not cls.reference or tensorflow_available())
    runtimes = tuple(runtimes)
    unknown = [rt for rt in runtimes if rt not in BENCH_RUNNERS]
    if unknown:
        raise UsageError(f"unknown runtime {', '.join(unknown)}; choose from "
                         f"{', '.join(BENCH_RUNNERS)}")
    directory = Path(directory)
    doc = manifest_mod.select_models(manifest_mod.load(directory), models)
    manifest_mod.check_integrity(directory, doc)
    check_loadable(directory, doc)
    settings = {"runs": runs, "warmup": warmup, "predict_runs": predict_runs, "batch": batch,
                "threads": {"requested": threads},
                "timed": ("the bare runtime call on a feed prepared once (set, invoke, get; ORT run; "
                          "the reset of a stateful file); wrapped_p50_us times edge-echo's "
                          "Runner.infer around it"),
                "memory": (_memory.METHOD.format(runs=_memory.RUNS) if memory and _memory.supported()
                           else "not measured" + ("" if memory else " (--no-memory)")
                           + ("" if _memory.supported() else ": needs Linux /proc"))}
    if any(BENCH_RUNNERS[rt].reference for rt in runtimes):
        from .tfenv import configure_threads

        require_tensorflow("benchmarking Keras")
        settings["threads"]["tensorflow"] = configure_threads(threads)

    plan = []  # (model, entry, label, runner class, artifact, path)
    skipped = {rt: BENCH_RUNNERS[rt].unavailable() for rt in runtimes}
    settings["skipped"] = {rt: why for rt, why in skipped.items() if why}
    for model, entry in doc["models"].items():
        chosen = {rt: BENCH_RUNNERS[rt] for rt in runtimes if not skipped[rt]}
        plan += [(model, entry, label, cls, art, manifest_mod.artifact_path(directory, art))
                 for label, cls, art in targets(entry["artifacts"], chosen)]
    # Memory first, in children, so that nothing else runs while this process is timing.
    peaks: list[int | str | None] = [None] * len(plan)
    if memory and _memory.supported():
        # A runtime in another process (Node, Chromium) is not in this one's RSS: said instead.
        here = [k for k, (*_, cls, _, _) in enumerate(plan) if not getattr(cls, "memory_note", None)]
        measured = _memory.measure_all([
            {"cls": cls, "path": path, "artifact": art,
             "inputs": [{"name": i["name"], "shape": [1, *i["shape"][1:]], "dtype": i["dtype"]}
                        for i in entry["inputs"]],
             "outputs": [o["name"] for o in entry["outputs"]], "threads": threads}
            for _, entry, _, cls, art, path in (plan[k] for k in here)])
        for k, peak in zip(here, measured, strict=True):
            peaks[k] = peak
        for k, (*_, cls, _, _) in enumerate(plan):
            if getattr(cls, "memory_note", None):
                peaks[k] = cls.memory_note.format(where=cls.where)

    rows: list[BenchRow] = []
    references: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="edge-echo-floor-") as scratch:
        floor_files: dict[tuple[str, str], Path] = {}
        for (model, entry, label, cls, art, path), peak in zip(plan, peaks, strict=True):
            if model not in references:
                ref = refdata.load(manifest_mod.artifact_path(directory,
                                                              entry["artifacts"]["reference"]))
                references[model] = refdata.inputs(ref, refdata.RANDOM_X,
                                                   [i["name"] for i in entry["inputs"]])
                (Path(scratch) / model).mkdir()
            feed = references[model]
            one = {n: x[:1] for n, x in feed.items()}
            many = {n: np.resize(x, (batch, *x.shape[1:])) for n, x in feed.items()}
            in_names, out_names = ([d["name"] for d in entry[k]] for k in ("inputs", "outputs"))
            in_name, out_name = in_names[0], out_names[0]
            n = predict_runs if label == "keras-predict" else runs
            fmt = art["format"]
            if (model, fmt) not in floor_files:
                floor_files[model, fmt] = _floor_file(fmt, Path(scratch) / model, entry)
            try:
                with cls(path, in_names, out_names, threads=threads, artifact=art) as runner:
                    timing = time_runner(runner, one, many, n, warmup)
                    arena = getattr(runner, "arena_bytes", None)
            except HostUnavailable as exc:  # Node or Chromium did not start here: said
                settings["skipped"][label] = str(exc)
                continue
            floor_path, floor_entry = floor_files[model, fmt]
            with cls(floor_path, [in_name], [out_name], threads=threads,
                     artifact=floor_entry) as fl:
                # The floor takes the first input (as float32) alone.
                floor = time_runner(fl, one, many, n, warmup)
            row = BenchRow(model, label, path.name, timing, floor, arena_bytes=arena,
                           file_bytes=int(art["size"]), form=manifest_mod.artifact_kind(entry, art),
                           sha256=art["sha256"])
            if isinstance(peak, int):
                row.peak_rss_delta_bytes = peak
            else:
                row.memory_note = peak or settings["memory"]
            rows.append(row)
    for model in doc["models"]:
        base = next((r for r in rows if r.model == model and r.runtime == "keras-predict"), None)
        if base is not None:
            for r in rows:
                if r.model == model:
                    r.speedup_vs_predict = base.timing.p50_us / r.timing.p50_us
    machine = {"cpu": cpu_model(), "machine": platform.machine(), "python": platform.python_version()}
    from .targets import TARGET_NAMES

    device, why = device_rows(directory, doc, TARGET_NAMES if cores is None else cores,
                              max(runs, 100), warmup)
    settings["device"] = ("the C source on device targets, the first reference sequence: "
                          "instructions where the target counts them (each row's method), time "
                          "per predict call in Node" if not why else f"not measured: {why}")
    return BenchReport(str(directory), settings, machine, rows, device)


def plot(report: BenchReport, path: Path) -> Path:
    """Per model, two panels: latency (p50 bars, p99 whiskers, model and floor) and memory (file,
    peak-RSS growth, TFLM arena), horizontal bars on log scales so that no label overlaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r.model for r in report.rows))
    most = max(sum(r.model == m for r in report.rows) for m in models)
    height = 1.2 + 0.32 * most
    fig, axes = plt.subplots(2, len(models), figsize=(5.2 * len(models), 2 * height),
                             squeeze=False)
    for column, model in enumerate(models):
        rows = [r for r in report.rows if r.model == model][::-1]  # first row on top
        pos = np.arange(len(rows))
        labels = [r.runtime for r in rows]
        ax = axes[0][column]
        for offset, key, label, color in ((0.2, "timing", "model", "#2a6f97"),
                                          (-0.2, "floor", "floor (trivial model)", "#b0b0b0")):
            timings = [getattr(r, key) for r in rows]
            p50 = np.array([t.p50_us for t in timings])
            p99 = np.array([t.p99_us for t in timings])
            ax.barh(pos + offset, p50, 0.38, label=label, color=color,
                    xerr=[np.zeros_like(p50), p99 - p50], capsize=2)
        ax.set_xscale("log")
        ax.set_yticks(pos, labels, fontsize=8)
        ax.set_xlabel("latency, batch 1 (µs; bar p50, whisker p99)", fontsize=8)
        ax.set_title(model)
        ax.grid(axis="x", which="both", alpha=0.3)
        ax = axes[1][column]
        for offset, key, label, color in ((0.27, "file_bytes", "file", "#6a994e"),
                                          (0.0, "peak_rss_delta_bytes", "peak RSS growth",
                                           "#bc4749"),
                                          (-0.27, "arena_bytes", "TFLM arena", "#f2a541")):
            values = np.array([getattr(r, key) or 0 for r in rows], dtype=float) / 1024
            ax.barh(pos + offset, np.where(values > 0, values, np.nan), 0.26, label=label,
                    color=color)
        ax.set_xscale("log")
        ax.set_yticks(pos, labels, fontsize=8)
        ax.set_xlabel("memory (KiB)", fontsize=8)
        ax.grid(axis="x", which="both", alpha=0.3)
    # Legends above the panels, never over a bar.
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper left", ncol=2, fontsize=8)
    fig.legend(*axes[1][0].get_legend_handles_labels(), loc="upper right", ncol=3, fontsize=8)
    fig.suptitle(f"edge-echo bench: bare runtime call ({report.settings['threads']['requested']} "
                 f"thread, {report.machine['cpu']})", fontsize=10, y=0.985)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
