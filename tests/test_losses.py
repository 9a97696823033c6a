"""Losses: values against plain formulas and Keras's documented numbers, gradients against
finite differences, rank alignment, dtypes, aliases."""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from kconf.engine import losses
from kconf.errors import ShapeError
from tests.gradcheck import assert_close_grad, numeric_grad

F32_EPS = np.float32(1e-7)
F32_ONE_MINUS_EPS = np.float32(1) - np.float32(1e-7)


# --- plain reference formulas (loops over scalars, no vectorization) ----------------------------

def ref_cce(y_true, y_pred, eps=1e-7, hi=1 - 1e-7):
    """Mean over rows of −Σ y·log(clip(p / Σp))."""
    out = []
    for t_row, p_row in zip(y_true, y_pred):
        total = sum(p_row)
        out.append(-sum(t * math.log(min(max(p / total, eps), hi)) for t, p in zip(t_row, p_row)))
    return out


def ref_bce(y_true, y_pred, eps=1e-7, hi=1 - 1e-7):
    """Per-row mean of −(y log p + (1 − y) log(1 − p)) with p clipped."""
    out = []
    for t_row, p_row in zip(y_true, y_pred):
        terms = []
        for t, p in zip(t_row, p_row):
            p = min(max(p, eps), hi)
            terms.append(-(t * math.log(p) + (1 - t) * math.log(1 - p)))
        out.append(sum(terms) / len(terms))
    return out


def ref_mse(y_true, y_pred):
    return [sum((p - t) ** 2 for t, p in zip(tr, pr)) / len(pr) for tr, pr in zip(y_true, y_pred)]


def ref_mae(y_true, y_pred):
    return [sum(abs(p - t) for t, p in zip(tr, pr)) / len(pr) for tr, pr in zip(y_true, y_pred)]


# --- values ----------------------------------------------------------------------------------

def test_keras_docs_binary_crossentropy():
    value, _ = losses.binary_crossentropy(np.array([[0.0, 1.0]]), np.array([[0.6, 0.4]], np.float32))
    assert value == pytest.approx(0.9162907, abs=1e-6)
    assert value == pytest.approx(-math.log(0.4), abs=1e-6)


def test_keras_docs_categorical_crossentropy():
    y_true = np.array([[0, 1, 0], [0, 0, 1]], np.float32)
    y_pred = np.array([[0.05, 0.95, 0], [0.1, 0.8, 0.1]], np.float32)
    value, _ = losses.categorical_crossentropy(y_true, y_pred)
    assert value == pytest.approx(1.1769392, abs=1e-6)
    np.testing.assert_allclose(
        losses.per_sample("categorical_crossentropy", y_true, y_pred), [0.0513, 2.3026], atol=1e-4
    )


def test_cce_normalises_rows_and_clips():
    y_true = [[0, 1, 0], [1, 0, 0], [0, 0, 1]]
    # row 0 sums to 2 (normalised), row 1 has a true class with probability 0 (clipped to ε),
    # row 2 has the true class at probability 1 (clipped to 1 − ε).
    y_pred = [[0.2, 1.2, 0.6], [0.0, 0.7, 0.3], [0.0, 0.0, 1.0]]
    value, _ = losses.categorical_crossentropy(np.array(y_true, float), np.array(y_pred))
    expected = ref_cce(y_true, y_pred)
    assert expected[1] == pytest.approx(-math.log(1e-7))
    assert value == pytest.approx(sum(expected) / 3, rel=1e-12)


def test_cce_float32_clip_bounds():
    y_true = np.array([[0, 0, 1], [1, 0, 0]], np.float32)
    y_pred = np.array([[0, 0, 1], [0, 0, 1]], np.float32)
    value, backward = losses.categorical_crossentropy(y_true, y_pred)
    per = losses.per_sample("categorical_crossentropy", y_true, y_pred)
    assert value.dtype == np.float32 and per.dtype == np.float32
    np.testing.assert_allclose(per, [-np.log(F32_ONE_MINUS_EPS), -np.log(F32_EPS)], rtol=1e-6)
    assert F32_ONE_MINUS_EPS == np.float32(0.99999988)
    grad = backward()
    assert grad.dtype == np.float32
    # Every entry is clipped (0 below ε, 1 above 1 − ε): tf.clip_by_value passes no gradient.
    np.testing.assert_array_equal(grad, 0)


