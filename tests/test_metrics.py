"""Metrics: which accuracy `accuracy` means for which shapes, ties, thresholds, per-sample shapes."""
from __future__ import annotations

import numpy as np
import pytest

from kconf.engine import metrics


# --- resolution of `accuracy` from shapes ----------------------------------------------------

@pytest.mark.parametrize("y_true_shape, y_pred_shape, expected", [
    ((None, 1), (None, 1), "binary_accuracy"),           # sigmoid output
    ((None,), (None, 1), "binary_accuracy"),             # rank-1 labels, still binary
    ((None, 5), (None, 5), "categorical_accuracy"),      # one-hot targets
    ((None,), (None, 5), "sparse_categorical_accuracy"),
    ((None, 1), (None, 5), "sparse_categorical_accuracy"),
    ((None, 7), (None, 7, 5), "sparse_categorical_accuracy"),   # sequence labels (N, T)
    ((None, 7, 1), (None, 7, 5), "sparse_categorical_accuracy"),
    ((None, 7, 5), (None, 7, 5), "categorical_accuracy"),
    ((None, 7, 1), (None, 7, 1), "binary_accuracy"),
    ((None, 3), (None, 3), "categorical_accuracy"),      # multi-label sigmoid: still categorical
])
def test_accuracy_resolution(y_true_shape, y_pred_shape, expected):
    assert metrics.resolve_accuracy(y_true_shape, y_pred_shape) == expected
    for name in ("accuracy", "acc"):
        assert metrics.resolve(name, y_true_shape, y_pred_shape) is metrics.METRICS[expected]


def test_resolve_names_and_aliases():
    assert metrics.resolve("mse", (None, 2), (None, 2)) is metrics.mean_squared_error
    assert metrics.resolve("mae", (None, 2), (None, 2)) is metrics.mean_absolute_error
    assert metrics.resolve("binary_accuracy", (None, 3), (None, 3)) is metrics.binary_accuracy
    for name in ("accuracy", "acc", "binary_accuracy", "categorical_accuracy",
                 "sparse_categorical_accuracy", "mean_squared_error", "mse",
                 "mean_absolute_error", "mae"):
        assert name in metrics.METRIC_NAMES
        assert callable(metrics.resolve(name, (None, 4), (None, 4)))
    with pytest.raises(KeyError):
        metrics.resolve("accuracyy", (None, 4), (None, 4))


# --- the metrics -----------------------------------------------------------------------------

def test_binary_accuracy_strict_threshold():
    y_true = np.array([[1], [0], [1], [0]], np.float32)
    y_pred = np.array([[0.5], [0.5], [0.50001], [0.2]], np.float32)
    # 0.5 is not > 0.5: predicts 0, wrong for the first sample, right for the second
    np.testing.assert_array_equal(metrics.binary_accuracy(y_true, y_pred), [0, 1, 1, 1])


def test_binary_accuracy_rank_one_labels_and_multi_label():
    y_pred = np.array([[0.9], [0.1], [0.7]], np.float32)
    out = metrics.binary_accuracy(np.array([1, 0, 0]), y_pred)
    assert out.shape == (3,) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [1, 1, 0])
    multi = metrics.binary_accuracy(np.array([[1, 0, 1, 1]]), np.array([[0.9, 0.6, 0.2, 0.8]]))
    np.testing.assert_allclose(multi, [0.5])


def test_categorical_accuracy_ties_go_to_first_index():
    y_true = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    y_pred = np.array([[0.4, 0.4, 0.2], [0.4, 0.4, 0.2], [0.1, 0.3, 0.6]], np.float32)
    out = metrics.categorical_accuracy(y_true, y_pred)
    np.testing.assert_array_equal(out, [1, 0, 1])
    assert out.dtype == np.float32


@pytest.mark.parametrize("labels", [np.array([2, 0, 1]), np.array([[2], [0], [1]]),
                                    np.array([2.0, 0.0, 1.0])])
def test_sparse_categorical_accuracy_label_shapes(labels):
    y_pred = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4], [0.5, 0.5, 0.0]])
    np.testing.assert_array_equal(metrics.sparse_categorical_accuracy(labels, y_pred), [1, 0, 0])


def test_sequence_outputs_give_one_value_per_sample():
    rng = np.random.default_rng(0)
    n, t, c = 3, 4, 5
    y_pred = rng.uniform(size=(n, t, c)).astype(np.float32)
    labels = rng.integers(0, c, size=(n, t))
    hits = (np.argmax(y_pred, axis=-1) == labels).mean(axis=1)
    for y_true in (labels, labels[..., None]):
        out = metrics.sparse_categorical_accuracy(y_true, y_pred)
        assert out.shape == (n,)
        np.testing.assert_allclose(out, hits)
    one_hot = np.eye(c)[labels]
    np.testing.assert_allclose(metrics.categorical_accuracy(one_hot, y_pred), hits)
    mse = metrics.mean_squared_error(one_hot, y_pred)
    assert mse.shape == (n,)
    np.testing.assert_allclose(mse, ((y_pred - one_hot) ** 2).mean(axis=(1, 2)), rtol=1e-6)
    binary = metrics.binary_accuracy(rng.integers(0, 2, size=(n, t)), y_pred[..., :1])
    assert binary.shape == (n,)


def test_regression_metrics():
    y_true = np.array([[1.0, 2.0], [0.0, -1.0]])
    y_pred = np.array([[1.5, 1.0], [0.0, 1.0]])
    np.testing.assert_allclose(metrics.mean_squared_error(y_true, y_pred), [0.625, 2.0])
    np.testing.assert_allclose(metrics.mean_absolute_error(y_true, y_pred), [0.75, 1.0])
    # (N,) targets against (N, 1) predictions: aligned, not broadcast to (N, N)
    out = metrics.mean_absolute_error(np.array([1.0, 2.0, 3.0]), np.array([[1.0], [0.0], [4.0]]))
    np.testing.assert_allclose(out, [0.0, 2.0, 1.0])
