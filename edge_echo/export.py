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

from . import fsutil, manifest, refdata
from .artifacts import describe_onnx, describe_tflite
from .compare import DEFAULT_TOLERANCE, echo_check
from .errors import ArtifactError
from .probe import probe
from .runners import RUNTIMES
from .specs import DEFAULT_LENGTH, DEFAULT_SEED, INPUT_NAME, OUTPUT_NAME, EchoSpec, get_spec
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
) -> ExportResult:
    specs = [get_spec(name, length, epochs) for name in models]
    require_tensorflow("edge-echo export")
    out = Path(out)
    report = progress or (lambda model, stage: None)
    lock = fsutil.exclusive(out, on_wait=lambda: report("", f"waiting for another export into {out}"))
    try:
        lock.__enter__()
    except OSError as exc:
        raise ArtifactError(f"{out}: cannot write the export here ({exc.strerror})") from None
    try:
        return _export_locked(out, specs, length, seed, report, retrain, c_array, quantize or [])
    finally:
        lock.__exit__(None, None, None)


def _export_locked(out: Path, specs: list[EchoSpec], length: int, seed: int, report: Progress,
                   retrain: bool, c_array: bool, quantize: list[tuple[str, str]]) -> ExportResult:
    previous = check_target(out)
    try:
        staged = fsutil.staging_dir(out)
    except OSError as exc:
        raise ArtifactError(f"{out}: cannot write the export here ({exc.strerror})") from None
    try:
        tools = versions()
        results = []
        for spec in specs:
            key = cache_key(spec, seed, tools)
            cached = None if retrain else _cached_keras(out, previous, spec.name, key)
            results.append(_export_model(spec, seed, staged, tools, report, key, cached, quantize))
            if c_array:
                _add_c_arrays(results[-1].entry["artifacts"], staged)
        doc = {
            "schema_version": manifest.SCHEMA_VERSION,
            "generator": {"name": "edge-echo", "version": tools["edge-echo"]},
            "versions": tools,
            "seed": seed,
            "length": length,
            "models": {r.spec.name: r.entry for r in results},
        }
        (staged / manifest.FILENAME).write_text(manifest.dumps(doc), encoding="utf-8")
        (staged / README).write_text(render_readme(doc), encoding="utf-8")
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
    return ExportResult(out, results, doc)


