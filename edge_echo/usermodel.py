"""edge-echo convert: the export and its guarantees for a user's own trained Keras model.

The user's weights are used as they are. Input and output names, shapes and
dtypes come from the model; a model that leaves the number of time steps
open gets --timesteps for the files that need it fixed (TFLite) and for the
reference data, while the ONNX file keeps it open. A format that cannot
express the model is reported with the converter's reason and, where the
reason names one, the layer; the other formats are still written.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import manifest, refdata
from .convert.tflite import as_list
from .errors import ArtifactError, UsageError, first_line
from .forms import Interface, Subject
from .tfenv import import_tensorflow, require_tensorflow


@dataclass
class ConvertResult:
    directory: Path
    name: str
    manifest: dict
    missing: list[str] = field(default_factory=list)
    # Forms this model has none of, with the reason (not failures).
    notes: list[str] = field(default_factory=list)


def _clean(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_") or "output"


def load_user_model(path: Path):
    require_tensorflow("edge-echo convert")
    path = Path(path)
    if path.suffix != ".keras":
        raise UsageError(f"{path}: expected a Keras 3 .keras file")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    import_tensorflow()
    import keras

    try:
        # safe_mode refuses Lambda layers and other code carried in the file.
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        raise ArtifactError(f"{path.name}: Keras cannot load it ({first_line(exc)})") from None


def interface_of(model, timesteps: int | None) -> Interface:
    if len(model.inputs) != 1:
        raise UsageError(f"convert takes models with one input; this one has {len(model.inputs)}")
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) < 2:
        raise UsageError(f"the input must be (time steps, features); the model takes {list(shape)}")
    if any(d is None for d in shape[1:]):
        raise UsageError(f"only the number of time steps may be open; the input is {list(shape)}")
    model_t = shape[0]
    if model_t is None and timesteps is None:
        raise UsageError("the model leaves the number of time steps open; give --timesteps N")
    if model_t is not None and timesteps not in (None, model_t):
        raise UsageError(f"--timesteps {timesteps} contradicts the model's {model_t} time steps")
    t = model_t or timesteps
    if not 1 <= t <= 4096:
        raise UsageError(f"--timesteps must be between 1 and 4096, got {t}")
    zeros = np.zeros((1, t, *shape[1:]), np.float32)
    outs = as_list(model(zeros, training=False))
    names = [_clean(n) for n in _output_names(model, len(outs))]
    if len(set(names)) != len(names):
        names = [f"y{i}" for i in range(len(outs))]
    return Interface(t, model_t, (t, *shape[1:]), "x",
                     [(n, tuple(np.asarray(o).shape[1:])) for n, o in zip(names, outs, strict=True)])


def _output_names(model, count: int) -> list[str]:
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != count:
        names = [t.name.split("/")[0] for t in model.outputs] if count == len(model.outputs) else []
    return names if len(names) == count else [f"y{i}" for i in range(count)]


def reference_inputs(interface: Interface, seed: int, low: float, high: float,
                     data: Path | None) -> tuple[np.ndarray, dict]:
    if data is None:
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise UsageError(f"--input-range needs two finite numbers LOW < HIGH, got {low} {high}")
        x = refdata.random_inputs(interface.input_shape, refdata.SAMPLES, seed, low, high)
        return x, {"distribution": "uniform", "low": low, "high": high, "seed": seed}
    try:
        x = np.load(data, allow_pickle=False)
    except Exception as exc:
        raise UsageError(f"--data {data}: not a readable .npy array ({exc})") from None
    if x.ndim == len(interface.input_shape):
        x = x[None]
    if tuple(x.shape[1:]) != interface.input_shape:
        raise UsageError(f"--data {data}: samples of shape {list(x.shape[1:])}; the model takes "
                         f"{list(interface.input_shape)}")
    if not np.all(np.isfinite(x)):
        raise UsageError(f"--data {data}: holds NaN or infinity")
    low, high = float(x.min()), float(x.max())
    return x.astype(np.float32), {"distribution": "data", "file": Path(data).name, "low": low,
                                  "high": max(high, low + 1e-6), "samples": len(x)}


def convert(path: Path, out: Path, name: str | None = None, timesteps: int | None = None,
            input_range: tuple[float, float] = (0.0, 1.0), data: Path | None = None, seed: int = 0,
            quantize: list[tuple[str, str]] | None = None, c_array: bool = False,
            progress=None, forms: tuple[str, ...] | None = None,
            c_source: bool = False) -> ConvertResult:
    from .export import publish, write_model

    report = progress or (lambda model, stage: None)
    path = Path(path)
    model = load_user_model(path)
    interface = interface_of(model, timesteps)
    name = _clean(name or path.stem).replace("_", "-")
    x, spread = reference_inputs(interface, seed, *input_range, data)
    arrays = {refdata.RANDOM_X: x}
    for i, o in enumerate(as_list(model(x, training=False))):
        arrays[refdata.output_key(refdata.RANDOM_Y, i)] = np.asarray(o)
    calibration = refdata.random_inputs(interface.input_shape, 2000, seed + 1_000_003,
                                        spread["low"], spread["high"])
    subject = Subject(name, model, interface, calibration,
                      np.concatenate([np.ravel(v) for k, v in sorted(arrays.items())
                                      if k != refdata.RANDOM_X]), x)
    missing: list[str] = []
    notes: list[str] = []

    def build(staged: Path, previous, tools):
        keras_path = staged / f"{name}.keras"
        shutil.copyfile(path, keras_path)
        keras_entry = manifest.file_entry(keras_path, format="keras", **interface.io(),
                                          layers=[type(la).__name__ for la in model.layers],
                                          producer={"source": path.name})
        common, lost = write_model(subject, staged, tools, report, keras_entry, arrays, spread,
                                   quantize or [], c_array, forms, c_source)
        missing.extend(lost)
        notes.extend(f"{name}: no {kind} form: {why}"
                     for kind, why in common.get("not_written", {}).items())
        entry = {
            "spec": {"name": name, "source": path.name, "source_sha256": manifest.sha256_file(path),
                     "layers": [type(la).__name__ for la in model.layers],
                     "param_count": int(model.count_params()), "timesteps": interface.timesteps,
                     "model_timesteps": interface.model_timesteps},
            **common,
        }
        return {"source": path.name, "models": {name: entry}}, None

    doc, _ = publish(Path(out), build, report)
    return ConvertResult(Path(out), name, doc, missing, notes)
