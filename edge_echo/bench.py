"""Latency and throughput of every runtime, each against its own floor.

The same runners verify uses are timed with perf_counter_ns: the first call,
then percentiles of single-sequence calls after a warm-up, then sequences per
second at a larger batch. Each runtime's floor (floors.py) is timed the same
way in the same process, so model / floor separates the model's cost from the
cost of one call into the runtime.
"""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import floors, refdata
from . import manifest as manifest_mod
from .errors import UsageError
from .probe import check_loadable
from .runners import BENCH_RUNNERS, Runner, targets
from .tfenv import require_tensorflow, tensorflow_available
from .versions import versions

DEFAULT_RUNS = 300
DEFAULT_WARMUP = 20
# model.predict costs tens of milliseconds a call; it gets fewer runs.
DEFAULT_PREDICT_RUNS = 20
DEFAULT_BATCH = 64


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


def time_runner(runner: Runner, name: str, one: np.ndarray, batch: np.ndarray,
                runs: int, warmup: int) -> Timing:
    feed_one, feed_batch = {name: one}, {name: batch}
    start = time.perf_counter_ns()
    runner.infer(feed_one)
    first = time.perf_counter_ns() - start
    for _ in range(warmup):
        runner.infer(feed_one)
    samples = np.empty(runs, dtype=np.float64)
    for i in range(runs):
        start = time.perf_counter_ns()
        runner.infer(feed_one)
        samples[i] = time.perf_counter_ns() - start
    runner.infer(feed_batch)  # resize and warm at the larger batch
    batch_runs = max(3, runs // 10)
    batch_samples = np.empty(batch_runs, dtype=np.float64)
    for i in range(batch_runs):
        start = time.perf_counter_ns()
        runner.infer(feed_batch)
        batch_samples[i] = time.perf_counter_ns() - start
    us = samples / 1e3
    p50, p90, p99 = np.percentile(us, [50, 90, 99])
    return Timing(runs, warmup, first / 1e3, float(p50), float(p90), float(p99),
                  float(us.mean()), float(us.std()), len(batch),
                  float(len(batch) / (np.median(batch_samples) / 1e9)))


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

    @property
    def floor_ratio(self) -> float:
        return self.timing.p50_us / self.floor.p50_us

    def to_dict(self) -> dict:
        return {"model": self.model, "runtime": self.runtime, "file": self.file,
                "timing": asdict(self.timing), "floor": asdict(self.floor),
                "floor_ratio": self.floor_ratio, "speedup_vs_predict": self.speedup_vs_predict,
                "arena_bytes": self.arena_bytes}


@dataclass
class BenchReport:
    directory: str
    settings: dict
    machine: dict
    rows: list[BenchRow]

    def to_dict(self) -> dict:
        return {"directory": self.directory, "settings": self.settings, "machine": self.machine,
                "versions": versions(), "rows": [r.to_dict() for r in self.rows]}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _floor_file(kind: str, directory: Path, entry: dict) -> Path:
    name_in, name_out = entry["inputs"][0]["name"], entry["outputs"][0]["name"]
    shape_in = entry["inputs"][0]["shape"][1:]
    shape_out = entry["outputs"][0]["shape"][1:]
    if kind == "onnx":
        return floors.onnx_floor(directory / "floor.onnx", name_in, name_out, shape_in, shape_out)
    if kind == "tflite":
        return floors.tflite_floor(directory / "floor.tflite", name_in, name_out, shape_in, shape_out)
    return floors.keras_floor(directory / "floor.keras", name_in, shape_in, shape_out)


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
) -> BenchReport:
    check_settings(runs, warmup, predict_runs, batch, threads)
    if not runtimes:
        # On the runtime-only install, time what is installed.
        runtimes = tuple(rt for rt, cls in BENCH_RUNNERS.items()
                         if cls.artifact != "keras" or tensorflow_available())
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
                "threads": {"requested": threads}}
    if any(BENCH_RUNNERS[rt].artifact == "keras" for rt in runtimes):
        from .tfenv import configure_threads

        require_tensorflow("benchmarking Keras")
        settings["threads"]["tensorflow"] = configure_threads(threads)

    rows: list[BenchRow] = []
    with tempfile.TemporaryDirectory(prefix="edge-echo-floor-") as scratch:
        for model, entry in doc["models"].items():
            arts = entry["artifacts"]
            ref = refdata.load(manifest_mod.artifact_path(directory, arts["reference"]))
            x = ref[refdata.RANDOM_X]
            one = x[:1]
            many = np.resize(x, (batch, *x.shape[1:]))
            in_name, out_name = entry["inputs"][0]["name"], entry["outputs"][0]["name"]
            floor_dir = Path(scratch) / model
            floor_dir.mkdir()
            floor_files: dict[str, Path] = {}
            chosen = {rt: BENCH_RUNNERS[rt] for rt in runtimes}
            for label, cls, art in targets(arts, chosen):
                n = predict_runs if label == "keras-predict" else runs
                fmt = art["format"]
                if fmt not in floor_files:
                    floor_files[fmt] = _floor_file(fmt, floor_dir, entry)
                path = manifest_mod.artifact_path(directory, art)
                with cls(path, [in_name], [out_name], threads=threads, artifact=art) as runner:
                    timing = time_runner(runner, in_name, one, many, n, warmup)
                    arena = getattr(runner, "arena_bytes", None)
                with cls(floor_files[fmt], [in_name], [out_name], threads=threads) as fl:
                    floor = time_runner(fl, in_name, one, many, n, warmup)
                rows.append(BenchRow(model, label, path.name, timing, floor, arena_bytes=arena))
            base = next((r for r in rows if r.model == model and r.runtime == "keras-predict"), None)
            if base is not None:
                for r in rows:
                    if r.model == model:
                        r.speedup_vs_predict = base.timing.p50_us / r.timing.p50_us
    machine = {"cpu": cpu_model(), "machine": platform.machine(), "python": platform.python_version()}
    return BenchReport(str(directory), settings, machine, rows)


def plot(report: BenchReport, path: Path) -> Path:
    """Per model: p50 bars with p99 whiskers for each runtime and its floor, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r.model for r in report.rows))
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.8), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        rows = [r for r in report.rows if r.model == model]
        pos = np.arange(len(rows))
        for offset, key, label, color in ((-0.2, "timing", "model", "#2a6f97"),
                                          (0.2, "floor", "floor (trivial model)", "#b0b0b0")):
            timings = [getattr(r, key) for r in rows]
            p50 = np.array([t.p50_us for t in timings])
            p99 = np.array([t.p99_us for t in timings])
            ax.bar(pos + offset, p50, 0.38, label=label, color=color,
                   yerr=[np.zeros_like(p50), p99 - p50], capsize=3)
        ax.set_yscale("log")
        ax.set_xticks(pos, [r.runtime for r in rows], rotation=20)
        ax.set_ylabel("latency, batch 1 (µs; bar p50, whisker p99)")
        ax.set_title(model)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].legend(loc="upper right")
    fig.suptitle(f"edge-echo bench ({report.settings['threads']['requested']} thread, "
                 f"{report.machine['cpu']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
