"""Keras recurrent model -> TFLite with builtin ops only, stateless, dynamic batch.

Measured routes with TF 2.21 / Keras 3 (see issue 2 and the manifest's
"conversion" note):
- from_keras_model, or any route keeping the LSTM's while loop with a dynamic
  batch, fails (tf.TensorListReserve needs a static element_shape);
- a SavedModel or a trackable object keeps resource variables as
  VAR_HANDLE/READ_VARIABLE, which LiteRT then reads uninitialised (NaN);
- the fused UNIDIRECTIONAL_SEQUENCE_LSTM keeps its state in variable tensors
  between invokes, so a device app that does not reset it gets drifting
  outputs (that is the micro form, convert/micro.py, with its contract).
So the model is cloned with unroll=True (same weights, no loop), its zero
initial state is built with static shapes (see zero_state.py: Keras's FILL
made LiteRT read stale memory), its variables are frozen into constants, and
the frozen function is converted: plain builtin ops, a batch that resizes,
no dynamic tensors, and no state carried between invokes.
"""

from __future__ import annotations

from ..tfenv import import_tensorflow
from .zero_state import use_static_zero_states

ROUTE = "unrolled-frozen"
ROUTE_NOTE = (
    "every recurrent layer cloned with unroll=True and the trained weights, zero initial "
    "state of static shape, variables frozen to constants, TFLITE_BUILTINS only: stateless, "
    "dynamic batch, no dynamic tensors"
)
RNN_CLASSES = ("LSTM", "GRU", "SimpleRNN")


def as_list(outputs) -> list:
    """A model's outputs in order, whether it returns one tensor, a list or a dict."""
    if isinstance(outputs, dict):
        return list(outputs.values())
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def inference_clone(model, inputs: list[tuple[str, tuple, str]], unroll: bool):
    """The same model and weights in the form converters handle best.

    TimeDistributed(Dense) becomes the Dense itself: Keras 3's Dense maps the
    last axis of a (batch, time, features) tensor with one broadcasting
    matmul, the same values as one MatMul / FULLY_CONNECTED, where the wrapper
    reaches the converters as a Tensordot (Transpose, Shape, Gather, Concat,
    two Reshapes) or a MatMul per step. With unroll, every recurrent layer
    is unrolled over the fixed time steps. inputs: (name, shape, dtype) of each input, in the
    model's order (a dimension None stays open).
    """
    import keras

    tf = import_tensorflow()

    class TimeDense(keras.layers.Dense):
        # Keras's own matmul reshapes a 3-D input around a 2-D matmul (SHAPE, GATHER,
        # REDUCE_PROD, RESHAPE); tf.matmul broadcasts in one op. The TimeDistributed node it
        # replaces passes a mask, which a Dense ignores.
        def call(self, inputs, mask=None):
            x = tf.matmul(inputs, self.kernel)
            if self.bias is not None:
                x = x + self.bias
            return self.activation(x) if self.activation is not None else x

    def clone(layer):
        if isinstance(layer, keras.layers.TimeDistributed) and type(layer.layer) is keras.layers.Dense:
            return TimeDense.from_config(layer.layer.get_config())
        config = layer.get_config()
        # Dropout does nothing at inference, but a recurrent layer with dropout keeps a seed
        # generator whose variable the converters cannot freeze (AssignVariableOp on int64).
        inference = {"dropout": 0.0, "recurrent_dropout": 0.0}
        if type(layer).__name__ in RNN_CLASSES:
            config.update(inference, **({"unroll": True} if unroll else {}))
        elif type(layer).__name__ == "Bidirectional":
            for key in ("layer", "backward_layer"):
                if isinstance(config.get(key), dict) and config[key].get("class_name") in RNN_CLASSES:
                    config[key]["config"].update(inference, **({"unroll": True} if unroll else {}))
        return type(layer).from_config(config)

    tensors = [keras.Input(shape, name=name, dtype=dtype) for name, shape, dtype in inputs]
    cloned = keras.models.clone_model(model, input_tensors=tensors if len(tensors) > 1 else tensors[0],
                                      clone_function=clone)
    cloned.set_weights(model.get_weights())
    for layer in cloned.layers:
        # An adapted preprocessing layer (Normalization) reads its state from the weights just
        # set only when told to: without this the clone normalizes with mean 0 and variance 1.
        if callable(getattr(layer, "finalize_state", None)) and layer.weights:
            layer.finalize_state()
    if unroll:
        _reverse_before_unrolling(cloned)
    return cloned


def _reverse_before_unrolling(model) -> None:
    """Keras 3's unrolled loop zeroes the outputs at masked steps (zero_output_for_mask, which
    Bidirectional sets) with the mask in input order while the outputs are in the reversed
    order go_backwards reads them, so an unrolled masked backward layer is not the model
    (measured: |diff| 0.1 against Keras). Each go_backwards layer of the unrolled clone reverses
    its sequence and mask itself and reads forwards: the values of Keras's own loop."""
    import keras

    from .native_rnn import recurrent_layers

    class Forwards:
        def call(self, sequences, initial_state=None, mask=None, training=False):
            flip = keras.ops.flip
            self.go_backwards = False
            try:
                return super().call(flip(sequences, axis=1), initial_state=initial_state,
                                    mask=None if mask is None else flip(mask, axis=1),
                                    training=training)
            finally:
                self.go_backwards = True

    for layer in recurrent_layers(model.layers):
        if layer.go_backwards:
            layer.__class__ = type(f"Forwards{type(layer).__name__}", (Forwards, type(layer)), {})


