"""The edge-echo command line: parses options, calls the library, renders results.

No training, conversion or comparison happens here. Exit codes: 0 ok,
1 verification failed, 2 usage or artifact error, 3 export written but some
requested variants could not be produced, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from .defaults import (
    DEFAULT_BATCH,
    DEFAULT_LENGTH,
    DEFAULT_PREDICT_RUNS,
    DEFAULT_RUNS,
    DEFAULT_SAMPLES,
    DEFAULT_SEED,
    DEFAULT_VERIFY_SEED,
    DEFAULT_WARMUP,
)
from .errors import EdgeEchoError


def _conventional_metavars() -> None:
    """Typer (0.29) prints a Python type beside every parameter in --help: <path> beside an
    argument already named DIR, <bool> beside flags (--help included). An argument with a
    metavar and a flag get none; other options keep the metavar each one sets. The usage line
    reads FILE VALUES... [DIR], not {FILE} {VALUES}...: braces mean a choice by convention."""
    from typer import core

    def usage_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")

    core.TyperArgument._usage_display_name = usage_name
    argument_type = core.TyperArgument.display_type_rich
    option_type = core.TyperOption.display_type_rich
    core.TyperArgument.display_type_rich = (
        lambda self, ctx: None if self.metavar else argument_type(self, ctx))
    core.TyperOption.display_type_rich = (
        lambda self, ctx: None if self.is_flag else option_type(self, ctx))


_conventional_metavars()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Export the Keras LSTM echo models to TFLite and ONNX, and prove they still echo.",
)
# Off a terminal rich assumes 80 columns, which folds the tables in CI logs.
out_console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

EXIT_FAILED, EXIT_ERROR, EXIT_PARTIAL, EXIT_INTERRUPTED = 1, 2, 3, 130


def print_table(table: Table) -> None:
    """A table on stdout. Piped (CI logs, | tee), it gets the width it needs: no cell is cut."""
    if sys.stdout.isatty():
        out_console.print(table)
        return
    # Rich caps a measurement at the console's width: measure on a console wide enough.
    width = max(120, Console(width=10_000).measure(table).maximum)
    Console(width=width).print(table)


MODELS_HELP = "Models of the export to use (repeat or comma-separate). Default: all."
FORMS_HELP = ("Files to write beside the .keras and the reference data (repeat or comma-separate): "
              "tflite, onnx, tflite_step, onnx_step, tflite_micro, tflite_micro_int8, "
              "tflite_micro_step, ort, tflite_web, wasm. Default: every one the model has but wasm "
              "(ort: an ONNX Runtime Mobile .ort beside each .onnx; tflite_web: a .web.tflite, batch "
              "fixed at 1 for LiteRT.js, beside each dynamic-batch .tflite; wasm: the C source "
              "compiled for WebAssembly, NAME.wasm with its loader NAME.mjs, also written with "
              "--c-source).")
TARGETS_HELP = ("Device targets for the runtimes c@TARGET and c-step@TARGET (the C source on "
                "emulated cores, or its .wasm in Node): cortex-m0, cortex-m3, cortex-m4, cortex-m7, "
                "cortex-m33, cortex-m55 (or m4), riscv32imac, riscv32imafc, aarch64, wasm32, the "
                "families cortex-m and riscv (repeat or comma-separate), all or none. Default: all.")


@contextlib.contextmanager
def user_errors():
    """One line on stderr and a meaningful exit code instead of a traceback."""
    try:
        yield
    except EdgeEchoError as exc:
        err_console.print(f"edge-echo: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("edge-echo: interrupted; nothing was changed", markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _version(value: bool):
    if value:
        from .versions import versions

        out_console.print(f"edge-echo {versions(('edge-echo',))['edge-echo']}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True,
                           metavar="", help="Print the version and exit.")
    ] = False,
) -> None:
    """edge-echo: take the Keras LSTM echo models to the edge and prove they behave the same."""


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Directory to write the export into "
                                      "(replaced whole, atomically).")] = Path("exported"),
    models: Annotated[Optional[list[str]], typer.Option(
        "--models", "-m", metavar="MODELS", help="Models to export: one-to-one, many-to-one, many-to-many "
        "(repeat or comma-separate). Default: all three.")] = None,
    length: Annotated[int, typer.Option(
        metavar="N", help="Sequence length (1-128); the LSTM has as many units.")] = DEFAULT_LENGTH,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed for weights and reference inputs.",
                                      min=0, max=2**31 - 1)] = DEFAULT_SEED,
    epochs: Annotated[Optional[int], typer.Option(
        metavar="N", help="Override the seed configuration's epochs (for quick runs).")] = None,
    c_array: Annotated[bool, typer.Option(
        "--c-array", metavar="", help="Also write each micro form as a C array (NAME_model_data.h/.cc) for "
        "TensorFlow Lite Micro, with its arena size.")] = False,
    c_source: Annotated[bool, typer.Option(
        "--c-source", help="Also write NAME.c and NAME.h: the model as plain C99, no runtime "
        "(verified as the runtimes c and c-step).")] = False,
    quantize: Annotated[Optional[list[str]], typer.Option(
        metavar="VARIANTS", help="Also write quantized variants: dynamic, float16, int8 (comma-separate; "
        "FORMAT:VARIANT for one format, e.g. onnx:dynamic). Exit 3 if any cannot be made.")] = None,
    retrain: Annotated[bool, typer.Option(
        metavar="", help="Train and convert again even when the previous export in --out has weights "
        "and files made from the same spec, seed and versions (reused by default).")] = False,
    forms: Annotated[Optional[list[str]], typer.Option(
        metavar="FORMS", help=FORMS_HELP)] = None,
    jobs: Annotated[Optional[int], typer.Option(
        "--jobs", "-j", metavar="N", min=1, max=256, help="Models exported at once, each in a worker "
        "process of its own; 1 exports them one after another in this process (the same bytes "
        "either way). Default: the number of cores.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q",
        metavar="", help="Print nothing on success.")] = False,
) -> None:
    """Train the echo models and write .keras, .tflite, .onnx, reference data and manifest.json."""
    with user_errors():
        from .convert.quantize import parse as parse_quantize
        from .export import export as run_export
        from .forms import parse_forms
        from .specs import parse_model_names

        names = parse_model_names(models)
        variants = parse_quantize(quantize)
        kinds = parse_forms(forms)
        with _progress(quiet) as report:
            result = run_export(out, names, length=length, seed=seed, epochs=epochs,
                                progress=report, retrain=retrain, c_array=c_array,
                                c_source=c_source,
                                quantize=variants, forms=kinds, jobs=jobs)
        if not quiet:
            _render_export(result)
        for line in result.missing:
            err_console.print(f"edge-echo: {line}", markup=False, highlight=False, soft_wrap=True)
        if result.missing:
            raise typer.Exit(EXIT_PARTIAL)


@contextlib.contextmanager
def _progress(quiet: bool):
    if quiet:
        yield lambda model, stage: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("importing TensorFlow")

        def report(model: str, stage: str) -> None:
            progress.update(task, description=f"{model}: {stage}" if model else stage)

        yield report


def _say_reused(name: str, files: list[str]) -> None:
    """Which files were taken from the previous export (each re-hashed and probed again)."""
    out_console.print(f"{name}: reused {len(files)} file{'s' * (len(files) != 1)} made from the "
                      f"same inputs (re-hashed and probed): {', '.join(files)}", markup=False,
                      highlight=False, soft_wrap=True)


def _render_export(result) -> None:
    table = Table(title=f"edge-echo export -> {result.directory}", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for col in ("model", "params", "loss", "weights", "keras echo", "KiB .keras", ".tflite",
                ".onnx", "ops tflite", "onnx"):
        table.add_column(col, justify="left" if col in ("model", "keras echo") else "right",
                         no_wrap=True)
    for m in result.models:
        arts = m.entry["artifacts"]
        table.add_row(
            m.spec.name, str(m.spec.param_count), f"{m.final_loss:.3g}",
            "reused" if m.reused else f"trained {m.train_seconds:.1f}s",
            ("" if m.echo_passed else "[red]") + " ".join(m.keras_echo),
            *(f"{arts[k]['size'] / 1024:.1f}" if k in arts else "-"
              for k in ("keras", "tflite", "onnx")),
            *(str(sum(arts[k]["operators"].values())) if k in arts else "-"
              for k in ("tflite", "onnx")),
        )
    print_table(table)
    for m in result.models:
        if m.reused_files:
            _say_reused(m.spec.name, m.reused_files)
    for m in result.models:
        if not m.echo_passed:
            err_console.print(f"warning: {m.spec.name} did not learn the echo at this seed "
                              f"(Keras prints {' '.join(m.keras_echo)}); verify will fail it. "
                              "Try another --seed or more --epochs.", markup=False)


@app.command()
def convert(
    model: Annotated[list[str], typer.Argument(
        metavar="FILE", help="Your trained model: a Keras 3 or tf-keras .keras file, an HDF5 "
        "model (.h5, .hdf5) or a SavedModel directory. Several, directories (every model under "
        "them) or quoted patterns ('models/**/*.h5') convert a fleet: each model into "
        "OUT/NAME/, indexed in OUT/fleet.json.")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Directory to write the export into "
                                      "(replaced whole, atomically; for a fleet, each DIR/NAME/ is).")
                   ] = Path("converted"),
    name: Annotated[Optional[str], typer.Option(metavar="NAME", help="Name of the files (default: the model "
                                                "file's name).")] = None,
    timesteps: Annotated[Optional[int], typer.Option(
        metavar="N", help="Time steps, when the model leaves them open (TFLite and the reference need them).")
    ] = None,
    input_range: Annotated[tuple[float, float], typer.Option(
        metavar="LOW HIGH", help="Range of the seeded uniform reference inputs (token ids are drawn "
        "from the Embedding's vocabulary).")] = (0.0, 1.0),
    data: Annotated[Optional[Path], typer.Option(
            metavar="FILE",
            help="Real input samples instead of random ones: .npy (N x time steps x features) for a "
            "model with one input, .npz with one array per input name for several.")
    ] = None,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the reference inputs.", min=0,
                                      max=2**31 - 1)] = 0,
    quantize: Annotated[Optional[list[str]], typer.Option(
        metavar="VARIANTS", help="Quantized variants, as for export.")] = None,
    c_array: Annotated[bool, typer.Option("--c-array", metavar="", help="Also write C arrays of the "
                                          "micro files.")] = False,
    c_source: Annotated[bool, typer.Option(
        "--c-source", help="Also write NAME.c and NAME.h: the model as plain C99 (LSTM, GRU and "
        "SimpleRNN stacks with Dense heads).")] = False,
    forms: Annotated[Optional[list[str]], typer.Option(metavar="FORMS", help=FORMS_HELP)] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Convert every file again, even those the previous convert into --out "
        "made from the same model, options and tool versions (reused by default); in a fleet, "
        "also every model whose verified export is up to date (skipped by default).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="Print only problems.")] = False,
    targets: Annotated[Optional[list[str]], typer.Option(
        "--targets", metavar="TARGETS",
        help="Device targets convert's own verify runs the C source on (as for verify). Default: "
        "none, for speed; edge-echo verify OUT runs them all.")] = None,
    jobs: Annotated[Optional[int], typer.Option(
        "--jobs", "-j", metavar="N", min=1, max=256, help="A fleet's models converted at once, "
        "each in a fresh process of its own. Default: the number of cores.")] = None,
    cluster: Annotated[Optional[str], typer.Option(
        "--cluster", metavar="ADDRESS", help="Send a fleet's models to the Dask scheduler at "
        "ADDRESS (tcp://HOST:8786) instead of local processes; needs edge-echo[fleet].")] = None,
) -> None:
    """Export and verify your own trained Keras sequence models (no retraining). Exit 3 if partial."""
    with user_errors():
        from .convert.quantize import parse as parse_quantize
        from .fleet import is_fleet
        from .forms import parse_forms
        from .targets import parse_targets

        variants = parse_quantize(quantize)
        kinds = parse_forms(forms)
        cores = parse_targets(targets or ["none"])
        if is_fleet(model):
            if name is not None:
                raise EdgeEchoError("--name names one model; a fleet names each model's "
                                    "directory after its file")
            _convert_fleet(model, out, dict(
                timesteps=timesteps, input_range=input_range, data=data, seed=seed,
                quantize=variants, c_array=c_array, c_source=c_source, forms=kinds,
                targets=targets), cores, force, quiet, jobs, cluster)
            return
        if cluster is not None:
            raise EdgeEchoError("--cluster runs a fleet (several FILEs, a directory or a "
                                "pattern); one model converts here")
        _convert_one(Path(model[0]), out, name, timesteps, input_range, data, seed, variants,
                     c_array, c_source, kinds, force, quiet, cores)


def _convert_one(model: Path, out: Path, name, timesteps, input_range, data, seed, variants,
                 c_array, c_source, kinds, force, quiet, cores) -> None:
    from .usermodel import convert as run_convert
    from .verify import verify as run_verify

    with _progress(quiet) as report:
        result = run_convert(model, out, name=name, timesteps=timesteps,
                             input_range=input_range, data=data, seed=seed,
                             quantize=variants, c_array=c_array, progress=report,
                             forms=kinds, c_source=c_source, force=force)
    if not quiet and result.reused:
        _say_reused(result.name, result.reused)
    # What was not written is said before verify runs, which may stop on an error of its own.
    for line in result.missing:
        err_console.print(f"edge-echo: {line}", markup=False, highlight=False, soft_wrap=True)
    if not quiet:
        for line in result.notes:
            err_console.print(f"edge-echo: note: {line}", markup=False, highlight=False,
                              soft_wrap=True)
    with _progress(quiet) as report:
        report("", "verifying")
        verified = run_verify(out, cores=cores)
    _render_verify(verified, quiet)
    if not verified.passed:
        raise typer.Exit(EXIT_FAILED)
    if result.missing:
        raise typer.Exit(EXIT_PARTIAL)


def _convert_fleet(args: list[str], out: Path, options: dict, cores, force: bool, quiet: bool,
                   jobs: int | None, cluster: str | None) -> None:
    """convert over many models: each in a fresh process (or on a Dask cluster), into OUT/NAME/,
    indexed in OUT/fleet.json; a table at the end, exit 0 only when every model passed."""
    from . import fleet, manifest
    from .workers import cores as local_cores

    models = fleet.collect(args, out)
    if options["data"] is not None and not Path(options["data"]).is_file():
        raise EdgeEchoError(f"--data {options['data']}: no such file")
    opts = fleet.options_of(targets=cores, **{k: v for k, v in options.items() if k != "targets"})
    command = manifest.command_line(
        "convert", *args, timesteps=options["timesteps"],
        input_range=tuple(float(v) for v in options["input_range"]),
        data=str(options["data"]) if options["data"] else None, seed=options["seed"],
        c_array=options["c_array"], c_source=options["c_source"], forms=options["forms"],
        quantize=[f"{fmt}:{variant}" for fmt, variant in options["quantize"] or []],
        targets=list(cores) or None)
    engine = (fleet.DaskEngine(cluster) if cluster is not None
              else fleet.LocalEngine(jobs or local_cores()))
    try:
        with _fleet_progress(quiet, len(models)) as (progress, done):
            try:
                result = fleet.run(models, out, opts, engine, command, data=options["data"],
                                   force=force, progress=progress, on_done=done)
            except KeyboardInterrupt:
                err_console.print(f"edge-echo: interrupted; every finished model is kept in {out} "
                                  f"and listed in {out / fleet.INDEX}", markup=False,
                                  highlight=False, soft_wrap=True)
                raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        engine.close()
    if not quiet:
        _render_fleet(result)
    for name in result.failed + result.partial:
        record = result.records[name]
        err_console.print(f"edge-echo: {name}: {record['verdict'].upper()}: {record.get('reason')}",
                          markup=False, highlight=False, soft_wrap=True)
    total = len(result.records)
    if result.skipped and not quiet:
        out_console.print(f"fleet: skipped {len(result.skipped)} of {total} models, each a "
                          "verified export made from the same source, options and tool versions "
                          "(--force redoes them)", markup=False, highlight=False, soft_wrap=True)
    if result.failed:
        err_console.print(f"fleet: FAIL ({len(result.failed)} of {total} models failed: "
                          f"{', '.join(result.failed)}); index: {out / fleet.INDEX}", markup=False,
                          highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
    if not quiet:
        out_console.print(f"fleet: PASS ({total} models); index: {out / fleet.INDEX}",
                          markup=False, highlight=False, soft_wrap=True)
    if result.partial:
        raise typer.Exit(EXIT_PARTIAL)


@contextlib.contextmanager
def _fleet_progress(quiet: bool, total: int):
    """A bar over the fleet's models, the latest stage beside it."""
    if quiet:
        yield (lambda model, stage: None), (lambda name, record: None)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(SpinnerColumn(), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=err_console, transient=True) as bar:
        task = bar.add_task("starting", total=total)

        def progress(model: str, stage: str) -> None:
            bar.update(task, description=f"{model}: {stage}" if model else stage)

        def done(name: str, record: dict) -> None:
            bar.update(task, advance=1, description=f"{name}: {record['verdict']}")

        yield progress, done