def test_sparse_cce_matches_one_hot_cce():
    y_pred = np.array([[0.2, 0.5, 0.3], [0.0, 0.1, 0.9], [0.5, 0.5, 1.0]])
    labels = np.array([1, 0, 2])
    one_hot = np.eye(3)[labels]
    expected = ref_cce(one_hot.tolist(), y_pred.tolist())
    for y_true in (labels, labels[:, None], labels.astype(float)):
        value, _ = losses.sparse_categorical_crossentropy(y_true, y_pred)
        assert value == pytest.approx(sum(expected) / 3, rel=1e-12)
    np.testing.assert_allclose(
        losses.per_sample("sparse_categorical_crossentropy", labels, y_pred), expected, rtol=1e-12
    )


def test_sparse_cce_sequences():
    rng = np.random.default_rng(0)
    y_pred = rng.dirichlet(np.ones(4), size=(2, 3))  # (N=2, T=3, C=4)
    labels = rng.integers(0, 4, size=(2, 3))
    flat = ref_cce(np.eye(4)[labels.ravel()].tolist(), y_pred.reshape(-1, 4).tolist())
    for y_true in (labels, labels[..., None]):
        value, backward = losses.sparse_categorical_crossentropy(y_true, y_pred)
        assert value == pytest.approx(np.mean(flat), rel=1e-12)
        assert backward().shape == y_pred.shape
    per = losses.per_sample("sparse_categorical_crossentropy", labels, y_pred)
    np.testing.assert_allclose(per, np.reshape(flat, (2, 3)).mean(axis=1), rtol=1e-12)


def test_sparse_cce_rejects_bad_labels():
    y_pred = np.full((2, 3), 1 / 3)
    with pytest.raises(ShapeError):
        losses.sparse_categorical_crossentropy(np.array([0, 3]), y_pred)
    with pytest.raises(ShapeError):
        losses.sparse_categorical_crossentropy(np.array([[0, 1], [1, 2]]), y_pred)


def test_bce_clipping_at_zero_and_one():
    y_true = [[1, 0, 1, 0], [0.3, 1, 0, 1]]
    y_pred = [[1.0, 1.0, 0.0, 0.0], [0.25, 0.5, 0.9, 0.999]]
    value, backward = losses.binary_crossentropy(np.array(y_true, float), np.array(y_pred))
    assert value == pytest.approx(np.mean(ref_bce(y_true, y_pred)), rel=1e-12)
    grad = backward()
    np.testing.assert_array_equal(grad[0], 0)  # all clipped


def test_bce_float32_matches_float32_clip():
    y_true = np.array([[1, 0], [0, 1]], np.float32)
    y_pred = np.array([[1, 1], [0, 0]], np.float32)
    value, _ = losses.binary_crossentropy(y_true, y_pred)
    assert value.dtype == np.float32
    hi, lo = float(F32_ONE_MINUS_EPS), float(F32_EPS)
    expected = np.mean([-math.log(hi), -math.log(1 - hi), -math.log(1 - lo), -math.log(lo)])
    assert value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name, ref", [("mean_squared_error", ref_mse),
                                       ("mean_absolute_error", ref_mae)])
def test_regression_losses(name, ref):
    y_true = [[1.0, -2.0, 0.5], [0.0, 0.0, 3.0]]
    y_pred = [[0.5, -1.0, 0.5], [2.0, -1.0, 1.0]]
    value, _ = losses.get(name)(np.array(y_true), np.array(y_pred))
    expected = ref(y_true, y_pred)
    assert value == pytest.approx(np.mean(expected), rel=1e-12)
    np.testing.assert_allclose(losses.per_sample(name, y_true, np.array(y_pred)), expected)


# --- rank alignment, dtype, registry ---------------------------------------------------------

@pytest.mark.parametrize("name", ["mean_squared_error", "mean_absolute_error",
                                  "binary_crossentropy"])
