"""What backward skips, and weights packed into one buffer.

The graph runner asks a node for its input gradient only where some weight (or a graph input
whose gradient was asked for) lies behind it; layers with ``input_grads_optional`` then skip
that product, and weightless nodes with nothing behind them are not run at all. Skipping must
never change a weight gradient. Model.build packs the trainable weights and their gradients
into two flat buffers; every holder of a weight (nested models, TimeDistributed, shared
layers) must then see the packed views.
"""
from __future__ import annotations

import numpy as np
import pytest

from kconf.engine import optimizers
from kconf.engine.layers import LSTM, Conv2D, Dense, Flatten, TimeDistributed
from kconf.engine.layers.input import InputLayer
from kconf.graph.execute import run_graph
from kconf.graph.ir import Graph, call_layer
from kconf.graph.model_layer import ModelLayer
from kconf.model import Model

RNG = np.random.default_rng(0)


def _inner_model() -> ModelLayer:
    inp = InputLayer(shape=(3,), name="inner_in")
    (t,) = call_layer(inp, [], ["inner_in"])
    (y,) = call_layer(Dense(2, activation="tanh", name="inner_dense"), [t], ["inner_y"])
    return ModelLayer(Graph([t], [y]), name="inner")


# (layer, input shape without the batch axis)
OPTIONAL = [
    (lambda: Dense(4, activation="relu"), (3,)),
    (lambda: Conv2D(2, 3, padding="same", activation="tanh"), (5, 5, 2)),
    (lambda: LSTM(3, return_sequences=True), (4, 2)),
    (lambda: TimeDistributed(Dense(2)), (4, 3)),
    (_inner_model, (3,)),
]


@pytest.mark.parametrize("make, shape", OPTIONAL)
def test_backward_without_input_gradient_adds_the_same_weight_gradients(make, shape):
    layer = make()
    assert layer.input_grads_optional
    layer.build((None, *shape), np.random.default_rng(1), dtype=np.float64)
    x = RNG.normal(size=(3, *shape))
    y, backward = layer.forward(x, training=True)
    dy = RNG.normal(size=y.shape)
    layer.zero_grads()
    dx = backward(dy)
    assert dx.shape == x.shape
    full = {k: g.copy() for k, g in layer.grads.items()}
    layer.zero_grads()
    assert backward(dy, need_dx=False) is None
    assert full.keys() == layer.grads.keys() and full
    for key, g in layer.grads.items():
        assert np.array_equal(g, full[key]), key


def _spy_backward(monkeypatch, layer, calls: list):
    """Record every backward call of ``layer`` (with its keyword arguments)."""
    original = layer.forward

    def forward(x, training=False, rng=None):
        y, backward = original(x, training=training, rng=rng)

        def spied(dy, **kwargs):
            calls.append(kwargs)
            return backward(dy, **kwargs)

        return y, spied

    monkeypatch.setattr(layer, "forward", forward)


def _model(*layers, shape) -> Model:
    inp = InputLayer(shape=shape, name="x")
    (t,) = call_layer(inp, [], ["x"])
    x = t
    for layer in layers:
        (x,) = call_layer(layer, [x], [layer.name])
    model = Model(Graph([t], [x]))
    model.build(np.random.default_rng(0), dtype=np.float64)
    return model


def test_backward_skips_what_no_weight_needs(monkeypatch):
    flatten, first, second = Flatten(name="flat"), Dense(3, name="d1"), Dense(2, name="d2")
    model = _model(flatten, first, second, shape=(2, 2))
    calls = {name: [] for name in ("flat", "d1", "d2")}
    for layer in (flatten, first, second):
        _spy_backward(monkeypatch, layer, calls[layer.name])
    x = RNG.normal(size=(5, 2, 2))
    (out,), backward = run_graph(model.graph, [x], training=True)
    assert backward([np.ones_like(out)]) == [None]
    # d2 passes a gradient back to d1's weights; d1 has nothing behind it but a Flatten
    assert calls == {"flat": [], "d1": [{"need_dx": False}], "d2": [{}]}
    first_grads = {k: g.copy() for k, g in first.grads.items()}

    # asked for the input's gradient: everything runs, the weight gradients are the same
    model._zero_grads()
    (dx,) = backward([np.ones_like(out)], need_input_grads=True)
    assert dx.shape == x.shape
    assert calls["flat"] == [{}] and calls["d1"][-1] == {}
    for key, g in first.grads.items():
        assert np.array_equal(g, first_grads[key])


