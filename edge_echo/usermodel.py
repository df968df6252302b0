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
from .artifacts import describe_onnx, describe_tflite
from .compare import DEFAULT_TOLERANCE
from .errors import ArtifactError, UsageError, first_line
from .probe import probe
from .runners import RUNTIMES
from .tfenv import import_tensorflow, quiet_converters, require_tensorflow

RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN")


@dataclass
class ConvertResult:
    directory: Path
    name: str
    manifest: dict
    missing: list[str] = field(default_factory=list)


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


@dataclass
class Interface:
    timesteps: int
    model_timesteps: int | None
    input_shape: tuple[int, ...]          # one sample, time steps fixed
    input_name: str
    outputs: list[tuple[str, tuple[int, ...]]]


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
    outs = _as_list(model(zeros, training=False))
    names = [_clean(n) for n in _output_names(model, len(outs))]
    if len(set(names)) != len(names):
        names = [f"y{i}" for i in range(len(outs))]
    return Interface(t, model_t, (t, *shape[1:]), "x",
                     [(n, tuple(np.asarray(o).shape[1:])) for n, o in zip(names, outs, strict=True)])


def _as_list(outputs) -> list:
    """A model's outputs in order, whether it returns one tensor, a list or a dict."""
    if isinstance(outputs, dict):
        return list(outputs.values())
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _output_names(model, count: int) -> list[str]:
    names = list(getattr(model, "output_names", None) or [])
    if len(names) != count:
        names = [t.name.split("/")[0] for t in model.outputs] if count == len(model.outputs) else []
    return names if len(names) == count else [f"y{i}" for i in range(count)]


def _unrolled_clone(model, interface: Interface):
    """The same model, every recurrent layer unrolled over the fixed time steps, same weights."""
    import keras

    def clone(layer):
        config = layer.get_config()
        if type(layer).__name__ in RNN_CLASSES:
            config["unroll"] = True
        elif type(layer).__name__ == "Bidirectional":
            for key in ("layer", "backward_layer"):
                if isinstance(config.get(key), dict):
                    config[key]["config"]["unroll"] = True
        return type(layer).from_config(config)

    inputs = keras.Input(interface.input_shape, name=interface.input_name)
    cloned = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    cloned.set_weights(model.get_weights())
    return cloned


def frozen_for(model, interface: Interface):
    from .convert.tflite import freeze

    unrolled = _unrolled_clone(model, interface)
    return freeze(unrolled, lambda x: _as_list(unrolled(x, training=False)),
                  interface.input_shape, interface.input_name)


def to_onnx(model, interface: Interface) -> bytes:
    tf = import_tensorflow()
    import tf2onnx

    from .convert.onnx import OPSET, finish

    time_dim = interface.model_timesteps  # None keeps the time steps open in the ONNX file
    signature = tf.TensorSpec((None, time_dim, *interface.input_shape[1:]), tf.float32,
                              name=interface.input_name)

    function = tf.function(lambda x: _as_list(model(x, training=False)), input_signature=[signature])
    proto, _ = tf2onnx.convert.from_function(function, input_signature=[signature], opset=OPSET)
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:
        # Name the TF node (and so the layer) behind an operator ONNX does not know.
        reason = first_line(exc, limit=10_000)
        culprits = [n.name for n in proto.graph.node if re.search(rf"\b{n.op_type}\b", reason)
                    and n.op_type not in ("Add", "Mul", "Cast")]
        raise RuntimeError(f"{reason} (node {culprits[0]})" if culprits else reason) from None
    finish(proto, [name for name, _ in interface.outputs])
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString(deterministic=True)


