"""spec -> train -> convert -> describe -> manifest, written atomically.

Everything is built in a staging directory beside the target and swapped in
at the end (fsutil.replace_dir), so a failed or interrupted export leaves the
previous export as it was.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fsutil, manifest, refdata
from .artifacts import describe_onnx, describe_tflite
from .compare import DEFAULT_TOLERANCE, echo_check
from .errors import ArtifactError, check_interrupted
from .forms import Deferred, Input, Interface, Reuse, Subject, reuse_key, write_forms
from .probe import probe_many
from .runners import RUNTIMES
from .specs import DEFAULT_LENGTH, DEFAULT_SEED, INPUT_NAME, MAX_LENGTH, OUTPUT_NAME, EchoSpec, get_spec
from .tfenv import import_tensorflow, quiet_converters, require_tensorflow
from .versions import versions

README = "README.md"
Progress = Callable[[str, str], None]


@dataclass
class ModelExport:
    spec: EchoSpec
    final_loss: float
    train_seconds: float
    keras_echo: list[str]
    echo_passed: bool
    entry: dict = field(repr=False)
    # True when the weights came from the previous export (same cache key).
    reused: bool = False
    # One line per requested variant that could not be produced, with the reason.
    missing: list[str] = field(default_factory=list)
    # The files taken from the previous export (same inputs), not converted again.
    reused_files: list[str] = field(default_factory=list)


@dataclass
class ExportResult:
    directory: Path
    models: list[ModelExport]
    manifest: dict

    @property
    def missing(self) -> list[str]:
        return [line for m in self.models for line in m.missing]


def export(
    out: Path,
    models: list[str],
    length: int = DEFAULT_LENGTH,
    seed: int = DEFAULT_SEED,
    epochs: int | None = None,
    progress: Progress | None = None,
    retrain: bool = False,
    c_array: bool = False,
    quantize: list[tuple[str, str]] | None = None,
    forms: tuple[str, ...] | None = None,
    max_length: int = MAX_LENGTH,
    c_source: bool = False,
    jobs: int | None = None,
) -> ExportResult:
    """Train (or reuse) and convert each model. jobs: models exported at once, each in a worker
    process of its own (default: one per core); 1 exports them one after another in this
    process. Either way the files are the same bytes."""
    from . import workers

    specs = [get_spec(name, length, epochs, max_length) for name in models]
    require_tensorflow("edge-echo export")
    report = progress or (lambda model, stage: None)
    jobs = workers.cores() if jobs is None else jobs
    if jobs < 1:
        from .errors import UsageError

        raise UsageError(f"--jobs must be at least 1, got {jobs}")

    def build(staged: Path, previous: dict | None, tools: dict):
        tasks = []
        for spec in specs:
            key = cache_key(spec, seed, tools)
            cached = None if retrain else _cached_keras(Path(out), previous, spec.name, key)
            reuse = Reuse(Path(out), previous["models"][spec.name], spec.name) if cached else None
            tasks.append(dict(spec=spec, seed=seed, out=staged, tools=tools, key=key,
                              cached=cached, quantize=quantize or [], c_array=c_array,
                              forms=forms, c_source=c_source, reuse=reuse))
        if jobs > 1 and len(tasks) > 1:
            # A model over one time step has no micro step form: the cheapest, so the last.
            order = sorted(range(len(specs)), key=lambda k: (specs[k].input_shape[0] == 1,
                                                            -specs[k].epochs, k))
            results = workers.run(_export_task, tasks, jobs, report, [s.name for s in specs],
                                  first=order)
        else:
            results = [_export_model(**task, report=report) for task in tasks]
        command = manifest.command_line(
            "export", models=[s.name for s in specs], length=length, seed=seed, epochs=epochs,
            c_array=c_array, c_source=c_source, forms=forms,
            quantize=[f"{fmt}:{variant}" for fmt, variant in quantize or []])
        fields = {"seed": seed, "length": length, "command": command,
                  "models": {r.spec.name: r.entry for r in results}}
        return fields, results

    doc, results = publish(Path(out), build, report)
    return ExportResult(Path(out), results, doc)


def publish(out: Path, build, report: Progress):
    """Lock, build into a staging directory, write manifest and README, swap in; nothing half-done.

    build(staged, previous manifest or None, tool versions) -> (manifest fields, result).
    """
    lock = fsutil.exclusive(out, on_wait=lambda: report("", f"waiting for another export into {out}"))
    try:
        lock.__enter__()
    except OSError as exc:
        raise ArtifactError(f"{out}: cannot write the export here ({exc.strerror})") from None
    try:
        previous = check_target(out)
        try:
            staged = fsutil.staging_dir(out)
        except OSError as exc:
            raise ArtifactError(f"{out}: cannot write the export here ({exc.strerror})") from None
        try:
            tools = versions()
            fields, result = build(staged, previous, tools)
            measured = {name: m.pop("measured") for name, m in fields["models"].items()
                        if "measured" in m}
            if measured:
                from .results import DEVICE_FILE, device_doc

                (staged / DEVICE_FILE).write_text(json.dumps(device_doc(measured), indent=2) + "\n",
                                                  encoding="utf-8")
            directory_files = _directory_files(staged, fields["models"], tools)
            if directory_files:
                fields = {**fields, "files": directory_files}
            doc = {
                "schema_version": manifest.SCHEMA_VERSION,
                "generator": {"name": "edge-echo", "version": tools["edge-echo"]},
                "versions": tools,
                **fields,
            }
            (staged / manifest.FILENAME).write_text(manifest.dumps(doc), encoding="utf-8")
            try:  # a manifest that fails its own check is never published
                manifest.load(staged)
            except ArtifactError as exc:
                raise ArtifactError(f"{out}: the export's own manifest fails its check "
                                    f"({str(exc).split(': ', 1)[-1]}); nothing was published, "
                                    f"{out} keeps what it held") from None
            (staged / README).write_text(render_readme(doc), encoding="utf-8")
            check_interrupted()  # a Ctrl-C a library swallowed still stops the swap
            report("", "replacing the export directory")
            fsutil.replace_dir(staged, out)
        except OSError as exc:
            shutil.rmtree(staged, ignore_errors=True)
            where = f" ({exc.filename})" if exc.filename else ""
            raise ArtifactError(f"{out}: writing the export failed: {exc.strerror or exc}{where}; "
                                "the previous export is unchanged") from None
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        return doc, result
    finally:
        lock.__exit__(None, None, None)


def _directory_files(staged: Path, models: dict, tools: dict) -> dict:
    """The files one export directory has for all its models: required_operators.config for a
    reduced ONNX Runtime build that runs every .ort file of it."""
    from .convert import ort

    files = [a["file"] for m in models.values() for a in m["artifacts"].values()
             if a.get("format") == "ort"]
    config = ort.write_config(staged, files, tools)
    return {"ort_required_operators": config} if config else {}


def check_target(out: Path) -> dict | None:
    """Refuse to replace anything that is not an earlier export of ours; return its manifest."""
    if out.exists() and not out.is_dir():
        raise ArtifactError(f"{out}: exists and is not a directory; choose another --out")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    try:
        old = manifest.load(out)
        ours = (manifest.listed_files(old) | {manifest.FILENAME, README, manifest.DEVICE_FILE}
                | set(manifest.RESULT_FILES.values()))
    except ArtifactError:
        raise ArtifactError(
            f"{out}: holds files but no readable edge-echo manifest; refusing to replace it "
            "(choose another --out or empty it)"
        ) from None
    foreign = sorted(p.name for p in out.iterdir() if p.name not in ours)
    if foreign:
        raise ArtifactError(
            f"{out}: holds files edge-echo did not write ({', '.join(foreign[:5])}); "
            "move them or choose another --out"
        )
    return old


def cache_key(spec: EchoSpec, seed: int, tools: dict) -> str:
    """What determines the trained weights: the spec, the seed, the trainer and its libraries.

    Not the Python version: CPython 3.11 and 3.13 with these pins train the same weights and
    write byte-identical files (issue 16, tools/compare-exports).
    """
    from .train import TRAINER

    basis = {"spec": spec.describe(), "seed": seed, "trainer": TRAINER,
             "versions": {k: tools[k] for k in ("edge-echo", "tensorflow", "keras", "numpy")}}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


def _cached_keras(out: Path, previous: dict | None, name: str, key: str) -> tuple[Path, dict] | None:
    """The previous export's .keras file for this model, if its key matches and it is intact."""
    entry = (previous or {}).get("models", {}).get(name)
    if not entry or entry.get("training", {}).get("cache_key") != key:
        return None
    art = entry["artifacts"]["keras"]
    path = manifest.artifact_path(out, art)
    if not path.is_file() or manifest.sha256_file(path) != art["sha256"]:
        return None
    return path, entry["training"]


