"""Keras LSTM -> the micro forms: batch 1, one fused UNIDIRECTIONAL_SEQUENCE_LSTM per layer, for TFLM.

The TFLite converter writes its fused LSTM op, which TensorFlow Lite for
Microcontrollers runs (float32, and int8 with an int16 cell state), only for
an LSTM it recognises by the `api_implements` signature that Keras 2 puts on
its LSTM; Keras 3 sets none, so the converter unrolls or loops it (the
unrolled file repeats every weight-sized tensor per time step: 6-17 KB for
the echo models, 349 KB for an LSTM(32) over 120 steps). So the model is
rebuilt layer by layer in tf-keras (Keras 2, the same weights) with the batch
fixed at 1 and converted with from_keras_model: the weights are stored once,
whatever the number of time steps.

The fused op keeps h and c in variable tensors between invokes: that is the
contract of these files (reset before each sequence), and what makes the
step form work: with one time step per invoke the state stays inside the
interpreter, and a device streams values with nothing copied in or out.

Only chains of LSTM, Bidirectional(LSTM) (two fused LSTMs, REVERSE_V2, CONCATENATION),
Embedding (token ids, GATHER), RepeatVector (RESHAPE and CONCATENATION: TFLM has no TILE) and
Dense layers (Dropout ignored, TimeDistributed(Dense) heads) have micro forms; anything else
gets Unavailable with the reason.
"""

from __future__ import annotations

import numpy as np

from ..forms import Form, Unavailable
from ..tfenv import import_tensorflow

_PASS_THROUGH = ("InputLayer", "Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout")
STEP_RESET = "reset the interpreter at the start of each sequence, then invoke once per time step"
RESET = {
    "when": "before each sequence: the fused LSTM keeps h and c in variable tensors between "
            "invokes",
    "tflm_cpp": "interpreter.Reset();",
    "litert_cpp": "interpreter->ResetVariableTensors();",
    "tflm_python": "interpreter.reset()",
    "litert_python": "interpreter.reset_all_variables()",
}


def _chain(model) -> list:
    """The model's layers, if each feeds the next and only the next (modelplan); else
    Unavailable."""
    from .. import modelplan

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise Unavailable("micro forms are made for models with one input and one output")
    try:
        return modelplan.chain(modelplan.read(model))
    except modelplan.PlanError as exc:
        raise Unavailable(f"{exc}; micro forms are made for plain chains of layers") from None


def _translate(layer, tf_keras):
    """The tf-keras layer computing what the Keras 3 layer computes, or None to skip it."""
    kind = type(layer).__name__
    if kind in _PASS_THROUGH:
        return None
    cfg = layer.get_config()
    if kind == "LSTM":
        if cfg.get("go_backwards") or cfg.get("stateful"):
            raise Unavailable(f"layer '{layer.name}' (LSTM) runs backwards or statefully, which "
                              "the fused LSTM op does not express")
        if cfg.get("recurrent_activation") != "sigmoid":
            raise Unavailable(f"layer '{layer.name}' (LSTM): the fused LSTM op needs a sigmoid "
                              f"recurrent activation, not {cfg.get('recurrent_activation')}")
        return tf_keras.layers.LSTM(cfg["units"], activation=cfg["activation"],
                                    recurrent_activation="sigmoid", use_bias=cfg["use_bias"],
                                    return_sequences=cfg["return_sequences"], name=layer.name)
    if kind == "Dense" and type(layer).__module__.startswith("keras"):
        return tf_keras.layers.Dense(cfg["units"], activation=cfg["activation"],
                                     use_bias=cfg["use_bias"], name=layer.name)
    if kind == "TimeDistributed" and type(layer.layer).__name__ == "Dense":
        inner = _translate(layer.layer, tf_keras)
        return tf_keras.layers.TimeDistributed(inner, name=layer.name)
    if kind == "Embedding":
        if cfg.get("mask_zero"):
            raise Unavailable(f"layer '{layer.name}' (Embedding) masks id 0 (mask_zero), which "
                              "TFLM's fused LSTM op does not take")
        return tf_keras.layers.Embedding(cfg["input_dim"], cfg["output_dim"], name=layer.name)
    if kind == "Bidirectional" and type(layer.forward_layer).__name__ == "LSTM":
        if layer.merge_mode not in ("concat", "sum", "mul", "ave"):
            raise Unavailable(f"layer '{layer.name}' (Bidirectional): merge_mode "
                              f"{layer.merge_mode!r} has no micro form")
        inner = _translate(layer.forward_layer, tf_keras)
        # Two fused LSTMs, the backward one on REVERSE_V2 of the input, merged (CONCATENATION).
        return tf_keras.layers.Bidirectional(inner, merge_mode=layer.merge_mode, name=layer.name)
    if kind == "RepeatVector":
        return ("repeat", int(cfg["n"]), layer.name)
    if kind in ("GRU", "SimpleRNN", "Bidirectional"):
        raise Unavailable(f"layer '{layer.name}' ({kind}): TFLM's fused recurrent kernel is the "
                          "unidirectional LSTM; micro forms are made for LSTM layers only")
    raise Unavailable(f"layer '{layer.name}' ({kind}): micro forms are made for chains of LSTM, "
                      "Bidirectional(LSTM), Embedding, RepeatVector and Dense layers")