def _render_fleet(result) -> None:
    table = Table(title=f"edge-echo convert -> {result.directory} (fleet)", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for col in ("model", "verdict", "forms", "not written", "KiB", "worst error", "runtime", "s",
                "note"):
        table.add_column(col, justify="right" if col in ("forms", "not written", "KiB",
                                                         "worst error", "s") else "left",
                         no_wrap=col != "note")
    colour = {"pass": "green", "partial": "yellow", "fail": "red", "error": "red"}
    for name, r in result.records.items():
        worst = max((r.get("worst_error") or {}).items(), key=lambda kv: kv[1]["max_abs"],
                    default=None)
        note = ("skipped (up to date)" if r.get("skipped") else
                f"attempt {r['attempts']}" if (r.get("attempts") or 1) > 1 else "")
        if r["verdict"] != "pass" and r.get("reason"):
            note = (note + "; " if note else "") + r["reason"][:80]
        table.add_row(name, f"[{colour[r['verdict']]}]{r['verdict']}",
                      str(len(r.get("forms", {}))) if "forms" in r else "-",
                      str(len(r.get("not_written", {}))) if "forms" in r else "-",
                      f"{r['bytes'] / 1024:.1f}" if "bytes" in r else "-",
                      f"{worst[1]['max_abs']:.2e}" if worst else "-", worst[0] if worst else "-",
                      f"{r['wall_seconds']:.1f}" if "wall_seconds" in r else "-", note)
    print_table(table)


@app.command()
def verify(
    directory: Annotated[Path, typer.Argument(
        metavar="DIR", help="Export directory to verify.")] = Path("exported"),
    no_keras: Annotated[bool, typer.Option(
        "--no-keras", metavar="", help="Device mode: compare with the Keras outputs stored at export; "
        "TensorFlow is not imported.")] = False,
    samples: Annotated[int, typer.Option(
        metavar="N", help="Fresh random sequences, fed at batch sizes 1, 7 and 64.")] = DEFAULT_SAMPLES,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed of the fresh random sequences.",
                                      min=0, max=2**31 - 1)] = DEFAULT_VERIFY_SEED,
    atol: Annotated[Optional[float], typer.Option(
        metavar="X", help="Absolute tolerance (default: the manifest's, else 1e-5).")] = None,
    rtol: Annotated[Optional[float], typer.Option(
        metavar="X", help="Relative tolerance (default: the manifest's, else 1e-4).")] = None,
    json_file: Annotated[Optional[Path], typer.Option(
        "--json",
            metavar="FILE", help="Write the full report (inputs, tolerances, every figure) here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", help="Print only failures.")] = False,
    models: Annotated[Optional[list[str]], typer.Option(
        "--models", "-m", metavar="MODELS", help=MODELS_HELP)] = None,
    plot_file: Annotated[Optional[Path], typer.Option(
        "--plot", metavar="FILE",
        help="Write a PNG: per model, each runtime against Keras (parity) and the difference.")] = None,
    targets: Annotated[Optional[list[str]], typer.Option(
        "--targets", metavar="TARGETS", help=TARGETS_HELP)] = None,
) -> None:
    """Check integrity, then compare ONNX Runtime and LiteRT (and Keras) with the Keras reference."""
    with user_errors():
        from .targets import parse_targets
        from .verify import verify as run_verify

        report = run_verify(directory, keras=not no_keras, samples=samples, seed=seed,
                            atol=atol, rtol=rtol, models=models, cores=parse_targets(targets))
        if json_file is not None:
            _write_json(json_file, report.to_dict())
        if plot_file is not None:
            from .verify import plot

            _write_plot(plot, report, plot_file)
        _render_verify(report, quiet)
        if not report.passed:
            raise typer.Exit(EXIT_FAILED)


