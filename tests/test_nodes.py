"""Keras's node concept: one node per call; layer.input/output defined only for one node.
Nodes belong to the graph: a layer used in two graphs gives each its own nodes."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from kconf.engine import optimizers
from kconf.engine.layers.conv2d import Conv2D
from kconf.engine.layers.dense import Dense
from kconf.engine.layers.flatten import Flatten
from kconf.engine.layers.input import InputLayer
from kconf.engine.layers.pooling import MaxPooling2D
from kconf.errors import ShapeError
from kconf.graph.ir import Graph, call_layer
from kconf.graph.model_layer import ModelLayer
from kconf.keras_io.export import keras_json
from kconf.model import Model
from kconf.report.summary import layer_table, node_table, render_text
from tests.gradcheck import assert_close_grad, numeric_grad


def input_tensor(name, shape, dtype="float32"):
    layer = InputLayer(shape=shape, name=name, dtype=dtype)
    return call_layer(layer, [], [name])[0]


def test_the_docs_conv_applied_to_two_image_sizes():
    a = input_tensor("a", (32, 32, 3))
    b = input_tensor("b", (64, 64, 3))
    conv = Conv2D(16, (3, 3), padding="same", name="conv")
    (conved_a,) = call_layer(conv, [a], ["conved_a"])
    assert conv.input_shape == (None, 32, 32, 3)  # one node: defined
    assert conv.input is a and conv.output is conved_a
    (conved_b,) = call_layer(conv, [b], ["conved_b"])
    assert conv.get_input_shape_at(0) == (None, 32, 32, 3)
    assert conv.get_input_shape_at(1) == (None, 64, 64, 3)
    assert conv.get_output_shape_at(1) == (None, 64, 64, 16)
    assert conv.get_input_at(1) is b and conv.get_output_at(0) is conved_a
    for attribute, method in (("input", "get_input_at"), ("output", "get_output_at"),
                              ("input_shape", "get_input_shape_at"),
                              ("output_shape", "get_output_shape_at")):
        with pytest.raises(AttributeError) as info:
            getattr(conv, attribute)
        text = str(info.value)
        assert "has multiple inbound nodes" in text and f"`{method}(node_index)`" in text
    with pytest.raises(ValueError, match="only 2 inbound node"):
        conv.get_input_at(2)


def test_a_layer_never_called_has_no_input():
    with pytest.raises(AttributeError, match="never been called"):
        Dense(3, name="d").output


def encoder():
    """A small model (4 -> 3) to call like a layer."""
    t = input_tensor("enc_in", (4,))
    (h,) = call_layer(Dense(3, activation="tanh", name="enc_dense"), [t], ["h"])
    return Graph([t], [h])


def test_a_model_called_twice_shares_weights_and_gradients_add():
    inner = ModelLayer(encoder(), name="encoder")
    a = input_tensor("a", (4,))
    b = input_tensor("b", (4,))
    (ea,) = call_layer(inner, [a], ["ea"])
    (eb,) = call_layer(inner, [b], ["eb"])
    head = Dense(1, name="head")
    (sa,) = call_layer(head, [ea], ["sa"])
    (sb,) = call_layer(head, [eb], ["sb"])
    model = Model(Graph([a, b], [sa, sb]))
    model.build(np.random.default_rng(0), dtype=np.float64)
    model.compile(optimizers.SGD(), "mse", loss_weights=[1.0, 0.5])
    assert [l.name for l in model.layers] == ["a", "b", "encoder", "head"]
    assert len(model.get_weights()) == 4  # the encoder's Dense once, the head once
    assert list(inner.weights) == ["enc_dense/kernel", "enc_dense/bias"]
    rng = np.random.default_rng(1)
    xa, xb = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    ya, yb = rng.normal(size=(3, 1)), rng.normal(size=(3, 1))

    def loss():
        outs, _ = model._forward([xa, xb], training=False)
        return model._losses([ya, yb], outs)[0]

    outs, backward = model._forward([xa, xb], training=True)
    backward(model._losses([ya, yb], outs)[2])
    dense = inner.graph.layers[1]
    for key in ("kernel", "bias"):
        assert_close_grad(dense.grads[key], numeric_grad(loss, dense.weights[key]), key)
        assert_close_grad(head.grads[key], numeric_grad(loss, head.weights[key]), f"head/{key}")


def test_multi_output_logs_follow_keras_names_and_weights():
    a = input_tensor("x", (4,))
    (main,) = call_layer(Dense(1, activation="sigmoid", name="main_output"), [a], ["main_output"])
    (aux,) = call_layer(Dense(1, activation="sigmoid", name="aux_output"), [a], ["aux_output"])
    model = Model(Graph([a], [main, aux]))
    model.build(np.random.default_rng(0))
    model.compile(optimizers.RMSprop(), "binary_crossentropy", ["accuracy"],
                  loss_weights={"main_output": 1.0, "aux_output": 0.2})
    rng = np.random.default_rng(2)
    x = rng.random((16, 4), dtype=np.float32)
    y = {"main_output": rng.integers(2, size=(16, 1)), "aux_output": rng.integers(2, size=(16, 1))}
    logs = model.evaluate(x, y, return_dict=True)
    assert list(logs) == ["loss", "main_output_loss", "aux_output_loss", "main_output_accuracy",
                          "aux_output_accuracy"]
    assert logs["loss"] == pytest.approx(logs["main_output_loss"] + 0.2 * logs["aux_output_loss"],
                                         rel=1e-6)
    by_list = model.evaluate(x, [y["main_output"], y["aux_output"]], return_dict=True)
    assert by_list == logs
    history = model.fit({"x": x}, y, epochs=2, batch_size=8)
    assert set(history.history) == set(logs)


# --- a layer in two graphs: each graph owns its nodes -----------------------------------------


def image_model(conv, name, size, pool):
    """``name``: an image of ``size`` through the shared ``conv``, a pooling, a Dense head."""
    x = input_tensor(f"{name}_in", (size, size, 3))
    (c,) = call_layer(conv, [x], [f"{name}_conved"])
    (p,) = call_layer(MaxPooling2D(pool, name=f"{name}_pool"), [c], [f"{name}_pooled"])
    (f,) = call_layer(Flatten(name=f"{name}_flat"), [p], [f"{name}_flat"])
    (y,) = call_layer(Dense(1, name=f"{name}_head"), [f], [f"{name}_y"])
    return Model(Graph([x], [y]), name=name)


def test_one_conv_in_two_models_gives_each_its_own_node_0():
    conv = Conv2D(4, (3, 3), padding="same", name="conv")
    small = image_model(conv, "small", 8, 2)
    large = image_model(conv, "large", 16, 4)
    for model, size in ((small, 8), (large, 16)):
        (node,) = model.graph.nodes_of(conv)
        assert model.graph.node_index(node) == 0
        assert node.input_shapes == [(None, size, size, 3)]
        assert node.output_shapes == [(None, size, size, 4)]
        rows = {line.split()[1]: line for line in render_text(layer_table(model)).splitlines()
                if line.startswith("│")}
        assert f"(None, {size}, {size}, 4)" in rows["conv"]
        assert f"{model.name}_in[0][0]" in rows["conv"]
        assert "conv[0][0]" in rows[f"{model.name}_pool"]
        assert node_table(model) is None  # one call in each graph
        entry = next(e for e in keras_json(model)["config"]["layers"] if e["name"] == "conv")
        (call,) = entry["inbound_nodes"]
        assert call["args"][0]["config"]["keras_history"] == [f"{model.name}_in", 0, 0]
    # The layer itself counts its calls across graphs, as Keras's node API does.
    assert conv.get_output_shape_at(0) == (None, 8, 8, 4)
    assert conv.get_output_shape_at(1) == (None, 16, 16, 4)
    with pytest.raises(AttributeError, match="multiple inbound nodes"):
        conv.output
    # Both models build and run, on the one conv kernel the first call's shape gave.
    rng = np.random.default_rng(0)
    small.build(rng)
    large.build(rng)
    assert conv.weights["kernel"].shape == (3, 3, 3, 4)
    assert small.predict(rng.random((2, 8, 8, 3), dtype=np.float32)).shape == (2, 1)
    assert large.predict(rng.random((2, 16, 16, 3), dtype=np.float32)).shape == (2, 1)


def test_a_layer_called_twice_in_one_graph_and_once_in_another():
    d = Dense(4, activation="tanh", name="d")
    x = input_tensor("x", (4,))
    (h1,) = call_layer(d, [x], ["h1"])
    (h2,) = call_layer(d, [h1], ["h2"])
    twice = Model(Graph([x], [h2]), name="twice")
    y = input_tensor("y", (4,))
    (hy,) = call_layer(d, [y], ["hy"])  # d's third call overall, its first in this graph
    (out,) = call_layer(Dense(2, name="e"), [hy], ["out"])
    once = Model(Graph([y], [out]), name="once")
    assert [twice.graph.node_index(n) for n in twice.graph.nodes_of(d)] == [0, 1]
    assert [n.outputs[0].name for n in twice.graph.nodes_of(d)] == ["h1", "h2"]
    assert [once.graph.node_index(n) for n in once.graph.nodes_of(d)] == [0]
    assert once.graph.ref(hy) == "d[0][0]" and twice.graph.ref(h2) == "d[1][0]"
    assert node_table(once) is None
    rows = render_text(node_table(twice))
    assert "x[0][0]" in rows and "d[0][0]" in rows and "hy" not in rows
    assert [c["args"][0]["config"]["keras_history"]
            for c in _layer_entry(keras_json(once), "d")["inbound_nodes"]] == [["y", 0, 0]]
    assert d.get_input_at(2) is y  # the layer's own count: its third call


def _layer_entry(data, name):
    return next(e for e in data["config"]["layers"] if e["name"] == name)


def test_a_second_graph_must_fit_the_weights_of_the_first_call():
    d = Dense(3, name="d")
    call_layer(d, [input_tensor("x", (4,))], ["h"])
    with pytest.raises(ShapeError, match=r"first called on \(None, 4\)"):
        call_layer(d, [input_tensor("z", (5,))], ["hz"])


def test_calls_leave_the_layer_untouched_and_are_not_kept_alive_by_it():
    """The engine layer keeps no node bookkeeping; the graph's registry holds weakly."""
    layer = Dense(2, name="d")
    before = dict(vars(layer))
    x = input_tensor("x", (3,))
    (y,) = call_layer(layer, [x], ["y"])
    assert vars(layer).keys() == before.keys()
    graph = Graph([x], [y])
    assert graph.nodes_of(layer)[0].layer is layer and layer.output is y
    alive = weakref.ref(layer)
    del layer, x, y, graph
    gc.collect()
    assert alive() is None