def _export_model(spec: EchoSpec, seed: int, out: Path, tools: dict, report: Progress,
                  key: str, cached: tuple[Path, dict] | None,
                  quantize: list[tuple[str, str]], c_array: bool,
                  forms: tuple[str, ...] | None = None, c_source: bool = False,
                  reuse: Reuse | None = None) -> ModelExport:
    """The echo model is a user model the project trains itself: train, then the same forms.

    With the previous export's weights (cached), the model is loaded only if a file has to be
    made again: reuse holds the previous files, each reused where what made it is unchanged.
    """
    from .convert.keras import save_keras
    from .convert.quantize import calibration_inputs
    from .train import train

    keras_path = out / f"{spec.name}.keras"
    if cached is not None:
        report(spec.name, "reusing the trained weights of the previous export")
        source, training = cached
        shutil.copyfile(source, keras_path)
        final_loss, seconds = float(training["final_loss"]), 0.0
        model = Deferred(lambda: _load_keras(keras_path))
        layers = reuse.entry["artifacts"]["keras"].get("layers") if reuse else None
    else:
        report(spec.name, f"training {spec.epochs} epochs")
        trained = train(spec, seed)
        model, final_loss, seconds = trained.model, trained.final_loss, trained.seconds
        report(spec.name, "saving .keras")
        save_keras(model, keras_path)
        reuse, layers = None, None  # new weights: nothing of the previous export applies
    interface = echo_interface(spec)
    subject = Subject(spec.name, model, interface, calibration_inputs(spec, seed), None, spec=spec,
                      basis={"keras_sha256": manifest.sha256_file(keras_path),
                             "spec": spec.describe(), "seed": seed})
    if layers is None:  # loads the model (once: subject keeps it) where no manifest says them
        layers = [type(layer).__name__ for layer in subject.model.layers[1:]]
    keras_entry = manifest.file_entry(keras_path, format="keras", **interface.io(), layers=layers,
                                      producer={k: tools[k] for k in ("keras", "tensorflow")})

    old_reference = reuse.artifact("reference", reuse_key(subject, "reference", tools),
                                   f"{spec.name}.reference.npz") if reuse else None
    if old_reference is not None:
        loaded = refdata.load(manifest.artifact_path(reuse.directory, old_reference))
        # In the order a new export computes them: the manifest lists them in this order.
        arrays = {k: loaded[k] for k in (refdata.SEED_X, refdata.SEED_Y, refdata.RANDOM_X,
                                         refdata.RANDOM_Y)}
    else:
        report(spec.name, "computing reference outputs")
        seed_x, _ = spec.training_data()
        random_x = refdata.random_inputs(spec.input_shape, refdata.SAMPLES, seed)
        arrays = {
            refdata.SEED_X: seed_x,
            refdata.SEED_Y: subject.model(seed_x, training=False).numpy(),
            refdata.RANDOM_X: random_x,
            refdata.RANDOM_Y: subject.model(random_x, training=False).numpy(),
        }
    subject.reference_y = np.ravel(arrays[refdata.RANDOM_Y])
    subject.reference_x = arrays[refdata.RANDOM_X]
    common, missing, reused = write_model(
        subject, out, tools, report, {"keras": keras_entry}, arrays,
        {"distribution": "uniform", "low": 0.0, "high": 1.0, "seed": seed},
        quantize, c_array, forms, c_source, reuse)
    echo = echo_check(arrays[refdata.SEED_Y], spec.sequence())
    entry = {
        "spec": spec.describe(),
        "seed": seed,
        "training": {
            "final_loss": final_loss,
            "cache_key": key,
            "loop": "one compiled while_loop; the same Adam steps on the same full batch as fit",
            "keras_echo": echo.printed,
        },
        **common,
    }
    return ModelExport(spec, final_loss, seconds, echo.printed, echo.passed, entry,
                       reused=cached is not None, missing=missing, reused_files=reused)


