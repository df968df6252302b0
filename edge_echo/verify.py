"""Integrity check, then every runtime against the Keras reference, one report.

After Polygraphy's comparator: the same inputs go through every runner, and
each output is compared with the reference by compare.compare. The reference
is the Keras output stored at export (seed input and stored random inputs)
and, when Keras runs here, the live Keras output on fresh random inputs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import jshost, refdata
from . import manifest as manifest_mod
from .bench import time_runner
from .compare import DEFAULT_TOLERANCE, Comparison, EchoCheck, Tolerance, compare, echo_check, top1
from .defaults import DEFAULT_SAMPLES, DEFAULT_VERIFY_SEED
from .errors import ArtifactError, HostUnavailable, UsageError
from .probe import check_loadable
from .results import VERIFY_SCHEMA
from .runners import RUNNERS, Runner, labels_for, targets
from .tfenv import tensorflow_available
from .versions import versions

BATCH_SIZES = (1, 7, 64)
MAX_SAMPLES = 100_000
# Points of each runtime's parity plot kept in the JSON (evenly spaced over the stored inputs).
PARITY_POINTS = 64


@dataclass
class Check:
    inputs: str
    batch: int
    samples: int
    comparisons: list[Comparison]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)


@dataclass
class RuntimeResult:
    model: str
    runtime: str
    file: str
    tolerance: Tolerance
    checks: list[Check] = field(default_factory=list)
    echo: EchoCheck | None = None
    looped: bool = False
    # Median latency of one sequence (batch 1), timed as bench times it.
    p50_us: float | None = None
    # For a stateful file: the largest change in the second of two runs of one sequence when
    # the reset the contract asks for is skipped (how much the contract matters).
    without_reset: float | None = None
    # (Keras, this runtime) on the stored reference inputs at the largest batch: the parity plot.
    parity: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    # The manifest's artifact kind of the file, and the sha256 of the bytes that were run.
    form: str = ""
    sha256: str = ""
    # Per probability output (softmax or sigmoid): top-1 agreement with Keras on the stored
    # reference inputs (compare.top1).
    top1: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (all(c.passed for c in self.checks) and (self.echo is None or self.echo.passed)
                and all(t["passed"] for t in self.top1))

    @property
    def max_abs(self) -> float:
        return max((c.max_abs for ch in self.checks for c in ch.comparisons), default=0.0)

    @property
    def max_rel(self) -> float:
        return max((c.max_rel for ch in self.checks for c in ch.comparisons), default=0.0)

    @property
    def used(self) -> float:
        """The worst |diff| / allowed over every check: how close this runtime came to failing."""
        return max((c.used for ch in self.checks for c in ch.comparisons), default=0.0)

    def failures(self) -> list[str]:
        lines = []
        for check in self.checks:
            for c in check.comparisons:
                if c.passed:
                    continue
                where = f"{self.model} / {self.runtime}: output '{c.output}' on {check.inputs}"
                if c.error:
                    lines.append(f"{where} (batch {check.batch}): {c.error}")
                    continue
                lines.append(
                    f"{where} (batch {check.batch}): worst element {list(c.worst_index)} "
                    f"got {c.worst_actual:.7g}, expected {c.worst_expected:.7g} "
                    f"(|diff| {c.max_abs:.3g}); needs atol >= {c.min_atol:.3g} at rtol "
                    f"{self.tolerance.rtol:g}, have atol {self.tolerance.atol:g}"
                )
        for t in self.top1:
            if not t["passed"]:
                lines.append(f"{self.model} / {self.runtime}: output '{t['output']}' picks Keras's "
                             f"class in {t['agreement']:.1%} of {t['decisions']} decisions on the "
                             f"reference inputs; needs {t['required']:.0%}")
        if self.echo is not None and not self.echo.passed:
            lines.append(
                f"{self.model} / {self.runtime}: echo check failed: printed "
                f"{' '.join(self.echo.printed)}, expected {' '.join(self.echo.expected)}"
            )
        return lines

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "runtime": self.runtime,
            "file": self.file,
            "form": self.form,
            "sha256": self.sha256,
            "passed": self.passed,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "worst_diff_over_allowed": self.used,
            "tolerance": asdict(self.tolerance),
            "looped": self.looped,
            "p50_us": self.p50_us,
            "without_reset_max_abs": self.without_reset,
            "echo": self.echo.to_dict() if self.echo else None,
            "top1": self.top1,
            "checks": [
                {"inputs": c.inputs, "batch": c.batch, "samples": c.samples, "passed": c.passed,
                 "comparisons": [x.to_dict() for x in c.comparisons]}
                for c in self.checks
            ],
            "failures": self.failures(),
            "parity": self.parity_points(),
        }

    def parity_points(self) -> dict | None:
        """Up to PARITY_POINTS (Keras, runtime) pairs of the first output on the stored inputs,
        evenly spaced, the worst element always among them: what a parity plot draws."""
        if self.parity is None:
            return None
        expected, actual = (np.asarray(a, dtype=np.float64) for a in self.parity)
        if expected.shape != actual.shape:
            return None
        picked = set(np.linspace(0, expected.size - 1, min(PARITY_POINTS, expected.size))
                     .round().astype(int).tolist())
        with np.errstate(invalid="ignore"):
            diff = np.where(np.isfinite(actual), np.abs(actual - expected), np.inf)
        picked.add(int(np.argmax(diff)))
        index = sorted(picked)
        return {"keras": [float(expected[i]) for i in index],
                "runtime": [float(actual[i]) if np.isfinite(actual[i]) else None for i in index],
                "of": int(expected.size)}


@dataclass
class Report:
    directory: str
    keras: bool
    samples: int
    seed: int
    batch_sizes: tuple[int, ...]
    results: list[RuntimeResult]
    notes: list[str]
    files_checked: list[str]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def to_dict(self) -> dict:
        return {
            "schema": VERIFY_SCHEMA,
            "directory": self.directory,
            "passed": self.passed,
            "keras": self.keras,
            "inputs": {
                "seed": "the seed sequence of each model (echo check)",
                "reference": f"random inputs stored at export, at batch sizes {list(self.batch_sizes)}",
                "random": (f"{self.samples} fresh inputs drawn as the stored ones were (uniform in "
                           f"each input's range; token ids within the vocabulary), seed {self.seed}, "
                           f"at batch sizes {list(self.batch_sizes)}" if self.keras
                           else "skipped: needs Keras"),
            },
            "samples": self.samples,
            "seed": self.seed,
            "batch_sizes": list(self.batch_sizes),
            "default_tolerance": asdict(DEFAULT_TOLERANCE),
            "integrity": {"sha256_checked": self.files_checked},
            "notes": self.notes,
            "versions": {**versions(), **jshost.installed()},
            "results": [r.to_dict() for r in self.results],
        }


def check_samples(samples: int) -> int:
    if not 1 <= samples <= MAX_SAMPLES:
        raise UsageError(f"--samples must be between 1 and {MAX_SAMPLES}, got {samples}")
    return samples


def tolerance_for(entry: dict, runtime: str, atol: float | None, rtol: float | None) -> Tolerance:
    # A device runtime (c@cortex-m4) takes its host form's tolerance where an export made
    # before it existed has none of its own.
    tolerances = entry.get("tolerances", {})
    stored = (tolerances.get(runtime) or _same_file(entry, runtime)
              or tolerances.get(runtime.partition("@")[0]) or {})
    base = Tolerance(float(stored.get("atol", DEFAULT_TOLERANCE.atol)),
                     float(stored.get("rtol", DEFAULT_TOLERANCE.rtol)))
    return Tolerance(base.atol if atol is None else atol, base.rtol if rtol is None else rtol)


def _same_file(entry: dict, label: str) -> dict | None:
    """A variant's tolerance is its file's (derived from its precision), whichever runtime runs
    it: an export made before a runtime existed (litert-compiled:int8) has it under another
    runtime of the same file (litert:int8)."""
    runtime, _, variant = label.partition(":")
    if not variant or runtime not in RUNNERS:
        return None
    tolerances = entry.get("tolerances", {})
    return next((tolerances[other] for other in labels_for(RUNNERS[runtime].artifact, variant)
                 if other in tolerances), None)


def verify(
    directory: Path,
    keras: bool = True,
    samples: int = DEFAULT_SAMPLES,
    seed: int = DEFAULT_VERIFY_SEED,
    atol: float | None = None,
    rtol: float | None = None,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    threads: int = 1,
    latency_runs: int = 100,
    models: list[str] | None = None,
    cores: tuple[str, ...] | None = None,
) -> Report:
    """cores: the device targets (targets/) whose c@ and c-step@ runtimes run (None: all)."""
    check_samples(samples)
    if atol is not None or rtol is not None:
        Tolerance(atol or 0.0, rtol or 0.0)  # validates the overrides before any work
    if keras and not tensorflow_available():
        raise UsageError("TensorFlow is not installed here; add --no-keras to verify against "
                         "the Keras outputs stored at export")
    directory = Path(directory)
    doc = manifest_mod.select_models(manifest_mod.load(directory), models)
    files_checked = manifest_mod.check_integrity(directory, doc)
    check_loadable(directory, doc)

    runners_here = {rt: cls for rt, cls in RUNNERS.items() if (keras or not cls.reference)
                    and (cores is None or getattr(cls, "target", None) in (None, *cores))}
    cannot = {rt: cls.unavailable() for rt, cls in runners_here.items()}
    cannot = {rt: why for rt, why in cannot.items() if why}
    runners_here = {rt: cls for rt, cls in runners_here.items() if rt not in cannot}
    results: list[RuntimeResult] = []
    notes: list[str] = []
    skipped: dict[str, list[str]] = {}  # one line per reason: a family's runtimes share one
    for rt, why in cannot.items():
        if any(RUNNERS[rt].artifact in e["artifacts"] for e in doc["models"].values()):
            skipped.setdefault(why, []).append(rt)
    notes += [f"{', '.join(rts)} skipped: {why}" for why, rts in skipped.items()]
    emulated = [rt for rt, cls in runners_here.items() if getattr(cls, "emulated", False)
                and any(cls.artifact in e["artifacts"] for e in doc["models"].values())]
    if emulated:
        notes.append(f"{', '.join(emulated)}: the C source on device targets (emulated cores: "
                     "qemu-system-arm, qemu-system-riscv32, qemu-aarch64; WebAssembly in Node), "
                     f"one sequence at a time as on the device, on the first {EMULATED_SEQUENCES} "
                     "sequences of each set; not timed here (bench gives their instructions)")
    for name, entry in doc["models"].items():
        arts = entry["artifacts"]
        ref = refdata.load(manifest_mod.artifact_path(directory, arts["reference"]))
        in_names = [i["name"] for i in entry["inputs"]]
        out_names = [o["name"] for o in entry["outputs"]]
        sets = []
        # The echo models' seed input is the sequence itself: the echo reads it back.
        has_seed = refdata.SEED_X in ref
        if has_seed:
            sets.append(("seed", {in_names[0]: ref[refdata.SEED_X]},
                         refdata.outputs(ref, refdata.SEED_Y, out_names),
                         (len(ref[refdata.SEED_X]),)))
        stored = refdata.inputs(ref, refdata.RANDOM_X, in_names)
        sets.append(("reference", stored, refdata.outputs(ref, refdata.RANDOM_Y, out_names),
                     batch_sizes))
        fresh = None
        if keras:
            # Drawn as the stored ones were: each input in its range, token ids in the vocabulary.
            fresh = refdata.draw(entry["inputs"], samples, seed,
                                 arts["reference"].get("random_inputs", {}))
        one = {n: x[:1] for n, x in stored.items()}

        runners: dict[str, Runner] = {}
        entered: list[Runner] = []  # what the finally closes, whatever failed
        try:
            planned = [(label, cls, cls(manifest_mod.artifact_path(directory, art), in_names,
                                        out_names, threads=threads, artifact=art))
                       for label, cls, art in targets(arts, runners_here)]
            # An emulated runner builds a firmware as it activates: those build side by side
            # while the host runners open.
            with ThreadPoolExecutor(max_workers=2) as pool:
                building = {label: pool.submit(_enter, runner, entered) for label, cls, runner in planned
                            if getattr(cls, "emulated", False)}
                opened, hostless = {}, {}
                for label, _, runner in planned:
                    if label in building:
                        continue
                    try:
                        opened[label] = _enter(runner, entered)
                    except HostUnavailable as exc:  # this machine's, not the file's: said once
                        hostless.setdefault(str(exc), []).append(label)
                notes += [f"{name}: {', '.join(labels)} not run: {why}"
                          for why, labels in hostless.items()]
                for label, future in building.items():
                    try:
                        opened[label] = future.result()
                    except ArtifactError as exc:
                        # A model too big for a core's memory is a fact about that core, not a
                        # wrong conversion: said, not failed.
                        notes.append(f"{name}: {label} not run: {exc}")
            runners = {label: opened[label] for label, _, _ in planned if label in opened}
            # Keras, or TensorFlow on a serving graph: the model's own framework.
            reference = next((rt for rt, r in runners.items() if r.reference), None)
            if fresh is not None and reference is not None:
                expected = runners[reference].infer(fresh)
                model_sets = sets + [("random", fresh, expected, batch_sizes)]
            else:
                model_sets = sets
            for rt, runner in runners.items():
                result = RuntimeResult(name, rt, runner.path.name,
                                       tolerance_for(entry, rt, atol, rtol),
                                       form=manifest_mod.artifact_kind(entry, runner.entry),
                                       sha256=runner.entry["sha256"])
                device = getattr(runner, "emulated", False)
                for label, x, y, batches in model_sets:
                    if rt == reference and label == "random":
                        continue  # Keras is the reference there
                    if device:  # one emulator run per set: a device has no batch
                        x, y = _first(x, EMULATED_SEQUENCES), _first(y, EMULATED_SEQUENCES)
                        batches = (len(next(iter(x.values()))),)
                    for batch in batches:
                        got = _run_batched(runner, x, batch)
                        result.checks.append(Check(label, batch, len(next(iter(x.values()))), [
                            compare(o, got[o], y[o], result.tolerance) for o in out_names
                        ]))
                        if label == "reference" and batch == max(batches):
                            result.parity = (np.ravel(y[out_names[0]]),
                                             np.ravel(got[out_names[0]]))
                            result.top1 = [
                                top1(o["name"], got[o["name"]], y[o["name"]], o["probability"],
                                     result.tolerance.atol)
                                for o in entry["outputs"] if o.get("probability")
                                and got[o["name"]].shape == y[o["name"]].shape]
                if has_seed:
                    seed_out = runner.infer({in_names[0]: ref[refdata.SEED_X]})[out_names[0]]
                    result.echo = echo_check(seed_out, ref[refdata.SEED_X].ravel())
                if latency_runs and not device and not runner.untimed:
                    result.p50_us = time_runner(runner, one, one, latency_runs,
                                                warmup=10, wrapped=False).p50_us
                result.looped = runner.looped
                if runner.stateful:
                    result.without_reset = reset_effect(runner, one)
                results.append(result)
            for art in arts.values():
                by_reason: dict[str, list[str]] = {}
                for rt, why in art.get("not_on", {}).items():
                    by_reason.setdefault(why, []).append(rt)
                for why, rts in by_reason.items():
                    notes.append(f"{name}: {art['file']} is not run on {', '.join(rts)}: {why} "
                                 "(measured at export)")
            looped = [rt for rt, r in runners.items() if r.looped]
            if looped:
                notes.append(f"{name}: {', '.join(looped)} run files with a fixed batch of 1; "
                             "batches were fed one sequence at a time")
            kept = {r.runtime: r.without_reset for r in results
                    if r.model == name and r.without_reset is not None}
            if kept:
                notes.append(f"{name}: stateful files, reset before each sequence as their "
                             "contract says; run twice without the reset, the same sequence gave "
                             + ", ".join(f"{rt} |diff| {d:.2g}" for rt, d in kept.items()))
        finally:
            for runner in entered:
                runner.__exit__(None, None, None)
    if not keras:
        notes.append("--no-keras: compared with the Keras outputs stored at export; "
                     "fresh random inputs skipped (they need a live Keras reference)")
    return Report(str(directory), keras, samples, seed, tuple(batch_sizes), results, notes,
                  files_checked)


# An emulated core runs at a few hundred million instructions a second: a user's LSTM(32) over
# 120 steps costs 150 million on a Cortex-M0. Each set is checked on its first sequences.
EMULATED_SEQUENCES = 16


def _first(arrays: dict[str, np.ndarray], count: int) -> dict[str, np.ndarray]:
    return {k: v[:count] for k, v in arrays.items()}


def reset_effect(runner: Runner, feed: dict[str, np.ndarray]) -> float:
    """Run one sequence twice, skipping the reset before the second run: how far it moves."""
    runner.reset()
    first = runner.infer(feed)
    runner.reset_per_sequence = False
    try:
        second = runner.infer(feed)
    finally:
        runner.reset_per_sequence = True
    return float(max(np.max(np.abs(second[k] - first[k])) for k in first))


def _enter(runner: Runner, entered: list[Runner]) -> Runner:
    """Activates runner and records it in entered (for its __exit__), from any thread."""
    entered.append(runner.__enter__())
    return runner


def _run_batched(runner: Runner, feed: dict[str, np.ndarray], batch: int) -> dict:
    count = len(next(iter(feed.values())))
    pieces = runner.infer_batches([{n: x[i:i + batch] for n, x in feed.items()}
                                   for i in range(0, count, batch)])
    out = {}
    for k in pieces[0]:
        shapes = sorted({tuple(p[k].shape[1:]) for p in pieces})
        if len(shapes) > 1:
            raise ArtifactError(f"{runner.path.name}: {runner.runtime} returned '{k}' in shapes "
                                f"{' and '.join(str(list(s)) for s in shapes)} for batches of {batch}")
        out[k] = np.concatenate([p[k] for p in pieces])
    return out


def plot(report: Report, path: Path) -> Path:
    """Per model: each runtime's output against Keras on the stored reference inputs (parity),
    and below it the difference, on a symmetric log scale so that 1e-7 and 1e-2 both show."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r.model for r in report.results))
    fig, axes = plt.subplots(2, len(models), figsize=(5.6 * len(models), 9.5), squeeze=False)
    for column, model in enumerate(models):
        results = [r for r in report.results if r.model == model and r.parity is not None]
        top, bottom = axes[0][column], axes[1][column]
        low = min(float(np.min(r.parity[0])) for r in results)
        high = max(float(np.max(r.parity[0])) for r in results)
        top.plot([low, high], [low, high], color="black", linewidth=0.8, label="y = x")
        for k, r in enumerate(results):
            expected, actual = r.parity
            marker = "x" if not r.passed else "o"
            top.scatter(expected, actual, s=6, marker=marker, color=f"C{k % 10}", alpha=0.6,
                        label=f"{r.runtime}{'' if r.passed else ' (FAIL)'}")
            bottom.scatter(expected, actual - expected, s=6, marker=marker, color=f"C{k % 10}",
                           alpha=0.6)
        top.set_title(model)
        top.set_xlabel("Keras")
        top.set_ylabel("runtime")
        top.grid(alpha=0.3)
        bottom.set_yscale("symlog", linthresh=1e-8)
        bottom.set_xlabel("Keras")
        bottom.set_ylabel("runtime - Keras")
        bottom.grid(alpha=0.3)
        top.legend(fontsize=6.5, markerscale=2, loc="upper left")
    fig.suptitle(f"edge-echo verify {report.directory}: every runtime against Keras, stored "
                 "reference inputs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
