"""One reader per source format, one thing out: a Keras 3 model (or, for a serving graph with no
Keras config, the graph itself, readers/graph.py).

What edge-echo reads (README's "What edge-echo reads" shows this table):
- a Keras 3 `.keras` zip, saved under any backend;
- a tf-keras 2.x `.keras` zip, HDF5 (`.h5`, `.hdf5`) from tf.keras 2.x or Keras 3's legacy
  writer, and a tf.keras SavedModel directory (with keras_metadata.pb): Keras 2 configs are
  translated to Keras 3 (readers/translate.py) and the result is checked against tf-keras's
  own outputs on the original;
- a SavedModel with no Keras config (Keras 3 `model.export`, `tf.saved_model.save`).

Every reader finds the format from the file's own bytes, not its suffix, and refuses what it
cannot read safely before deserializing anything (readers/safety.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArtifactError, UsageError, first_line

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
READS = ("a Keras 3 or tf-keras .keras file, an HDF5 model (.h5, .hdf5) or a SavedModel "
         "directory")

# What a user may hand edge-echo that is not a model it reads, with the route where one exists.
NOT_SOURCES = {
    ".tflite": "a TensorFlow Lite file is what edge-echo writes, not a source; run it with "
               "`edge-echo predict`, or convert the Keras model it was made from",
    ".onnx": "an ONNX file is not read as a source today (a PyTorch model exported with "
             "torch.onnx.export is not read either); run it with `edge-echo predict`, or "
             "convert the Keras model it was made from",
    ".ort": "an ORT file is what edge-echo writes, not a source; run it with `edge-echo predict`",
    ".pb": "a lone .pb (a frozen GraphDef, or a SavedModel's saved_model.pb) is not read: give "
           "the SavedModel directory, or save the Keras model as .keras",
    ".pt": "a PyTorch model is not read (loading it would unpickle code); edge-echo reads Keras "
           "models, and does not read the ONNX a PyTorch export makes either",
    ".pth": "a PyTorch model is not read (loading it would unpickle code); edge-echo reads "
            "Keras models, and does not read the ONNX a PyTorch export makes either",
    ".pkl": "a pickle is never read (loading it runs code from the file); save the Keras model "
            "with model.save('model.keras')",
    ".pickle": "a pickle is never read (loading it runs code from the file); save the Keras "
               "model with model.save('model.keras')",
    ".joblib": "a joblib pickle is never read (loading it runs code from the file); save the "
               "Keras model with model.save('model.keras')",
}


@dataclass
class Source:
    """A model as the pipeline takes it, and where it came from (the manifest's `source`)."""

    path: Path
    # keras | hdf5 | savedmodel
    format: str
    # The Keras 3 model, or readers/graph.py's Graph for a SavedModel with no Keras config.
    model: object = None
    provenance: dict = field(default_factory=dict)
    # The original framework's own call on a feed (tf-keras on the original file), where the
    # model was translated: usermodel.describe_source compares it with the Keras 3 model.
    original: object = None

    @property
    def translated(self) -> bool:
        return self.original is not None

    @property
    def graph(self):
        """The serving graph, where the source is one (no Keras layers); else None."""
        return self.model if getattr(self.model, "is_graph", False) else None


def is_savedmodel(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "saved_model.pb").is_file()


def is_source_file(path: Path) -> bool:
    """A file a directory of models is searched for (a fleet): by suffix, as a person names them."""
    return path.suffix.lower() in (".keras", ".h5", ".hdf5")


def digest(path: Path) -> str:
    """sha256 of a model file, or of a SavedModel directory (every file's relative path and
    bytes, in sorted order)."""
    from ..manifest import sha256_file

    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(p.relative_to(path).as_posix().encode() + b"\0")
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def pack(path: Path) -> bytes:
    """A model as bytes a worker elsewhere can unpack (a fleet's task): a file's bytes, or a
    SavedModel directory as a zip."""
    path = Path(path)
    if path.is_dir():
        from .graph import zip_dir

        return b"EEDIR" + zip_dir(path)
    return path.read_bytes()


def unpack(data: bytes, target: Path) -> Path:
    """pack's bytes back at target: the file, or the SavedModel directory."""
    if data.startswith(b"EEDIR"):
        import io

        from .graph import unzip_dir

        return unzip_dir(io.BytesIO(data[5:]), Path(target))
    Path(target).write_bytes(data)
    return Path(target)


def read(path: Path) -> Source:
    """The model at path, as a Keras 3 model (or a graph); one line for anything else."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    if path.is_dir():
        if not is_savedmodel(path):
            raise UsageError(f"{path}: a directory but not a SavedModel (no saved_model.pb); "
                             f"edge-echo reads {READS}")
        _tensorflow()
        from . import savedmodel

        return savedmodel.read(path)
    with open(path, "rb") as f:
        head = f.read(8)
    suffix = path.suffix.lower()
    if suffix in NOT_SOURCES and head != HDF5_MAGIC and not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path.name}: {NOT_SOURCES[suffix]}")
    _tensorflow()
    if head == HDF5_MAGIC:
        from . import hdf5

        return hdf5.read(path)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
        if "config.json" in names and "metadata.json" in names:
            from . import keraszip

            return keraszip.read(path)
        if any(n.endswith("data.pkl") for n in names):
            raise ArtifactError(f"{path.name}: {NOT_SOURCES['.pt']}")
    if suffix in NOT_SOURCES:
        raise ArtifactError(f"{path.name}: {NOT_SOURCES[suffix]}")
    if head[4:8] == b"TFL3":
        raise ArtifactError(f"{path.name}: {NOT_SOURCES['.tflite']}")
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise ArtifactError(f"{path.name}: {NOT_SOURCES['.pkl']}")
    if suffix == ".keras":
        raise ArtifactError(f"{path.name}: not a Keras 3 .keras file (a .keras file is a zip "
                            "archive with config.json and metadata.json; this one is not)")
    if suffix in (".h5", ".hdf5"):
        raise ArtifactError(f"{path.name}: not an HDF5 file (no HDF5 signature)")
    raise ArtifactError(f"{path.name}: not a model edge-echo reads; it reads {READS}")


def _tensorflow() -> None:
    """TensorFlow and Keras imported quietly, before any reader touches Keras."""
    from ..tfenv import import_tensorflow, require_tensorflow

    require_tensorflow("edge-echo convert")
    import_tensorflow()


def keras_major(version) -> int | None:
    """2 or 3 from a keras_version string ('2.21.0', b'3.15.1'), None if it says neither."""
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    match = re.match(r"\s*(\d+)\.", str(version or ""))
    return int(match.group(1)) if match else None


def parse_config(text, where: str) -> dict:
    try:
        config = json.loads(text)
    except (ValueError, TypeError):
        raise ArtifactError(f"{where}: the model config is not JSON") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ArtifactError(f"{where}: the model config names no model class")
    return config


def load_keras3(path: Path, fmt: str, provenance: dict) -> Source:
    """A file Keras 3 wrote, read by Keras 3 (its config and weights were checked as data
    first; safe_mode as well, which refuses Lambda layers again)."""
    import keras

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        raise keras_failure(path, exc) from None
    return Source(path, fmt, model=model, provenance=provenance)


def keras_failure(path: Path, exc: BaseException) -> ArtifactError:
    return ArtifactError(f"{path.name}: Keras cannot load it ({first_line(exc)})")


# What TensorFlow takes as a name scope, which every converter traces each layer under.
SCOPE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-]*$")


def prepare(source: Source) -> Source:
    """What every reader's model goes through before anything is written: weights that are all
    finite, and layer names every converter takes (renamed, and the renames recorded)."""
    if source.graph is not None:
        return source
    check_finite(source.model, source.path.name)
    renamed = safe_names(source.model)
    if renamed:
        source.provenance["renamed_layers"] = renamed
    return source


def check_finite(model, where: str) -> None:
    """Refuse weights holding NaN or infinity (a diverged training run), named by layer and
    variable."""
    import numpy as np

    bad = []
    for layer in model.layers:
        for w in layer.weights:
            values = np.asarray(w.numpy() if hasattr(w, "numpy") else w)
            if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
                nans, infs = int(np.isnan(values).sum()), int(np.isinf(values).sum())
                what = ", ".join(f"{n} {k}" for n, k in ((nans, "NaN"), (infs, "infinite"))
                                 if n)
                variable = getattr(w, "path", None) or w.name
                variable = variable.split("/", 1)[1] if variable.startswith(layer.name + "/") \
                    else variable
                bad.append(f"layer '{layer.name}' variable '{variable}' ({what} of {values.size})")
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise ArtifactError(f"{where}: weights hold NaN or infinity, so no export of it can be "
                            f"trusted (a diverged training run?): {'; '.join(bad[:3])}{more}")


def safe_names(model) -> dict[str, str]:
    """Layer names TensorFlow will not take as a name scope (every converter traces each layer
    under its name) renamed in the model; {old: new}."""
    # Wrapped layers too (a Bidirectional's halves, their cells): each is traced under its name.
    layers = list(model._flatten_layers(include_self=False, recursive=True))
    taken = {layer.name for layer in layers}
    renamed = {}
    for layer in layers:
        name = layer.name
        if SCOPE_NAME.match(name):
            continue
        base = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
        base = base if SCOPE_NAME.match(base) else f"layer{base}"
        new, k = base, 1
        while new in taken:
            k += 1
            new = f"{base}_{k}"
        taken.add(new)
        layer.name = new
        renamed[name] = new
    return renamed