def _export_task(task: dict) -> ModelExport:
    """_export_model in a worker process (workers.run): its progress goes to the parent."""
    from . import workers

    return _export_model(**task, report=workers.report)


def _load_keras(path: Path):
    import_tensorflow()
    import keras

    return keras.saving.load_model(path, compile=False, safe_mode=True)


def echo_interface(spec: EchoSpec) -> Interface:
    return Interface(spec.input_shape[0], spec.input_shape[0],
                     [Input(INPUT_NAME, spec.input_shape, model_shape=spec.input_shape)],
                     [(OUTPUT_NAME, spec.output_shape)])


def write_model(subject: Subject, out: Path, tools: dict, report: Progress, model_files: dict,
                arrays: dict[str, np.ndarray], spread: dict, quantize: list[tuple[str, str]],
                c_array: bool, forms: tuple[str, ...] | None = None,
                c_source: bool = False,
                reuse: Reuse | None = None) -> tuple[dict, list[str], list[str]]:
    """Every form of one model, its reference data, variants and C arrays: the manifest fields
    (model_files: the model itself, by kind: its .keras, or a bare graph's SavedModel zip)
    export and convert share, one line per file that could not be made, and the files reused
    from the previous export (reuse) because what made them is unchanged."""
    from .forms import registered

    kinds = forms or tuple(f.kind for f in registered() if not f.optional)
    if c_source:
        kinds = (*kinds, "c_header", "c_source", "wasm", "wasm_loader")
        if ("c", "int8") in (quantize or []):
            kinds = (*kinds, "c_int8_header", "c_int8_source")
    written = write_forms(subject, out, tools, report, kinds, reuse)
    # A header without its source, or a module without its loader (or the other way round), is
    # no use to anyone: the other's line says why.
    for part, whole in (("c_header", "c_source"), ("wasm_loader", "wasm"), ("wasm", "wasm_loader"),
                        ("c_int8_header", "c_int8_source")):
        if part in written.artifacts and whole not in written.artifacts:
            (out / written.artifacts.pop(part)["file"]).unlink()
            written.measured.pop(part, None)
    arts = {**model_files, **written.artifacts}
    ref_path = out / f"{subject.name}.reference.npz"
    refdata.save(ref_path, arrays)
    arts["reference"] = manifest.file_entry(
        ref_path, format="npz",
        arrays={k: {"shape": list(v.shape), "dtype": v.dtype.name} for k, v in arrays.items()},
        random_inputs=spread,
    )
    entry = {
        **subject.interface.io(),
        "tolerances": {**{rt: vars(DEFAULT_TOLERANCE).copy() for rt in RUNTIMES},
                       **written.tolerances},
        "artifacts": arts,
    }
    if written.not_written:
        entry["not_written"] = written.not_written
    if written.measured:  # publish moves it to device.json
        entry["measured"] = written.measured
    keys = {**written.reuse_keys}
    missing = written.missing + add_variants(entry, out, subject, quantize or [], tools, report,
                                             reuse, keys, written.reused)
    if forms is None or "ort" in forms:
        from .convert import ort

        missing += ort.write(entry, out, subject, tools, report, reuse, keys, written.reused)
        if not ort.sources(arts):
            entry.setdefault("not_written", {})["ort"] = (
                "an .ort file is made from an .onnx form, and this export has none")
    if forms is None or "tflite_web" in forms:
        from .convert import tflite_web

        missing += tflite_web.write(entry, out, subject, tools, report, reuse, keys, written.reused)
        if not tflite_web.sources(arts):
            entry.setdefault("not_written", {})["tflite_web"] = (
                "a .web.tflite is made from a .tflite form (not a micro one), and this export has "
                "none")
    if c_array:
        _add_c_arrays(arts, out)
    if subject.basis is not None:
        keys["reference"] = reuse_key(subject, "reference", tools)
        entry["reuse_keys"] = keys
    return entry, missing, written.reused


