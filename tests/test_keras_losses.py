"""kconf's loss classes against Keras 3: the value and the gradient of every case of
``tests/fixtures/losses/make_losses.py`` (edge probabilities 0 and 1, logits, smoothing, axes,
ignored classes), and float64 finite-difference checks of every loss."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kconf.engine import loss_classes
from tests.gradcheck import assert_close_grad, numeric_grad

HERE = Path(__file__).parent / "fixtures" / "losses"
META = json.loads((HERE / "losses.json").read_text())["cases"]
_FLAT = dict(np.load(HERE / "losses.npz"))


def _array(i: int, kind: str) -> np.ndarray:
    """One case's array of a kind (``y_true``, ``y_pred``, ``value``, ``grad``)."""
    start, shape = META[i][kind]
    array = _FLAT[kind][start:start + int(np.prod(shape, dtype=int))].reshape(shape)
    return array.astype(META[i]["y_true_dtype"]) if kind == "y_true" else array


DATA = {f"{kind}_{i}": _array(i, kind) for i in range(len(META))
        for kind in ("y_true", "y_pred", "value", "grad")}


def _case_id(i: int) -> str:
    case = META[i]
    args = ",".join(f"{k}={v}" for k, v in case["args"].items())
    return f"{i}-{case['class']}({args})"


@pytest.mark.parametrize("i", range(len(META)), ids=_case_id)
def test_value_and_gradient_equal_keras(i):
    case = META[i]
    loss = loss_classes.get({case["class"]: case["args"]})
    y_true, y_pred = DATA[f"y_true_{i}"], DATA[f"y_pred_{i}"]
    value, backward = loss(y_true, y_pred)
    grad = backward(1.0)
    assert value.dtype == np.float32 and grad.dtype == np.float32
    assert grad.shape == y_pred.shape
    np.testing.assert_allclose(value, DATA[f"value_{i}"], rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(grad, DATA[f"grad_{i}"], rtol=2e-5, atol=2e-6)


def _interior(i):
    """The case's inputs in float64, predictions moved off clipping edges and kinks (where a
    finite difference straddles two branches)."""
    y_true = DATA[f"y_true_{i}"]
    y_true = y_true.astype(np.float64) if y_true.dtype.kind == "f" else y_true
    y_pred = DATA[f"y_pred_{i}"].astype(np.float64)
    case = META[i]
    if not case["args"].get("from_logits") and case["class"] not in (
            "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError", "Huber",
            "LogCosh", "CosineSimilarity", "Hinge", "SquaredHinge", "CategoricalHinge"):
        y_pred = np.clip(y_pred, 0.05, 0.95)
    return y_true, y_pred


@pytest.mark.parametrize("i", range(len(META)), ids=_case_id)
def test_float64_gradient_matches_finite_differences(i):
    case = META[i]
    loss = loss_classes.get({case["class"]: case["args"]})
    y_true, y_pred = _interior(i)
    value, backward = loss(y_true, y_pred)
    assert value.dtype == np.float64
    numeric = numeric_grad(lambda: float(loss(y_true, y_pred)[0]), y_pred)
    assert_close_grad(backward(1.0), numeric, _case_id(i), rtol=1e-5)


def test_every_loss_class_has_a_keras_case():
    assert {c["class"] for c in META} == set(loss_classes.LOSS_CLASSES)


def test_function_names_build_the_class_at_its_defaults():
    y = DATA["y_true_24"]
    p = DATA["y_pred_24"]  # Huber at delta 1
    assert META[24]["class"] == "Huber" and not META[24]["args"]
    np.testing.assert_allclose(loss_classes.get("huber")(y, p)[0], DATA["value_24"], rtol=2e-6)
    assert loss_classes.get("mse") is loss_classes.get("mean_squared_error")


def test_samplewise_values_average_to_the_loss_and_weights_plug_in():
    case = 9  # BinaryCrossentropy on (5, 3)
    loss = loss_classes.get({META[case]["class"]: {}})
    y_true, y_pred = DATA[f"y_true_{case}"], DATA[f"y_pred_{case}"]
    values, backward = loss.samplewise(y_true, y_pred)
    assert values.shape == (5,)
    np.testing.assert_allclose(values.mean(), loss(y_true, y_pred)[0], rtol=1e-6)
    w = np.array([1, 0, 2, 0, 1], np.float32)  # Keras: sum(values * w) / values.size
    g = backward(w / values.size)
    assert np.all(g[w == 0] == 0) and np.any(g[w > 0] != 0)


def test_ignore_class_averages_over_the_valid_positions_only():
    loss = loss_classes.get({"SparseCategoricalCrossentropy": {"ignore_class": -1}})
    p = np.array([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5]], np.float32)
    value, backward = loss(np.array([0, -1, 1]), p)
    np.testing.assert_allclose(value, -(np.log(0.7) + np.log(0.5)) / 2, rtol=1e-6)
    assert np.all(backward(1.0)[1] == 0)
    none_valid, _ = loss(np.array([-1, -1, -1]), p)
    assert none_valid == 0
