"""TensorFlow running a SavedModel's serving signature: the reference of a model converted from a
serving graph with no Keras config (readers/graph.py), as Keras is for every other model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ArtifactError
from .base import Runner


class TensorFlowRunner(Runner):
    runtime = "tensorflow"
    artifact = "savedmodel"
    imports = ("tensorflow",)
    # What verify compares fresh inputs against, like keras.
    reference = True

    def activate(self) -> None:
        from ..readers.graph import load, unzip_dir
        from ..readers.safety import check_graph
        from ..tfenv import import_tensorflow

        import_tensorflow()
        self.tmp = Path(tempfile.mkdtemp(prefix="edge-echo-savedmodel-"))
        directory = unzip_dir(self.path, self.tmp / "model")
        check_graph((directory / "saved_model.pb").read_bytes(), self.path.name)
        self.graph = load(directory)
        signature = self.entry.get("signature", {})
        keys = signature.get("inputs", {})
        if self.input_names is None:
            self.input_names = list(keys) or list(self.graph.input_keys)
        missing = [n for n in self.input_names if keys.get(n, n) not in self.graph.input_keys]
        if missing:
            raise ArtifactError(f"{self.path.name}: the signature has no input for "
                                f"{', '.join(missing)}")
        self.feed_keys = [keys.get(n, n) for n in self.input_names]
        specs = dict(zip(self.graph.input_keys, self.graph.input_specs, strict=True))
        self.input_dtypes = [np.dtype(specs[k].dtype.as_numpy_dtype) for k in self.feed_keys]
        outs = signature.get("outputs", {})
        if self.output_names is None:
            self.output_names = list(outs) or list(self.graph.output_keys)
        self.fetch_keys = [outs.get(n, n) for n in self.output_names]
        function = self.graph.function
        self.call = lambda arrays: function(**dict(zip(self.feed_keys, arrays, strict=True)))

    def deactivate(self) -> None:
        shutil.rmtree(getattr(self, "tmp", ""), ignore_errors=True)

    def _run(self, arrays):
        outs = self.call(arrays)
        return [np.asarray(outs[k]) for k in self.fetch_keys]

    def _bare(self, arrays):
        call = self.call
        return lambda: call(arrays)
