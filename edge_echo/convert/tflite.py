"""Keras LSTM -> TFLite with builtin ops only, stateless, dynamic batch.

Measured routes with TF 2.21 / Keras 3 (see issue 2 and the manifest's
"conversion" note):
- from_keras_model, or any route keeping the LSTM's while loop with a dynamic
  batch, fails (tf.TensorListReserve needs a static element_shape);
- a SavedModel or a trackable object keeps resource variables as
  VAR_HANDLE/READ_VARIABLE, which LiteRT then reads uninitialised (NaN);
- the fused UNIDIRECTIONAL_SEQUENCE_LSTM keeps its state in variable tensors
  between invokes, so a device app that does not call reset_all_variables()
  gets drifting outputs.
So the model is cloned with unroll=True (same weights, no loop), its zero
initial state is built with static shapes (see zero_state.py: Keras's FILL
made LiteRT read stale memory), its variables are frozen into constants, and
the frozen function is converted: plain builtin ops, a batch that resizes,
no dynamic tensors, and no state carried between invokes.
"""

from __future__ import annotations

from ..specs import INPUT_NAME, EchoSpec
from ..tfenv import import_tensorflow
from . import forward
from .zero_state import use_static_zero_states

ROUTE = "unrolled-frozen"
ROUTE_NOTE = (
    "LSTM(unroll=True) clone with the trained weights, zero initial state of static "
    "shape, variables frozen to constants, TFLITE_BUILTINS only: stateless, dynamic "
    "batch, no dynamic tensors"
)


def freeze(unrolled, call, input_shape: tuple[int, ...], input_name: str):
    """call(x) on an unrolled model, traced with a dynamic batch, variables frozen to constants.

    Every recurrent layer of unrolled starts from a zero state of static shape
    first (zero_state.py): the one place both the echo models and
    `edge-echo convert` go through.
    """
    tf = import_tensorflow()
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    use_static_zero_states(unrolled)
    signature = tf.TensorSpec((None, *input_shape), tf.float32, name=input_name)
    function = tf.function(call, input_signature=[signature])
    return convert_variables_to_constants_v2(function.get_concrete_function())


def frozen_function(model, spec: EchoSpec):
    """The unrolled clone's inference with its variables frozen to constants."""
    from ..train import build_model

    unrolled = build_model(spec, unroll=True)
    unrolled.set_weights(model.get_weights())
    return freeze(unrolled, forward(unrolled, spec), spec.input_shape, INPUT_NAME)


def converter_for(frozen):
    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def to_tflite(model, spec: EchoSpec) -> bytes:
    return converter_for(frozen_function(model, spec)).convert()
