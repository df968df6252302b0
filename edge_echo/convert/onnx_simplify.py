"""Remove what tf2onnx emits around a native LSTM node that ONNX already provides.

Keras builds the LSTM's zero initial state from the input's shape
(Shape, Cast, Slice, Concat, Expand, Unsqueeze): ONNX's LSTM takes missing
initial_h/initial_c as zeros. And for a last-step output Keras slices the
full sequence (Squeeze, Slice, Squeeze), where the LSTM's own Y_h output is
that last step. In ONNX Runtime each removed node is a kernel call per
inference, which at these sizes is most of the latency. verify compares the
simplified graph with Keras like any other.
"""

from __future__ import annotations

import numpy as np


def simplify(proto) -> list[str]:
    """Rewrite proto in place; return a note per rewrite made."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    notes: list[str] = []

    def is_zero_state(name: str) -> bool:
        node = producer.get(name)
        if node is None or node.op_type != "Unsqueeze":
            return False
        expand = producer.get(node.input[0])
        return (expand is not None and expand.op_type == "Expand"
                and expand.input[0] in consts and not np.any(consts[expand.input[0]]))

    for lstm in [n for n in graph.node if n.op_type == "LSTM"]:
        for slot in (5, 6):
            if len(lstm.input) > slot and lstm.input[slot] and is_zero_state(lstm.input[slot]):
                lstm.input[slot] = ""
                notes.append(f"{lstm.name or 'LSTM'}: zero initial state left to the LSTM default")
        replaced = _last_step_to_y_h(graph, lstm, consts, helper)
        if replaced:
            notes.append(f"{lstm.name or 'LSTM'}: last step read from Y_h")
    _prune(graph)
    return notes


def _last_step_to_y_h(graph, lstm, consts, helper) -> bool:
    """Squeeze(Y, 1) -> Slice(-1:, axis 0) -> Squeeze(0)  ==  Squeeze(Y_h, 0)."""
    users = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    chain = users.get(lstm.output[0], [])
    if len(chain) != 1 or chain[0].op_type != "Squeeze":
        return False
    squeeze = chain[0]
    nxt = users.get(squeeze.output[0], [])
    if len(nxt) != 1 or nxt[0].op_type != "Slice":
        return False
    sl = nxt[0]
    starts, ends, axes = (consts.get(n) for n in sl.input[1:4]) if len(sl.input) >= 4 else (None,) * 3
    if starts is None or ends is None or axes is None:
        return False
    if list(starts) != [-1] or list(axes) != [0] or int(ends[0]) < 2**31 - 1:
        return False
    if len(sl.input) > 4 and sl.input[4] and list(consts.get(sl.input[4], [1])) != [1]:
        return False
    last = users.get(sl.output[0], [])
    if len(last) != 1 or last[0].op_type != "Squeeze" or list(consts.get(last[0].input[1], [])) != [0]:
        return False
    final = last[0]
    if len(lstm.output) < 2 or not lstm.output[1]:
        return False
    axes_name = final.input[1]
    replacement = helper.make_node("Squeeze", [lstm.output[1], axes_name], list(final.output),
                                   name=f"{final.name}_from_Y_h")
    index = list(graph.node).index(final)
    graph.node.remove(final)
    graph.node.insert(index, replacement)
    return True


def _subgraphs(node):
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _used_inside(node) -> set[str]:
    """Names a node's subgraphs (a Loop body, an If branch) read, outer-scope ones included."""
    used: set[str] = set()
    for sub in _subgraphs(node):
        for inner in sub.node:
            used.update(inner.input)
            used |= _used_inside(inner)
    return used


def _prune(graph) -> None:
    """Drop nodes and initializers no graph output depends on."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
            needed |= _used_inside(node)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    unused = [t for t in graph.initializer if t.name not in needed]
    for t in unused:
        graph.initializer.remove(t)


def _rename_outer(graph, rename: dict[str, str]) -> None:
    local = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    local |= {o for n in graph.node for o in n.output}
    for node in graph.node:
        node.input[:] = [rename[n] if n in rename and n not in local else n for n in node.input]
        for sub in _subgraphs(node):
            _rename_outer(sub, {k: v for k, v in rename.items() if k not in local})


def canonicalize(proto) -> None:
    """Name every node, tensor and initializer by its place in the graph.

    tf2onnx draws names from process-wide counters (LSTM__104, const_axes__95)
    and notes the traced function's number in doc_string, so the same model
    converted twice gives different bytes. The graph's input and output names
    are the interface and stay.
    """
    graph = proto.graph
    fixed = {v.name for v in graph.input} | {v.name for v in graph.output}
    initializers = {t.name for t in graph.initializer}
    rename: dict[str, str] = {name: name for name in fixed}
    rename[""] = ""
    for i, node in enumerate(graph.node):
        for name in node.input:
            if name not in rename and name in initializers:
                rename[name] = f"const_{sum(1 for n in rename if n in initializers)}"
        node.name = f"{node.op_type}_{i}"
        for j, name in enumerate(node.output):
            if name not in rename:
                rename[name] = f"{node.op_type}_{i}_out{j}"
    for node in graph.node:
        node.input[:] = [rename[n] for n in node.input]
        node.output[:] = [rename[n] for n in node.output]
        # A Loop body reads outer tensors by name; its own tensors keep theirs.
        for sub in _subgraphs(node):
            _rename_outer(sub, rename)
    ordered = sorted(graph.initializer, key=lambda t: int(rename[t.name].split("_")[1]))
    for t in ordered:
        t.name = rename[t.name]
    del graph.initializer[:]
    graph.initializer.extend(ordered)
    del graph.value_info[:]
    graph.doc_string = ""


def _is_sorted(graph, available: set[str], produced: set[str]) -> bool:
    for node in graph.node:
        reads = set(node.input) | {i for i in _used_inside(node) if i in produced}
        if not reads <= available:
            return False
        available.update(node.output)
    return True


def toposort(graph) -> None:
    """Order nodes so that every input is produced before it is used (Kahn's algorithm)."""
    available = {v.name for v in graph.input} | {t.name for t in graph.initializer} | {""}
    produced = {o for n in graph.node for o in n.output}
    if _is_sorted(graph, set(available), produced):
        return  # keep the converter's order: the bytes of a sorted graph do not change
    pending, ordered = list(graph.node), []
    while pending:
        # A subgraph's reads of this graph's tensors count as inputs too.
        ready = [n for n in pending
                 if all(i in available for i in n.input)
                 and all(i in available or i not in produced for i in _used_inside(n))]
        if not ready:
            raise ValueError("the graph has a cycle or an undefined input")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
