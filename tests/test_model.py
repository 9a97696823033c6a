"""The graph runner and Model methods, independent of YAML: learning, weights, shared tensors."""
from __future__ import annotations

import numpy as np
import pytest

from kconf.engine import optimizers
from kconf.engine.layers.dense import Dense
from kconf.engine.layers.dropout import Dropout
from kconf.engine.layers.input import InputLayer
from kconf.errors import TrainingError
from kconf.graph.ir import Graph, call_layer
from kconf.model import Model
from tests.gradcheck import assert_close_grad, numeric_grad


def chain(*layers, shape=(2,), sequential=True, dtype=np.float32, seed=0) -> Model:
    """A Sequential-style model: an InputLayer node, then one node per layer."""
    inp = InputLayer(shape=shape, name="input_layer")
    (t,) = call_layer(inp, [], ["input_layer"])
    x = t
    for layer in layers:
        (x,) = call_layer(layer, [x], [layer.name])
    model = Model(Graph([t], [x]), sequential=sequential)
    model.build(np.random.default_rng(seed), dtype=dtype)
    return model


def blobs(n=400, seed=0):
    """Two Gaussian blobs in 2-D, labels 0/1 of shape (n, 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(2, size=(n, 1))
    x = rng.normal(size=(n, 2)) * 0.7 + np.where(y == 1, 1.5, -1.5)
    return x.astype(np.float32), y


def test_learns_two_gaussian_blobs():
    model = chain(Dense(8, activation="relu", name="h"), Dense(1, activation="sigmoid", name="o"))
    model.compile(optimizers.Adam(learning_rate=0.05), "binary_crossentropy", ["accuracy"])
    x, y = blobs()
    model.train_rng = np.random.default_rng(1)
    history = model.fit(x, y, epochs=15, batch_size=32)
    x_test, y_test = blobs(200, seed=5)
    loss, acc = model.evaluate(x_test, y_test)
    assert acc >= 0.95
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert len(history.history["accuracy"]) == 15


def test_learns_a_linear_rule_with_softmax():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 3)).astype(np.float32)
    labels = (x @ np.array([1.0, -2.0, 0.5]) > 0).astype(int)
    y = np.eye(2, dtype=np.float32)[labels]
    model = chain(Dense(2, activation="softmax", name="o"), shape=(3,))
    model.compile(optimizers.SGD(learning_rate=0.5, momentum=0.9), "categorical_crossentropy",
                  ["accuracy"])
    model.fit(x[:500], y[:500], epochs=20, batch_size=50)
    assert model.evaluate(x[500:], y[500:], return_dict=True)["accuracy"] >= 0.95


def test_weights_keras_order_and_set_weights_round_trip():
    model = chain(Dense(3, name="a"), Dense(1, name="b"))
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(2, 3), (3,), (3, 1), (1,)]
    assert list(model.named_weights()) == ["a/kernel", "a/bias", "b/kernel", "b/bias"]
    new = [np.full(s, i, np.float32) for i, s in enumerate(shapes)]
    model.set_weights(new)
    for got, want in zip(model.get_weights(), new):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="expects 4 weight arrays"):
        model.set_weights(new[:3])
    assert [l.name for l in model.layers] == ["a", "b"]  # Sequential hides the InputLayer
    assert model.get_layer("b").units == 1


def test_model_gradient_matches_finite_differences_float64():
    """The runner's backward pass (graph order, accumulation) is the true gradient."""
    model = chain(Dense(4, activation="tanh", name="a"), Dense(3, activation="softmax", name="b"),
                  dtype=np.float64)
    model.compile(optimizers.SGD(), "categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2))
    y = np.eye(3)[rng.integers(3, size=5)]

    def loss():
        (out,), _ = model._forward([x], training=False)
        return float(model._losses([y], [out])[0])

    (out,), backward = model._forward([x], training=True)
    _, _, douts = model._losses([y], [out])
    backward(douts)
    for layer in model.layers:
        for key, w in layer.weights.items():
            assert_close_grad(layer.grads[key], numeric_grad(loss, w), f"{layer.name}/{key}")


def test_tensor_used_twice_gets_the_sum_of_gradients():
    """A layer called on two tensors (shared) accumulates both calls' gradients."""
    inp = InputLayer(shape=(2,), name="in")
    (t,) = call_layer(inp, [], ["in"])
    shared = Dense(2, name="shared")
    (a,) = call_layer(shared, [t], ["a"])
    (b,) = call_layer(shared, [a], ["b"])
    model = Model(Graph([t], [b]))
    model.build(np.random.default_rng(0), dtype=np.float64)
    assert [model.graph.node_index(n) for n in model.graph.nodes_of(shared)] == [0, 1]
    model.compile(optimizers.SGD(), "mse")
    x = np.random.default_rng(1).normal(size=(3, 2))
    y = np.zeros((3, 2))

    def loss():
        (out,), _ = model._forward([x], training=False)
        return float(model._losses([y], [out])[0])

    (out,), backward = model._forward([x], training=True)
    backward(model._losses([y], [out])[2])
    assert_close_grad(shared.grads["kernel"], numeric_grad(loss, shared.weights["kernel"]),
                      "shared/kernel")
    assert len(model.get_weights()) == 2  # a shared layer's weights appear once


def test_validation_split_takes_the_end_before_shuffling():
    model = chain(Dense(1, name="o"))
    model.compile(optimizers.SGD(learning_rate=0.0), "mse", ["mae"])
    x = np.zeros((10, 2), np.float32)
    y = np.arange(10, dtype=np.float32)[:, None]
    history = model.fit(x, y, epochs=1, validation_split=0.2)
    # lr 0 and zero inputs: predictions are the zero bias, so val_mae is the mean of 8 and 9.
    assert history.history["val_mae"] == [pytest.approx(8.5)]
    assert history.history["mae"] == [pytest.approx(3.5)]


def test_nan_loss_stops_training_with_the_epoch_and_batch():
    model = chain(Dense(1, name="o"))
    model.compile(optimizers.SGD(learning_rate=1e30), "mse")
    x = np.ones((8, 2), np.float32) * 1e10
    with pytest.raises(TrainingError, match=r"epoch \d+, batch \d+: the loss became"):
        model.fit(x, np.ones((8, 1), np.float32), epochs=5, batch_size=4)


def test_training_is_reproducible_and_dropout_only_in_training():
    def run():
        model = chain(Dense(4, name="a"), Dropout(0.5, name="d"), Dense(1, name="b"))
        model.compile(optimizers.SGD(learning_rate=0.1), "mse")
        model.train_rng = np.random.default_rng(7)
        x, y = blobs(64)
        model.fit(x, y.astype(np.float32), epochs=2, batch_size=16)
        return model
    first, second = run(), run()
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    x, _ = blobs(16)
    np.testing.assert_array_equal(first.predict(x), first.predict(x))


def test_train_on_batch_and_predict_batches():
    model = chain(Dense(1, name="o"))
    model.compile(optimizers.SGD(learning_rate=0.1), "mse", ["mae"])
    x, y = blobs(10)
    loss, mae = model.train_on_batch(x, y)
    assert loss > 0 and mae > 0
    full = model.predict(x, batch_size=3)
    assert full.shape == (10, 1) and full.dtype == np.float32
    np.testing.assert_allclose(full, model.predict(x, batch_size=10), rtol=1e-6)


@pytest.mark.parametrize("gather_bytes", [1, 200, 1 << 20])
def test_epoch_batches_are_the_shuffled_rows_in_order_whatever_the_gather_chunk(
        monkeypatch, gather_bytes):
    from kconf.train import loop
    monkeypatch.setattr(loop, "_GATHER_BYTES", gather_bytes)
    x = np.arange(23 * 3, dtype=np.float32).reshape(23, 3)
    y = np.arange(23)
    order = np.random.default_rng(0).permutation(23)
    batches = list(loop._batches([x, y], order, 5))
    assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x[order])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y[order])
    unshuffled = list(loop._batches([x, y], None, 5))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in unshuffled]), x)


