"""Zero initial states whose shape LiteRT knows before it runs the model.

A Keras RNN with no initial state builds zeros of shape (batch, units) with
Fill(Pack(Shape(x)[0], units), 0). With a dynamic batch the TFLite FILL output
is a dynamic tensor (its shape comes from a value, so it is allocated during
invoke), and it feeds the first step's FULLY_CONNECTED and MUL, which LiteRT
2.3 hands to the XNNPACK delegate. In some processes the delegate then reads
that state from memory FILL no longer writes: measured with
`python -m edge_echo verify exported --no-keras`, about 1 run in 200 had every
invoke after the first at a batch size return wrong outputs (|diff| 0.1-0.2),
the same wrong values each time it happened.

ZerosLike(x[:, 0, :1]) plus a (1, units) constant of zeros gives the same
zeros from STRIDED_SLICE, ZEROS_LIKE and a broadcasting ADD, whose output
shapes follow from input shapes alone (and which TFLite Micro also has), so
the file has no dynamic tensors; the outputs are the same bits as before.
ZerosLike rather than x * 0 keeps the state zero for inf or NaN inputs, as
Keras's is.
"""

from __future__ import annotations


def zero_state_like(sequences, size: int):
    """Zeros of shape (batch, size), batch taken from sequences (batch, time, features)."""
    from keras import ops

    return ops.zeros_like(sequences[:, 0, :1]) + ops.zeros((1, int(size)), sequences.dtype)


def _state_sizes(layer) -> list[int]:
    size = layer.cell.state_size
    return [int(s) for s in size] if isinstance(size, (list, tuple)) else [int(size)]


def use_static_zero_states(model) -> int:
    """Make every recurrent layer in model start from zero_state_like its input; returns how many.

    Only for inference graphs that are about to be converted: a layer given an
    explicit initial state keeps it, and stateful layers are left alone.
    """
    import keras

    patched = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Bidirectional):
            targets = [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.RNN):
            targets = [layer]
        else:
            continue
        for rnn in targets:
            if rnn.stateful or getattr(rnn, "_static_zero_state", False):
                continue
            rnn.call = _with_zero_state(rnn, rnn.call)
            rnn._static_zero_state = True
            patched += 1
    return patched


def _with_zero_state(rnn, call):
    sizes = _state_sizes(rnn)

    def call_from_zero(sequences, initial_state=None, **kwargs):
        if initial_state is None:
            initial_state = [zero_state_like(sequences, s) for s in sizes]
        return call(sequences, initial_state=initial_state, **kwargs)

    return call_from_zero
