"""The normalization layers in configs and models: what their arguments refuse, shapes that
do not fit, a frozen BatchNormalization, and the training flag (their numbers against Keras
are in test_keras_normalization.py, their gradients in the standard layer test)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf.api import build_model
from kconf.cli import app
from kconf.config import load_config
from kconf.engine.layers import BatchNormalization, LayerNormalization
from kconf.engine.layers.input import InputLayer
from kconf.errors import ConfigError
from kconf.graph.execute import plan_of, run_graph
from kconf.graph.ir import Graph, call_layer

TAIL = """compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 10, x: [4], y: [6]}}
"""


def errors(tmp_path: Path, *layers: str) -> list[str]:
    """The messages of a config whose model is Dense(6) on 4 features then ``layers``."""
    items = "".join(f"    - {layer}\n" for layer in ("Dense: {units: 6, input_dim: 4}",
                                                       *layers))
    path = tmp_path / "c.yaml"
    path.write_text(f"model:\n  sequential:\n{items}{TAIL}")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [p.format().split(": ", 1)[1] for p in info.value.problems]


def test_bad_arguments_are_refused_with_their_place_and_what_is_valid(tmp_path):
    assert errors(tmp_path, "BatchNormalization: {momentum: 1.5, epsilon: 0}",
                  "LayerNormalization: {axis: [1, -1, 1]}",
                  "GroupNormalization: {groups: 0}", "UnitNormalization: {axis: 0}") == [
        "model.sequential[1].BatchNormalization.momentum: must be in [0, 1], got 1.5",
        "model.sequential[1].BatchNormalization.epsilon: must be a positive number, got 0",
        "model.sequential[2].LayerNormalization.axis: expected an axis (a nonzero integer, "
        "negative counts from the end) or a list of distinct axes, got [1, -1, 1]",
        "model.sequential[3].GroupNormalization.groups: groups must be a positive integer, "
        "or -1 for one group per channel, got 0",
        "model.sequential[4].UnitNormalization.axis: axis 0 is the batch axis; count the "
        "axes of one sample from 1, or from the end with -1",
    ]
    assert errors(tmp_path, "BatchNormalization: {renorm: true}")[0].startswith(
        "model.sequential[1].BatchNormalization: unknown key 'renorm'; valid keys: axis, ")


def validate(tmp_path: Path, layer: str) -> list[str]:
    """``kconf validate`` of Dense(6) on 4 features then ``layer``: its one error (exit 2),
    without the place (the layer's arguments, line 4)."""
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  sequential:\n    - Dense: {units: 6, input_dim: 4}\n"
                    f"    - {layer}\n{TAIL}")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith(f"{path}:4:{7 + layer.index('{')}: ")  # at the arguments
    return lines[0].split(": ", 1)[1]


def test_shapes_that_do_not_fit_are_config_errors(tmp_path):
    assert validate(tmp_path, "GroupNormalization: {groups: 4}") == (
        "model.sequential[1].GroupNormalization: GroupNormalization: groups (4) must divide "
        "the 6 channels of axis 1, got input shape (None, 6)")
    assert validate(tmp_path, "LayerNormalization: {axis: 2}") == (
        "model.sequential[1].LayerNormalization: LayerNormalization: axis 2 is not an axis "
        "of one sample of the input (None, 6)")
    # axis 1 and -1 are the same axis of a rank-2 input
    assert validate(tmp_path, "UnitNormalization: {axis: [1, -1]}") == (
        "model.sequential[1].UnitNormalization: UnitNormalization: axis [1, -1] names an "
        "axis twice for the input (None, 6)")


CONFIG = {
    "name": "bn",
    "seed": 3,
    "model": {"sequential": [
        {"Dense": {"units": 5, "input_dim": 4, "name": "dense"}},
        {"BatchNormalization": {"name": "bn", "momentum": 0.5}},
        {"Dense": {"units": 2, "activation": "softmax", "name": "out"}},
    ]},
    "compile": {"optimizer": {"SGD": {"learning_rate": 0.1}},
                "loss": "categorical_crossentropy"},
    "data": {"train": {"random": {"samples": 16, "x": [4], "classes": 2, "one_hot": True}}},
    "fit": {"epochs": 2, "batch_size": 8},
}


def _xy(n: int = 16):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32) * 3 + 2
    return x, np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)]


