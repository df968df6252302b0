"""The Keras layers of a step model read as C cells, normalizations and Dense heads (Plan), and the
layer readers the whole-sequence plan shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ...forms import Subject, Unavailable
from .cmath import ACTIVATIONS, VECTOR_ACTIVATIONS


def c_name(name: str) -> str:
    """NAME in C identifiers: '-' (and anything else not allowed) becomes '_'."""
    ident = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return f"m_{ident}" if ident[:1].isdigit() else ident


def _activation(layer, attr: str, vector: bool = False) -> str:
    """The activation's name, or why it has no C form: vector ones only where vector (a Dense
    layer's output, over its units)."""
    act = getattr(layer, attr)
    name = getattr(act, "__name__", str(act))
    if name in VECTOR_ACTIVATIONS and not vector:
        raise Unavailable(f"layer '{layer.name}': activation '{name}' as the {attr} of a "
                          "recurrent cell has no C form here (it takes a Dense layer's output)")
    if name not in ACTIVATIONS and name not in VECTOR_ACTIVATIONS:
        raise Unavailable(f"layer '{layer.name}': activation '{name}' has no C form here "
                          f"(supported: {', '.join([*ACTIVATIONS, *VECTOR_ACTIVATIONS])})")
    return name


@dataclass
class Cell:
    kind: str          # lstm | gru | rnn
    name: str
    inputs: int
    units: int
    weights: list[np.ndarray]
    activation: str
    recurrent_activation: str | None
    reset_after: bool = True
    use_bias: bool = True
    # Normalization layers between the previous layer (or the input) and this one, per step.
    pre: list[Norm] = field(default_factory=list)


@dataclass
class Norm:
    """BatchNormalization (folded at inference: x * a + b), LayerNormalization (a = gamma,
    b = beta, either None where the layer has none) or LayerNormalization(rms_scaling), over
    the features of each step."""
    kind: str          # batch | layer | rms
    name: str
    width: int
    a: np.ndarray | None
    b: np.ndarray | None
    epsilon: float
    index: int = 0     # N{index}_A, N{index}_B in the file

    def arrays(self) -> list[tuple[str, np.ndarray]]:
        return [(f"N{self.index}_{part.upper()}", v) for part, v in (("a", self.a), ("b", self.b))
                if v is not None]


@dataclass
class Dense:
    name: str
    inputs: int
    units: int
    kernel: np.ndarray
    bias: np.ndarray | None
    activation: str


@dataclass
class Plan:
    cells: list[Cell]
    head: list[Dense | Norm]
    steps: int
    features: int
    outputs: int
    every_step: bool   # y for every time step (many-to-many), else the last step's

    @property
    def state_floats(self) -> int:
        return sum(c.units * (2 if c.kind == "lstm" else 1) for c in self.cells)

    @property
    def norms(self) -> list[Norm]:
        return [n for c in self.cells for n in c.pre] + [n for n in self.head if isinstance(n, Norm)]

    @property
    def params(self) -> int:
        return (sum(int(w.size) for c in self.cells for w in c.weights)
                + sum(d.kernel.size + (0 if d.bias is None else d.bias.size) for d in self.head
                      if isinstance(d, Dense))
                + sum(int(v.size) for n in self.norms for _, v in n.arrays()))

    def layers(self) -> list[str]:
        """What the file computes, in order: cell(units), dense(units), *_norm(width)."""
        names = []
        for c in self.cells:
            names += [f"{n.kind}_norm({n.width})" for n in c.pre] + [f"{c.kind}({c.units})"]
        return names + [f"{d.kind}_norm({d.width})" if isinstance(d, Norm) else f"dense({d.units})"
                        for d in self.head]


