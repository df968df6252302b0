"""A tf.keras (Keras 2) model as the same Keras 3 model: its config translated, its weights copied.

Keras 2 and Keras 3 describe the same layers with a few different words. Each
difference is translated here, by one rule, and recorded; what has no Keras 3
meaning (time_major=True, the CuDNN layers) is refused in one line. Nothing is
guessed: the weights are copied layer by layer with their shapes checked, and
the reader then shows the translated model gives tf-keras's own outputs
(readers/__init__.py, check_translation).
"""

from __future__ import annotations

import copy

from ..errors import ArtifactError

RECURRENT = ("LSTM", "GRU", "SimpleRNN")
# Keras 2 arguments Keras 3 has no use for at inference, dropped without a trace in the
# outputs: how the kernels were laid out (implementation), what the optimizer saw
# (initializers are overwritten by the trained weights), and Embedding's input_length,
# which only declared the shape the Input already fixes.
DROPPED = {
    "*": ("batch_input_shape", "input_shape", "shared_object_id"),
    "LSTM": ("implementation", "time_major"),
    "GRU": ("implementation", "time_major"),
    "SimpleRNN": ("time_major",),
    "Embedding": ("input_length",),
    "InputLayer": ("ragged",),
}
# Layers that compute nothing at inference.
INFERENCE_IDENTITY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                      "GaussianNoise", "GaussianDropout", "AlphaDropout")
# Keras 2 layers Keras 3 does not have, and what to do instead.
NO_KERAS3 = {
    "CuDNNLSTM": "a CuDNNLSTM (TF 1.x, GPU only) has no Keras 3 layer; rebuild it as LSTM",
    "CuDNNGRU": "a CuDNNGRU (TF 1.x, GPU only) has no Keras 3 layer; rebuild it as "
                "GRU(reset_after=True, recurrent_activation='sigmoid')",
    "TFOpLambda": "a TensorFlow op called on a Keras tensor (a TFOpLambda layer) has no Keras "
                  "3 form; use the Keras layer for it",
    "SlicingOpLambda": "a slice of a Keras tensor (a SlicingOpLambda layer) has no Keras 3 "
                       "form; use a Cropping1D or a Keras layer for it",
}


