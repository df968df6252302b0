"""Keras GRU and SimpleRNN (and masked LSTM) -> ONNX's native GRU, RNN and LSTM nodes, not a Loop.

tf2onnx matches Keras 3's LSTM while loop to a native LSTM node, but not its
GRU or SimpleRNN loop (tensorflow-onnx has GRU rewriters for TF1 and Keras 2
graphs only), nor any loop that carries a mask (Embedding(mask_zero=True),
Masking): those become a Loop that ONNX Runtime runs about 10x slower (179 us
for a GRU(8) over 12 steps against 18 us for an LSTM(8), issue 14).

So, in the clone that the ONNX converter traces, each such layer (stacked,
inside Bidirectional, after any front end) stands in for itself with a
placeholder op named after it, and a tf2onnx handler replaces the placeholder
with one node carrying the layer's weights:

- Keras and ONNX both order the GRU gates z, r, h; Keras's kernel is
  (input, 3 units), ONNX's W is (1, 3 units, input): a transpose. LSTM gates
  are i, f, c, o in Keras and i, o, f, c in ONNX.
- reset_after=True (Keras 3's default) applies the reset gate after the
  recurrent matmul: ONNX linear_before_reset=1, with the input and recurrent
  biases as Wb and Rb. reset_after=False is linear_before_reset=0 with the one
  bias as Wb and Rb zero.
- go_backwards runs the node in reverse; Keras then returns the sequence in
  processing order, so the node's output is reversed in time. With a mask,
  Keras reverses the sequence and the mask first: so does the graph, and the
  node reads forwards.
- A mask skips steps: Keras keeps the state and repeats the last output at a
  masked step. The valid steps are moved to the front of each sequence
  (ScatterElements, positions from a CumSum of the mask) and the node runs
  with sequence_lens = their count; every step's output is gathered back from
  the last valid step at or before it (zeros before the first, or at every
  masked step where the layer says zero_output_for_mask).

A layer the nodes cannot express (an activation ONNX's recurrent nodes do not
have, an initial state passed in, stateful) keeps Keras's own loop, and so does an LSTM without a mask, which
tf2onnx already writes as a native node.
"""

from __future__ import annotations

import re

import numpy as np

_NAME = "edge_echo_native_rnn_"


def _activation(fn) -> tuple[str, float | None, float | None] | None:
    """(ONNX name, alpha, beta) of a Keras activation, or None where the nodes have none."""
    name = getattr(fn, "__name__", "")
    return {"tanh": ("Tanh", None, None), "sigmoid": ("Sigmoid", None, None),
            "relu": ("Relu", None, None), "linear": ("Affine", 1.0, 0.0),
            # Keras 3: relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1).
            "hard_sigmoid": ("HardSigmoid", 1 / 6, 0.5),
            "softsign": ("Softsign", None, None), "softplus": ("Softplus", None, None)}.get(name)


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
    bias = np.asarray(cell.bias, np.float32) if cell.use_bias else None
    if isinstance(layer, keras.layers.LSTM):
        acts = [cell.recurrent_activation, cell.activation, cell.activation]
        # Keras i, f, c, o -> ONNX i, o, f, c.
        order = [0, 3, 1, 2]

        def gates(w):
            parts = np.split(w, 4, axis=-1)
            return np.concatenate([parts[k] for k in order], axis=-1)

        kernel, recurrent = gates(kernel), gates(recurrent)
        b = np.concatenate([gates(bias), np.zeros(4 * units, np.float32)]) if bias is not None \
            else np.zeros(8 * units, np.float32)
        op, attrs, states = "LSTM", {}, 2
    elif isinstance(layer, keras.layers.GRU):
        acts = [cell.recurrent_activation, cell.activation]
        if bias is not None:
            b = (np.concatenate([bias[0], bias[1]]) if cell.reset_after
                 else np.concatenate([bias, np.zeros_like(bias)]))
        else:
            b = np.zeros(6 * units, np.float32)
        op, attrs, states = "GRU", {"linear_before_reset": int(bool(cell.reset_after))}, 1
    else:
        acts = [cell.activation]
        b = (np.concatenate([bias, np.zeros(units, np.float32)]) if bias is not None
             else np.zeros(2 * units, np.float32))
        op, attrs, states = "RNN", {}, 1
    onnx_acts = [_activation(a) for a in acts]
    if None in onnx_acts:
        return None
    attrs.update(hidden_size=units, activations=[a[0] for a in onnx_acts],
                 direction="reverse" if layer.go_backwards else "forward")
    # The node consumes alpha and beta in the order of the activations that take them.
    alphas = [a[1] for a in onnx_acts if a[1] is not None]
    betas = [a[2] for a in onnx_acts if a[2] is not None]
    if alphas:
        attrs.update(activation_alpha=alphas, activation_beta=betas)
    return {"op": op, "units": units, "states": states, "W": kernel.T[None].copy(),
            "R": recurrent.T[None].copy(), "B": b[None].astype(np.float32),
            "backwards": bool(layer.go_backwards), "sequences": bool(layer.return_sequences),
            "state": bool(layer.return_state),
            "zero_output": bool(getattr(layer, "zero_output_for_mask", False)), "attrs": attrs}


