"""Running a graph: a forward pass in topological order that keeps each node's ``backward``
closure, and a backward pass in reverse order where the gradients of a tensor consumed
several times simply add. Used by ``Model`` and by a model called as a layer.

A graph's tensors get integer slots once (``Plan``), so a step indexes lists instead of
hashing tensors. Backward computes only what some weight needs: a node whose inputs lead
back to no weight (and to no graph input whose gradient was asked for) is not asked for its
input gradient — layers with ``input_grads_optional`` then skip that product (the first
Dense or Conv2D of a model) — and a weightless node with nothing upstream to reach is
skipped altogether.
"""
from __future__ import annotations

from typing import Any, Callable

from kconf.engine.backend import xp
from kconf.graph.ir import Graph


class Plan:
    """A graph's nodes as ``(layer, input slots, output slots)`` with integer tensor slots,
    and, per choice of ``need_input_grads``, which nodes backward must run and which of them
    must return input gradients (worked out on first use, when the layers have weights)."""

    def __init__(self, graph: Graph):
        slots: dict[int, int] = {}
        for t in graph.inputs:
            slots.setdefault(id(t), len(slots))
        self.steps: list[tuple[Any, tuple[int, ...], tuple[int, ...]]] = []
        for node in graph.nodes:
            if node.layer.n_inputs == 0:
                continue
            ins = tuple(slots[id(t)] for t in node.inputs)
            outs = tuple(slots.setdefault(id(t), len(slots)) for t in node.outputs)
            self.steps.append((node.layer, ins, outs))
        self.n_slots = len(slots)
        self.inputs = [slots[id(t)] for t in graph.inputs]
        self.outputs = [slots[id(t)] for t in graph.outputs]
        self._backward: dict[bool, tuple[list[bool], list[bool], list[bool]]] = {}

    def backward_flags(self, need_input_grads: bool) -> tuple[list[bool], list[bool], list[bool]]:
        """``(requires, run, need_dx)``: per slot, whether its gradient is wanted; per step,
        whether its backward runs and whether it must return input gradients."""
        flags = self._backward.get(need_input_grads)
        if flags is None:
            requires = [False] * self.n_slots
            for s in self.inputs:
                requires[s] = need_input_grads
            run, need_dx = [], []
            for layer, ins, outs in self.steps:
                dx = any(requires[s] for s in ins)
                active = dx or bool(layer.weights)
                for s in outs:
                    requires[s] = requires[s] or active
                run.append(active)
                need_dx.append(dx)
            flags = self._backward[need_input_grads] = (requires, run, need_dx)
        return flags


def plan_of(graph: Graph) -> Plan:
    """The graph's ``Plan``, made on first use and kept on the graph (graphs do not change)."""
    plan = graph.__dict__.get("_plan")
    if plan is None:
        plan = graph._plan = Plan(graph)
    return plan


def run_graph(graph: Graph, xs: list, training: bool, rng=None,
              need_input_grads: bool = False) -> tuple[list, Callable]:
    """Forward through ``graph``; returns (outputs, backward).

    ``backward(douts, need_input_grads=None)`` takes one gradient per output (None for an
    output that does not matter), adds every weight gradient into its layer's ``grads``, and
    returns the gradients of the graph's inputs (None where ``need_input_grads`` — the
    argument given here unless backward is given its own — is False or none flows).
    """
    plan = plan_of(graph)
    values: list[Any] = [None] * plan.n_slots
    for s, x in zip(plan.inputs, xs):
        values[s] = x
    tape: list = []
    for layer, ins, outs in plan.steps:
        x = values[ins[0]] if layer.n_inputs == 1 else [values[s] for s in ins]
        y, node_backward = layer.forward(x, training=training, rng=rng)
        if len(outs) == 1:
            values[outs[0]] = y
        else:
            for s, v in zip(outs, y):
                values[s] = v
        if training:
            tape.append(node_backward)
    outputs = [values[s] for s in plan.outputs]
    default_need = need_input_grads

    def backward(douts: list, need_input_grads: bool | None = None) -> list:
        need = default_need if need_input_grads is None else need_input_grads
        requires, run, need_dx = plan.backward_flags(need)
        grads: list[Any] = [None] * plan.n_slots
        for s, d in zip(plan.outputs, douts):
            if d is not None:
                _accumulate(grads, s, d)
        for i in range(len(tape) - 1, -1, -1):
            layer, ins, outs = plan.steps[i]
            if len(outs) == 1:
                dy = grads[outs[0]]
                grads[outs[0]] = None
                if dy is None or not run[i]:
                    continue
            else:
                dys = [grads[s] for s in outs]
                for s in outs:
                    grads[s] = None
                if all(d is None for d in dys) or not run[i]:
                    continue
                dy = [xp.zeros_like(values[s]) if d is None else d for s, d in zip(outs, dys)]
            if not need_dx[i]:
                if layer.input_grads_optional:
                    tape[i](dy, need_dx=False)
                else:
                    tape[i](dy)
                continue
            dx = tape[i](dy)
            dxs = [dx] if layer.n_inputs == 1 else dx
            for s, d in zip(ins, dxs):
                if d is not None and requires[s]:
                    _accumulate(grads, s, d)
        return [grads[s] for s in plan.inputs]

    return outputs, backward


def _accumulate(grads: list, slot: int, d) -> None:
    grads[slot] = d if grads[slot] is None else grads[slot] + d