def plan(subject: Subject) -> Plan:
    """Read the model into cells and a head, or say in one line why it has no C form."""
    import keras

    model = subject.model
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise Unavailable("C source takes models with one input and one output")
    interface = subject.interface
    if not interface.plain:
        raise Unavailable(f"C source takes float inputs; input '{interface.input_name}' takes "
                          f"{interface.inputs[0].dtype} token ids")
    if len(interface.input_shape) != 2:
        raise Unavailable("C source takes inputs of (time steps, features)")
    steps, features = interface.input_shape
    cells: list[Cell] = []
    head: list[Dense | Norm] = []
    norms: list[Norm] = []  # read, not yet placed before a cell or into the head
    width = features
    every_step = True
    from ... import modelplan

    try:
        layers = modelplan.chain(modelplan.read(model))
    except modelplan.PlanError as exc:
        raise Unavailable(str(exc)) from None
    for layer in layers:
        if isinstance(layer, keras.layers.Dropout):
            continue
        inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
        if type(layer).__name__ in modelplan.RECURRENT:
            if head:
                raise Unavailable(f"layer '{layer.name}': a recurrent layer after the Dense head "
                                  "has no C form here")
            if not every_step:
                raise Unavailable(f"layer '{layer.name}' follows a layer that returns only its "
                                  "last step")
            if layer.go_backwards or layer.stateful or getattr(layer, "return_state", False):
                raise Unavailable(f"layer '{layer.name}': go_backwards, stateful and return_state "
                                  "have no C form here")
            cells.append(_cell(layer, width, pre=norms))
            norms = []
            width = int(layer.units)
            every_step = bool(layer.return_sequences)
        elif isinstance(inner, keras.layers.Dense):
            if not cells:
                raise Unavailable(f"layer '{layer.name}': a Dense layer before the first "
                                  "recurrent layer has no C form here")
            head += norms
            norms = []
            head.append(_dense(layer, inner, width))
            width = int(inner.units)
        elif isinstance(inner, (keras.layers.BatchNormalization, keras.layers.LayerNormalization)):
            norms.append(_norm(layer, inner, width, keras))
        else:
            raise Unavailable(f"layer '{layer.name}' ({type(layer).__name__}) has no C form here; "
                              "C source takes LSTM, GRU and SimpleRNN stacks with Dense heads "
                              "and Batch or LayerNormalization between them")
    head += norms
    if not cells:
        raise Unavailable("C source needs a recurrent layer (LSTM, GRU or SimpleRNN)")
    if not all(np.all(np.isfinite(w)) for c in cells for w in c.weights):
        raise Unavailable("the weights hold inf or NaN")
    ((_, out_shape),) = interface.outputs
    expected = (steps, width) if every_step else (width,)
    if int(np.prod(out_shape)) != int(np.prod(expected)):
        raise Unavailable(f"output shape {list(out_shape)} is not what the layers give "
                          f"({list(expected)})")
    p = Plan(cells, head, int(steps), int(features), width, every_step)
    for k, norm in enumerate(p.norms):
        norm.index = k
    return p


def _norm(layer, inner, width: int, keras) -> Norm:
    """A normalization layer over the features of each step, as Keras computes it at inference,
    or why it has no C form."""
    try:
        ndims = len(layer.input.shape)
    except (AttributeError, ValueError):
        ndims = None
    axes = inner.axis if isinstance(inner.axis, (list, tuple)) else [inner.axis]
    if ndims is None or [int(a) % ndims for a in axes] != [ndims - 1]:
        raise Unavailable(f"layer '{layer.name}': {type(inner).__name__} over axis {inner.axis} "
                          "has no C form here (over the features of each step only)")

    def weight(v):
        return None if v is None else np.asarray(v, np.float32).reshape(width)

    eps = np.float32(inner.epsilon)
    if isinstance(inner, keras.layers.BatchNormalization):
        # tf.nn.batch_normalization in float32: inv = rsqrt(var + eps) * gamma, then
        # x * inv + (beta - mean * inv).
        mean, var = weight(inner.moving_mean), weight(inner.moving_variance)
        inv = (np.float32(1.0) / np.sqrt(var + eps)).astype(np.float32)
        gamma, beta = weight(getattr(inner, "gamma", None)), weight(getattr(inner, "beta", None))
        if gamma is not None:
            inv = (inv * gamma).astype(np.float32)
        shift = (-mean * inv if beta is None else beta - mean * inv).astype(np.float32)
        values = [inv, shift]
        kind = "batch"
    else:
        kind = "rms" if getattr(inner, "rms_scaling", False) else "layer"
        values = [weight(getattr(inner, "gamma", None)),
                  None if kind == "rms" else weight(getattr(inner, "beta", None))]
    if not all(v is None or np.all(np.isfinite(v)) for v in values):
        raise Unavailable(f"layer '{layer.name}': its weights hold inf or NaN")
    return Norm(kind, layer.name, width, *values, float(eps))


def _cell(layer, width: int, pre: list[Norm] | None = None) -> Cell:
    """An LSTM, GRU or SimpleRNN layer as the C reads it (pre: normalizations before it, per
    step), or why it has none."""
    from ...modelplan import RECURRENT

    kind = RECURRENT[type(layer).__name__]
    if layer.stateful:
        raise Unavailable(f"layer '{layer.name}': stateful has no C form here")
    return Cell(kind, layer.name, width, int(layer.units),
                [np.asarray(w, np.float32) for w in layer.get_weights()],
                _activation(layer.cell, "activation"),
                _activation(layer.cell, "recurrent_activation") if kind != "rnn" else None,
                bool(getattr(layer.cell, "reset_after", True)), bool(layer.cell.use_bias),
                pre or [])


def _dense(layer, inner, width: int) -> Dense:
    """A Dense layer (inner, the layer itself or what a TimeDistributed wraps) over width."""
    kernel, *bias = [np.asarray(w, np.float32) for w in inner.get_weights()]
    return Dense(layer.name, width, int(inner.units), kernel, bias[0] if bias else None,
                 _activation(inner, "activation", vector=True))
