"""edge-echo convert: the export and its guarantees for a user's own trained Keras model.

The user's weights are used as they are. Input and output names, shapes and
dtypes come from the model; a model that leaves the number of time steps
open gets --timesteps for the files that need it fixed (TFLite) and for the
reference data, while the ONNX file keeps it open. A format that cannot
express the model is reported with the converter's reason and, where the
reason names one, the layer; the other formats are still written.
"""

from __future__ import annotations

import copy
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import manifest, refdata
from .convert.tflite import as_list
from .device import token_ids
from .errors import ArtifactError, UsageError, first_line
from .forms import Input, Interface, Subject


@dataclass
class ConvertResult:
    directory: Path
    name: str
    manifest: dict
    missing: list[str] = field(default_factory=list)
    # Forms this model has none of, with the reason (not failures).
    notes: list[str] = field(default_factory=list)
    # Files taken from the previous convert into the same directory (made from the same inputs).
    reused: list[str] = field(default_factory=list)


def _clean(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]+", "_", name).strip("_") or "output"


def model_name(text: str) -> str:
    """The name convert gives a model's files (--name, or the model file's name)."""
    return _clean(text).replace("_", "-")


def load_user_model(path: Path):
    """The model at path through its format's reader (readers/), checked before anything is
    written: a Keras 3 model (or a serving graph) and where it came from."""
    from . import readers

    return readers.prepare(readers.read(Path(path)))


def interface_of(model, timesteps: int | None) -> Interface:
    """Names, shapes and dtypes of the model's inputs and outputs.

    Only the first dimension of an input (its time steps) may be open; --timesteps fixes
    it. An input that feeds an Embedding takes integer token ids (int32 unless the model
    says int64), whatever dtype its Input declares: Keras casts them to integers anyway.
    """
    graph = getattr(model, "is_graph", False)
    if graph:  # a serving signature (readers/graph.py): its named inputs, in name order
        tensors = [_Named(k, spec.shape, spec.dtype.name)
                   for k, spec in zip(model.input_keys, model.input_specs, strict=True)]
    else:
        import keras

        tensors = list(model.inputs)
    shapes = [tuple(t.shape[1:]) for t in tensors]
    for t, shape in zip(tensors, shapes, strict=True):
        if not shape:
            raise UsageError(f"input '{t.name}' takes one number per sample; edge-echo converts "
                             "sequence models (an input of at least one dimension)")
        if any(d is None for d in shape[1:]):
            raise UsageError(f"only the number of time steps may be open; input '{t.name}' is "
                             f"{list(shape)}")
    open_inputs = [t.name for t, shape in zip(tensors, shapes, strict=True) if shape[0] is None]
    model_t = None if open_inputs else shapes[0][0]
    if open_inputs and timesteps is None:
        raise UsageError(f"the model leaves the number of time steps open (input "
                         f"'{open_inputs[0]}'); give --timesteps N")
    if not open_inputs and timesteps not in (None, model_t):
        raise UsageError(f"--timesteps {timesteps} contradicts the model's {model_t} time steps")
    t = timesteps or model_t
    if not 1 <= t <= 4096:
        raise UsageError(f"--timesteps must be between 1 and 4096, got {t}")
    # One input keeps the name every edge-echo file has used; several keep the model's names.
    names = ["x"] if len(tensors) == 1 else [_clean(x.name) for x in tensors]
    if len(set(names)) != len(names):
        names = [f"x{k}" for k in range(len(tensors))]
    inputs = []
    for name, tensor, shape in zip(names, tensors, shapes, strict=True):
        vocabulary = None if graph else _embedding_size(model, tensor, keras)
        dtype = str(tensor.dtype)
        if vocabulary is not None and not dtype.startswith("int"):
            dtype = "int32"
        if dtype not in ("float32", "int32", "int64"):
            raise UsageError(f"input '{tensor.name}' is {dtype}; edge-echo takes float32 inputs "
                             "and int32 or int64 token ids")
        fixed = tuple(t if d is None else d for d in shape)
        inputs.append(Input(name, fixed, dtype, shape, vocabulary))
    zeros = [np.zeros((1, *i.shape), i.dtype) for i in inputs]
    outs = as_list(model(zeros if len(zeros) > 1 else zeros[0], training=False))
    out_names = [_clean(n) for n in (model.output_keys if graph
                                     else _output_names(model, len(outs)))]
    if len(set(out_names)) != len(out_names) or set(out_names) & set(names):
        out_names = [f"y{i}" for i in range(len(outs))]
    kinds = {} if graph else {
        n: kind for n, tensor in zip(out_names, as_list(model.outputs), strict=True)
        if (kind := _probability(tensor, keras))}
    return Interface(t, model_t, inputs,
                     [(n, tuple(np.asarray(o).shape[1:])) for n, o in zip(out_names, outs, strict=True)],
                     kinds)


