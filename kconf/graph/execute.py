"""Running a graph: a forward pass in topological order that keeps each node's ``backward``
closure, and a backward pass in reverse order where the gradients of a tensor consumed
several times simply add. Used by ``Model`` and by a model called as a layer."""
from __future__ import annotations

from typing import Any, Callable

from kconf.engine.backend import xp
from kconf.graph.ir import Graph


def run_graph(graph: Graph, xs: list, training: bool, rng=None,
              need_input_grads: bool = False) -> tuple[list, Callable]:
    """Forward through ``graph``; returns (outputs, backward).

    ``backward(douts)`` takes one gradient per output (None for an output that does not
    matter), adds every weight gradient into its layer's ``grads``, and returns the gradients
    of the graph's inputs (None where ``need_input_grads`` is False or none flows).
    """
    values: dict[int, Any] = {id(t): x for t, x in zip(graph.inputs, xs)}
    tape: list = []
    for node in graph.nodes:
        layer = node.layer
        if layer.n_inputs == 0:
            continue
        ins = [values[id(t)] for t in node.inputs]
        y, backward = layer.forward(ins[0] if layer.n_inputs == 1 else ins,
                                    training=training, rng=rng)
        ys = y if isinstance(y, list) else [y]
        for t, v in zip(node.outputs, ys):
            values[id(t)] = v
        if training:
            tape.append((node, backward))
    outputs = [values[id(t)] for t in graph.outputs]
    input_ids = {id(t) for t in graph.inputs}

    def backward(douts: list) -> list:
        grads: dict[int, Any] = {}
        for t, d in zip(graph.outputs, douts):
            if d is not None:
                _accumulate(grads, id(t), d)
        for node, node_backward in reversed(tape):
            dys = [grads.pop(id(t), None) for t in node.outputs]
            if all(d is None for d in dys):
                continue
            if len(dys) == 1:
                dx = node_backward(dys[0])
            else:
                dx = node_backward([xp.zeros_like(values[id(t)]) if d is None else d
                                    for t, d in zip(node.outputs, dys)])
            dxs = [dx] if node.layer.n_inputs == 1 else dx
            for t, d in zip(node.inputs, dxs):
                if d is not None and (need_input_grads or id(t) not in input_ids):
                    _accumulate(grads, id(t), d)
        return [grads.get(id(t)) for t in graph.inputs]

    return outputs, backward


def _accumulate(grads: dict, key: int, d) -> None:
    grads[key] = grads[key] + d if key in grads else d