class Translation:
    """The Keras 3 config of a Keras 2 model, and every rule that changed something."""

    def __init__(self):
        self.applied: list[str] = []

    def note(self, text: str) -> None:
        if text not in self.applied:
            self.applied.append(text)

    def model(self, config: dict) -> dict:
        config = copy.deepcopy(config)
        inner = config.get("config", {})
        layers = inner.get("layers", [])
        inner["layers"] = [self.layer(layer) for layer in layers]
        if config.get("class_name") == "Sequential" and inner["layers"] \
                and inner["layers"][0].get("class_name") != "InputLayer":
            # Keras 2 kept the input's shape on the first layer; Keras 3 wants an InputLayer.
            shape = (layers[0].get("config", {}).get("batch_input_shape")
                     or layers[0].get("batch_input_shape"))
            if shape:
                inner["layers"].insert(0, {"class_name": "InputLayer", "config": {
                    "batch_shape": [None, *shape[1:]], "dtype": "float32",
                    "name": f"{layers[0]['config'].get('name', 'input')}_input"}})
                self.note("the first layer's batch_input_shape became an InputLayer")
        if config.get("class_name") in ("Functional", "Model"):
            config["class_name"] = "Functional"
            # Keras 2 lists a single input or output as a list of one; Keras 3 then expects a
            # list as the call's input, where every converter passes one tensor.
            for key in ("input_layers", "output_layers"):
                ends = inner.get(key)
                if isinstance(ends, list) and len(ends) == 1 and isinstance(ends[0], list):
                    inner[key] = ends[0]
        return config

    def layer(self, layer: dict) -> dict:
        cls = layer.get("class_name")
        if cls in NO_KERAS3:
            raise ArtifactError(f"layer '{layer.get('config', {}).get('name', cls)}': {NO_KERAS3[cls]}")
        cfg = layer.get("config", {})
        name = cfg.get("name", cls)
        if cls in RECURRENT:
            if cfg.get("time_major"):
                raise ArtifactError(f"layer '{name}' ({cls}) is time_major: Keras 3 has no "
                                    "time-major recurrent layers; save it batch-major")
            if cfg.get("stateful"):
                cfg["stateful"] = False
                self.note(f"'{name}' was stateful: read stateless, each sequence from a zero "
                          "state (the forms' contract: reset at the start of each sequence)")
        for key in ("activation", "recurrent_activation"):
            value = cfg.get(key)
            value = value.get("config") if isinstance(value, dict) else value
            if value == "hard_sigmoid":
                # Keras 2's is clip(0.2 x + 0.5, 0, 1), Keras 3's clip(x / 6 + 0.5, 0, 1).
                raise ArtifactError(f"layer '{name}' ({cls}) uses {key} 'hard_sigmoid', which "
                                    "Keras 2 computes as clip(0.2x + 0.5) and Keras 3 as "
                                    "clip(x/6 + 0.5): no Keras 3 built-in gives the trained "
                                    "model's outputs; retrain it with 'sigmoid'")
        if cls == "InputLayer":
            shape = cfg.pop("batch_input_shape", None) or cfg.get("batch_shape")
            if shape is not None:
                cfg["batch_shape"] = [None, *shape[1:]]
        if cls == "BatchNormalization" and isinstance(cfg.get("axis"), list):
            if len(cfg["axis"]) != 1:
                raise ArtifactError(f"layer '{name}' (BatchNormalization) normalizes over "
                                    f"axes {cfg['axis']}; Keras 3 takes one axis")
            cfg["axis"] = cfg["axis"][0]
        if cls == "BatchNormalization":
            for key in ("renorm", "renorm_clipping", "renorm_momentum", "fused",
                        "virtual_batch_size", "adjustment"):
                value = cfg.pop(key, None)
                if key == "renorm" and value:
                    raise ArtifactError(f"layer '{name}' (BatchNormalization) uses batch "
                                        "renormalization, which Keras 3 lacks")
                if key == "virtual_batch_size" and value:
                    raise ArtifactError(f"layer '{name}' (BatchNormalization) uses a virtual "
                                        "batch size, which Keras 3 lacks")
        if cls in INFERENCE_IDENTITY:
            # Nothing at inference: what Keras 3's layer does not take (noise_shape of the
            # spatial dropouts) is left out.
            import inspect

            import keras

            params = inspect.signature(getattr(keras.layers, cls).__init__).parameters
            takes = set(params) | ({"name", "trainable", "dtype"} if any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()) else set())
            extra = sorted(k for k in cfg if k not in takes and k not in DROPPED["*"])
            for key in extra:
                cfg.pop(key)
            if extra:
                self.note(f"{cls}: {', '.join(extra)} dropped (an identity at inference)")
        dropped = [key for key in DROPPED["*"] + DROPPED.get(cls, ()) if key in cfg]
        for key in dropped:
            cfg.pop(key)
        if set(dropped) - set(DROPPED["*"]):
            self.note(f"{cls}: {', '.join(k for k in dropped if k not in DROPPED['*'])} dropped "
                      "(no Keras 3 argument; no effect on the outputs)")
        policy = cfg.get("dtype")
        if isinstance(policy, dict):
            # Keras 2's mixed-precision Policy object: Keras 3 takes the policy's name.
            cfg["dtype"] = policy.get("config", {}).get("name", "float32")
            self.note("dtype policies written as Keras 3 policy names")
        for key in ("layer", "backward_layer"):
            if isinstance(cfg.get(key), dict):
                cfg[key] = self.layer(cfg[key])
        for key in ("kernel_initializer", "recurrent_initializer", "bias_initializer",
                    "embeddings_initializer", "beta_initializer", "gamma_initializer",
                    "moving_mean_initializer", "moving_variance_initializer"):
            if isinstance(cfg.get(key), dict):
                cfg[key] = _plain(cfg[key])
        return {**layer, "config": cfg}


def _plain(obj: dict) -> dict:
    """An initializer as Keras 3 reads it: class name and config, no Keras 2 bookkeeping."""
    return {k: v for k, v in obj.items() if k != "shared_object_id"}


def to_keras3(model2):
    """(the Keras 3 model, the rules applied) for a loaded tf-keras model."""
    import keras
    from keras.src.legacy.saving import saving_utils

    cls = type(model2).__name__
    if cls not in ("Sequential", "Functional", "Model"):
        raise ArtifactError(f"the model is a subclassed tf.keras Model ({cls}): its layers are "
                            "Python code, which edge-echo does not run; save a Sequential or "
                            "functional model")
    translation = Translation()
    config = translation.model({"class_name": "Sequential" if cls == "Sequential" else "Functional",
                                "config": model2.get_config()})
    try:
        model3 = saving_utils.model_from_config(config)
    except Exception as exc:
        from ..errors import first_line

        raise ArtifactError(f"Keras 3 cannot build the translated model ({first_line(exc)})") \
            from None
    if not isinstance(model3, keras.Model):
        raise ArtifactError("the translated config is not a model")
    copy_weights(model2, model3)
    return model3, translation.applied


def copy_weights(model2, model3) -> None:
    """Each layer's trained values, Keras 2 -> Keras 3, by layer name, shapes checked."""
    by_name = {layer.name: layer for layer in model3.layers}
    for layer in model2.layers:
        values = layer.get_weights()
        target = by_name.get(layer.name)
        if target is None:
            if values:
                raise ArtifactError(f"layer '{layer.name}' has no counterpart in the Keras 3 model")
            continue
        have = [tuple(w.shape) for w in target.weights]
        want = [tuple(v.shape) for v in values]
        if have != want:
            raise ArtifactError(f"layer '{layer.name}' ({type(layer).__name__}): Keras 3 lays "
                                f"out its weights as {have}, the file holds {want}")
        if values:
            target.set_weights(values)