def check_target(out: Path) -> dict | None:
    """Refuse to replace anything that is not an earlier export of ours; return its manifest."""
    if out.exists() and not out.is_dir():
        raise ArtifactError(f"{out}: exists and is not a directory; choose another --out")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    try:
        old = manifest.load(out)
        ours = manifest.listed_files(old) | {manifest.FILENAME, README}
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
    """What determines the trained weights: the spec, the seed, the trainer and its libraries."""
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
                  quantize: list[tuple[str, str]]) -> ModelExport:
    from .convert.keras import save_keras
    from .convert.onnx import OPSET, to_onnx
    from .convert.step import to_step_onnx, to_step_tflite
    from .convert.tflite import ROUTE, ROUTE_NOTE, to_tflite
    from .train import TrainResult, train

    keras_path = out / f"{spec.name}.keras"
    if cached is not None:
        report(spec.name, "reusing the trained weights of the previous export")
        import_tensorflow()
        import keras

        source, training = cached
        shutil.copyfile(source, keras_path)
        model = keras.saving.load_model(keras_path, compile=False, safe_mode=True)
        trained = TrainResult(model, float(training["final_loss"]), 0.0)
    else:
        report(spec.name, f"training {spec.epochs} epochs")
        trained = train(spec, seed)
        model = trained.model
        report(spec.name, "saving .keras")
        save_keras(model, keras_path)
    io = {
        "inputs": [{"name": INPUT_NAME, "shape": [None, *spec.input_shape], "dtype": "float32"}],
        "outputs": [{"name": OUTPUT_NAME, "shape": [None, *spec.output_shape], "dtype": "float32"}],
    }

    keras_entry = manifest.file_entry(
        keras_path, format="keras", **io,
        layers=[type(layer).__name__ for layer in model.layers[1:]],
        producer={k: tools[k] for k in ("keras", "tensorflow")},
    )

    report(spec.name, "converting to TFLite")
    tflite_path = out / f"{spec.name}.tflite"
    tflite_path.write_bytes(to_tflite(model, spec))
    described = describe_tflite(tflite_path)
    if described["custom_operators"]:
        raise ArtifactError(
            f"{spec.name}: TFLite conversion produced custom ops {described['custom_operators']}"
        )
    tflite_entry = manifest.file_entry(
        tflite_path, format="tflite", **described,
        conversion={"route": ROUTE, "note": ROUTE_NOTE, "stateful": False},
        producer={k: tools[k] for k in ("tensorflow",)},
    )

    report(spec.name, "converting to ONNX")
    onnx_path = out / f"{spec.name}.onnx"
    onnx_path.write_bytes(to_onnx(model, spec))
    onnx_entry = manifest.file_entry(
        onnx_path, format="onnx", **describe_onnx(onnx_path), target_opset=OPSET,
        producer={k: tools[k] for k in ("tf2onnx", "onnx", "tensorflow")},
    )

    report(spec.name, "converting the step models")
    step_tflite_path = out / f"{spec.name}.step.tflite"
    step_tflite_path.write_bytes(to_step_tflite(model, spec))
    step_tflite_entry = manifest.file_entry(
        step_tflite_path, format="tflite", **describe_tflite(step_tflite_path),
        step=spec.step_io(), producer={k: tools[k] for k in ("tensorflow",)},
    )
    step_onnx_path = out / f"{spec.name}.step.onnx"
    step_onnx_path.write_bytes(to_step_onnx(onnx_path.read_bytes(), spec))
    step_onnx_entry = manifest.file_entry(
        step_onnx_path, format="onnx", **describe_onnx(step_onnx_path), step=spec.step_io(),
        producer={"edge-echo": tools["edge-echo"], "onnx": tools["onnx"]},
    )

    report(spec.name, "computing reference outputs")
    seed_x, _ = spec.training_data()
    random_x = refdata.random_inputs(spec.input_shape, refdata.SAMPLES, seed)
    arrays = {
        refdata.SEED_X: seed_x,
        refdata.SEED_Y: model(seed_x, training=False).numpy(),
        refdata.RANDOM_X: random_x,
        refdata.RANDOM_Y: model(random_x, training=False).numpy(),
    }
    ref_path = out / f"{spec.name}.reference.npz"
    refdata.save(ref_path, arrays)
    ref_entry = manifest.file_entry(
        ref_path, format="npz",
        arrays={k: {"shape": list(v.shape), "dtype": v.dtype.name} for k, v in arrays.items()},
        random_inputs={"distribution": "uniform", "low": 0.0, "high": 1.0, "seed": seed},
    )

    echo = echo_check(arrays[refdata.SEED_Y], spec.sequence())
    entry = {
        "spec": spec.describe(),
        "seed": seed,
        "training": {
            "final_loss": trained.final_loss,
            "cache_key": key,
            "loop": "one compiled while_loop; the same Adam steps on the same full batch as fit",
            "keras_echo": echo.printed,
        },
        **io,
        "tolerances": {rt: vars(DEFAULT_TOLERANCE).copy() for rt in RUNTIMES},
        "artifacts": {"keras": keras_entry, "tflite": tflite_entry, "onnx": onnx_entry,
                      "tflite_step": step_tflite_entry, "onnx_step": step_onnx_entry,
                      "reference": ref_entry},
    }
    missing = _add_variants(model, spec, seed, out, entry, quantize, tools, report)
    return ModelExport(spec, trained.final_loss, trained.seconds, echo.printed, echo.passed, entry,
                       reused=cached is not None, missing=missing)


