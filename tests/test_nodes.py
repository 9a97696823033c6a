"""Keras's node concept: one node per call; layer.input/output defined only for one node."""
from __future__ import annotations

import numpy as np
import pytest

from kconf.engine import optimizers
from kconf.engine.layers.conv2d import Conv2D
from kconf.engine.layers.dense import Dense
from kconf.engine.layers.input import InputLayer
from kconf.graph.ir import Graph, call_layer
from kconf.graph.model_layer import ModelLayer
from kconf.model import Model
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