def test_rank_one_labels_against_column_predictions(name):
    y_true = np.array([1.0, 0.0, 1.0, 0.0])
    y_pred = np.array([[0.9], [0.2], [0.4], [0.3]])
    value, backward = losses.get(name)(y_true, y_pred)
    expected, _ = losses.get(name)(y_true[:, None], y_pred)
    assert value == pytest.approx(expected, rel=1e-12)
    assert backward().shape == (4, 1)
    assert losses.per_sample(name, y_true, y_pred).shape == (4,)
    # a (N,) vs (N, 1) broadcast to (N, N) would give a different number for MSE:
    if name == "mean_squared_error":
        assert value == pytest.approx(np.mean((y_pred[:, 0] - y_true) ** 2))
        assert value != pytest.approx(np.mean((y_pred - y_true) ** 2))


def test_mismatched_shapes_raise():
    with pytest.raises(ShapeError):
        losses.mean_squared_error(np.zeros((4, 2)), np.zeros((4, 3)))


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_float32_in_float32_out(name):
    rng = np.random.default_rng(1)
    y_pred = rng.uniform(0.1, 0.9, size=(5, 3)).astype(np.float32)
    if name == "sparse_categorical_crossentropy":
        y_true = rng.integers(0, 3, size=5)
    else:
        y_true = (rng.uniform(size=(5, 3)) > 0.5).astype(np.float64)  # float64 labels are cast
    value, backward = losses.get(name)(y_true, y_pred)
    assert np.asarray(value).dtype == np.float32
    assert backward().dtype == np.float32
    assert backward(np.float64(2.0)).dtype == np.float32
    assert losses.per_sample(name, y_true, y_pred).dtype == np.float32


def test_aliases():
    assert losses.get("mse") is losses.mean_squared_error
    assert losses.get("mae") is losses.mean_absolute_error
    assert set(losses.LOSSES) == {"categorical_crossentropy", "sparse_categorical_crossentropy",
                                  "binary_crossentropy", "mean_squared_error",
                                  "mean_absolute_error"}
    for name in losses.LOSSES:
        assert losses.get(name) is losses.LOSSES[name]
    with pytest.raises(KeyError):
        losses.get("mean_squared_errr")


def test_backward_scale():
    y_true = np.array([[0.0, 1.0]])
    y_pred = np.array([[0.3, 0.6]])
    _, backward = losses.binary_crossentropy(y_true, y_pred)
    np.testing.assert_allclose(backward(0.25), 0.25 * backward(), rtol=1e-15)


# --- gradient checks (float64, away from the clip edges) -------------------------------------

def _targets(name, rng, shape):
    if name == "sparse_categorical_crossentropy":
        return rng.integers(0, shape[-1], size=shape[:-1])
    if name == "categorical_crossentropy":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]
    if name == "binary_crossentropy":
        return rng.uniform(size=shape)  # soft targets exercise both log terms
    return rng.normal(size=shape)


# A single class is no case for the categorical losses: p / Σp ≡ 1 is clipped, no gradient.
GRADIENT_CASES = [
    (name, shape)
    for name in losses.LOSSES
    for shape in [(4, 3), (2, 3, 4), (5, 1)]
    if not (name.endswith("categorical_crossentropy") and shape[-1] == 1)
]


@pytest.mark.parametrize("name, shape", GRADIENT_CASES)
def test_gradient(name, shape):
    rng = np.random.default_rng(zlib.crc32(f"{name}{shape}".encode()))
    y_true = _targets(name, rng, shape)
    y_pred = rng.uniform(0.1, 0.9, size=shape)  # unnormalised rows for CCE: Σp ≠ 1
    if name == "mean_absolute_error":
        y_true = y_pred + rng.choice([-1, 1], size=shape) * rng.uniform(0.1, 1, size=shape)
    loss = losses.get(name)
    _, backward = loss(y_true, y_pred)
    analytic = backward(1.5)
    numeric = numeric_grad(lambda: 1.5 * float(loss(y_true, y_pred)[0]), y_pred)
    assert_close_grad(analytic, numeric, f"{name} d/d y_pred {shape}")


def test_cce_gradient_with_partly_clipped_row():
    # One entry of the true class is clipped (below ε after normalisation); the others are not.
    y_true = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])
    y_pred = np.array([[1e-9, 0.4, 0.3], [0.2, 0.5, 0.7]])
    _, backward = losses.categorical_crossentropy(y_true, y_pred)
    numeric = numeric_grad(lambda: float(losses.categorical_crossentropy(y_true, y_pred)[0]),
                           y_pred, eps=1e-11)
    assert_close_grad(backward(), numeric, "cce with a clipped entry", rtol=1e-4)