def _repeat(x, n: int, name: str, tf_keras):
    """RepeatVector(n) as TFLM runs it: TFLite writes RepeatVector as TILE, which TFLM does not
    have ("Didn't find op for builtin opcode 'TILE'"), so the vector is reshaped to one step
    and n copies are concatenated (RESHAPE, CONCATENATION)."""
    one = tf_keras.layers.Reshape((1, int(x.shape[-1])), name=f"{name}_step")(x)
    if n == 1:
        return one
    return tf_keras.layers.Concatenate(axis=1, name=name)([one] * n)


def fused_lstms(layers) -> int:
    """The UNIDIRECTIONAL_SEQUENCE_LSTM ops the micro forms of these layers have."""
    return sum(1 if type(la).__name__ == "LSTM" else
               2 if type(la).__name__ == "Bidirectional" else 0 for la in layers)


def micro_model(subject, timesteps: int):
    """The subject rebuilt in tf-keras, batch 1, over timesteps steps, with its trained weights."""
    layers = _chain(subject.model)
    import_tensorflow()
    import tf_keras

    i = subject.interface
    if i.inputs[0].integer:  # token ids into an Embedding: GATHER
        inputs = tf_keras.Input((timesteps,), batch_size=1, name=i.input_name, dtype="int32")
    else:
        inputs = tf_keras.Input((timesteps, *i.input_shape[1:]), batch_size=1, name=i.input_name)
    x = inputs
    for layer in layers:
        rebuilt = _translate(layer, tf_keras)
        if isinstance(rebuilt, tuple):
            _, n, name = rebuilt
            x = _repeat(x, n, name, tf_keras)
        elif rebuilt is not None:
            x = rebuilt(x)
            rebuilt.set_weights([np.asarray(w) for w in layer.get_weights()])
    if not fused_lstms(layers):
        raise Unavailable("the model has no LSTM layer")
    return tf_keras.Model(inputs, x, name=subject.name.replace("-", "_"))


def _convert(subject, timesteps: int, int8: bool) -> bytes:
    tf = import_tensorflow()
    from tf_keras.src.saving.legacy.saved_model import save_impl, utils

    # from_keras_model writes the model as a SavedModel first (that is what keeps the LSTM's
    # api_implements signature, which fusion needs) and by default traces every layer's call
    # functions for it, which the converter never reads: 80% of a conversion's time. Saved
    # with only the serving function, the model traced once, the file is byte-identical and
    # the conversion 4-5x faster. The float32 and int8 files share one rebuilt, traced model.
    cached = ("micro_model", timesteps)
    if cached not in subject.cache:
        model = micro_model(subject, timesteps)
        model._default_save_signature = save_impl.default_save_signature(model)
        subject.cache[cached] = model
    model = subject.cache[cached]
    with utils.keras_option_scope(save_traces=False):
        return _convert_saved(subject, model, int8, tf)