def recurrent_layers(layers):
    """Every LSTM, GRU and SimpleRNN among layers, inside Bidirectional and TimeDistributed too."""
    import keras

    for layer in layers:
        if isinstance(layer, keras.layers.Bidirectional):
            yield from recurrent_layers([layer.forward_layer, layer.backward_layer])
        elif isinstance(layer, keras.layers.TimeDistributed):
            yield from recurrent_layers([layer.layer])
        elif type(layer) in (keras.layers.GRU, keras.layers.SimpleRNN, keras.layers.LSTM):
            yield layer


def native_recurrences(model) -> dict | None:
    """Swap model's recurrent layers (model is a throwaway clone) for placeholders where a
    native node expresses them; return the tf2onnx custom_op_handlers that write the nodes,
    or None."""
    from ..tfenv import import_tensorflow

    tf = import_tensorflow()
    nodes: dict[int, dict] = {}

    class Native:
        def call(self, sequences, initial_state=None, mask=None, training=False):
            node = nodes[self._edge_echo_node]
            keras_loop = (initial_state is not None
                          or (mask is None and node["op"] == "LSTM"))  # tf2onnx's own LSTM node
            if keras_loop:
                return super().call(sequences, initial_state=initial_state, mask=mask,
                                    training=training)
            node["masked"] = mask is not None
            count = 1 + (node["states"] if node["state"] else 0)
            inputs = [sequences] + ([mask] if mask is not None else [])
            outs = tf.numpy_function(_never_run, inputs, [tf.float32] * count, stateful=False,
                                     name=f"{_NAME}{self._edge_echo_node}")
            units = node["units"]
            # EnsureShape (an Identity in ONNX) carries the shapes past the placeholder, whose
            # own shape a frozen graph forgets; tf2onnx infers everything after it from them.
            shapes = [[None, sequences.shape[1], units] if node["sequences"] else [None, units]]
            shapes += [[None, units]] * (count - 1)
            outs = [tf.ensure_shape(o, shape) for o, shape in zip(outs, shapes, strict=True)]
            return outs if node["state"] else outs[0]

    for layer in recurrent_layers(model.layers):
        node = _describe(layer)
        if node is None:
            continue
        nodes[len(nodes)] = node
        layer._edge_echo_node = len(nodes) - 1
        layer.__class__ = type(f"Native{type(layer).__name__}", (Native, type(layer)), {})
    if not nodes:
        return None

    return _handlers(nodes)


def _handlers(nodes: dict[int, dict]) -> dict:
    def handler(ctx, placeholder, name, args):
        node = nodes[int(re.search(rf"{_NAME}(\d+)", placeholder.name)[1])]
        (_replace_step if node.get("step") else _replace)(ctx, placeholder, node)

    return {"PyFunc": (handler, ()), "PyFuncStateless": (handler, ())}