def _layer_hint(model, reason: str) -> str:
    """The layer a converter's message names, if it names one."""
    for layer in model.layers[::-1]:
        # TF name scopes add a _N suffix to the layer name.
        if re.search(rf"(?<![0-9A-Za-z]){re.escape(layer.name)}(_\d+)?(?![0-9A-Za-z])", reason):
            return f"layer '{layer.name}' ({type(layer).__name__}): "
    return ""


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
            progress=None) -> ConvertResult:
    from .export import _add_c_arrays, add_variants, publish

    report = progress or (lambda model, stage: None)
    path = Path(path)
    model = load_user_model(path)
    interface = interface_of(model, timesteps)
    name = _clean(name or path.stem).replace("_", "-")
    x, spread = reference_inputs(interface, seed, *input_range, data)
    outs = _as_list(model(x, training=False))
    missing: list[str] = []

    def build(staged: Path, previous, tools):
        arts = {}
        keras_path = staged / f"{name}.keras"
        shutil.copyfile(path, keras_path)
        io = {
            "inputs": [{"name": interface.input_name, "shape": [None, *interface.input_shape],
                        "dtype": "float32"}],
            "outputs": [{"name": n, "shape": [None, *s], "dtype": "float32"}
                        for n, s in interface.outputs],
        }
        arts["keras"] = manifest.file_entry(keras_path, format="keras", **io,
                                            layers=[type(la).__name__ for la in model.layers],
                                            producer={"source": path.name})
        report(name, "converting to TFLite")
        tflite_path = staged / f"{name}.tflite"
        frozen = None
        try:
            with quiet_converters():
                from .convert.tflite import converter_for

                frozen = frozen_for(model, interface)
                tflite_path.write_bytes(converter_for(frozen).convert())
            described = describe_tflite(tflite_path)
            if described["custom_operators"]:
                raise RuntimeError(f"needs custom or Flex ops {described['custom_operators']}")
            arts["tflite"] = manifest.file_entry(
                tflite_path, format="tflite", **described,
                conversion={"route": "unrolled-frozen", "timesteps": interface.timesteps},
                producer={"tensorflow": tools["tensorflow"]})
        except Exception as exc:
            tflite_path.unlink(missing_ok=True)
            reason = first_line(exc)
            missing.append(f"{name}: tflite not written: {_layer_hint(model, reason)}{reason}")
        report(name, "converting to ONNX")
        onnx_path = staged / f"{name}.onnx"
        try:
            with quiet_converters():
                onnx_path.write_bytes(to_onnx(model, interface))
            arts["onnx"] = manifest.file_entry(
                onnx_path, format="onnx", **describe_onnx(onnx_path),
                producer={k: tools[k] for k in ("tf2onnx", "onnx", "tensorflow")})
        except Exception as exc:
            onnx_path.unlink(missing_ok=True)
            reason = first_line(exc)
            missing.append(f"{name}: onnx not written: {_layer_hint(model, reason)}{reason}")
        for kind in ("tflite", "onnx"):
            if kind in arts:
                why = probe(staged / arts[kind]["file"])
                if why:
                    (staged / arts.pop(kind)["file"]).unlink()
                    missing.append(f"{name}: {kind} not written: {why}")
        report(name, "computing reference outputs")
        arrays = {refdata.RANDOM_X: x}
        for i, o in enumerate(outs):
            arrays[refdata.output_key(refdata.RANDOM_Y, i)] = np.asarray(o)
        ref_path = staged / f"{name}.reference.npz"
        refdata.save(ref_path, arrays)
        arts["reference"] = manifest.file_entry(
            ref_path, format="npz", random_inputs=spread,
            arrays={k: {"shape": list(v.shape), "dtype": v.dtype.name} for k, v in arrays.items()})
        entry = {
            "spec": {"name": name, "source": path.name, "source_sha256": manifest.sha256_file(path),
                     "layers": [type(la).__name__ for la in model.layers],
                     "param_count": int(model.count_params()), "timesteps": interface.timesteps,
                     "model_timesteps": interface.model_timesteps},
            **io,
            "tolerances": {rt: vars(DEFAULT_TOLERANCE).copy() for rt in RUNTIMES},
            "artifacts": arts,
        }
        if quantize:
            calibration = refdata.random_inputs(interface.input_shape, 2000, seed + 1_000_003,
                                                spread["low"], spread["high"])
            missing.extend(add_variants(entry, staged, name, frozen, calibration, quantize, tools,
                                        report))
        if c_array:
            _add_c_arrays(arts, staged)
        return {"source": path.name, "models": {name: entry}}, None

    doc, _ = publish(Path(out), build, report)
    return ConvertResult(Path(out), name, doc, missing)