def test_training_moves_the_moving_statistics_and_inference_uses_them():
    model = build_model(CONFIG)
    bn = model.get_layer("bn")
    x, y = _xy()
    model.predict(x)
    model.evaluate(x, y)
    assert np.all(bn.weights["moving_mean"] == 0) and np.all(bn.weights["moving_variance"] == 1)
    dense = model.get_layer("dense")
    h = x[:8] @ dense.weights["kernel"] + dense.weights["bias"]
    model.train_on_batch(x[:8], y[:8])
    np.testing.assert_allclose(bn.weights["moving_mean"], 0.5 * h.mean(axis=0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(bn.weights["moving_variance"], 0.5 + 0.5 * h.var(axis=0),
                               rtol=1e-5)
    assert model.param_counts() == (4 * 5 + 5 + 2 * 5 + 5 * 2 + 2, 2 * 5)


def test_a_frozen_batch_normalization_runs_in_inference_mode_while_the_model_trains():
    config = copy.deepcopy(CONFIG)
    config["model"]["sequential"][1]["BatchNormalization"]["trainable"] = False
    model = build_model(config)
    bn = model.get_layer("bn")
    bn.weights["moving_mean"][...] = [0.5, -1, 2, 0, 1]
    before = {k: v.copy() for k, v in bn.weights.items()}
    assert model.param_counts() == (4 * 5 + 5 + 5 * 2 + 2, 4 * 5)  # gamma, beta frozen too
    x, y = _xy()
    out = model.get_layer("out")
    kernel = out.weights["kernel"].copy()
    model.fit(x, y, batch_size=8, epochs=2)
    for name, value in bn.weights.items():  # neither trained nor moved
        assert np.array_equal(value, before[name]), name
    assert not np.array_equal(out.weights["kernel"], kernel)  # the others train

    layer = BatchNormalization(trainable=False)
    layer.build((None, 3), np.random.default_rng(0))
    layer.weights["moving_variance"][...] = [4.0, 1.0, 0.25]
    z = np.arange(6, dtype=np.float32).reshape(2, 3)
    y_train, _ = layer.forward(z, training=True)
    y_infer, _ = layer.forward(z, training=False)
    assert np.array_equal(y_train, y_infer)
    np.testing.assert_allclose(y_infer, z / np.sqrt([4.001, 1.001, 0.251]), rtol=1e-6)


def test_layer_normalization_is_the_same_in_training_and_per_sample():
    layer = LayerNormalization(axis=[1, 2])
    layer.build((None, 2, 3), np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(4, 2, 3)).astype(np.float32)
    y, _ = layer.forward(x, training=True)
    assert np.array_equal(y, layer.forward(x, training=False)[0])
    alone, _ = layer.forward(x[2:3])  # no batch statistics: a sample alone gives the same
    np.testing.assert_allclose(alone, y[2:3], rtol=1e-6)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(y.var(axis=(1, 2)) * (1 + 1e-3 / x.var(axis=(1, 2))), 1,
                               rtol=1e-4)


def test_a_shared_batch_normalization_updates_once_per_call_in_graph_order():
    (a,) = call_layer(InputLayer(shape=(3,), name="a"), [], ["a"])
    (b,) = call_layer(InputLayer(shape=(3,), name="b"), [], ["b"])
    bn = BatchNormalization(momentum=0.5, name="shared_bn")
    (ya,) = call_layer(bn, [a], ["ya"])
    (yb,) = call_layer(bn, [b], ["yb"])
    graph = Graph([a, b], [ya, yb])
    bn.build((None, 3), np.random.default_rng(0))
    assert plan_of(graph).stacked == {}  # two calls, two updates: never one stacked batch
    rng = np.random.default_rng(2)
    xa = rng.normal(size=(4, 3)).astype(np.float32)
    xb = rng.normal(size=(6, 3)).astype(np.float32) + 2
    (out_a, out_b), _ = run_graph(graph, [xa, xb], training=True)
    np.testing.assert_allclose(out_a, (xa - xa.mean(0)) / np.sqrt(xa.var(0) + 1e-3),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out_b, (xb - xb.mean(0)) / np.sqrt(xb.var(0) + 1e-3),
                               rtol=1e-5, atol=1e-6)
    expected = 0.5 * (0.5 * xa.mean(0)) + 0.5 * xb.mean(0)  # a's update, then b's
    np.testing.assert_allclose(bn.weights["moving_mean"], expected, rtol=1e-6)


def test_layer_normalization_rows_in_blocks_on_workers_give_one_blocks_bits():
    """LayerNormalization over the last axis: 7 blocks of rows on 2 workers, the same bits
    as the whole on one (forward, input gradient, gamma and beta gradients)."""
    from kconf.engine.ops import Ops, use_ops

    rng = np.random.default_rng(0)
    x = rng.standard_normal((28, 500, 32)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gamma, beta = rng.standard_normal(32), rng.standard_normal(32)
    results = []
    for workers in (1, 2):
        layer = LayerNormalization(epsilon=1e-6)
        layer.build((None, 500, 32), np.random.default_rng(1))
        layer.weights["gamma"][...] = gamma
        layer.weights["beta"][...] = beta
        with use_ops(Ops(workers=workers)) as ops, ops.step():
            y, backward = layer.forward(x, training=True)
            dx = backward(dy)
        results.append([y, dx, layer.grads["gamma"].copy(), layer.grads["beta"].copy()])
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