def add_variants(entry: dict, out: Path, subject: Subject, quantize, tools: dict,
                 report: Progress, reuse: Reuse | None = None, keys: dict | None = None,
                 reused: list[str] | None = None) -> list[str]:
    """Write each requested quantized variant; return one line per variant that could not be made.

    The TFLite variants are converted from the frozen function the float32
    TFLite file was converted from. A variant the previous export made from the same inputs
    (reuse) is copied instead; every file, new or reused, is then probed in one child.
    """
    from .convert import quantize as q
    from .convert.tflite import finish_tflite, frozen_function
    from .runners import labels_for

    arts, name = entry["artifacts"], subject.name
    input_name = entry["inputs"][0]["name"]
    keys = {} if keys is None else keys
    missing, made = [], []
    for fmt, variant in quantize:
        if fmt == "c":  # NAME.int8.c is a form of its own (convert/csource/), with --c-source
            continue
        kind = f"{fmt}_{variant}"
        if fmt not in arts and fmt in entry.get("not_written", {}):
            # The model has no such form (a reason, not a failure): nor its variants.
            entry["not_written"][kind] = f"no float32 {fmt} file: {entry['not_written'][fmt]}"
            continue
        if fmt not in arts:
            missing.append(f"{name}: {fmt} {variant} not produced: there is no float32 {fmt} file")
            continue
        key = reuse_key(subject, kind, tools)
        old = reuse.artifact(kind, key, f"{name}.{variant}.{fmt}") if reuse else None
        if old is not None:
            report(name, f"reusing {old['file']}")
            made.append((fmt, variant, kind, reuse.copy(old, out), old, key))
            continue
        report(name, f"quantizing: {fmt} {variant}")
        path = out / f"{name}.{variant}.{fmt}"
        try:
            with quiet_converters():
                if fmt == "tflite":
                    data = finish_tflite(q.tflite_variant(frozen_function(subject), variant,
                                                         subject.calibration, input_name),
                                        subject.interface.output_names)
                else:
                    data = q.onnx_variant(out / arts["onnx"]["file"], variant, subject.calibration,
                                          input_name)
        except q.VariantUnavailable as exc:
            missing.append(f"{name}: {fmt} {variant} not produced: {exc}")
            continue
        path.write_bytes(data)
        made.append((fmt, variant, kind, path, None, key))
    crashed = probe_many([path for *_, path, _, _ in made]) if made else {}
    for fmt, variant, kind, path, old, key in made:
        if crashed.get(path):
            path.unlink()
            missing.append(f"{name}: {fmt} {variant} not produced: {crashed[path]}")
            continue
        tol = q.tolerance(variant, subject.reference_y, subject.interface.probabilities)
        if old is not None:
            arts[kind] = {**old, **manifest.file_entry(path)}
            if reused is not None:
                reused.append(path.name)
        else:
            described = describe_tflite(path) if fmt == "tflite" else describe_onnx(path)
            arts[kind] = manifest.file_entry(
                path, format=fmt, variant=variant, base=fmt, **described,
                quantization={"method": q.METHODS[(fmt, variant)],
                              "calibration": (f"{q.calibration_count(subject.calibration)} input "
                                              "sequences" if variant == "int8" else None),
                              "tolerance_rule": tol["rule"]},
                producer={k: tools[k] for k in (("tensorflow",) if fmt == "tflite" else
                                                 ("onnxruntime", "onnx"))},
            )
        if key:
            keys[kind] = key
        for label in labels_for(fmt, variant):
            entry["tolerances"][label] = {"atol": tol["atol"], "rtol": tol["rtol"]}
    return missing


def _add_c_arrays(artifacts: dict, out: Path) -> None:
    """A .h/.cc pair per micro form: the TFLite files proven on TensorFlow Lite Micro."""
    from .embed import write_c_array

    for kind in [k for k, a in artifacts.items() if "micro" in a]:
        art = artifacts[kind]
        header, source = write_c_array(out / art["file"], art["operators"], art["sha256"],
                                       art["micro"])
        artifacts[f"{kind}_c_header"] = manifest.file_entry(header, format="c-header", of=art["file"],
                                                            arena_bytes=art["micro"]["arena_bytes"])
        artifacts[f"{kind}_c_source"] = manifest.file_entry(
            source, format="c-source", of=art["file"], operators=art["operators"])


