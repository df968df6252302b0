"""A SavedModel with no Keras config (Keras 3 `model.export`, `tf.saved_model.save`): its
serving signature is the model. It has no layers, so it gets the forms made from the graph alone
(TFLite, ONNX, their quantized variants, .ort); TensorFlow running the signature is the
reference, in convert and in verify (runners/tensorflow.py)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ArtifactError, first_line
from . import Source

SIGNATURE = "serving_default"


class Graph:
    """The serving signature of a loaded SavedModel, called like a Keras model."""

    is_graph = True

    def __init__(self, path: Path, loaded, function):
        self.path = path
        self.loaded = loaded  # keeps the variables the function reads alive
        self.function = function
        args, kwargs = function.structured_input_signature
        if args:
            raise ArtifactError(f"{path.name}: the {SIGNATURE} signature takes positional "
                                "inputs; edge-echo reads signatures with named inputs")
        self.input_keys = sorted(kwargs)
        self.input_specs = [kwargs[k] for k in self.input_keys]
        outputs = function.structured_outputs
        if not isinstance(outputs, dict) or not outputs:
            raise ArtifactError(f"{path.name}: the {SIGNATURE} signature returns no named outputs")
        self.output_keys = sorted(outputs)
        self.output_specs = [outputs[k] for k in self.output_keys]
        # What Keras's layer list would be: nothing; the device forms that need it say so.
        self.layers: list = []

    def __call__(self, x, training=False):
        arrays = x if isinstance(x, (list, tuple)) else [x]
        outs = self.function(**{k: np.asarray(a, spec.dtype.as_numpy_dtype)
                                for k, a, spec in zip(self.input_keys, arrays, self.input_specs,
                                                      strict=True)})
        return [np.asarray(outs[k]) for k in self.output_keys]

    def count_params(self) -> int:
        return int(sum(np.prod(v.shape) for v in getattr(self.loaded, "variables", [])))

    def traced(self, names: list[str], shapes: list[tuple]):
        """The signature as a tf.function of positional inputs named as the files name them,
        returning the outputs in order; shapes: each input's shape per sample."""
        import tensorflow as tf

        specs = [tf.TensorSpec((None, *shape), spec.dtype, name=name)
                 for name, shape, spec in zip(names, shapes, self.input_specs, strict=True)]
        keys, outputs, function = self.input_keys, self.output_keys, self.function
        return tf.function(lambda *xs: [function(**dict(zip(keys, xs, strict=True)))[k]
                                        for k in outputs], input_signature=specs), specs


def load(path: Path) -> Graph:
    """The SavedModel's serving signature (its graph was checked op by op first)."""
    from ..tfenv import import_tensorflow

    tf = import_tensorflow()
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:
        raise ArtifactError(f"{path.name}: TensorFlow cannot load the SavedModel "
                            f"({first_line(exc)})") from None
    signatures = getattr(loaded, "signatures", {})
    if SIGNATURE not in signatures:
        raise ArtifactError(f"{path.name}: no '{SIGNATURE}' signature (it has "
                            f"{', '.join(signatures) or 'none'}); save it with one")
    return Graph(path, loaded, signatures[SIGNATURE])


def read(path: Path, ops: list[str], tf_version: str | None) -> Source:
    graph = load(path)
    return Source(path, "savedmodel", model=graph, provenance={
        "format": "savedmodel", "writer": "tensorflow (no Keras config)",
        "writer_version": tf_version, "signature": SIGNATURE, "graph_ops": ops})


def zip_dir(path: Path) -> bytes:
    """The SavedModel directory as one zip, the same bytes for the same files (the reference a
    verify runs, NAME.savedmodel.zip): entries in sorted order, at save_keras's fixed time."""
    from ..convert.keras import _FIXED_TIME

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for p in sorted(q for q in Path(path).rglob("*") if q.is_file()):
            info = zipfile.ZipInfo(p.relative_to(path).as_posix(), date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, p.read_bytes())
    return buffer.getvalue()


def unzip_dir(data: Path, target: Path) -> Path:
    """A NAME.savedmodel.zip (a path or a file object) back into a directory, refusing any name
    that leaves it."""
    where = Path(data).name if isinstance(data, (str, Path)) else "the SavedModel's zip"
    try:
        z = zipfile.ZipFile(data)
    except zipfile.BadZipFile:
        raise ArtifactError(f"{where}: not a zip archive") from None
    with z:
        for name in z.namelist():
            parts = Path(name).parts
            if Path(name).is_absolute() or ".." in parts or not parts:
                raise ArtifactError(f"{where}: names a file outside itself ({name})")
        z.extractall(target)
    if not (target / "saved_model.pb").is_file():
        raise ArtifactError(f"{where}: holds no saved_model.pb")
    return target