def _convert_saved(subject, model, int8: bool, tf) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        # int8 weights and activations with the int16 cell state TFLM's kernel takes; the
        # converter keeps a float32 input and output (QUANTIZE / DEQUANTIZE at the edges).
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        calibration = subject.calibration
        if isinstance(calibration, dict):  # token ids: one array per input name
            calibration = calibration[subject.interface.input_name]
        dtype = np.int32 if subject.interface.inputs[0].integer else np.float32
        converter.representative_dataset = lambda: ([np.asarray(calibration[k:k + 1], dtype)]
                                                    for k in range(len(calibration)))
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    from .tflite import finish_tflite

    data = finish_tflite(clear_orphan_buffers(converter.convert()), subject.interface.output_names)
    _check_fused(data, fused_lstms(subject.model.layers))
    return data


def clear_orphan_buffers(data: bytes) -> bytes:
    """Zero the buffers that no tensor or metadata refers to.

    The int8 converter leaves two such buffers behind, the size of the fused
    LSTM's h (int8) and c (int16), holding whatever its calibration left there
    (0xff.. and 0x4000.. in a process's first conversion, 0x7f.. and 0x7fff..
    in later ones), so the same model gave different bytes. Nothing reads them;
    they are zeroed in place, keeping the layout the converter chose.
    """
    from ai_edge_litert import schema_py_generated as schema

    out = bytearray(data)
    model = schema.Model.GetRootAs(data, 0)
    used = {model.Metadata(k).Buffer() for k in range(model.MetadataLength())}
    for s in range(model.SubgraphsLength()):
        sub = model.Subgraphs(s)
        used.update(sub.Tensors(k).Buffer() for k in range(sub.TensorsLength()))
    for k in range(model.BuffersLength()):
        buffer = model.Buffers(k)
        if k in used or buffer.DataLength() == 0:
            continue
        start = buffer._tab.Vector(buffer._tab.Offset(4))
        out[start:start + buffer.DataLength()] = bytes(buffer.DataLength())
    return bytes(out)


def _check_fused(data: bytes, lstms: int) -> None:
    from ..artifacts import describe_tflite_bytes

    operators = describe_tflite_bytes(data)["operators"]
    fused = operators.get("UNIDIRECTIONAL_SEQUENCE_LSTM", 0)
    if fused != lstms or "WHILE" in operators:
        raise RuntimeError(f"the TFLite converter fused {fused} of {lstms} LSTM layers "
                           f"(operators {sorted(operators)})")


def to_micro(subject) -> bytes:
    return _convert(subject, subject.interface.timesteps, int8=False)


def to_micro_int8(subject) -> bytes:
    return _convert(subject, subject.interface.timesteps, int8=True)


def to_micro_step(subject) -> bytes:
    if subject.interface.timesteps == 1:
        raise Unavailable("the model takes one time step, so NAME.micro.tflite is already its "
                          "step form")
    for layer in subject.model.layers:
        kind = type(layer).__name__
        if kind == "Bidirectional":
            raise Unavailable(f"layer '{layer.name}' (Bidirectional) also reads the sequence "
                              "backwards, from its last step; a step model sees one step at a time")
        if kind == "RepeatVector":
            raise Unavailable(f"layer '{layer.name}' (RepeatVector) repeats the last step's output "
                              "of a whole sequence; a step model sees one step at a time")
    return _convert(subject, 1, int8=False)