def micro_section(doc: dict) -> str:
    """Which file to ship where, and each micro file's contract, from the manifest."""
    rows = []
    for name, m in doc["models"].items():
        for art in m["artifacts"].values():
            micro = art.get("micro")
            if micro:
                rows.append(f"| `{art['file']}` | {micro['flash_bytes']:,} | "
                            f"{micro['arena_min_bytes']:,} | {micro['arena_bytes']:,} | "
                            f"{'one step per invoke' if 'step' in art else 'whole sequence'} | "
                            f"{', '.join(micro['resolver'])} |")
        for kind, why in m.get("not_written", {}).items():
            if kind.startswith("tflite_micro"):
                rows.append(f"| {name}: no `{kind}` | | | | {why} | |")
    if not rows:
        return ""
    return f"""## Microcontrollers: the micro forms (TensorFlow Lite Micro)

One fused `UNIDIRECTIONAL_SEQUENCE_LSTM` per LSTM layer, batch fixed at 1, the
weights stored once whatever the sequence length. The fused op keeps h and c
in variable tensors between invokes, so the contract is: **reset before each
sequence** (TFLM C++ `interpreter.Reset()`, Python `interpreter.reset()`;
LiteRT C++ `interpreter->ResetVariableTensors()`, Python
`interpreter.reset_all_variables()`). A step file takes one time step per
invoke, with the state kept inside the interpreter: reset at the start of a
sequence, then invoke once per value. `verify` runs every micro file on TFLM
(`tflm`, `tflm:int8`, `tflm-step`) and on LiteRT (`litert-micro`, ...), and
shows how far the output moves when the reset is skipped. The arena is
measured on the TFLM interpreter (reference kernels, 64-bit host), plus what
a CMSIS-NN build's kernels take beyond those (the int8 LSTM's kernel sums
and parameters, the int8 Dense's kernel sums: `micro.arena_margin` in the
manifest); declare the size given, 16-byte aligned.

| file | flash bytes | smallest arena | arena to declare | invoke | MicroMutableOpResolver calls |
|---|---:|---:|---:|---|---|
{chr(10).join(rows)}

Which file where: `NAME.micro.tflite` (or `.micro.int8.tflite`, smaller
arithmetic for MCUs without an FPU) on a microcontroller; `NAME.micro.step.tflite`
to stream sensor values on one; `NAME.tflite` (unrolled, stateless, any
batch, the fastest on LiteRT) on phones and gateways; `NAME.onnx` on ONNX
Runtime. The int8 LSTM kernel of CMSIS-NN builds is reported to zero its
state on every call (tflite-micro PR #3564): test int8 streaming on the
target before relying on it.
"""


def c_section(doc: dict) -> str:
    """The C source: how to drop NAME.c / NAME.h into a device project, from the manifest."""
    rows, example, whole = [], None, []
    for name, m in doc["models"].items():
        art = m["artifacts"].get("c_source")
        if art is None:
            if "c_source" in m.get("not_written", {}):
                rows.append(f"| {name}: no C source | | | {m['not_written']['c_source']} |")
            continue
        c = art["c"]
        rows.append(f"| `{art['file']}` + `{c['header']}` | {c['params']:,} | "
                    f"{4 * c['params']:,} | {c['state_bytes']:,} |")
        if c.get("mode") == "whole_sequence":
            whole.append((name, c))
        elif example is None or c["sequence_output"] == "every_step":
            example = (name, c)
    if not rows:
        return ""
    loop = ""
    if example is not None:
        name, c = example
        n, upper = c["prefix"], c["prefix"].upper()
        loop = f"""
A device app streams one value per time step through `{n}_step`, no runtime:

```c
#include "{name}.h"  /* and compile {name}.c with your code; link -lm */

/* The only RAM that persists between samples: {c['state_bytes']} bytes. */
static {n}_state state;

void on_sequence_start(void) {{ {n}_reset(&state); }}

void on_sample(const float x_t[{upper}_FEATURES])
{{
    float y_t[{upper}_OUTPUTS];
    {n}_step(&state, x_t, y_t);  /* y_t: the model's output at this step */
    use_output(y_t);  /* yours */
}}
```

`{n}_predict(x, y)` runs a whole sequence at once instead ({upper}_STEPS x
{upper}_FEATURES floats in, row-major). `examples/c_echo_stream.c` in the
edge-echo repository is a complete program around `many_to_many_step`.
"""
    for name, c in whole:
        n = c["prefix"]
        ins = ", ".join(f"{i['param']} ({i['name']}: {' x '.join(map(str, i['shape']))} "
                        f"{i['dtype']})" for i in c["inputs"])
        loop += f"""
`{name}` is computed a whole sequence at a time: `{c['api'][0]};` takes
{ins} and writes y; it returns {c['returns']}. There is no `{n}_step`
({c['no_step'].split(': ', 1)[1]}); its layers' buffers are on the stack
({c['stack_buffer_bytes']:,} bytes), and nothing persists between calls.
"""
    return f"""## Plain C99: NAME.c and NAME.h, no runtime at all

The model as C: the trained weights as `static const float` arrays (flash,
not RAM), a state struct with h (and c) per recurrent layer, and
`NAME_reset`, `NAME_step` and `NAME_predict` (NAME is the model name with
`-` turned into `_`). No heap, no mutable globals, no libm, nothing of libc
beyond `memset` and `memcpy`; it compiles warning-free under `-std=c99 -Wall
-Wextra -Werror -pedantic` and as C++ (`extern "C"`). The contract is in the
header: float32, row-major, reset at the start of each sequence. `verify`
compiles it and runs it against Keras as the runtimes `c` (whole sequence)
and `c-step` (step by step), and on each device target as `c@TARGET` and
`c-step@TARGET`: emulated Cortex-M cores (`c@cortex-m4`), RISC-V cores
(`c@riscv32imac`, `c@riscv32imafc`) and aarch64 (`c@aarch64`).

| files | params | weight bytes (float32) | state bytes |
|---|---:|---:|---:|
{chr(10).join(rows)}

What the code costs where it runs is measured, not part of these files: `device.json`
beside this README holds, per C source, its flash, globals and deepest stack frame on the
host compiler at -Os, and on every device target its flash, stack and instructions per
sequence (where its tools were installed at export); `edge-echo report` shows them, and
`edge-echo bench --targets all` measures the targets again.
{loop}"""