def test_packed_weights_are_views_seen_by_every_holder_and_set_in_place():
    inner = _inner_model()
    shared = Dense(3, name="shared")
    td = TimeDistributed(Dense(3, name="per_step"), name="td")
    inp = InputLayer(shape=(2, 3), name="x")
    (t,) = call_layer(inp, [], ["x"])
    (a,) = call_layer(td, [t], ["a"])
    (b,) = call_layer(Flatten(name="flat"), [a], ["b"])
    (c,) = call_layer(Dense(3, name="squeeze"), [b], ["c"])
    (d,) = call_layer(shared, [c], ["d"])
    (e,) = call_layer(shared, [d], ["e"])  # the shared Dense, called twice
    (f,) = call_layer(inner, [e], ["f"])
    model = Model(Graph([t], [f]))
    model.build(np.random.default_rng(0))
    base = model._params[0].base
    assert base is not None and base.ndim == 1
    assert all(p.base is base for p in model._params)
    assert sum(p.size for p in model._params) == base.size == model.count_params()
    # the same arrays through every path that reads weights
    held = [w for layer in (td, shared, inner) for w in layer.weights.values()]
    assert all(any(w is p for p in model._params) for w in held)
    assert all(g.base is model._dense_grads[0] for layer in (td, shared, inner)
               for g in layer.grads.values())
    # set_weights writes into the views, so the optimizer still updates the layers' weights
    model.set_weights([np.full(w.shape, 0.5, np.float32) for w in model.get_weights()])
    assert np.all(base == 0.5)
    model.compile(optimizers.SGD(0.1), "mse")
    x = RNG.normal(size=(4, 2, 3)).astype(np.float32)
    model.train_on_batch(x, RNG.normal(size=(4, 2)).astype(np.float32))
    assert not np.all(inner.weights["inner_dense/kernel"] == 0.5)
    assert np.shares_memory(inner.weights["inner_dense/kernel"], base)


def _two_calls(shared, second_on_first: bool):
    """x, y -> shared(x), shared(y) (or shared(shared(x))) -> concatenated by a Dense each."""
    from kconf.engine.layers import Concatenate

    a_in, b_in = InputLayer(shape=(3,), name="a"), InputLayer(shape=(3,), name="b")
    (a,) = call_layer(a_in, [], ["a"])
    (b,) = call_layer(b_in, [], ["b"])
    (ea,) = call_layer(shared, [a], ["ea"])
    (eb,) = call_layer(shared, [ea if second_on_first else b], ["eb"])
    (m,) = call_layer(Concatenate(name="cat"), [ea, eb], ["m"])
    (out,) = call_layer(Dense(2, name="head"), [m], ["out"])
    model = Model(Graph([a, b], [out]))
    model.build(np.random.default_rng(0), dtype=np.float64)
    return model


