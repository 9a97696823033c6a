"""Running a graph: a forward pass in topological order that keeps each node's ``backward``
closure, and a backward pass in reverse order where the gradients of a tensor consumed
several times simply add. Used by ``Model`` and by a model called as a layer.

A graph's tensors get integer slots once (``Plan``), so a step indexes lists instead of
hashing tensors. A shared layer called on several tensors of one shape that are all ready by
its first call (the docs' shared LSTM reading two tweets) runs once, on the calls' batches
stacked: one pass over 2N samples instead of two over N, which halves the per-step work of a
recurrent layer's loop over time; its outputs and gradients are split back per call. Backward computes only what some weight needs: a node whose inputs lead
back to no weight (and to no graph input whose gradient was asked for) is not asked for its
input gradient — layers with ``input_grads_optional`` then skip that product (the first
Dense or Conv2D of a model) — and a weightless node with nothing upstream to reach is
skipped altogether. What "some weight" means is a *trainable* one: a frozen layer, or one
whose only weights are state, is not run backward unless a gradient must flow through it
(``Model`` calls ``forget_backward_flags`` when it collects its trainable weights, so freezing
before ``compile`` is seen here). A layer that holds state (``Layer.has_state``) is never run
stacked: each of its calls must update the state once, as in Keras.

Masks (``kconf.engine.masks``): where the graph says a tensor carries one, the step that
makes it also computes its bool (N, T) mask (``Layer.compute_mask``), and a layer that takes
masks gets its inputs' as ``forward(..., mask=...)``. Such calls are never stacked; the steps
of a model without masks do no mask work at all.

Every node's layer gets the ``training`` flag of the pass (and ``rng``); a nested model and
TimeDistributed hand both to the layers inside them, so every layer at any depth sees the
flag the model was run with.
"""
from __future__ import annotations

import collections
from typing import Any, Callable

from kconf.engine.backend import xp
from kconf.engine.ops import current_ops
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
        # step index -> the (input slot, output slot) of each call it runs stacked
        self.stacked: dict[int, list[tuple[int, int]]] = {}
        self.options: list[dict] = []  # per step, the call's keyword options (node.options)
        # per step, None where no mask goes in or comes out (every step of a model without
        # masks), else whether each output carries one (kconf.engine.masks)
        self.masks: list[tuple[bool, ...] | None] = []
        nodes = [node for node in graph.nodes if node.layer.n_inputs != 0]
        for node in nodes:  # every tensor's slot first: a stacked step fills later calls' too
            for t in node.outputs:
                slots.setdefault(id(t), len(slots))
        ready = {slots[id(t)] for t in graph.inputs}  # slots computed before the next step
        done: set[int] = set()
        for position, node in enumerate(nodes):
            if id(node) in done:
                continue
            ins = tuple(slots[id(t)] for t in node.inputs)
            outs = tuple(slots[id(t)] for t in node.outputs)
            calls = _stackable_calls(graph, node, nodes[position + 1:], slots, ready)
            if calls:
                done.update(id(n) for n in calls)
                self.stacked[len(self.steps)] = [
                    (slots[id(n.inputs[0])], slots[id(n.outputs[0])]) for n in [node, *calls]]
                ins = tuple(s for s, _ in self.stacked[len(self.steps)])
                outs = tuple(s for _, s in self.stacked[len(self.steps)])
            self.steps.append((node.layer, ins, outs))
            self.options.append(node.options)
            masked = any(t.mask for t in (*node.inputs, *node.outputs))
            self.masks.append(tuple(t.mask is not None for t in node.outputs) if masked else None)
            ready.update(outs)
        self.n_slots = len(slots)
        self.any_mask = any(m is not None for m in self.masks)
        self.inputs = [slots[id(t)] for t in graph.inputs]
        self.outputs = [slots[id(t)] for t in graph.outputs]
        self._allow_overwrites()
        self._backward: dict[bool, tuple[list[bool], list[bool], list[bool]]] = {}

    def _allow_overwrites(self) -> None:
        """Give ``overwrite=True`` to the steps whose layer ``overwrites_input`` where their
        one input is the ``fresh_output`` of another step's layer and nothing else reads it
        (no other step, not a graph output; neither step stacked or masked): a ReLU after
        BatchNormalization or an add rectifies in place."""
        readers = collections.Counter(s for _, ins, _ in self.steps for s in ins)
        made_by = {s: i for i, (_, _, outs) in enumerate(self.steps) for s in outs}
        for i, (layer, ins, _) in enumerate(self.steps):
            if not layer.overwrites_input or len(ins) != 1 or i in self.stacked:
                continue
            maker = made_by.get(ins[0])
            if (maker is None or maker in self.stacked or readers[ins[0]] != 1
                    or ins[0] in self.outputs or self.masks[i] is not None
                    or self.masks[maker] is not None
                    or not self.steps[maker][0].fresh_output):
                continue
            self.options[i] = {**self.options[i], "overwrite": True}

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
                active = dx or bool(layer.trainable_weights)
                for s in outs:
                    requires[s] = requires[s] or active
                run.append(active)
                need_dx.append(dx)
            flags = self._backward[need_input_grads] = (requires, run, need_dx)
        return flags

    def forget_flags(self) -> None:
        """Drop the backward flags worked out so far (the layers' trainability changed)."""
        self._backward.clear()