def int8_c_section(doc: dict) -> str:
    """The integer C (NAME.int8.c / NAME.int8.h, with --c-source --quantize int8): its API, what
    it computes in, and its scales, from the manifest."""
    rows, example = [], None
    for name, m in doc["models"].items():
        art = m["artifacts"].get("c_int8_source")
        if art is None:
            why = m.get("not_written", {}).get("c_int8_source")
            if why:
                rows.append(f"| {name}: no integer C | | | {why} |")
            continue
        c = art["c"]
        rows.append(f"| `{art['file']}` + `{c['header']}` | {c['params']:,} | "
                    f"{c['state_bytes']:,} | {art['quantization']['tolerance_rule']} |")
        if c.get("mode") != "whole_sequence":
            example = example or (name, c)
    if not rows:
        return ""
    api = ""
    if example is not None:
        name, c = example
        n, upper = c["prefix"], c["prefix"].upper()
        api = f"""
```c
#include "{name}.int8.h"  /* compile {name}.int8.c with -DEE_NO_FLOAT for integers alone */

static {n}_state state;  /* {c['state_bytes']} bytes: int16 h (and c) per layer */

void on_sample_q(const int16_t x_q[{upper}_FEATURES])  /* x / {upper}_X_SCALE[k], rounded */
{{
    int16_t y_q[{upper}_OUTPUTS];  /* y = y_q[j] * {upper}_Y_SCALE[j] */
    {n}_step_q(&state, x_q, y_q);
    use_output_q(y_q);  /* yours */
}}
```

`{n}_step` and `{n}_predict` take and give float32 as `{name}.h`'s functions do
(the same API under the prefix `{n}_`, so an app can link both and switch).
"""
    return f"""## Integer C: NAME.int8.c and NAME.int8.h, for cores without an FPU

The model again in integers alone (a whole-sequence model has `NAME_int8_predict` and
`NAME_int8_predict_q` alone, as its float C has `NAME_predict` alone): int8 weights with a
scale per output row (a one-byte multiplier each), int16 biases, activations and state, int32
sums, requantization by the multiplier and a shift, sigmoid and tanh from a 257-entry Q15
table and softmax's exponential as 2^-x from a 33-entry one.
Float appears only at the edges (quantizing x, scaling y), which `-DEE_NO_FLOAT` compiles out;
then a Cortex-M0 object calls no soft-float routine. The arithmetic is exact, so every core
gives the same bits (tested), and the DSP cores (Cortex-M4, M7, M33, M55) run the same sums
through ACLE's dual multiply-accumulates. The scales and the calibrated ranges they come
from are in the header and in the manifest (`quantization.ranges`). `verify` runs it as
`c:int8`, `c-step:int8` and on every device target as `c@TARGET:int8`, judged by the int8
rule below.

| files | params | state bytes | int8 rule |
|---|---:|---:|---|
{chr(10).join(rows)}
{api}"""


def wasm_section(doc: dict) -> str:
    """The C source as WebAssembly: NAME.wasm and its loader NAME.mjs, where written."""
    rows = [f"| `{m['artifacts']['wasm']['file']}` + `{m['artifacts']['wasm_loader']['file']}` | "
            f"{m['artifacts']['wasm']['size']:,} | {m['artifacts']['wasm_loader']['size']:,} |"
            for m in doc["models"].values() if "wasm" in m["artifacts"]
            and "wasm_loader" in m["artifacts"]]
    if not rows:
        return ""
    some = next(m["artifacts"]["wasm"] for m in doc["models"].values() if "wasm" in m["artifacts"])
    return f"""
## WebAssembly: NAME.wasm and NAME.mjs

The C source compiled for wasm32 by {some['wasm']['compiler']} (`-Oz`, freestanding: no libc,
no imports), with an ES-module loader for a browser, Node or a worker:

```js
import {{ load }} from "./NAME.mjs";  // NAME.wasm beside it, or load(url | bytes)
const model = await load();
const y = model.predict(x);          // x, y: Float32Array; reset() and step(x_t) where NAME_step exists
```

`verify` runs them in Node as `c@wasm32` and `c-step@wasm32`.

| files | .wasm bytes | loader bytes |
|---|---:|---:|
{chr(10).join(rows)}
"""


