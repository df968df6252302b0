"""A .keras zip: Keras 3's (any backend), or tf-keras 2.x's (translated)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from . import Source, keras_major, load_keras3, parse_config
from .safety import check_config, check_hdf5


def check_archive(path: Path) -> dict:
    """A .keras zip's config and weights checked as data (safety.py); its metadata."""
    with zipfile.ZipFile(path) as z:
        try:
            meta = json.loads(z.read("metadata.json"))
        except ValueError:
            meta = {}
        config = parse_config(z.read("config.json"), path.name)
        weights = [n for n in z.namelist() if n.endswith(".h5")]
        check_config(config, path.name)
        for name in weights:
            with z.open(name) as f:
                check_hdf5(io.BytesIO(f.read()), f"{path.name}: {name}")
    return meta if isinstance(meta, dict) else {}


def read(path: Path) -> Source:
    meta = check_archive(path)
    version = meta.get("keras_version")
    provenance = {"format": "keras", "writer": "keras", "writer_version": version}
    if keras_major(version) == 2:
        from . import tfkeras

        provenance["writer"] = "tf-keras"
        return tfkeras.read(path, lambda tf_keras: tf_keras.saving.load_model(
            path, compile=False, safe_mode=True), "keras", provenance)
    return load_keras3(path, "keras", provenance)
