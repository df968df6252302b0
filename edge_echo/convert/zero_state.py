"""Zero initial states whose shape LiteRT knows before it runs the model.

A Keras RNN with no initial state builds zeros of shape (batch, units) with
Fill(Pack(Shape(x)[0], units), 0). With a dynamic batch the TFLite FILL output
is a dynamic tensor (its shape comes from a value, so it is allocated during
invoke), and it feeds the first step's FULLY_CONNECTED and MUL, which LiteRT
2.3 hands to the XNNPACK delegate; that delegate refuses dynamic tensors it
sees when it partitions the graph, and this one only becomes dynamic later.
Measured with `python -m edge_echo verify exported --no-keras`: in about 1
process in 300 (never with ASLR off), every invoke after the first at a batch
size returned wrong outputs (|diff| 0.1-0.2), the same wrong values each time
it happened, as if the zero state had been read from stale memory.

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


def _state_sizes(layer) -> list[int] | None:
    """The widths of a layer's (batch, width) states; None for other state shapes (ConvLSTM)."""
    size = getattr(layer.cell, "state_size", None)
    sizes = list(size) if isinstance(size, (list, tuple)) else [size]
    return sizes if all(isinstance(s, int) and s > 0 for s in sizes) else None


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
            if (rnn.stateful or getattr(rnn, "_static_zero_state", False)
                    or _state_sizes(rnn) is None):
                continue
            rnn.call = _with_zero_state(rnn, rnn.call)
            rnn._static_zero_state = True
            patched += 1
    return patched


def _with_zero_state(rnn, call):
    sizes = _state_sizes(rnn)

    def call_from_zero(sequences, initial_state=None, **kwargs):
        if initial_state is None and len(sequences.shape) == 3:
            initial_state = [zero_state_like(sequences, s) for s in sizes]
        return call(sequences, initial_state=initial_state, **kwargs)

    return call_from_zero
