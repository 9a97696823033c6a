"""The Python API mirrors Keras: load_config, build_model, and the Model's methods."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kconf
from kconf.data.sources import load_splits

ROOT = Path(__file__).resolve().parents[1]

DICT = {
    "name": "api",
    "seed": 3,
    "model": {"sequential": [
        {"Dense": {"units": 16, "activation": "tanh", "input_shape": [None, 4]}},
        {"Dense": {"units": 2, "activation": "softmax"}},
    ]},
    "compile": {"optimizer": {"Adam": {"lr": 0.01}}, "loss": "sparse_categorical_crossentropy",
                "metrics": ["accuracy"]},
    "data": {"train": {"random": {"samples": 8, "x": [5, 4], "classes": 2}}},
}


def test_build_model_from_a_path_is_seeded_and_keras_shaped():
    a = kconf.build_model(ROOT / "configs" / "mlp_softmax.yaml")
    b = kconf.build_model(str(ROOT / "configs" / "mlp_softmax.yaml"))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert [w.shape for w in a.get_weights()] == [(20, 64), (64,), (64, 64), (64,), (64, 10), (10,)]
    assert all(w.dtype == np.float32 for w in a.get_weights())
    assert [l.name for l in a.layers] == ["dense", "dropout", "dense_1", "dropout_1", "dense_2"]
    assert a.get_layer("dense_2").units == 10
    assert a.optimizer.get_config()["nesterov"] is True


def test_input_shape_with_a_free_dimension_takes_any_length():
    """`input_shape: [null, 4]` — Dense works per step on sequences of any length."""
    model = kconf.build_model(DICT)
    assert model.graph.outputs[0].shape == (None, None, 2)
    for steps in (3, 7):
        out = model.predict(np.zeros((2, steps, 4), np.float32))
        assert out.shape == (2, steps, 2)
    cfg = kconf.load_config(DICT)
    train = load_splits(cfg)["train"]
    history = model.fit(train.x, train.y[0][:, :, None].repeat(5, axis=1), epochs=2)
    assert set(history.history) == {"loss", "accuracy"}


def test_batch_size_fixes_the_batch_dimension():
    cfg = dict(DICT, model={"sequential": [
        {"Dense": {"units": 3, "input_dim": 4, "batch_size": 8}}]})
    model = kconf.model_from_config(cfg)
    assert model.graph.inputs[0].shape == (8, 4)
    assert model.graph.outputs[0].shape == (8, 3)


def test_summary_prints_the_table(capsys):
    model = kconf.build_model(ROOT / "configs" / "mlp_binary.yaml")
    model.summary()
    out = capsys.readouterr().out
    assert "dense_2 (Dense)" in out and "(None, 1)" in out and "Total params: 5,569" in out
    lines = []
    model.summary(print_fn=lines.append)
    assert any("Total params: 5,569" in line for line in lines)


def test_evaluate_and_train_on_batch_return_like_keras():
    model = kconf.build_model(ROOT / "configs" / "custom_metric.yaml")
    x = np.random.default_rng(0).random((10, 100), dtype=np.float32)
    y = np.ones((10, 1))
    loss, acc, mean_pred = model.evaluate(x, y)
    np.testing.assert_allclose(mean_pred, model.predict(x).mean(), rtol=1e-5)
    logs = model.evaluate(x, y, return_dict=True)
    assert list(logs) == ["loss", "accuracy", "mean_pred"]
    assert len(model.train_on_batch(x, y)) == 3


def test_set_weights_then_predict_uses_them():
    model = kconf.build_model(ROOT / "configs" / "regression_mse.yaml")
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    np.testing.assert_array_equal(model.predict(np.ones((3, 20), np.float32)), 0.0)


def test_config_errors_raise_not_exit():
    bad = dict(DICT, fit={"epochs": -1})
    with pytest.raises(kconf.ConfigError) as info:
        kconf.build_model(bad)
    assert "fit.epochs" in str(info.value)