@dataclass
class _Named:
    """A serving signature's input, shaped as a Keras input tensor for interface_of."""

    name: str
    shape: tuple
    dtype: str


def _probability(tensor, keras) -> str | None:
    """softmax or sigmoid where the layer that makes this output ends in that activation (a
    Dense, TimeDistributed(Dense), Activation or Softmax layer over the last axis)."""
    layer = getattr(getattr(tensor, "_keras_history", None), "operation", None)
    inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
    if isinstance(inner, keras.layers.Softmax):
        axis = inner.axis if isinstance(inner.axis, int) else None
        return "softmax" if axis == -1 else None
    name = getattr(getattr(inner, "activation", None), "__name__", None)
    return name if name in ("softmax", "sigmoid") else None


def _embedding_size(model, tensor, keras) -> int | None:
    """input_dim of the Embedding that tensor feeds (directly), or None."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding):
            try:
                source = layer.input
            except (AttributeError, ValueError):
                continue
            if source is tensor:
                return int(layer.input_dim)
    return None


def _output_names(model, count: int) -> list[str]:
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != count:
        names = [t.name.split("/")[0] for t in model.outputs] if count == len(model.outputs) else []
    return names if len(names) == count else [f"y{i}" for i in range(count)]


def reference_inputs(interface: Interface, seed: int, low: float, high: float,
                     data: Path | None) -> tuple[dict[str, np.ndarray], dict]:
    """The reference inputs, by input name, and how they were drawn (the manifest's spread)."""
    if data is None:
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise UsageError(f"--input-range needs two finite numbers LOW < HIGH, got {low} {high}")
        per_input = {}
        for i in interface.inputs:
            if i.integer:
                top = i.vocabulary if i.vocabulary else int(np.floor(high)) + 1
                bottom = 0 if i.vocabulary else int(np.ceil(low))
                if bottom >= top:
                    raise UsageError(f"input '{i.name}' takes integers and --input-range {low} "
                                     f"{high} holds none")
                per_input[i.name] = {"distribution": "integers", "low": bottom, "high": top}
            else:
                per_input[i.name] = {"distribution": "uniform", "low": low, "high": high}
        spread = {"distribution": "uniform", "low": low, "high": high, "seed": seed,
                  "inputs": per_input}
        return refdata.draw([i.io() for i in interface.inputs], refdata.SAMPLES, seed, spread), spread
    feed = _read_data(interface, Path(data))
    per_input = {}
    for i in interface.inputs:
        x = feed[i.name]
        low, high = float(x.min()), float(x.max())
        per_input[i.name] = ({"distribution": "integers", "low": int(low), "high": int(high) + 1}
                             if i.integer else
                             {"distribution": "uniform", "low": low, "high": max(high, low + 1e-6)})
    first = per_input[interface.input_name]
    return feed, {"distribution": "data", "file": Path(data).name, "low": first["low"],
                  "high": first["high"], "samples": len(feed[interface.input_name]),
                  "inputs": per_input}


def _read_data(interface: Interface, data: Path) -> dict[str, np.ndarray]:
    """--data: an .npy (a model with one input) or an .npz with one array per input name."""
    names = interface.input_names
    try:
        loaded = np.load(data, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
        else:
            arrays = None
    except Exception as exc:
        raise UsageError(f"--data {data}: not a readable .npy or .npz file ({first_line(exc)})") from None
    if arrays is None:
        if len(names) != 1:
            raise UsageError(f"--data {data}: the model has {len(names)} inputs; give an .npz "
                             f"with one array per input: {', '.join(names)}")
        arrays = {names[0]: loaded}
    elif len(names) == 1 and len(arrays) == 1:
        arrays = {names[0]: next(iter(arrays.values()))}
    missing, unknown = [n for n in names if n not in arrays], sorted(set(arrays) - set(names))
    if missing or unknown:
        raise UsageError(f"--data {data}: " + "; ".join(
            ([f"no array for input {', '.join(missing)}"] if missing else [])
            + ([f"unknown array {', '.join(unknown)}"] if unknown else []))
            + f" (the model's inputs: {', '.join(names)})")
    feed, counts = {}, set()
    for i in interface.inputs:
        x = arrays[i.name]
        if x.dtype.kind not in "biuf":
            raise UsageError(f"--data {data}: '{i.name}' holds {x.dtype}, not numbers")
        if x.ndim == len(i.shape):
            x = x[None]
        if tuple(x.shape[1:]) != i.shape:
            raise UsageError(f"--data {data}: '{i.name}' has samples of shape {list(x.shape[1:])}; "
                             f"the model takes {list(i.shape)}")
        if not np.all(np.isfinite(x)):
            raise UsageError(f"--data {data}: '{i.name}' holds NaN or infinity")
        if len(x) == 0:
            raise UsageError(f"--data {data}: '{i.name}' holds no samples")
        if i.integer:
            x = token_ids(x, f"--data {data}: '{i.name}'", i.dtype, i.vocabulary)
        feed[i.name] = x.astype(i.dtype)
        counts.add(len(x))
    if len(counts) > 1:
        raise UsageError(f"--data {data}: the inputs hold different numbers of samples "
                         f"({', '.join(str(len(feed[n])) for n in names)})")
    return feed


# The translated model must give the original framework's outputs to float32 round-off.
TRANSLATION_TOLERANCE = (1e-5, 1e-5)


def check_outputs(outputs: list[np.ndarray], interface: Interface, path: Path) -> None:
    """Refuse a model whose outputs on the reference inputs are not all finite: no file made
    from it could be verified."""
    for (out_name, _), o in zip(interface.outputs, outputs, strict=True):
        if not np.all(np.isfinite(o)):
            raise ArtifactError(f"{path.name}: output '{out_name}' is NaN or infinite on the "
                                f"reference inputs ({int((~np.isfinite(o)).sum())} of {o.size} "
                                "values); no export of it can be trusted")


def describe_source(source, interface: Interface, feed: dict, outputs: list[np.ndarray],
                    name: str) -> dict:
    """The manifest's `source`: the format, its writer and version, any translation (checked
    here against the original framework's own outputs), the renames, and the reference."""
    doc = {"file": source.path.name, **{k: v for k, v in copy.deepcopy(source.provenance).items()
                                         if v is not None}}
    if source.translated:
        original = source.original([feed[n] for n in interface.input_names])
        worst, bound = 0.0, 0.0
        atol, rtol = TRANSLATION_TOLERANCE
        for o3, o2 in zip(outputs, original, strict=True):
            if o3.shape != o2.shape:
                raise ArtifactError(f"{source.path.name}: the translated model's output has "
                                    f"shape {list(o3.shape)}, the original's {list(o2.shape)}")
            diff = np.abs(o3.astype(np.float64) - o2.astype(np.float64))
            worst = max(worst, float(diff.max(initial=0.0)))
            excess = diff - (atol + rtol * np.abs(o2))
            bound = max(bound, float(excess.max(initial=-1.0)))
        if bound > 0:
            raise ArtifactError(f"{source.path.name}: the Keras 3 translation does not reproduce "
                                f"tf-keras on the original (max |diff| {worst:.3g} on the "
                                "reference inputs); nothing was written")
        doc["translation"]["check"] = {
            "against": "tf-keras on the original file", "inputs": "the reference inputs",
            "max_abs_diff": worst, "atol": atol, "rtol": rtol}
    if source.graph is not None:
        doc["reference"] = (f"TensorFlow on the {doc['signature']} signature of "
                            f"{name}.savedmodel.zip (the SavedModel, zipped as it is)")
        return doc
    as_read = source.format == "keras" and not source.translated and \
        not source.provenance.get("renamed_layers")
    doc["keras_file"] = "copied" if as_read else "saved"
    how = [what for what, done in (("read from " + source.format, source.format != "keras"),
                                   ("translated", source.translated),
                                   ("renamed", bool(source.provenance.get("renamed_layers"))))
           if done]
    doc["reference"] = (f"Keras 3 on {name}.keras, the source file as it is" if as_read else
                        f"Keras 3 on {name}.keras, the model {', '.join(how)}, saved by Keras 3")
    return doc


def convert(path: Path, out: Path, name: str | None = None, timesteps: int | None = None,
            input_range: tuple[float, float] = (0.0, 1.0), data: Path | None = None, seed: int = 0,
            quantize: list[tuple[str, str]] | None = None, c_array: bool = False,
            progress=None, forms: tuple[str, ...] | None = None,
            c_source: bool = False, force: bool = False) -> ConvertResult:
    """A user's model through every form. A file the previous convert into out made from the
    same inputs (the source's sha256, the options that draw the reference data, the form and
    the tool versions) is reused, unless force."""
    from .export import publish, write_model
    from .forms import Reuse

    report = progress or (lambda model, stage: None)
    path = Path(path)
    source = load_user_model(path)
    model = source.model
    interface = interface_of(model, timesteps)
    name = model_name(name or (path.stem if path.is_file() else path.resolve().name))
    feed, spread = reference_inputs(interface, seed, *input_range, data)
    arrays = {refdata.input_key(refdata.RANDOM_X, k): feed[n]
              for k, n in enumerate(interface.input_names)}
    x = feed[interface.input_name]
    outputs = [np.asarray(o) for o in as_list(model(list(feed.values()) if len(feed) > 1 else x,
                                                     training=False))]
    for k, o in enumerate(outputs):
        arrays[refdata.output_key(refdata.RANDOM_Y, k)] = o
    check_outputs(outputs, interface, path)
    provenance = describe_source(source, interface, feed, outputs, name)
    # int8 calibration: inputs drawn as the reference ones were (each input in its range, token
    # ids in the vocabulary), not the reference inputs themselves; one array for one float input.
    drawn = refdata.draw([i.io() for i in interface.inputs], 2000, seed + 1_000_003, spread)
    calibration = drawn[interface.input_name] if interface.plain else drawn
    from .readers import digest

    source_sha256 = digest(path)
    subject = Subject(name, model, interface, calibration,
                      np.concatenate([np.ravel(v) for k, v in sorted(arrays.items())
                                      if k.startswith(refdata.RANDOM_Y)]), x,
                      basis={"source_sha256": source_sha256, "name": name,
                             "timesteps": interface.timesteps, "seed": seed,
                             "input_range": [float(v) for v in input_range],
                             "data_sha256": manifest.sha256_file(Path(data)) if data else None})
    missing: list[str] = []
    notes: list[str] = []
    reused: list[str] = []

    def build(staged: Path, previous, tools):
        model_files = {}
        if source.graph is not None:
            from .readers.graph import zip_dir

            zipped = staged / f"{name}.savedmodel.zip"
            zipped.write_bytes(zip_dir(path))
            model_files["savedmodel"] = manifest.file_entry(
                zipped, format="savedmodel", **interface.io(),
                signature={"name": provenance["signature"],
                           "inputs": dict(zip(interface.input_names, model.input_keys,
                                              strict=True)),
                           "outputs": dict(zip(interface.output_names, model.output_keys,
                                               strict=True))},
                producer={"source": path.name})
        else:
            keras_path = staged / f"{name}.keras"
            if provenance["keras_file"] == "copied":
                shutil.copyfile(path, keras_path)
            else:  # translated or renamed: the model every form was made from, as Keras 3 saves it
                from .convert.keras import save_keras

                save_keras(model, keras_path)
            model_files["keras"] = manifest.file_entry(
                keras_path, format="keras", **interface.io(),
                layers=[type(la).__name__ for la in model.layers], producer={"source": path.name})
        old = None if force else (previous or {}).get("models", {}).get(name)
        reuse = Reuse(Path(out), old, name) if isinstance(old, dict) else None
        common, lost, kept = write_model(subject, staged, tools, report, model_files, arrays, spread,
                                         quantize or [], c_array, forms, c_source, reuse)
        missing.extend(lost)
        reused.extend(kept)
        notes.extend(f"{name}: no {kind} form: {why}"
                     for kind, why in common.get("not_written", {}).items())
        entry = {
            "source": provenance,
            "spec": {"name": name, "source": path.name, "source_sha256": source_sha256,
                     "layers": [type(la).__name__ for la in model.layers],
                     "param_count": int(model.count_params()), "timesteps": interface.timesteps,
                     "model_timesteps": interface.model_timesteps},
            **common,
        }
        command = manifest.command_line(
            "convert", path.name, name=name, timesteps=timesteps,
            input_range=tuple(float(v) for v in input_range),
            data=Path(data).name if data else None, seed=seed, c_array=c_array,
            c_source=c_source, forms=forms,
            quantize=[f"{fmt}:{variant}" for fmt, variant in quantize or []])
        return {"source": path.name, "command": command, "models": {name: entry}}, None

    doc, _ = publish(Path(out), build, report)
    return ConvertResult(Path(out), name, doc, missing, notes, reused)
