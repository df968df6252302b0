"""Keras GRU and SimpleRNN -> ONNX's native GRU and RNN operators, not a Loop.

tf2onnx matches Keras 3's LSTM while loop to a native LSTM node, but not its
GRU or SimpleRNN loop (tensorflow-onnx has GRU rewriters for TF1 and Keras 2
graphs only): those become a Loop that ONNX Runtime runs about 10x slower
(179 us for a GRU(8) over 12 steps against 18 us for an LSTM(8), issue 14).

So, in the clone that the ONNX converter traces, every GRU and SimpleRNN layer
(stacked, inside Bidirectional, after any front end) stands in for itself
with a placeholder op named after it, and a tf2onnx handler replaces the
placeholder with one GRU or RNN node carrying the layer's weights:

- Keras and ONNX both order the GRU gates z, r, h; Keras's kernel is
  (input, 3 units), ONNX's W is (1, 3 units, input): a transpose.
- reset_after=True (Keras 3's default) applies the reset gate after the
  recurrent matmul: ONNX linear_before_reset=1, with the input and recurrent
  biases as Wb and Rb. reset_after=False is linear_before_reset=0 with the one
  bias as Wb and Rb zero.
- go_backwards runs the node in reverse; Keras then returns the sequence in
  processing order, so the node's output is reversed in time.

A layer the nodes cannot express (an activation ONNX's recurrent nodes do not
have, a mask, an initial state passed in, stateful) keeps Keras's own loop.
"""

from __future__ import annotations

import re

import numpy as np

# Keras activation -> ONNX recurrent activation (the nodes take these names only).
ACTIVATIONS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu"}
_NAME = "edge_echo_native_rnn_"


def _activation(fn) -> str | None:
    return ACTIVATIONS.get(getattr(fn, "__name__", ""))


def _describe(layer) -> dict | None:
    """The node for this layer: its op, weights in ONNX's layout and attributes; None if the
    layer needs Keras's own loop."""
    import keras

    cell = layer.cell
    if layer.stateful or getattr(layer, "unroll", False):
        return None
    units = int(cell.units)
    kernel = np.asarray(cell.kernel, np.float32)
    recurrent = np.asarray(cell.recurrent_kernel, np.float32)
    if isinstance(layer, keras.layers.GRU):
        acts = [_activation(cell.recurrent_activation), _activation(cell.activation)]
        if cell.use_bias:
            bias = np.asarray(cell.bias, np.float32)
            b = (np.concatenate([bias[0], bias[1]]) if cell.reset_after
                 else np.concatenate([bias, np.zeros_like(bias)]))
        else:
            b = np.zeros(6 * units, np.float32)
        op, attrs = "GRU", {"linear_before_reset": int(bool(cell.reset_after))}
    else:
        acts = [_activation(cell.activation)]
        b = (np.concatenate([np.asarray(cell.bias, np.float32), np.zeros(units, np.float32)])
             if cell.use_bias else np.zeros(2 * units, np.float32))
        op, attrs = "RNN", {}
    if None in acts:
        return None
    return {"op": op, "units": units, "W": kernel.T[None].copy(), "R": recurrent.T[None].copy(),
            "B": b[None].astype(np.float32), "backwards": bool(layer.go_backwards),
            "sequences": bool(layer.return_sequences), "state": bool(layer.return_state),
            "attrs": {**attrs, "hidden_size": units, "activations": acts,
                      "direction": "reverse" if layer.go_backwards else "forward"}}


def _recurrent_layers(layers):
    import keras

    for layer in layers:
        if isinstance(layer, keras.layers.Bidirectional):
            yield from _recurrent_layers([layer.forward_layer, layer.backward_layer])
        elif isinstance(layer, keras.layers.TimeDistributed):
            yield from _recurrent_layers([layer.layer])
        elif type(layer) in (keras.layers.GRU, keras.layers.SimpleRNN):
            yield layer


