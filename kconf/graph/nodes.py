"""Which calls (graph nodes) each layer has had, and Keras's node API read from there.

The engine's ``Layer`` keeps no graph bookkeeping: ``kconf.graph.ir.call_layer`` records each
new node here (``record_call``), and the node API that the Keras docs describe
(``layer.input``, ``layer.output``, ``input_shape``, ``output_shape``, ``get_input_at(i)`` ...)
is the ``NodeAPI`` mixin below, which the engine's ``Layer`` inherits and which reads this
registry. The registry holds layers and nodes weakly, so it keeps no model alive: a call
that nothing refers to any more (no graph, no tensor it produced or consumed) is forgotten
once Python frees it, which, as a node and its output tensors refer to each other, may be
only at the next garbage collection. A graph's own calls live as long as the graph.

A layer's node index here counts all its calls, in every graph, in the order they were made
(Keras's ``layer._inbound_nodes``). A ``Graph`` numbers the calls it contains itself
(``Graph.node_index``), so a layer called in two graphs gives each graph its own nodes 0, 1 ...
and neither graph sees the other's calls; see ``kconf/graph/__init__.py``.

This module imports nothing from the rest of kconf (the engine's ``Layer`` imports it), and a
node is anything with ``layer``, ``inputs``, ``outputs``, ``input_shapes`` and
``output_shapes`` (``kconf.graph.ir.Node``).
"""
from __future__ import annotations

import weakref
from typing import Any

# layer -> weak references to its nodes, in call order
_CALLS: "weakref.WeakKeyDictionary[Any, list[weakref.ref]]" = weakref.WeakKeyDictionary()


def record_call(node) -> None:
    """Remember ``node`` as the latest call of ``node.layer``."""
    _CALLS.setdefault(node.layer, []).append(weakref.ref(node))


def calls_of(layer) -> list:
    """Every call of ``layer`` still referred to, in the order they were made.

    Args:
        layer: an engine layer.

    Returns:
        The layer's nodes (``kconf.graph.ir.Node``), oldest first; empty if it was never
        called.
    """
    refs = _CALLS.get(layer)
    if not refs:
        return []
    nodes = [node for ref in refs if (node := ref()) is not None]
    if len(nodes) != len(refs):
        _CALLS[layer] = [weakref.ref(node) for node in nodes]
    return nodes


class NodeAPI:
    """Keras's node API for a layer (one node per call; see KERAS_SEMANTICS.md): with one node
    ``input``, ``output``, ``input_shape`` and ``output_shape`` are defined; with several
    they raise an AttributeError pointing to ``get_*_at(node_index)``. Tensors are kconf's
    ``SymbolicTensor``s; shapes include the batch axis as None."""

    name: str

    def _node(self, index: int, what: str):
        nodes = calls_of(self)
        if not nodes:
            raise AttributeError(f"layer {self.name!r} has never been called and thus has no "
                                 f"defined {what}")
        if not -len(nodes) <= index < len(nodes):  # Python's indexing, as Keras
            raise ValueError(f"asked for node {index} of layer {self.name!r}, but it has only "
                             f"{len(nodes)} inbound node(s)")
        return nodes[index]

    def _only_node(self, what: str):
        if len(calls_of(self)) > 1:
            raise AttributeError(
                f"Layer {self.name} has multiple inbound nodes, hence the notion of "
                f'"layer {what}" is ill-defined. Use `get_{what.replace(" ", "_")}_at(node_index)` '
                f"instead.")
        return self._node(0, what)

    @staticmethod
    def _one(items):
        return items[0] if len(items) == 1 else list(items)

    @property
    def input(self):
        """The input tensor(s) of the layer's only call."""
        return self._one(self._only_node("input").inputs)

    @property
    def output(self):
        """The output tensor(s) of the layer's only call."""
        return self._one(self._only_node("output").outputs)

    @property
    def input_shape(self):
        """The input shape(s) of the layer's only call."""
        return self._one(self._only_node("input shape").input_shapes)

    @property
    def output_shape(self):
        """The output shape(s) of the layer's only call."""
        return self._one(self._only_node("output shape").output_shapes)

    def get_input_at(self, node_index: int):
        """The input tensor(s) of call ``node_index`` (0 = the first call)."""
        return self._one(self._node(node_index, "input").inputs)

    def get_output_at(self, node_index: int):
        """The output tensor(s) of call ``node_index``."""
        return self._one(self._node(node_index, "output").outputs)

    def get_input_shape_at(self, node_index: int):
        """The input shape(s) of call ``node_index``."""
        return self._one(self._node(node_index, "input shape").input_shapes)

    def get_output_shape_at(self, node_index: int):
        """The output shape(s) of call ``node_index``."""
        return self._one(self._node(node_index, "output shape").output_shapes)