# Values may be negative: "-0.5" is a value here, not an unknown option.
@app.command(context_settings={"ignore_unknown_options": True})
def predict(
    model: Annotated[Path, typer.Argument(
        metavar="FILE", help="A .onnx, .ort or .tflite file (not a step model).")],
    values: Annotated[list[str], typer.Argument(
        metavar="VALUES", help="Input values, e.g. 0.0 0.2 0.4 0.6 0.8 (a multiple of one sequence's "
        "size gives a batch); for a file with several inputs NAME=values for each, e.g. "
        "series=0.1,0.2,0.3 static=1,0; or one .npz holding an array per input name. Token ids "
        "are whole numbers.")],
    decimals: Annotated[int, typer.Option(min=0, max=12, metavar="N", help="Decimals to print.")] = 4,
    runtime: Annotated[Optional[str], typer.Option(
            metavar="RUNTIME",
            help="litert or tflm for a .tflite (default litert), onnxruntime for a .onnx, "
            "onnxruntime-ort for a .ort.")] = None,
) -> None:
    """Run one file on the given values in ONNX Runtime, LiteRT or TFLM (no TensorFlow); print the output."""
    with user_errors():
        from .device import predict as run_predict

        outputs = run_predict(model, values, runtime)
        for name, output in outputs.items():
            # One output prints bare rows, one per sequence; several print each under its name.
            if len(outputs) > 1:
                print(f"{name}:")
            for row in output.reshape(len(output), -1):
                print(" ".join(_fixed(v, decimals) for v in row))


