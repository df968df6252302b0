"""Keras itself: the reference, and model.predict as the baseline bench compares with."""

from __future__ import annotations

import numpy as np

from ..errors import ArtifactError
from .base import Runner


class KerasRunner(Runner):
    """Keras through one traced tf.function: the fastest way Keras itself offers."""

    runtime = "keras"
    artifact = "keras"
    imports = ("tensorflow", "keras")
    reference = True

    def activate(self) -> None:
        from ..tfenv import import_tensorflow

        tf = import_tensorflow()
        import keras

        from ..readers.keraszip import check_archive

        # The same check as convert's before Keras reads anything (no Lambda layer, no custom
        # object, no HDF5 link outside the file); safe_mode refuses Lambda layers besides.
        check_archive(self.path)
        self.model = model = keras.saving.load_model(self.path, compile=False, safe_mode=True)
        # The shapes the manifest fixes (time steps included: Keras's TimeDistributed cannot
        # trace an open time axis), else the model's own.
        fixed = [d["shape"][1:] for d in self.entry.get("inputs", [])]
        if len(fixed) != len(model.inputs):
            fixed = [t.shape[1:] for t in model.inputs]
        specs = [tf.TensorSpec((None, *shape), t.dtype)
                 for shape, t in zip(fixed, model.inputs, strict=True)]
        # Inputs in the model's order, which is the manifest's; each fed in the model's dtype
        # (token ids as the float32 an Input without a dtype declares: Keras casts them back).
        if self.input_names is None:
            self.input_names = [t.name for t in model.inputs]
        if self.output_names is None:
            self.output_names = [t.name for t in model.outputs]
        if len(self.input_names) != len(specs):
            raise ArtifactError(f"{self.path.name}: the model takes {len(specs)} inputs; the "
                                f"manifest names {len(self.input_names)}")
        self.input_dtypes = [np.dtype(str(t.dtype)) for t in model.inputs]
        # One traced graph for every batch size: eager calls cost milliseconds each.
        self.call = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0],
                                                  training=False), input_signature=specs)

    def _run(self, arrays):
        outs = self.call(*arrays)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return [np.asarray(o) for o in outs]

    def _bare(self, arrays):
        call = self.call
        return lambda: call(*arrays)


class KerasPredictRunner(KerasRunner):
    """Keras model.predict, the call the seed notebook makes: a baseline, not a deployment."""

    runtime = "keras-predict"

    def _run(self, arrays):
        outs = self.model.predict(arrays[0] if len(arrays) == 1 else arrays, verbose=0)
        return [np.asarray(o) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]

    def _bare(self, arrays):
        predict, x = self.model.predict, arrays[0] if len(arrays) == 1 else arrays
        return lambda: predict(x, verbose=0)
