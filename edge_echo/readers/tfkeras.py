"""Models tf.keras 2.x wrote (HDF5, .keras, SavedModel): loaded by tf-keras after the safety
check, translated to Keras 3 (translate.py), and kept as the reference the translation is
checked against."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ArtifactError
from . import Source, keras_failure
from .translate import to_keras3


def import_tf_keras():
    from ..tfenv import import_tensorflow, native_stderr_silenced

    import_tensorflow()
    with native_stderr_silenced():
        import tf_keras
    return tf_keras


def read(path: Path, load, fmt: str, provenance: dict) -> Source:
    """load(tf_keras) -> the tf-keras model; its config was checked by the caller."""
    tf_keras = import_tf_keras()
    try:
        model2 = load(tf_keras)
    except ArtifactError:
        raise
    except Exception as exc:
        raise keras_failure(path, exc) from None
    try:
        model3, applied = to_keras3(model2)
    except ArtifactError as exc:
        raise ArtifactError(f"{path.name}: {exc}") from None
    provenance = {**provenance, "translation": {
        "from": "tf-keras (Keras 2) config and weights", "to": "Keras 3",
        "by": f"tf-keras {tf_keras.__version__} reads the file; each Keras 2 argument is "
              "translated by one rule, the weights copied layer by layer",
        "rules": applied}}
    return Source(path, fmt, model=model3, provenance=provenance, original=original_call(model2))


def original_call(model2):
    """tf-keras's own outputs on a list of input arrays, one sequence at a time from a zero
    state where a layer is stateful (its batch is fixed: each sequence is fed in a batch of
    that size, padded with zeros)."""
    stateful = any(getattr(layer, "stateful", False)
                   for layer in model2._flatten_layers(include_self=False, recursive=True))
    fixed = model2.inputs[0].shape[0] if stateful else None

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        feed = arrays if len(arrays) > 1 else arrays[0]
        if not stateful:
            outs = model2(feed, training=False)
            return [np.asarray(o) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]
        rows = []
        for k in range(len(arrays[0])):
            batch = [np.repeat(a[k:k + 1], fixed or 1, axis=0) for a in arrays]
            model2.reset_states()
            outs = model2(batch if len(batch) > 1 else batch[0], training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            rows.append([np.asarray(o)[:1] for o in outs])
        model2.reset_states()
        return [np.concatenate([r[i] for r in rows]) for i in range(len(rows[0]))]

    return call