def web_section(doc: dict) -> str:
    """The LiteRT.js files: what they are, and how a web page runs one."""
    from .convert.tflite_web import LOADING

    rows = [f"| {name} | `{art['file']}` | `{art['of']}` | {art['size']:,} |"
            for name, m in doc["models"].items() for kind, art in m["artifacts"].items()
            if kind.startswith("tflite_web")]
    if not rows:
        return ""
    return f"""## LiteRT.js: the .web.tflite files

LiteRT.js (npm `@litertjs/core`) cannot resize an input, so it refuses a `.tflite`
whose batch is dynamic. Each such file has a web twin here: the same flatbuffer,
operators and weights with the batch fixed at 1 (one sequence a call), and the
contract and tolerance of the file it is made from. `verify` runs them in headless
Chromium as `litertjs`, `litertjs-step` and `litertjs:VARIANT`; the `.onnx` and
`.ort` files run there in ONNX Runtime Web (`onnxruntime-web`) and in Node
(`onnxruntime-node`). {LOADING}.

| model | file | from | bytes |
|---|---|---|---:|
{chr(10).join(rows)}

"""


def ort_section(doc: dict) -> str:
    """How an app loads the .ort files, and what the mobile usability check said of each."""
    from .convert.ort import CONFIG

    rows = []
    for name, m in doc["models"].items():
        for art in m["artifacts"].values():
            if art.get("format") != "ort":
                continue
            usable = art.get("mobile_usability", {})
            eps = " | ".join(
                f"{usable[ep]['as_is']} / {usable[ep]['with_fixed_shapes']}" if ep in usable else "-"
                for ep in ("nnapi", "coreml_neuralnetwork", "coreml_mlprogram"))
            rows.append(f"| {name} | `{art['file']}` | `{art['of']}` | {art['size']:,} | {eps} |")
    if not rows:
        return ""
    model, some = next((m, a) for m in doc["models"].values() for a in m["artifacts"].values()
                       if a.get("format") == "ort")
    opt = some["ort"]["optimization"]
    feed = ", ".join(f'"{i["name"]}": {i["name"]}' for i in model["inputs"])
    fetch = ", ".join(f'"{o["name"]}"' for o in model["outputs"])
    return f"""## ONNX Runtime Mobile: the .ort files

Every `.onnx` has an ORT-format twin, `NAME.ort` (`NAME.step.ort`,
`NAME.VARIANT.ort`), the format ONNX Runtime Mobile builds load (Android
`onnxruntime-android`, iOS `onnxruntime-objc`/`-c`, a minimal build on a small
Linux board). Made as `python -m onnxruntime.tools.convert_onnx_models_to_ort`
makes them (optimization style {opt['style']}, level {opt['level']}, without
{', '.join(opt['disabled_optimizers'])} so they run on ARM), then written in one
canonical byte layout so an export is byte-reproducible. Each has the inputs,
outputs, step state and tolerance of its `.onnx`; `verify` runs them as
`onnxruntime-ort`, `onnxruntime-ort-step` and `onnxruntime-ort:VARIANT`.

Load one as any ONNX Runtime session; the `.ort` suffix selects the format:

```python
session = ort.InferenceSession("{some['file']}")   # Kotlin: env.createSession("{some['file']}")
print(session.run([{fetch}], {{{feed}}}))
```

`{CONFIG}` lists the operators and types every `.ort` here needs, for a
reduced build: `./build.sh --minimal_build --include_ops_by_config {CONFIG}
--enable_reduced_operator_type_support`.

ONNX Runtime's mobile usability check
(`python -m onnxruntime.tools.check_onnx_model_mobile_usability`) on each file's
`.onnx`, per execution provider: whether the model should perform well on it as
it is / with its batch fixed (`mobile_usability` in manifest.json has the
nodes, partitions and operators it does not take). NO means: run it on the
CPU execution provider, which runs all of it.

| model | file | from | bytes | NNAPI | CoreML NeuralNetwork | CoreML MLProgram |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

"""


def source_lines(doc: dict) -> str:
    """Where each converted model came from (the manifest's source), one paragraph each."""
    lines = []
    for name, m in doc["models"].items():
        s = m.get("source")
        if not isinstance(s, dict):
            continue
        writer = " ".join(str(s[k]) for k in ("writer", "writer_version") if s.get(k))
        line = f"`{name}` was read from `{s.get('file')}` ({s.get('format')}, written by {writer})"
        t = s.get("translation")
        if isinstance(t, dict):
            rules = "; ".join(t.get("rules", [])) or "no argument needed changing"
            check = t.get("check", {})
            line += (f", translated from Keras 2 to Keras 3 ({rules}); the translation gives "
                     f"tf-keras's outputs on the original to {check.get('max_abs_diff', 0):.2g}")
        if s.get("renamed_layers"):
            line += ", with layers renamed for the converters (" + ", ".join(
                f"`{k}` -> `{v}`" for k, v in s["renamed_layers"].items()) + ")"
        lines.append(f"{line}. Reference: {s.get('reference')}.")
    return "\n\n".join(lines)