def forget_backward_flags(graph: Graph) -> None:
    """Make the plans of ``graph`` and of the graphs nested in it (models called as layers,
    also inside wrappers) work out again which nodes backward runs: after layers were frozen
    or unfrozen."""
    graphs, pending, seen = [graph], list(graph.layers), set()
    while pending:  # every layer at any depth; a nested model's sublayers are its layers
        layer = pending.pop()
        if id(layer) not in seen:
            seen.add(id(layer))
            pending.extend(layer.sublayers)
            if isinstance(getattr(layer, "graph", None), Graph):
                graphs.append(layer.graph)
    for g in graphs:
        plan = g.__dict__.get("_plan")
        if plan is not None:
            plan.forget_flags()


def _stackable_calls(graph: Graph, node, later: list, slots: dict[int, int],
                     ready: set[int]) -> list:
    """The later calls of ``node``'s layer that can run stacked with it: one input and one
    output each, inputs of the same shape and dtype, every input computed already."""
    layer = node.layer
    if layer.n_inputs != 1 or len(node.outputs) != 1 or len(graph.nodes_of(layer)) < 2:
        return []
    first = node.inputs[0]
    if layer.has_state(first.shape):  # each call updates the state once: never merged
        return []
    if adds_loss(layer):  # each call's added loss is normalized by its own batch
        return []
    if slots[id(first)] not in ready or _masked(node):
        return []
    return [n for n in later
            if n.layer is layer and len(n.outputs) == 1
            and n.inputs[0].shape == first.shape and n.inputs[0].dtype == first.dtype
            and slots[id(n.inputs[0])] in ready and not _masked(n)]


def _masked(node) -> bool:
    """Whether a mask goes into or comes out of ``node`` (such calls are never stacked)."""
    return any(t.mask for t in (*node.inputs, *node.outputs))


def adds_loss(layer) -> bool:
    """Whether the layer, or a layer inside it (a nested model), adds a loss."""
    return layer.adds_loss or any(adds_loss(inner) for inner in layer.sublayers)


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
    # the bool (N, T) masks of the tensors that carry one; nothing for a model without masks
    masks: list[Any] | None = [None] * plan.n_slots if plan.any_mask else None
    for s, x in zip(plan.inputs, xs):
        values[s] = x
    tape: list = []
    for i, (layer, ins, outs) in enumerate(plan.steps):
        if i in plan.stacked:
            y, node_backward = _forward_stacked(layer, [values[s] for s in ins], training, rng)
        elif plan.masks[i] is not None:
            y, node_backward = _forward_masked(layer, ins, outs, plan.masks[i], values, masks,
                                               training, rng, plan.options[i])
        else:
            x = values[ins[0]] if layer.n_inputs == 1 else [values[s] for s in ins]
            y, node_backward = layer.forward(x, training=training, rng=rng, **plan.options[i])
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
            dxs = [dx] if layer.n_inputs == 1 and i not in plan.stacked else dx
            for s, d in zip(ins, dxs):
                if d is not None and requires[s]:
                    _accumulate(grads, s, d)
        current_ops().finish_deferred()  # the kernel gradients left for later (Ops.defer)
        return [grads[s] for s in plan.inputs]

    return outputs, backward


def _forward_masked(layer, ins, outs, out_masked, values, masks, training, rng, options):
    """One call of ``layer`` where a mask goes in or comes out: ``forward`` gets ``mask=``
    if the layer takes one and an input has one; the masks of the outputs that carry one
    (``out_masked``) are written into ``masks``."""
    single = layer.n_inputs == 1
    x = values[ins[0]] if single else [values[s] for s in ins]
    mask = masks[ins[0]] if single else [masks[s] for s in ins]
    given = mask is not None if single else any(m is not None for m in mask)
    if layer.takes_mask and given:
        y, backward = layer.forward(x, training=training, rng=rng, mask=mask, **options)
    else:
        y, backward = layer.forward(x, training=training, rng=rng, **options)
    if any(out_masked):
        out = layer.compute_mask(x, mask, **options)
        out = out if isinstance(out, list) else [out] * len(outs)
        for s, m, carries in zip(outs, out, out_masked):
            if carries:
                masks[s] = m
    return y, backward


def _forward_stacked(layer, xs: list, training: bool, rng):
    """One call of ``layer`` on the batches ``xs`` stacked; returns (the outputs split back
    per call, backward taking one gradient per call and returning one dx per call)."""
    bounds = [0]
    for x in xs:
        bounds.append(bounds[-1] + len(x))
    parts = list(zip(bounds[:-1], bounds[1:]))
    y, backward = layer.forward(xp.concatenate(xs), training=training, rng=rng)

    def stacked_backward(dys: list, need_dx: bool = True):
        dy = xp.concatenate(dys)
        dx = backward(dy, need_dx=False) if not need_dx else backward(dy)
        return [None] * len(xs) if dx is None else [dx[a:b] for a, b in parts]

    return [y[a:b] for a, b in parts], stacked_backward


def _accumulate(grads: list, slot: int, d) -> None:
    grads[slot] = d if grads[slot] is None else grads[slot] + d