@app.command()
def stream(
    model: Annotated[Path, typer.Argument(
        metavar="FILE", help="A step model: NAME.step.onnx or NAME.step.tflite.")],
    reset_every: Annotated[int, typer.Option(
        min=0, metavar="N", help="Start a new sequence (zero state) every N steps; 0 = never.")] = 0,
    decimals: Annotated[int, typer.Option(min=0, max=12, metavar="N", help="Decimals to print.")] = 4,
) -> None:
    """Read one value per line from stdin and print each output as it arrives (a blank line resets)."""
    with user_errors():
        import numpy as np

        from .device import stream as run_stream

        for output in run_stream(model, sys.stdin, reset_every=reset_every):
            print(" ".join(_fixed(v, decimals) for v in np.ravel(output)), flush=True)


@app.command()
def table(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Export directory.")] = Path("exported"),
    readme: Annotated[Optional[Path], typer.Option(
            metavar="FILE",
            help="Write the table into this Markdown file between its variant-table markers.")] = None,
) -> None:
    """Markdown table, model x format x variant: size, p50 latency, max error vs Keras, echo."""
    with user_errors():
        from . import manifest as manifest_mod
        from .table import markdown, replace_in, variant_rows
        from .verify import verify as run_verify

        # Host runtimes only: the emulated cores are not timed, and their figures (flash, stack,
        # instructions) have their own per-core table in the export's README.
        report = run_verify(directory, keras=False, latency_runs=500, cores=())
        text = markdown(variant_rows(report, manifest_mod.load(Path(directory))))
        if readme is None:
            print(text, end="")
        else:
            note = (f"Generated by `edge-echo table {directory} --readme {readme.name}` "
                    "(batch-1 p50 over 500 runs, 1 thread; errors against the Keras outputs "
                    "stored at export).")
            replace_in(readme, text, note)
        if not report.passed:
            raise typer.Exit(EXIT_FAILED)


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(
        metavar="DIR", help="Export or convert directory.")] = Path("exported"),
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", metavar="FILE", help="The HTML file to write (default: DIR/report.html).")
    ] = None,
    verify_file: Annotated[Optional[Path], typer.Option(
        "--verify", metavar="FILE", help="verify --json results (default: DIR/verify.json).")] = None,
    bench_file: Annotated[Optional[Path], typer.Option(
        "--bench", metavar="FILE", help="bench --json results (default: DIR/bench.json).")] = None,
    scaling_file: Annotated[Optional[Path], typer.Option(
        "--scaling", metavar="FILE",
        help="benchmarks/bench_scaling.py's scaling.json, for the growth with sequence length.")
    ] = None,
    run: Annotated[bool, typer.Option(
        "--run", help="Run verify (with Keras where TensorFlow is installed) and bench first "
        "where their results are missing or out of date, and keep them as JSON.")] = False,
) -> None:
    """One self-contained HTML page: every file, its contract, its error against Keras and its cost."""
    with user_errors():
        from . import report as report_mod

        inputs = report_mod.gather(directory, verify_file, bench_file, scaling_file)
        if run:
            for kind, why in report_mod.out_of_date(inputs).items():
                target = (verify_file if kind == "verify" else bench_file) or \
                    report_mod.default_path(directory, kind)
                with _progress(False) as progress:
                    progress("", f"running {kind} ({why})")
                    _write_json(target, _run_for_report(kind, directory).to_dict())
                out_console.print(f"{kind}: wrote {target} ({why})", markup=False,
                                  highlight=False, soft_wrap=True)
            inputs = report_mod.gather(directory, verify_file, bench_file, scaling_file)
        target = out or report_mod.default_path(directory, "report")
        size = report_mod.write(inputs, target)
        verdict = {None: "not verified", True: "verify PASS", False: "verify FAIL"}[
            (inputs.verify or {}).get("passed")]
        left_out = sum(why is not None for why in (inputs.verify_why, inputs.bench_why,
                                                   inputs.scaling_why))
        out_console.print(
            f"report: wrote {target} ({size / 1024:.0f} KiB; {verdict}; "
            f"{inputs.files_checked - len(inputs.integrity)} of {inputs.files_checked} files "
            f"intact; {left_out} part(s) not included, the page says why)",
            markup=False, highlight=False, soft_wrap=True)
        if run and inputs.verify is not None and not inputs.verify.get("passed"):
            raise typer.Exit(EXIT_FAILED)