def render_readme(doc: dict) -> str:
    from .convert.onnx import OPSET

    def dims(shape):
        return "x".join("N" if d is None else str(d) for d in shape)

    rows = []
    for name, m in doc["models"].items():
        arts = m["artifacts"]
        sizes = " | ".join(f"{arts[k]['size']:,}" if k in arts else "not written"
                           for k in ("keras", "tflite", "onnx"))
        rows.append(f"| {name} | {m['spec']['param_count']} | {dims(m['inputs'][0]['shape'])} | "
                    f"{', '.join(dims(o['shape']) for o in m['outputs'])} | {sizes} |")
    v = doc["versions"]
    if "length" not in doc:
        return f"""# edge-echo convert

Written by `edge-echo convert {doc.get('source', '')}` (edge-echo {v['edge-echo']}); do not
edit by hand. `manifest.json` lists every file with its size, sha256, input and
output names, shapes and dtypes, operators and the tool versions that produced
it; `edge-echo verify DIR` checks them (`--no-keras` without TensorFlow), and
`edge-echo report DIR --run` shows every file, its contract, its error
against Keras and its cost on one page, `report.html`.

| model | params | input | outputs | .keras bytes | .tflite bytes | .onnx bytes |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

N is the batch. The TFLite file has every recurrent layer unrolled over the
time steps shown; `NAME.reference.npz` holds the reference inputs and the
reference's outputs on them.

{source_lines(doc)}

{ort_section(doc)}{web_section(doc)}{micro_section(doc)}{c_section(doc)}{int8_c_section(doc)}{wasm_section(doc)}"""
    n = doc["length"]
    seq = ", ".join(f"{i / n:.6g}" for i in range(n))
    return f"""# edge-echo export

Written by `edge-echo export` (edge-echo {v['edge-echo']}); do not edit by hand:
the next export replaces this directory whole. `manifest.json` lists every
file with its size, sha256, input and output names, shapes, dtypes, operators
and the tool versions that produced it; `edge-echo verify DIR` checks them.
`report.html`, where present (`make run`, or `edge-echo report DIR --run`),
shows every file, its contract, its error against Keras and its cost on one
page.

| model | params | input | output | .keras bytes | .tflite bytes | .onnx bytes |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

N is the batch: every file takes any batch size. Inputs are float32 named
`{INPUT_NAME}`, outputs float32 named `{OUTPUT_NAME}`, in every file.

## Files, per model NAME

- `NAME.tflite`: TensorFlow Lite (LiteRT) model, builtin operators only (no
  Flex delegate needed), stateless: set the input, invoke, read the output.
  The LSTM is unrolled over the {doc['length']} time steps; every tensor's shape
  follows from the input's, so there are no dynamic tensors for a delegate
  such as XNNPACK to mishandle.
- `NAME.onnx`: ONNX model (opset {OPSET}) with a native `LSTM` node and a dynamic batch.
- `NAME.step.tflite`, `NAME.step.onnx`: one time step, with the LSTM state as
  explicit inputs `h`, `c` and outputs `h_out`, `c_out`: feed zeros at the start
  of each sequence, then feed the outputs back (see `step` in manifest.json).
- `NAME.VARIANT.tflite`, `NAME.VARIANT.onnx` (with `--quantize`): float16, int8
  and dynamic-int8 variants; each has its method and its own tolerance in
  manifest.json (`quantization`, and `tolerances` under `RUNTIME:VARIANT`).
- `NAME.micro.tflite`, `NAME.micro.int8.tflite`, `NAME.micro.step.tflite`: the
  micro forms for TensorFlow Lite Micro (below).
- `*_model_data.h/.cc` (with `--c-array`): each micro form as a C array, its
  header listing the operators to register, the reset, and the arena size.
- `NAME.keras`: the trained Keras 3 model (needs TensorFlow).
- `NAME.reference.npz`: the seed input, {refdata.SAMPLES} seeded random inputs in [0, 1]
  and the Keras outputs on both (`seed_x`, `seed_y`, `random_x`, `random_y`),
  so the files can be verified where TensorFlow is absent.

## Loading without TensorFlow

```python
import numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path="many-to-one.tflite")
x = np.array([{seq}], np.float32).reshape(1, {n}, 1)
it.resize_tensor_input(it.get_input_details()[0]["index"], x.shape)
it.allocate_tensors()
it.set_tensor(it.get_input_details()[0]["index"], x)
it.invoke()
print(it.get_tensor(it.get_output_details()[0]["index"]))

import onnxruntime as ort
session = ort.InferenceSession("many-to-one.onnx")
print(session.run(["{OUTPUT_NAME}"], {{"{INPUT_NAME}": x}})[0])
```

Every `.tflite` carries a `serving_default` signature whose inputs and outputs
are named as above (a step file's as `step` in manifest.json says), so the
signature APIs find them by name: `Interpreter.get_signature_runner()`,
Kotlin/Java `runSignature`, and LiteRT's `CompiledModel`, the API LiteRT 2.x
recommends. Use `CompiledModel` for the stateless files (`NAME.tflite`, its
variants, `NAME.step.tflite`); keep the Interpreter for the micro files, whose
contract needs its reset (`CompiledModel` refuses files with variable
tensors). `verify` runs both APIs (`litert`, `litert-compiled`, ...).

```python
from ai_edge_litert.compiled_model import CompiledModel
model = CompiledModel.from_file("many-to-one.tflite")
inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
inputs[0].write(x)
model.run_by_index(0, inputs, outputs)
print(outputs[0].read({n}, np.float32))
```

{ort_section(doc)}{web_section(doc)}{micro_section(doc)}{c_section(doc)}{int8_c_section(doc)}{wasm_section(doc)}
Check the files before shipping them: `edge-echo verify DIR --no-keras`
(no TensorFlow needed).
"""