def _add_variants(model, spec: EchoSpec, seed: int, out: Path, entry: dict,
                  quantize: list[tuple[str, str]], tools: dict, report: Progress) -> list[str]:
    """Write each requested quantized variant; return one line per variant that could not be made."""
    from .convert import quantize as q
    from .runners import runner_for_format

    if not quantize:
        return []
    arts = entry["artifacts"]
    reference_y = refdata.load(out / arts["reference"]["file"])[refdata.RANDOM_Y]
    calibration = q.calibration_inputs(spec, seed)
    missing = []
    for fmt, variant in quantize:
        report(spec.name, f"quantizing: {fmt} {variant}")
        path = out / f"{spec.name}.{variant}.{fmt}"
        try:
            with quiet_converters():
                if fmt == "tflite":
                    data = q.tflite_variant(model, spec, variant, calibration)
                else:
                    data = q.onnx_variant(out / arts["onnx"]["file"], variant, calibration,
                                          INPUT_NAME)
        except q.VariantUnavailable as exc:
            missing.append(f"{spec.name}: {fmt} {variant} not produced: {exc}")
            continue
        path.write_bytes(data)
        crash = probe(path)
        if crash:
            path.unlink()
            missing.append(f"{spec.name}: {fmt} {variant} not produced: {crash}")
            continue
        described = describe_tflite(path) if fmt == "tflite" else describe_onnx(path)
        tol = q.tolerance(variant, reference_y)
        arts[f"{fmt}_{variant}"] = manifest.file_entry(
            path, format=fmt, variant=variant, **described,
            quantization={"method": q.METHODS[(fmt, variant)],
                          "calibration": (f"{len(calibration)} sequences: the training sequence and "
                                          f"uniform [0, 1] random ones"
                                          if variant == "int8" else None),
                          "tolerance_rule": tol["rule"]},
            producer={k: tools[k] for k in (("tensorflow",) if fmt == "tflite" else
                                             ("onnxruntime", "onnx"))},
        )
        label = f"{runner_for_format(fmt).runtime}:{variant}"
        entry["tolerances"][label] = {"atol": tol["atol"], "rtol": tol["rtol"]}
    return missing


def _add_c_arrays(artifacts: dict, out: Path) -> None:
    """A .h/.cc pair per TFLite file, for TensorFlow Lite Micro."""
    from .embed import write_c_array

    for kind in [k for k, a in artifacts.items() if a["format"] == "tflite"]:
        art = artifacts[kind]
        header, source = write_c_array(out / art["file"], art["operators"], art["sha256"])
        artifacts[f"{kind}_c_header"] = manifest.file_entry(header, format="c-header", of=art["file"])
        artifacts[f"{kind}_c_source"] = manifest.file_entry(
            source, format="c-source", of=art["file"], operators=art["operators"])


def render_readme(doc: dict) -> str:
    from .convert.onnx import OPSET

    rows = []
    for name, m in doc["models"].items():
        arts = m["artifacts"]
        shape_in = "x".join("N" if d is None else str(d) for d in m["inputs"][0]["shape"])
        shape_out = "x".join("N" if d is None else str(d) for d in m["outputs"][0]["shape"])
        rows.append(
            f"| {name} | {m['spec']['param_count']} | {shape_in} | {shape_out} | "
            f"{arts['keras']['size']:,} | {arts['tflite']['size']:,} | {arts['onnx']['size']:,} |"
        )
    v = doc["versions"]
    n = doc["length"]
    seq = ", ".join(f"{i / n:.6g}" for i in range(n))
    return f"""# edge-echo export

Written by `edge-echo export` (edge-echo {v['edge-echo']}); do not edit by hand:
the next export replaces this directory whole. `manifest.json` lists every
file with its size, sha256, input and output names, shapes, dtypes, operators
and the tool versions that produced it; `edge-echo verify DIR` checks them.

| model | params | input | output | .keras bytes | .tflite bytes | .onnx bytes |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

N is the batch: every file takes any batch size. Inputs are float32 named
`{INPUT_NAME}`, outputs float32 named `{OUTPUT_NAME}` (in TFLite files: input
tensor 0 and output tensor 0).

## Files, per model NAME

- `NAME.tflite`: TensorFlow Lite (LiteRT) model, builtin operators only (no
  Flex delegate needed), stateless: set the input, invoke, read the output.
  The LSTM is unrolled over the {doc['length']} time steps.
- `NAME.onnx`: ONNX model (opset {OPSET}) with a native `LSTM` node and a dynamic batch.
- `NAME.step.tflite`, `NAME.step.onnx`: one time step, with the LSTM state as
  explicit inputs `h`, `c` and outputs `h_out`, `c_out`: feed zeros at the start
  of each sequence, then feed the outputs back (see `step` in manifest.json).
- `*_model_data.h/.cc` (with `--c-array`): each `.tflite` as a C array for
  TensorFlow Lite Micro, with the operators to register listed on top.
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

Check the files before shipping them: `edge-echo verify DIR --no-keras`
(no TensorFlow needed).
"""