def _last_recurrent_returns_sequences(subject) -> bool:
    lstms = [la for la in subject.model.layers if type(la).__name__ == "LSTM"]
    return bool(lstms[-1].get_config()["return_sequences"])


def _contract(subject, path) -> dict:
    from ..runners.tflm import micro_contract

    return {"micro": micro_contract(path, RESET)}


def _step_contract(subject, path) -> dict:
    from ..artifacts import describe_tflite

    described = describe_tflite(path)
    every = _last_recurrent_returns_sequences(subject)
    step = {
        "inputs": described["inputs"],
        "outputs": described["outputs"],
        # The state is the fused op's variable tensors: nothing to feed back.
        "state": [],
        "state_inside": True,
        "steps": subject.interface.timesteps,
        "sequence_output": "every_step" if every else "last_step",
        "reset": STEP_RESET,
    }
    return {"step": step, **_contract(subject, path)}


def _int8_tolerance(subject) -> dict:
    from .quantize import tolerance

    tol = tolerance("int8", subject.reference_y, subject.interface.probabilities)
    return {"atol": tol["atol"], "rtol": tol["rtol"]}


def _int8_contract(subject, path) -> dict:
    """The micro contract, once the file meets its tolerance on TFLM (else Unavailable).

    int8 is written without being asked for, so it is kept only if it does
    what verify will hold it to: on an untrained model, or one whose output
    range is narrow next to its activations, eight int8 steps of the output
    range can be more than int8 arithmetic through an LSTM keeps.
    """
    from ..runners.litert import LiteRTMicroRunner
    from ..runners.tflm import TFLMRunner
    from .quantize import calibration_count, tolerance

    contract = _contract(subject, path)
    rule = tolerance("int8", subject.reference_y, subject.interface.probabilities)
    errors = {}
    if isinstance(subject.reference_x, np.ndarray):
        # The file was run on both in child processes (probe, arena): safe here.
        for cls in (TFLMRunner, LiteRTMicroRunner):
            with cls(path, ["x"], ["y"], artifact=contract) as runner:
                got = np.ravel(runner.infer({"x": subject.reference_x})["y"])
            errors[cls.runtime] = float(np.abs(got - subject.reference_y).max())
    if errors.get("tflm", 0.0) > rule["atol"]:
        raise Unavailable(f"the int8 file's error on TFLM, {errors['tflm']:.3g}, exceeds its "
                          f"tolerance {rule['atol']:.3g} ({rule['rule']}); the float32 micro "
                          "file is exact")
    # LiteRT 2.3's int8 fused LSTM kernel is not TFLM's: on a user's stacked LSTM it missed by
    # 0.11 where TFLM was within 0.003. The file is for TFLM; verify runs it where it holds.
    off = {rt: f"its error there, {e:.3g}, exceeds the tolerance {rule['atol']:.3g}"
           for rt, e in errors.items() if e > rule["atol"]}
    if off:
        contract["runs_on"] = [rt for rt in ("tflm", "litert-micro") if rt not in off]
        contract["not_on"] = off
    return {**contract,
            "quantization": {"method": "TFLiteConverter TFLITE_BUILTINS_INT8 on the fused LSTM: "
                                       "int8 weights and activations, int16 cell state, float32 "
                                       "input and output",
                             "calibration": f"{calibration_count(subject.calibration)} input "
                                            "sequences",
                             "tolerance_rule": rule["rule"]}}


PRODUCER = ("tensorflow", "tf-keras", "tflite-micro")
FORMS = (
    Form("tflite_micro", ".micro.tflite", "tflite", to_micro, PRODUCER, _contract),
    Form("tflite_micro_int8", ".micro.int8.tflite", "tflite", to_micro_int8, PRODUCER,
         _int8_contract, variant="int8", base="tflite_micro", tolerance=_int8_tolerance),
    Form("tflite_micro_step", ".micro.step.tflite", "tflite", to_micro_step, PRODUCER,
         _step_contract),
)