def test_the_keras_methods_hand_every_argument_to_the_loop():
    """Model.fit/evaluate/predict/train_on_batch are kconf.train.loop's functions: with the same
    seeds, arguments that change the outcome (none at their defaults) give identical results."""
    from kconf.train import loop

    def model():
        m = chain(Dense(4, activation="relu", name="h"), Dropout(0.5, name="d"),
                  Dense(1, activation="sigmoid", name="o"))
        m.compile(optimizers.SGD(learning_rate=0.1), "binary_crossentropy", ["accuracy"])
        m.train_rng = np.random.default_rng(7)
        return m

    x, y = blobs(40)
    by_method, by_loop = model(), model()
    fit_args = dict(batch_size=6, epochs=4, validation_split=0.25, shuffle=False,
                    initial_epoch=2)
    h1 = by_method.fit(x, y, **fit_args)
    h2 = loop.fit(by_loop, x, y, **fit_args)
    assert list(h1.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert len(h1.history["loss"]) == 2  # epochs 2 and 3
    assert h1.history == h2.history
    for a, b in zip(by_method.get_weights(), by_loop.get_weights()):
        np.testing.assert_array_equal(a, b)
    # validation_split kept the last 10 samples out: training on them changes the weights
    other = model()
    other.fit(x, y, **{**fit_args, "validation_split": 0.0})
    assert not np.array_equal(other.get_weights()[0], by_method.get_weights()[0])
    assert by_method.evaluate(x, y, batch_size=7, return_dict=True) == \
        loop.evaluate(by_loop, x, y, batch_size=7, return_dict=True)
    np.testing.assert_array_equal(by_method.predict(x, batch_size=7),
                                  loop.predict(by_loop, x, batch_size=7))
    assert by_method.train_on_batch(x[:8], y[:8], return_dict=True) == \
        loop.train_on_batch(by_loop, x[:8], y[:8], return_dict=True)