def native_recurrences(model) -> dict | None:
    """Swap model's GRU and SimpleRNN layers (model is a throwaway clone) for placeholders;
    return the tf2onnx custom_op_handlers that turn them into GRU and RNN nodes, or None."""
    from ..tfenv import import_tensorflow

    tf = import_tensorflow()
    nodes: dict[int, dict] = {}

    class Native:
        def call(self, sequences, initial_state=None, mask=None, training=False):
            if mask is not None or initial_state is not None:
                return super().call(sequences, initial_state=initial_state, mask=mask,
                                    training=training)
            node = nodes[self._edge_echo_node]
            count = 2 if node["state"] else 1
            outs = tf.numpy_function(_never_run, [sequences], [tf.float32] * count,
                                     stateful=False, name=f"{_NAME}{self._edge_echo_node}")
            units = node["units"]
            # EnsureShape (an Identity in ONNX) carries the shapes past the placeholder, whose
            # own shape a frozen graph forgets; tf2onnx infers everything after it from them.
            shapes = [[None, sequences.shape[1], units] if node["sequences"] else [None, units],
                      [None, units]]
            outs = [tf.ensure_shape(o, shape) for o, shape in zip(outs, shapes, strict=False)]
            return outs if node["state"] else outs[0]

    for layer in _recurrent_layers(model.layers):
        node = _describe(layer)
        if node is None:
            continue
        nodes[len(nodes)] = node
        layer._edge_echo_node = len(nodes) - 1
        layer.__class__ = type(f"Native{type(layer).__name__}", (Native, type(layer)), {})
    if not nodes:
        return None

    def handler(ctx, placeholder, name, args):
        _replace(ctx, placeholder, nodes[int(re.search(rf"{_NAME}(\d+)", placeholder.name)[1])])

    return {"PyFunc": (handler, ()), "PyFuncStateless": (handler, ())}


def _never_run(x):  # the placeholder's body: tf2onnx replaces the op before anything runs it
    raise RuntimeError("the native recurrence placeholder only exists to be converted")


def _replace(ctx, placeholder, node: dict) -> None:
    """The placeholder -> Transpose to time-major, the GRU or RNN node, and back to Keras's
    (batch, time, units) or (batch, units) outputs under the placeholder's output names."""
    x, outputs, base = placeholder.input[0], list(placeholder.output), placeholder.name
    steps = (ctx.get_shape(x) or [-1, -1])[1]

    def const(suffix, value):
        return ctx.make_const(f"{base}/{suffix}", value).output[0]

    weights = [const(k, node[k]) for k in ("W", "R", "B")]
    ctx.remove_node(placeholder.name)
    time_major = ctx.make_node("Transpose", [x], attr={"perm": [1, 0, 2]}).output[0]
    rnn = ctx.make_node(node["op"], [time_major, *weights], attr=node["attrs"], output_count=2)
    y, y_h = rnn.output
    axis0, axis1 = const("axis0", np.array([0], np.int64)), const("axis1", np.array([1], np.int64))
    state_name = [outputs[1]] if node["state"] else None
    last = ctx.make_node("Squeeze", [y_h, axis0], outputs=state_name).output[0]
    if not node["sequences"]:
        ctx.make_node("Identity", [last], outputs=[outputs[0]])
        _typed(ctx, outputs, node, steps)
        return
    sequence = ctx.make_node("Squeeze", [y, axis1]).output[0]  # (time, batch, units)
    if node["backwards"]:
        # The node's output at t is the state after reading t..T-1; Keras lists those in the
        # order it read them, from T-1 down.
        sequence = ctx.make_node("Slice", [sequence, const("start", np.array([-1], np.int64)),
                                           const("end", np.array([-(2 ** 62)], np.int64)), axis0,
                                           const("step", np.array([-1], np.int64))]).output[0]
    ctx.make_node("Transpose", [sequence], attr={"perm": [1, 0, 2]}, outputs=[outputs[0]])
    _typed(ctx, outputs, node, steps)


def _typed(ctx, outputs, node, steps) -> None:
    """Every output gets its type and shape: the ONNX checker needs them, and the placeholder
    had none."""
    from onnx import TensorProto

    units = node["units"]
    shapes = {outputs[0]: [-1, steps, units] if node["sequences"] else [-1, units]}
    if node["state"]:
        shapes[outputs[1]] = [-1, units]
    for name, shape in shapes.items():
        ctx.set_dtype(name, TensorProto.FLOAT)
        ctx.set_shape(name, shape)