def _run_for_report(kind: str, directory: Path):
    if kind == "verify":
        from .tfenv import tensorflow_available
        from .verify import verify as run_verify

        return run_verify(directory, keras=tensorflow_available())
    from .bench import bench as run_bench

    return run_bench(directory)


def _write_json(path: Path, data: dict) -> None:
    from .fsutil import write_file

    try:
        write_file(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        raise EdgeEchoError(f"{path}: cannot write the report ({exc.strerror})") from None


def _write_plot(plot, report, path: Path) -> None:
    try:
        plot(report, path)
    except ImportError:
        raise EdgeEchoError("--plot needs matplotlib; install edge-echo[export]") from None
    except OSError as exc:
        raise EdgeEchoError(f"{path}: cannot write the plot ({exc.strerror})") from None


def _render_verify(report, quiet: bool) -> None:
    if not quiet:
        table = Table(title=f"edge-echo verify {report.directory}", box=box.SIMPLE_HEAD,
                  pad_edge=False)
        # "worst/allowed": the worst element's |diff| over the error its tolerance allows it
        # (atol + rtol * |expected|); 1 is the edge of failing. A relative error means nothing
        # where the expected value is near 0.
        for col in ("model", "runtime", "max abs err", "worst/allowed", "echo", "p50 µs", "verdict"):
            table.add_column(col, justify="right" if col in ("max abs err", "worst/allowed", "p50 µs")
                             else "left", no_wrap=True)
        for r in report.results:
            echo = " ".join(r.echo.printed) if r.echo else "-"
            table.add_row(
                r.model, r.runtime + (" (looped)" if r.looped else ""), f"{r.max_abs:.2e}",
                _used(r.used), ("[green]" if r.echo and r.echo.passed else "[red]") + echo,
                "-" if r.p50_us is None else f"{r.p50_us:.1f}",
                "[green]pass" if r.passed else "[red]FAIL",
            )
        print_table(table)
        out_console.print("worst/allowed: the worst element's |diff| / (atol + rtol x |expected|); "
                          "above 1 fails", markup=False, highlight=False)
        for note in report.notes:
            out_console.print(f"note: {note}", markup=False, highlight=False)
    for r in report.results:
        for line in r.failures():
            err_console.print(f"FAIL {line}", markup=False, highlight=False, soft_wrap=True)
    failed = sum(not r.passed for r in report.results)
    total = len(report.results)
    models = len({r.model for r in report.results})
    runtimes = len({r.runtime for r in report.results})
    if failed:
        err_console.print(f"verdict: FAIL ({failed} of {total} model x runtime checks failed)",
                          markup=False)
    elif not quiet:
        out_console.print(f"verdict: PASS ({models} models x {runtimes} runtimes, "
                          f"sha256 of {len(report.files_checked)} files checked)", markup=False)


@app.command()
def bench(
    directory: Annotated[Path, typer.Argument(
        metavar="DIR", help="Export directory to benchmark.")] = Path("exported"),
    runtime: Annotated[Optional[list[str]], typer.Option(
        "--runtime", "-r",
            metavar="RUNTIMES", help="Runtimes to time: keras-predict, keras, onnxruntime, "
        "onnxruntime-ort, litert, litert-compiled, tflm, litert-micro, c (repeat or "
        "comma-separate). Default: all.")] = None,
    runs: Annotated[int, typer.Option(
        metavar="N", help="Timed single-sequence calls per runtime.")] = DEFAULT_RUNS,
    warmup: Annotated[int, typer.Option(metavar="N", help="Untimed calls before timing.")] = DEFAULT_WARMUP,
    predict_runs: Annotated[int, typer.Option(
            metavar="N",
            help="Timed calls for keras-predict, which costs tens of ms each.")] = DEFAULT_PREDICT_RUNS,
    batch: Annotated[int, typer.Option(
        metavar="N", help="Batch size for the throughput figure.")] = DEFAULT_BATCH,
    threads: Annotated[int, typer.Option(
        metavar="N", help="Threads for every runtime (ORT intra-op, LiteRT, TF pools).")] = 1,
    json_file: Annotated[Optional[Path], typer.Option(
        "--json", metavar="FILE", help="Write every figure, the settings, CPU and versions here.")] = None,
    plot_file: Annotated[Optional[Path], typer.Option(
        "--plot",
            metavar="FILE",
            help="Write a PNG: per model, p50 bars with p99 whiskers, model and floor.")] = None,
    models: Annotated[Optional[list[str]], typer.Option(
        "--models", "-m", metavar="MODELS", help=MODELS_HELP)] = None,
    memory: Annotated[bool, typer.Option(
        "--memory/--no-memory",
        help="Measure each row's peak-RSS growth in a child process of its own (Linux).")] = True,
    targets: Annotated[Optional[list[str]], typer.Option(
        "--targets", metavar="TARGETS", help=TARGETS_HELP)] = None,
) -> None:
    """Time every model in every runtime at batch 1 and at --batch, each against its runtime's floor.

    Times the bare runtime call a device app makes (set, invoke, get on a feed prepared once)."""
    with user_errors():
        from .bench import bench as run_bench
        from .bench import plot
        from .targets import parse_targets

        runtimes = [v.strip() for item in runtime or [] for v in item.split(",") if v.strip()]
        cores = parse_targets(targets)
        with _progress(False) as report_progress:
            report_progress("", "timing runtimes and their floors")
            report = run_bench(directory, tuple(runtimes) or None, runs=runs, warmup=warmup,
                               predict_runs=predict_runs, batch=batch, threads=threads,
                               models=models, memory=memory, cores=cores)
        if json_file is not None:
            _write_json(json_file, report.to_dict())
        if plot_file is not None:
            _write_plot(plot, report, plot_file)
        _render_bench(report)


def _render_bench(report) -> None:
    s = report.settings
    table = Table(title=f"edge-echo bench {report.directory} (µs, batch 1, {s['threads']['requested']} "
                  f"thread(s), {s['runs']} runs; memory in KiB)", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("model", "runtime", "first", "p50", "p90", "p99", "std", "+wrapper", "floor p50",
                "x floor", "x predict", f"seq/s @{s['batch']}", "file KiB", "RSS +KiB", "arena KiB"):
        table.add_column(col, justify="left" if col in ("model", "runtime") else "right",
                         no_wrap=True)
    for r in report.rows:
        t = r.timing
        table.add_row(
            r.model, r.runtime, *(_us(v) for v in (t.first_us, t.p50_us, t.p90_us, t.p99_us,
                                                   t.std_us, t.wrapped_p50_us - t.p50_us,
                                                   r.floor.p50_us)),
            f"{r.floor_ratio:.2f}",
            "-" if r.speedup_vs_predict is None else f"{r.speedup_vs_predict:,.0f}",
            f"{t.sequences_per_s:,.0f}",
            _kib(r.file_bytes), _kib(r.peak_rss_delta_bytes), _kib(r.arena_bytes),
        )
    print_table(table)
    out_console.print("timed: the bare runtime call a device app makes, on a feed prepared once; "
                      "+wrapper: what edge-echo's Runner.infer adds to p50 (not in the figures); "
                      "RSS +KiB: peak-RSS growth to create and run it, in a child of its own",
                      markup=False, highlight=False)
    by_reason: dict[str, list[str]] = {}  # one line per reason: a host's runtimes share one
    for rt, why in report.settings.get("skipped", {}).items():
        by_reason.setdefault(why, []).append(rt)
    for why, rts in by_reason.items():
        out_console.print(f"{', '.join(rts)} skipped: {why}", markup=False, highlight=False)
    notes = {r.memory_note for r in report.rows if r.memory_note}
    for note in sorted(notes):
        out_console.print(f"memory: {note}", markup=False, highlight=False)
    out_console.print(f"cpu: {report.machine['cpu']}", markup=False, highlight=False)
    _render_device(report)


def _render_device(report) -> None:
    """The C source on each device target: bytes and instructions (the est. column is an
    estimate), and in Node the time of a predict call beside the host C's (bench's row c)."""
    if not report.device:
        out_console.print(f"device targets: {report.settings.get('device', 'not measured')}",
                          markup=False, highlight=False, soft_wrap=True)
        return
    table = Table(title="the C source on device targets (bytes; instructions, or time in Node)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("model", "target", "board", "flash", "stack", "state", "instr/seq", "instr/step",
                "largest step", "est. µs @ clock / p50 µs"):
        table.add_column(col, justify="left" if col in ("model", "target", "board") else "right",
                         no_wrap=True)
    host = {r.model: r.timing.p50_us for r in report.rows if r.runtime == "c"}
    for d in report.device:
        if "wasm_bytes" in d:
            vs = (f" (host c {host[d['model']]:,.2f}: {d['p50_us'] / host[d['model']]:.1f}x)"
                  if d["model"] in host else "")
            table.add_row(d["model"], d["core"], d["board"],
                          f"{d['wasm_bytes']:,} + {d['loader_bytes']:,} js", "-",
                          f"{d['state_bytes']:,}", "-", "-", "-", f"{d['p50_us']:,.2f}{vs}")
            continue
        estimate = (f"~{d['estimate_us_at_clock']:,.1f} @ {d['clock_hz'] / 1e6:g} MHz"
                    if "estimate_us_at_clock" in d else "-")
        # The integer C's rows (c@TARGET:int8) name their variant beside the target.
        target = d["core"] + (":" + d["runtime"].split(":", 1)[1] if ":" in d["runtime"] else "")
        table.add_row(d["model"], target, d["board"], f"{d['flash_bytes']:,}",
                      f"{d['stack_bytes']:,}", f"{d['state_bytes']:,}",
                      f"{d['instructions_per_sequence']:,}",
                      *((f"{d['instructions_per_step']['mean']:,}",
                         f"{d['instructions_per_step']['largest']:,}")
                        if "instructions_per_step" in d else ("-", "-")), estimate)
    print_table(table)
    out_console.print(f"counted: {report.settings['device']}; est.: an estimate at one "
                      "instruction a cycle; each target's method is in --json's device rows",
                      markup=False, highlight=False, soft_wrap=True)


def _fixed(value: float, decimals: int) -> str:
    """value to decimals places, never as -0.0: a result just below zero (-3e-9, as one CPU's
    kernels give where another's give +3e-9) prints as the 0 it rounds to."""
    return f"{round(float(value), decimals) + 0.0:.{decimals}f}"


def _kib(value: int | None) -> str:
    """KiB, compact: 0.5, 13.4, 4,417."""
    if value is None:
        return "-"
    kib = value / 1024
    return f"{kib:.1f}" if kib < 100 else f"{kib:,.0f}"


def _used(value: float) -> str:
    """worst |diff| / allowed: 0.031, 0.52, 3.1, inf."""
    return f"{value:.2g}" if value < 10 else f"{value:,.0f}" if value < float("inf") else "inf"


def _us(value: float) -> str:
    """Microseconds, compact: 12.3, 456, 45.2k."""
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def run() -> None:
    """The console script: click's usage errors become one line too, never a box or a trace."""
    from typer import _click

    from .errors import remember_interrupts

    remember_interrupts()
    try:
        code = app(prog_name="edge-echo", standalone_mode=False)
    except _click.exceptions.NoArgsIsHelpError:
        code = EXIT_ERROR  # the help was shown
    except _click.exceptions.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "edge-echo"
        err_console.print(f"edge-echo: error: {exc.format_message()} (see `{command} --help`)",
                          markup=False, highlight=False, soft_wrap=True)
        code = EXIT_ERROR
    except _click.exceptions.ClickException as exc:
        err_console.print(f"edge-echo: error: {exc.format_message()}", markup=False,
                          highlight=False, soft_wrap=True)
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("edge-echo: interrupted; nothing was changed", markup=False)
        code = EXIT_INTERRUPTED
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(run())