def signature(inputs: list[tuple[str, tuple, str]]) -> list:
    """A dynamic-batch TensorSpec per input, named as the file's input will be."""
    tf = import_tensorflow()
    return [tf.TensorSpec((None, *shape), tf.as_dtype(dtype), name=name)
            for name, shape, dtype in inputs]


def call(model, count: int):
    """model's inference as a function of count positional inputs, returning a list."""
    return lambda *xs: as_list(model(list(xs) if count > 1 else xs[0], training=False))


def freeze(unrolled, inputs: list[tuple[str, tuple, str]]):
    """unrolled's inference, traced with a dynamic batch, variables frozen to constants.

    Every recurrent layer of unrolled starts from a zero state of static shape
    first (zero_state.py).
    """
    tf = import_tensorflow()
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    use_static_zero_states(unrolled)
    function = tf.function(call(unrolled, len(inputs)), input_signature=signature(inputs))
    return convert_variables_to_constants_v2(function.get_concrete_function())


def frozen_function(subject):
    """The subject's unrolled inference, frozen; also the source of the quantized TFLite variants."""
    if "frozen" not in subject.cache and subject.graph_only:
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        i = subject.interface
        function, _ = subject.model.traced(i.input_names, [x.shape for x in i.inputs])
        subject.cache["frozen"] = convert_variables_to_constants_v2(function.get_concrete_function())
    if "frozen" not in subject.cache:
        i = subject.interface
        inputs = [(x.name, x.shape, x.dtype) for x in i.inputs]
        unrolled = inference_clone(subject.model, inputs, unroll=True)
        subject.cache["frozen"] = freeze(unrolled, inputs)
    return subject.cache["frozen"]


def converter_for(frozen):
    from .graph_tflite import FrozenGraph, converter

    if isinstance(frozen, FrozenGraph):  # a serving graph at batch 1 (graph_tflite.py)
        return converter(frozen)
    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def to_tflite(subject) -> bytes:
    if subject.graph_only:
        try:  # a graph with no loop keeps its dynamic batch
            data = converter_for(frozen_function(subject)).convert()
        except Exception:
            # A Keras model's recurrent layers are unrolled first (inference_clone); a graph's
            # while loop is what it is: at batch 1, with static TensorLists (graph_tflite.py).
            from .graph_tflite import batch_one

            subject.cache["frozen"] = batch_one(subject)
            try:
                data = converter_for(subject.cache["frozen"]).convert()
            except Exception as exc:
                from ..forms import Unavailable

                raise Unavailable("the TFLite converter cannot lower this graph to builtin ops, "
                                  f"even at batch 1 ({_converter_reason(exc)})") from None
        return finish_tflite(data, subject.interface.output_names)
    return finish_tflite(converter_for(frozen_function(subject)).convert(),
                         subject.interface.output_names)


def _converter_reason(exc: BaseException) -> str:
    """The converter's own words: the first 'error:' line of its MLIR diagnostics."""
    import re

    from ..errors import first_line

    found = re.search(r"error: '?([^\n']*?)'? op ([^\n]*)", str(exc))
    return f"{found.group(1)} {found.group(2)}"[:200] if found else first_line(exc)


SIGNATURE = "serving_default"


def finish_tflite(data: bytes, names: list[str]) -> bytes:
    """Every TFLite file as a device app loads it: the output tensors renamed to the model's
    output names (the converter calls them Identity, Identity_1, ...), so a device app and the
    runners find each output by name; and a `serving_default` signature where the converter
    wrote none (from_concrete_functions writes none), naming every input and output as the
    manifest does, so get_signature_runner(), Kotlin's runSignature and LiteRT's CompiledModel
    find them by name too."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    sub = model.subgraphs[0]
    if len(sub.outputs) != len(names):
        raise RuntimeError(f"the converter wrote {len(sub.outputs)} outputs for {len(names)}")
    for index, name in zip(sub.outputs, names, strict=True):
        sub.tensors[index].name = name.encode()
    for sig in model.signatureDefs or []:
        for item, name in zip(sig.outputs or [], names, strict=False):
            item.name = name.encode()
    if not model.signatureDefs:
        def tensor_map(index):
            item = schema.TensorMapT()
            item.name, item.tensorIndex = sub.tensors[index].name, int(index)
            return item

        sig = schema.SignatureDefT()
        sig.signatureKey, sig.subgraphIndex = SIGNATURE.encode(), 0
        sig.inputs = [tensor_map(k) for k in sub.inputs]
        sig.outputs = [tensor_map(k) for k in sub.outputs]
        model.signatureDefs = [sig]

    class Aligned(flatbuffers.Builder):
        # Weight buffers 16-byte aligned, as the converter writes them (kernels read them in place).
        def StartVector(self, elemSize, numElems, alignment):
            return super().StartVector(elemSize, numElems,
                                       16 if elemSize == 1 and numElems >= 16 else alignment)

    builder = Aligned(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _contract(subject, path) -> dict:
    if subject.graph_only:  # no layers were unrolled: the graph's own route
        from .graph_tflite import contract

        return {"conversion": contract(subject)}
    return {"conversion": {"route": ROUTE, "note": ROUTE_NOTE, "stateful": False,
                           "timesteps": subject.interface.timesteps}}


def _forms():
    from ..forms import Form

    return (Form("tflite", ".tflite", "tflite", to_tflite, ("tensorflow",), _contract, graph=True),)


FORMS = _forms()
