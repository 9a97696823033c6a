"""MultiHeadAttention on one array as query, value and key (self-attention, whose
projections run as one product): float64 finite differences of the input and every weight,
and each tensor's own gradient when the same array is given as several tensors."""
from __future__ import annotations

import numpy as np
import pytest

from kconf.engine.layers.attention import MultiHeadAttention
from tests.gradcheck import assert_close_grad, numeric_grad


def _layer(dropout: float, use_bias: bool = True) -> MultiHeadAttention:
    layer = MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, dropout=dropout,
                               use_bias=use_bias)
    layer.build([(None, 5, 6)] * 3, np.random.default_rng(0), dtype=np.float64)
    rng = np.random.default_rng(1)
    for name in layer.weights:
        layer.weights[name] = rng.standard_normal(layer.weights[name].shape) * 0.5
    return layer


def _run(layer, xs):
    """Forward in training (a fresh rng: the same dropout mask every call), causal, with the
    scores; the loss Σ y·R + Σ scores·R'."""
    (y, scores), backward = layer.forward(xs, training=True, rng=np.random.default_rng(3),
                                          use_causal_mask=True, return_attention_scores=True)
    r = np.random.default_rng(4)
    ry, rs = r.standard_normal(y.shape), r.standard_normal(scores.shape)
    return float((y * ry).sum() + (scores * rs).sum()), backward, [ry, rs]


@pytest.mark.parametrize("tensors", [2, 3])
@pytest.mark.parametrize("dropout, use_bias", [(0.0, True), (0.4, True), (0.0, False)])
def test_one_array_as_every_input(tensors, dropout, use_bias):
    layer = _layer(dropout, use_bias)
    x = np.random.default_rng(2).standard_normal((3, 5, 6))
    xs = [x] * tensors
    _, backward, dy = _run(layer, xs)
    layer.zero_grads()
    dxs = backward(dy)
    assert len(dxs) == tensors
    assert_close_grad(sum(dxs), numeric_grad(lambda: _run(layer, xs)[0], x), "d x")
    for name, grad in layer.grads.items():
        assert_close_grad(grad, numeric_grad(lambda: _run(layer, xs)[0], layer.weights[name]),
                          f"d {name}")
    # each tensor's gradient is its own: the same as for copies of the array
    grads = {name: grad.copy() for name, grad in layer.grads.items()}
    copies = [x.copy() for _ in range(tensors)]
    _, backward, dy = _run(layer, copies)
    layer.zero_grads()
    for got, want in zip(dxs, backward(dy)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for name, grad in layer.grads.items():
        np.testing.assert_allclose(grads[name], grad, rtol=1e-12, atol=1e-12)
