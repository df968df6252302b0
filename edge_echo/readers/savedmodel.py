"""A SavedModel directory: tf.keras's (keras_metadata.pb holds the Keras config: translated like
any tf-keras model), or a serving graph with no Keras config (readers/graph.py). Its graph is
checked op by op before anything is loaded."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ArtifactError
from . import Source
from .safety import check_config, check_graph


def read(path: Path) -> Source:
    where = path.name or str(path)
    ops, tf_version = check_graph((path / "saved_model.pb").read_bytes(), where)
    metadata = path / "keras_metadata.pb"
    if metadata.is_file():
        _check_metadata(metadata, where)
        from . import tfkeras

        provenance = {"format": "savedmodel", "writer": "tf-keras", "writer_version": None,
                      "tensorflow_version": tf_version}
        return tfkeras.read(path, lambda tf_keras: tf_keras.models.load_model(
            str(path), compile=False), "savedmodel", provenance)
    from . import graph

    return graph.read(path, ops, tf_version)


def _check_metadata(metadata: Path, where: str) -> None:
    """Every Keras object keras_metadata.pb describes (layers, the model, metrics), checked as
    data before tf-keras revives any of it."""
    import keras
    from tf_keras.protobuf import saved_metadata_pb2

    proto = saved_metadata_pb2.SavedMetadata()
    try:
        proto.ParseFromString(metadata.read_bytes())
    except Exception:
        raise ArtifactError(f"{where}: keras_metadata.pb is not Keras metadata") from None
    metrics = {n for n in dir(keras.metrics) if n[:1].isupper()}
    for node in proto.nodes:
        try:
            meta = json.loads(node.metadata)
        except ValueError:
            raise ArtifactError(f"{where}: keras_metadata.pb holds a node that is not JSON") \
                from None
        if not isinstance(meta, dict):
            continue
        if node.identifier == "_tf_keras_metric":
            if meta.get("class_name") not in metrics:
                raise ArtifactError(f"{where}: metric '{meta.get('name')}' is a custom object "
                                    f"('{meta.get('class_name')}'): edge-echo loads no code "
                                    "from a model file")
            continue
        check_config({k: v for k, v in meta.items() if k in ("class_name", "config")}, where)
