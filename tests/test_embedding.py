"""Embedding: shapes, row lookup, row-sparse gradients that add up for repeated indices (checked
through their dense view against finite differences), errors. The checks every layer goes
through are the standard layer test (``tests/test_layer_standard.py``)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.gradcheck import assert_close_grad, numeric_grad
from kconf.engine.layers import Embedding, WeightSpec
from kconf.engine.optimizers import RowGrad, coalesce_rows
from kconf.errors import ShapeError

KERAS_UNIFORM = {"random_uniform": {"minval": -0.05, "maxval": 0.05}}


def _built(layer, input_shape, dtype=np.float64, seed=0):
    """``layer`` built for ``input_shape`` with standard-normal embeddings."""
    layer.build(input_shape, np.random.default_rng(seed), dtype=dtype)
    table = layer.weights["embeddings"]
    layer.weights["embeddings"] = np.random.default_rng(seed + 1).standard_normal(
        table.shape).astype(dtype)
    return layer


def test_weight_layout_and_keras_default_initializer():
    layer = Embedding(1000, 64)
    assert layer.weight_specs((None, 10)) == [WeightSpec("embeddings", (1000, 64), KERAS_UNIFORM)]
    assert layer.count_params((None, 10)) == 64_000
    layer.build((None, 10), np.random.default_rng(0))
    table = layer.weights["embeddings"]
    assert table.shape == (1000, 64) and table.dtype == np.float32
    assert -0.05 <= table.min() < -0.04 and 0.04 < table.max() <= 0.05


@pytest.mark.parametrize("layer, input_shape, expected", [
    (Embedding(10, 4), (None, 7), (None, 7, 4)),
    (Embedding(10, 4), (None, None), (None, None, 4)),
    (Embedding(10, 4), (None,), (None, 4)),
    (Embedding(10, 4), (None, 2, 3), (None, 2, 3, 4)),
    (Embedding(10, 4, input_length=5), (None, None), (None, 5, 4)),
    (Embedding(10, 4, input_length=5), (None, 5), (None, 5, 4)),
])
def test_compute_output_shape(layer, input_shape, expected):
    assert layer.compute_output_shape(input_shape) == expected


def test_input_length_must_agree_with_the_input():
    with pytest.raises(ShapeError, match="input_length=5 but its input shape is \\(None, 6\\)"):
        Embedding(10, 4, input_length=5).compute_output_shape((None, 6))


@pytest.mark.parametrize("shape", [(4,), (3, 5), (2, 3, 2)])
def test_lookup_values_and_shapes(shape):
    layer = _built(Embedding(7, 3), (None, *shape[1:]))
    idx = np.random.default_rng(2).integers(0, 7, size=shape)
    y, _ = layer.forward(idx)
    assert y.shape == (*shape, 3)
    assert y.shape[1:] == layer.compute_output_shape((None, *shape[1:]))[1:]
    table = layer.weights["embeddings"]
    for pos in np.ndindex(*shape):
        np.testing.assert_array_equal(y[pos], table[idx[pos]])


def test_float_indices_are_accepted_and_output_has_the_weights_dtype():
    layer = _built(Embedding(5, 2), (None, 3), dtype=np.float32)
    y, _ = layer.forward(np.array([[0.0, 4.0, 2.0]], dtype=np.float32))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[0], layer.weights["embeddings"][[0, 4, 2]])
    y, backward = layer.forward(np.array([[1, 1, 3]], dtype=np.int32))
    assert y.dtype == np.float32
    backward(np.ones_like(y))
    grad = layer.grads["embeddings"]
    assert grad.dtype == np.float32
    assert grad.values.dtype == np.float32 and grad.to_dense().dtype == np.float32


def test_gradient_is_row_sparse_adds_up_for_repeated_indices_and_input_has_none():
    layer = _built(Embedding(6, 3), (None, 4))
    idx = np.array([[1, 1, 5, 1], [0, 5, 1, 1]])
    y, backward = layer.forward(idx)
    dy = np.random.default_rng(3).standard_normal(y.shape)
    layer.zero_grads()
    assert backward(dy) is None  # integer indices have no gradient
    grad = layer.grads["embeddings"]
    assert isinstance(grad, RowGrad) and grad.shape == (6, 3)
    np.testing.assert_array_equal(grad.indices, [0, 1, 5])  # only the rows read, once each
    expected = np.zeros((6, 3))
    for pos in np.ndindex(*idx.shape):
        expected[idx[pos]] += dy[pos]
    np.testing.assert_allclose(grad.values, expected[[0, 1, 5]], rtol=1e-12)
    np.testing.assert_allclose(grad.to_dense(), expected, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(grad), grad.to_dense())
    assert not grad.to_dense()[[2, 3, 4]].any()

    def loss():
        return float((layer.forward(idx)[0] * dy).sum())

    # the float64 finite-difference check, through the dense view
    assert_close_grad(grad.to_dense(), numeric_grad(loss, layer.weights["embeddings"]),
                      "d embeddings")
    assert_close_grad(layer.grads["embeddings"], numeric_grad(loss, layer.weights["embeddings"]),
                      "d embeddings (np.asarray)")


def test_zero_grads_empties_the_same_row_grad():
    layer = _built(Embedding(6, 2), (None, 3))
    grad = layer.grads["embeddings"]
    y, backward = layer.forward(np.array([[0, 1, 1]]))
    backward(np.ones_like(y))
    assert grad.indices.size == 2
    layer.zero_grads()
    assert layer.grads["embeddings"] is grad  # a model's reference to it stays valid
    assert grad.indices.size == 0 and grad.values.shape == (0, 2)
    assert not grad.to_dense().any()


def test_shared_layer_gradients_add():
    layer = _built(Embedding(6, 2), (None, 3))
    idx1, idx2 = np.array([[0, 1, 1]]), np.array([[1, 2, 5]])
    y1, back1 = layer.forward(idx1)
    y2, back2 = layer.forward(idx2)
    layer.zero_grads()
    back2(np.ones_like(y2))
    back1(np.full_like(y1, 2.0))
    expected = np.zeros((6, 2))
    expected[0] = 2.0
    expected[1] = 2.0 * 2 + 1.0
    expected[2] = expected[5] = 1.0
    grad = layer.grads["embeddings"]
    np.testing.assert_array_equal(grad.indices, [0, 1, 2, 5])  # two parts merged, row 1 in both
    np.testing.assert_allclose(grad.values, expected[[0, 1, 2, 5]])
    np.testing.assert_allclose(grad.to_dense(), expected)


@pytest.mark.parametrize("idx", [
    np.arange(40) % 7,  # every index repeated a few times
    np.r_[np.zeros(500, int), np.arange(100)],  # one index far more often than the rest
    np.repeat(np.arange(50), np.arange(50)),  # many counts, more than 32 groups
    np.tile(np.arange(100), 5),  # every index 5 times (positions of 5 samples), 16-bit sort
    np.random.default_rng(3).integers(0, 120, 1000),  # 16-bit sort, counts 1 to 20 or so
    np.random.default_rng(3).integers(0, 30, 400),  # similar counts: runs padded side by side
    np.array([3]),
    np.zeros(0, int),
])
def test_coalesce_rows_matches_add_at(idx):
    rng = np.random.default_rng(4)
    rows = rng.standard_normal((idx.size, 5))
    expected = np.zeros((120, 5))
    np.add.at(expected, idx, rows)
    unique, sums = coalesce_rows(idx, rows)
    np.testing.assert_array_equal(unique, np.unique(idx))
    assert sums.shape == (unique.size, 5)
    np.testing.assert_allclose(sums, expected[unique], rtol=1e-12, atol=1e-12)
    assert not np.shares_memory(sums, rows)


@pytest.mark.parametrize("bad", [-1, 6, 100])
def test_out_of_range_indices_raise(bad):
    layer = _built(Embedding(6, 2), (None, 3))
    with pytest.raises(IndexError, match=rf"index {bad} is out of range \[0, 6\)"):
        layer.forward(np.array([[0, bad, 1]]))


def test_mask_zero_masks_index_zero():
    layer = _built(Embedding(10, 4, mask_zero=True), (None, 3))
    x = np.array([[3, 0, 1], [0, 0, 2]])
    np.testing.assert_array_equal(layer.compute_mask(x, None), x != 0)
    y, _ = layer.forward(x)
    np.testing.assert_array_equal(y[0, 1], layer.weights["embeddings"][0])  # still looked up
    assert layer.mask_origins([None]) == "Embedding '' (mask_zero)"
    assert Embedding(10, 4).mask_origins([None]) is None