class StepNodes:
    """One time step of recurrent layers as native nodes over a sequence of one step, with
    the state explicit: the step models' ONNX form (convert/step.py)."""

    def __init__(self, layers):
        self.nodes: dict[int, dict] = {}
        # Read eagerly (the weights are numbers here, symbols while tracing).
        self.described = {id(layer): _describe(layer) for layer in layers}

    def call(self, layer, x, states):
        """(output, new states) of layer's node for one step, traced in TF; None where the
        layer needs its own cell (an activation the nodes do not have)."""
        from ..tfenv import import_tensorflow

        tf = import_tensorflow()
        node = self.described[id(layer)]
        if node is None:
            return None
        node = {**node, "step": True}
        k = len(self.nodes)
        self.nodes[k] = node
        outs = tf.numpy_function(_never_run, [x, *states], [tf.float32] * len(states),
                                 stateful=False, name=f"{_NAME}{k}")
        outs = [tf.ensure_shape(o, [None, node["units"]]) for o in outs]
        return outs[0], outs

    def handlers(self) -> dict | None:
        return _handlers(self.nodes) if self.nodes else None


def _never_run(*inputs):  # the placeholder's body: tf2onnx replaces the op before anything runs it
    raise RuntimeError("the native recurrence placeholder only exists to be converted")


def _replace(ctx, placeholder, node: dict) -> None:
    """The placeholder -> Transpose to time-major, the GRU, RNN or LSTM node, and back to
    Keras's (batch, time, units) or (batch, units) outputs under the placeholder's names."""
    from onnx import TensorProto

    x, outputs, base = placeholder.input[0], list(placeholder.output), placeholder.name
    mask = placeholder.input[1] if node.get("masked") else None
    steps = (ctx.get_shape(x) or [-1, -1])[1]
    counter = iter(range(1000))

    def const(value):
        return ctx.make_const(f"{base}/c{next(counter)}", np.asarray(value)).output[0]

    def op(kind, inputs, **attr):
        return ctx.make_node(kind, inputs, attr=attr).output[0]

    weights = [const(node[k]) for k in ("W", "R", "B")]
    ctx.remove_node(placeholder.name)
    axis0, axis1, axis2 = const(np.array([0], np.int64)), const(np.array([1], np.int64)), \
        const(np.array([2], np.int64))
    zero = const(np.array(0.0, np.float32))
    extra, attrs, backwards = [], node["attrs"], node["backwards"]

    def reverse(tensor):
        return op("Slice", [tensor, const(np.array([-1], np.int64)),
                            const(np.array([-(2 ** 62)], np.int64)), axis1,
                            const(np.array([-1], np.int64))])

    if mask is not None and backwards:
        # Keras reverses the sequence and its mask, then reads forwards: so does the node.
        x, mask, backwards = reverse(x), reverse(mask), False
        attrs = {**attrs, "direction": "forward"}
    if mask is not None:
        # Valid steps first (in order), then the masked ones; the node reads the valid ones.
        valid = op("Cast", [mask], to=TensorProto.INT64)
        cum = op("CumSum", [valid, const(np.array(1, np.int64))])
        count = op("ReduceSum", [valid, axis1], keepdims=1)
        ones = op("Add", [op("Mul", [valid, const(np.array(0, np.int64))]),
                          const(np.array(1, np.int64))])
        step_index = op("Sub", [op("CumSum", [ones, const(np.array(1, np.int64))]),
                                const(np.array(1, np.int64))])
        one = const(np.array(1, np.int64))
        dest = op("Where", [mask, op("Sub", [cum, one]),
                            op("Sub", [op("Add", [count, step_index]), cum])])
        dest3 = op("Expand", [op("Unsqueeze", [dest, axis2]), op("Shape", [x])])
        x = op("ScatterElements", [x, dest3, x], axis=1)
        lengths = op("Cast", [op("Max", [op("Squeeze", [count, axis1]), one])],
                     to=TensorProto.INT32)
        extra = [lengths]
        any_valid = op("Greater", [count, const(np.array(0, np.int64))])  # (batch, 1)
    time_major = op("Transpose", [x], perm=[1, 0, 2])
    rnn = ctx.make_node(node["op"], [time_major, *weights, *extra], attr=attrs,
                        output_count=1 + node["states"])
    y, *finals = rnn.output
    finals = [op("Squeeze", [f, axis0]) for f in finals]
    if mask is not None:  # a sequence with no valid step keeps its zero state
        finals = [op("Where", [any_valid, f, zero]) for f in finals]
    results = []
    if not node["sequences"]:
        last = finals[0]
        if mask is not None and node["zero_output"]:
            # The output at the last step read (the first for go_backwards) is zero if masked.
            at = const(np.array([0 if backwards else -1], np.int64))
            last = op("Where", [op("Gather", [mask, at], axis=1), last, zero])
        results.append(last)
    else:
        sequence = op("Squeeze", [y, axis1])  # (time, batch, units)
        if backwards:
            # The node's output at t is the state after reading t..T-1; Keras lists those in the
            # order it read them, from T-1 down.
            sequence = op("Slice", [sequence, const(np.array([-1], np.int64)),
                                    const(np.array([-(2 ** 62)], np.int64)), axis0,
                                    const(np.array([-1], np.int64))])
        sequence = op("Transpose", [sequence], perm=[1, 0, 2])
        if mask is not None:
            # Step t's output: the node's output at the last valid step at or before t.
            at = op("Max", [op("Sub", [cum, one]), const(np.array(0, np.int64))])
            at3 = op("Expand", [op("Unsqueeze", [at, axis2]), op("Shape", [sequence])])
            gathered = op("GatherElements", [sequence, at3], axis=1)
            keep = mask if node["zero_output"] else op("Greater", [cum, const(np.array(0, np.int64))])
            sequence = op("Where", [op("Unsqueeze", [keep, axis2]), gathered, zero])
        results.append(sequence)
    if node["state"]:
        results += finals
    for name, value in zip(outputs, results, strict=True):
        ctx.make_node("Identity", [value], outputs=[name])
    _typed(ctx, outputs, node, steps)


