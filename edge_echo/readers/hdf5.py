"""An HDF5 model (.h5, .hdf5): tf.keras 2.x's (translated) or Keras 3's legacy writer's. The
model config and versions are read from the file's attributes as data first."""

from __future__ import annotations

from pathlib import Path

from ..errors import ArtifactError
from . import Source, keras_major, load_keras3, parse_config
from .safety import check_config, check_hdf5


def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def read(path: Path) -> Source:
    import h5py

    check_hdf5(path, path.name)
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _text(f.attrs[k]) for k in ("model_config", "keras_version", "backend")
                     if k in f.attrs}
            weights_only = "model_config" not in attrs
    except OSError as exc:
        raise ArtifactError(f"{path.name}: not a readable HDF5 file ({exc})") from None
    if weights_only:
        raise ArtifactError(f"{path.name}: holds weights but no model (save_weights wrote it); "
                            "save the whole model: model.save('model.keras')")
    config = parse_config(attrs["model_config"], path.name)
    check_config(config, path.name)
    version = attrs.get("keras_version")
    provenance = {"format": "hdf5", "writer": "keras" if keras_major(version) == 3 else "tf-keras",
                  "writer_version": version, "backend": attrs.get("backend")}
    if keras_major(version) == 3:  # Keras 3's legacy writer: Keras 3 reads it
        return load_keras3(path, "hdf5", provenance)
    from . import tfkeras

    return tfkeras.read(path, lambda tf_keras: tf_keras.models.load_model(
        path, compile=False, safe_mode=True), "hdf5", provenance)
