"""The layer graph: symbolic tensors, nodes (calls of layers), the constructor, shape
inference, and running a graph.

Modules: ``nodes`` (which calls each layer has had; Keras's node API), ``ir`` (``Node``,
``SymbolicTensor``, ``call_layer``, ``Graph``, Keras's layer order), ``construct`` (config ->
``Graph``), ``execute`` (forward and backward through a ``Graph``), ``model_layer`` (a model
called like a layer).

Nodes belong to the graph, not to the layer
-------------------------------------------
An engine layer (``kconf.engine.layers``) is weights and math only; it keeps no record of
where it was called. Calling a layer symbolically (``ir.call_layer``) makes a ``Node`` that
holds the layer, its input tensors and its output tensors, and records it in
``nodes``' registry of calls per layer (weak references, so the registry keeps nothing alive).
Building a ``Graph`` from input and output tensors collects the nodes between them; the graph
then owns them and answers every question about them itself:

- ``graph.nodes_of(layer)``: the layer's calls in this graph, node 0 first;
- ``graph.node_index(node)`` and ``graph.ref(tensor)`` (``conv[1][0]``): the numbers that
  ``Connected to``, the node table and exported Keras JSON show, counted within this graph;
- ``graph.layers``: its layers in Keras's order (below); ``graph.call_order``: in the order
  a forward pass first runs them (weights are created in that order).

So one layer object can take part in several graphs: each graph numbers the layer's calls it
contains from 0 and sees no other graph's calls, and its shapes are those of its own nodes.
The layer's weights are one set whatever the number of graphs; they take the shape of the
layer's first call anywhere (``ir.build_shape``), and a later call, in any graph, must fit
them (``call_layer`` raises a ``ShapeError`` otherwise).

Keras's node API on the layer itself, as the Keras docs describe it (``layer.output``,
``layer.input_shape``, ``get_output_at(i)`` ..., and the "multiple inbound nodes"
AttributeError), comes from ``nodes.NodeAPI``, which the engine's ``Layer`` inherits and which
reads the registry: there, as in Keras, node ``i`` is the layer's ``i``-th call across all
graphs (for a layer used in one graph, the same numbers the graph gives).

Keras's layer order
-------------------
``graph.layers`` (and so ``Model.layers``, ``get_weights()``/``set_weights()``,
``named_weights()`` and the summary's rows) follow Keras 3's functional models: by depth from
the outputs, deepest first, ties in the order a depth-first walk from the outputs (in the
order they are listed) first reaches the layers; a layer called several times takes the
largest depth of its calls (``ir.keras_order`` gives the details). For a chain (a Sequential
model) that is its own order. A weight list from Keras's ``model.get_weights()`` therefore
loads with ``Model.set_weights`` into the kconf model of the same architecture.
"""