def _replace_step(ctx, placeholder, node: dict) -> None:
    """(x_t, h[, c]) -> the node over a sequence of one step from that state -> (h_out[, c_out])."""
    from onnx import TensorProto

    x, *states = placeholder.input
    outputs, base = list(placeholder.output), placeholder.name
    counter = iter(range(100))

    def const(value):
        return ctx.make_const(f"{base}/c{next(counter)}", np.asarray(value)).output[0]

    weights = [const(node[k]) for k in ("W", "R", "B")]
    ctx.remove_node(placeholder.name)
    axis0 = const(np.array([0], np.int64))
    one_step = ctx.make_node("Unsqueeze", [x, axis0]).output[0]
    initial = [ctx.make_node("Unsqueeze", [s, axis0]).output[0] for s in states]
    rnn = ctx.make_node(node["op"], [one_step, *weights, "", *initial], attr=node["attrs"],
                        output_count=1 + node["states"])
    for final, name in zip(rnn.output[1:], outputs, strict=True):
        ctx.make_node("Squeeze", [final, axis0], outputs=[name])
        ctx.set_dtype(name, TensorProto.FLOAT)
        ctx.set_shape(name, [-1, node["units"]])


def _typed(ctx, outputs, node, steps) -> None:
    """Every output gets its type and shape: the ONNX checker needs them, and the placeholder
    had none."""
    from onnx import TensorProto

    units = node["units"]
    for k, name in enumerate(outputs):
        ctx.set_dtype(name, TensorProto.FLOAT)
        ctx.set_shape(name, [-1, steps, units] if k == 0 and node["sequences"] else [-1, units])
