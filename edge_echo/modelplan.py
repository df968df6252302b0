"""One reading of a Keras model for the device forms: a small graph of layer nodes.

Each node is one layer call of the model's graph (Sequential or functional):
its kind, the node outputs it reads (its main inputs, and the initial state a
recurrent layer is given), the shape of each of its outputs per sample,
whether its first output is a sequence, and whether that sequence carries a
Keras mask (an Embedding with mask_zero, and the layers that pass the mask
on). The device forms read this instead of walking the Keras layers
themselves, and each says in one line which node it cannot express.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Layer classes that compute nothing at inference.
IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
            "ActivityRegularization")
RECURRENT = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "rnn"}
NORMS = ("BatchNormalization", "LayerNormalization")


class PlanError(Exception):
    """The model's graph is not one these forms read; one line."""


@dataclass
class Node:
    kind: str           # input | embedding | masking | recurrent | bidirectional | dense | norm |
                        # repeat | identity | other
    name: str
    layer: object       # the Keras layer (the InputLayer for an input)
    inputs: list[tuple[int, int]]          # (node, output) of each main input
    initial_state: list[tuple[int, int]] = field(default_factory=list)
    shapes: list[tuple] = field(default_factory=list)   # each output's shape, batch left out
    dtype: str = "float32"                 # output 0's
    masked: bool = False                   # output 0 carries a mask
    index: int = 0                         # input nodes: the position among the model's inputs


@dataclass
class ModelPlan:
    nodes: list[Node]
    outputs: list[tuple[int, int]]
    inputs: list[int]   # node index of each model input, in the model's input order

    def consumers(self, k: int) -> list[int]:
        return [j for j, n in enumerate(self.nodes)
                if any(src == k for src, _ in n.inputs + n.initial_state)]


def _kind(layer) -> str:
    name = type(layer).__name__
    inner = getattr(layer, "layer", None)
    if name == "InputLayer":
        return "input"
    if name == "Embedding":
        return "embedding"
    if name in RECURRENT:
        return "recurrent"
    if name == "Bidirectional":
        return "bidirectional"
    if name == "Dense" or (name == "TimeDistributed" and type(inner).__name__ == "Dense"):
        return "dense"
    if name in NORMS:
        return "norm"
    if name == "RepeatVector":
        return "repeat"
    if name == "Masking":
        return "masking"
    if name in IDENTITY:
        return "identity"
    return "other"


def _shape(tensor) -> tuple:
    return tuple(tensor.shape[1:])


def read(model) -> ModelPlan:
    """The graph of model (a Sequential reads as its functional graph), walked back from its
    outputs through the exact layer call each tensor came from: the calls Keras records while
    building or loading a model, outside this graph, are not read."""
    graph = getattr(model, "_functional", None) or model
    if not hasattr(graph, "outputs") or not hasattr(graph, "inputs"):
        raise PlanError("the model has no graph to read (build it on an Input first)")
    at: dict[tuple[int, int], int] = {}   # (id(layer), call) -> node index
    called: dict[int, int] = {}           # id(layer) -> the call of it in this graph
    nodes: list[Node] = []

    def visit(tensor) -> tuple[int, int]:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise PlanError("the model's graph holds a value that is not a layer's output")
        op, call_index, tensor_index = history.operation, history.node_index, history.tensor_index
        key = (id(op), call_index)
        if key not in at:
            if called.setdefault(id(op), call_index) != call_index:
                raise PlanError(f"layer '{op.name}' is called more than once in the model; a "
                                "shared layer has no device form here")
            call = op._inbound_nodes[call_index]
            kind = _kind(op)
            main = []
            for value in call.arguments.args if kind != "input" else ():
                for t in value if isinstance(value, (list, tuple)) else [value]:
                    if hasattr(t, "_keras_history"):
                        main.append(visit(t))
            state = call.arguments.kwargs.get("initial_state")
            state = [] if state is None else state if isinstance(state, (list, tuple)) else [state]
            state = [visit(t) for t in state]
            outs = call.outputs if isinstance(call.outputs, (list, tuple)) else [call.outputs]
            node = Node(kind, op.name, op, main, state, [_shape(t) for t in outs],
                        str(getattr(outs[0], "dtype", "float32")))
            node.masked = _masked(node, nodes)
            # Keras passes the mask it propagates as the mask argument (an Embedding's, ids != 0,
            # an op of its own, not read); any other mask is not read here.
            if call.arguments.kwargs.get("mask") is not None and not (
                    node.inputs and nodes[node.inputs[0][0]].masked):
                raise PlanError(f"layer '{op.name}' is given a mask explicitly; "
                                "only Embedding(mask_zero) masks are read here")
            at[key] = len(nodes)
            nodes.append(node)
        return at[key], int(tensor_index)

    inputs = []
    for k, tensor in enumerate(graph.inputs):
        index, _ = visit(tensor)
        nodes[index].index = k
        inputs.append(index)
    outputs = [visit(t) for t in graph.outputs]
    return ModelPlan(nodes, outputs, inputs)


def _masked(node: Node, nodes: list[Node]) -> bool:
    """Whether the node's first output carries a mask, as Keras propagates it."""
    if node.kind == "embedding":
        return bool(node.layer.mask_zero)
    if node.kind == "masking":
        return True
    if not node.inputs or not nodes[node.inputs[0][0]].masked:
        return False
    if node.kind in ("identity", "norm", "dense"):
        return True
    if node.kind == "recurrent":
        return bool(node.layer.return_sequences)
    if node.kind == "bidirectional":
        return bool(node.layer.forward_layer.return_sequences)
    return False


def chain(plan: ModelPlan) -> list:
    """The layers, in order, of a model whose layers each feed the next and only the next (one
    input, one output; a mask_zero Embedding's mask op left out); else PlanError naming the
    first layer that is not."""
    if len(plan.inputs) != 1 or len(plan.outputs) != 1:
        raise PlanError("the model has several inputs or outputs, not a chain of layers")
    previous = plan.inputs[0]
    layers = []
    for k, node in enumerate(plan.nodes):
        if node.kind == "input":
            continue
        if node.inputs != [(previous, 0)] or node.initial_state:
            raise PlanError(f"layer '{node.name}' ({type(node.layer).__name__}) is not fed by the "
                            "layer before it alone")
        layers.append(node.layer)
        previous = k
    if plan.outputs[0] != (previous, 0):
        raise PlanError("the model's output is not its last layer's")
    return layers
