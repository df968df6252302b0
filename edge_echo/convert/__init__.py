"""One converter per target format; each takes a trained Keras model and its spec."""

from __future__ import annotations


def forward(model, spec):
    """The model's inference as a plain function, in the form converters handle best.

    TimeDistributed(Dense) reaches the converters as a Tensordot (Transpose,
    Shape, Gather, Concat and two Reshapes around a MatMul, or one MatMul per
    step); a broadcasting matmul with the same kernel and bias computes the
    same values as one MatMul / FULLY_CONNECTED.
    """
    from ..tfenv import import_tensorflow

    tf = import_tensorflow()
    if not spec.time_distributed:
        return lambda x: model(x, training=False)
    lstm = model.get_layer("lstm")
    dense = model.get_layer("time_distributed").layer
    return lambda x: tf.matmul(lstm(x, training=False), dense.kernel) + dense.bias