def test_a_shared_layer_called_on_ready_tensors_runs_once_on_their_stacked_batches():
    from kconf.graph.execute import plan_of

    shared = Dense(3, activation="tanh", name="shared")
    model = _two_calls(shared, second_on_first=False)
    assert list(plan_of(model.graph).stacked.values()) == [[(0, 2), (1, 3)]]
    calls = []
    original = shared.forward
    shared.forward = lambda x, **kw: (calls.append(len(x)), original(x, **kw))[1]
    xa, xb = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    (out,), backward = run_graph(model.graph, [xa, xb], training=True)
    assert calls == [8]  # one call on both batches
    # the same as calling it twice: outputs, and the weight gradients (a sum over both calls)
    ya, _ = original(xa)
    yb, _ = original(xb)
    head = model.get_layer("head")
    np.testing.assert_allclose(out, np.concatenate([ya, yb], axis=1) @ head.weights["kernel"]
                               + head.weights["bias"], rtol=1e-12)
    model._zero_grads()
    dxa, dxb = backward([np.ones_like(out)], need_input_grads=True)
    stacked = {k: g.copy() for k, g in shared.grads.items()}
    model._zero_grads()
    d_ea = np.ones_like(out) @ head.weights["kernel"].T
    _, back_a = original(xa, training=True)
    _, back_b = original(xb, training=True)
    np.testing.assert_allclose(dxa, back_a(d_ea[:, :3]), rtol=1e-12)
    np.testing.assert_allclose(dxb, back_b(d_ea[:, 3:]), rtol=1e-12)
    for key, g in shared.grads.items():
        np.testing.assert_allclose(stacked[key], g, rtol=1e-12)


def test_a_shared_layer_fed_its_own_output_is_not_stacked():
    from kconf.graph.execute import plan_of

    model = _two_calls(Dense(3, name="shared"), second_on_first=True)
    assert plan_of(model.graph).stacked == {}


def _residual_model() -> Model:
    """A graph whose ReLUs read: a graph input (relu_in), a BatchNormalization's output read
    by nothing else (relu_bn), an add's (relu_add), a BatchNormalization's read by an add
    too (relu_shared), a Dense's (relu_dense), and a BatchNormalization's that is a graph
    output (relu_last)."""
    from kconf.engine.layers import Add, BatchNormalization, ReLU

    inp = InputLayer(shape=(4, 4, 2), name="x")
    (x,) = call_layer(inp, [], ["x"])

    def call(layer, *ins):
        return call_layer(layer, list(ins), [layer.name])[0]

    r_in = call(ReLU(name="relu_in"), x)
    n = call(BatchNormalization(name="bn"), call(Conv2D(2, 3, padding="same", name="c"), x))
    r_bn = call(ReLU(name="relu_bn"), n)
    r_add = call(ReLU(name="relu_add"), call(Add(name="add"), r_bn, r_in))
    n2 = call(BatchNormalization(name="bn2"), r_add)
    r_shared = call(ReLU(name="relu_shared"), n2)
    r_dense = call(ReLU(name="relu_dense"), call(Dense(2, name="d"),
                                                call(Add(name="add2"), n2, r_shared)))
    n3 = call(BatchNormalization(name="bn3"), r_dense)
    r_last = call(ReLU(name="relu_last"), n3)
    model = Model(Graph([x], [r_last, n3]))
    model.build(np.random.default_rng(0), dtype=np.float64)
    return model


def test_a_relu_writes_over_a_fresh_output_that_nothing_else_reads(monkeypatch):
    """Only where the input is a BatchNormalization's or an add's output read by nothing
    else (and not a graph output); the outputs and every gradient are those of a run where
    no layer overwrites, bit for bit."""
    from kconf.engine.layers import ReLU
    from kconf.graph.execute import plan_of

    model = _residual_model()
    plan = plan_of(model.graph)
    overwriting = {layer.name for (layer, _, _), options in zip(plan.steps, plan.options)
                   if options.get("overwrite")}
    assert overwriting == {"relu_bn", "relu_add"}
    x = RNG.normal(size=(3, 4, 4, 2))
    douts = [RNG.normal(size=(3, 4, 4, 2)) for _ in range(2)]
    results = []
    for allowed in (True, False):
        monkeypatch.setattr(ReLU, "overwrites_input", allowed)
        model.graph.__dict__.pop("_plan", None)
        model._zero_grads()
        outs, backward = run_graph(model.graph, [x], training=True)
        (dx,) = backward(douts, need_input_grads=True)
        results.append([*outs, dx, *(g.copy() for layer in model.layers
                                      for g in layer.grads.values())])
    for with_overwrite, without in zip(*results):
        np.testing.assert_array_equal(with_overwrite, without)
