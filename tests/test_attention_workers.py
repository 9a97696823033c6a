"""MultiHeadAttention's blocks of samples on the ops' workers: the same bits whatever the
number of workers and blocks, and the same numbers as the attention written out in one
batched NumPy expression (float64)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kconf.engine import kernels
from kconf.engine.layers.attention import MultiHeadAttention
from kconf.engine.ops import Ops, use_ops


def _layer(dtype, dropout=0.0):
    layer = MultiHeadAttention(num_heads=2, key_dim=3, value_dim=4, dropout=dropout)
    layer.build([(None, 5, 6), (None, 7, 6), (None, 7, 6)], np.random.default_rng(0),
                dtype=dtype)
    rng = np.random.default_rng(1)
    for name in layer.weights:  # non-zero biases too
        layer.weights[name] = rng.standard_normal(layer.weights[name].shape).astype(dtype)
    return layer


def _inputs(dtype, batch=5):
    rng = np.random.default_rng(2)
    q = rng.standard_normal((batch, 5, 6)).astype(dtype)
    v = rng.standard_normal((batch, 7, 6)).astype(dtype)
    k = rng.standard_normal((batch, 7, 6)).astype(dtype)
    mask = (rng.random((batch, 5, 7)) > 0.3).astype(dtype)
    mask[:, :, 0] = 1  # every query sees a key
    return [q, v, k, mask]


def _run(layer, xs, workers, causal, dropout_seed=None):
    for grad in layer.grads.values():
        grad[...] = 0
    with use_ops(Ops(workers=workers)) as ops, ops.step():
        rng = None if dropout_seed is None else np.random.default_rng(dropout_seed)
        (y, scores), backward = layer.forward(xs, training=rng is not None, rng=rng,
                                              use_causal_mask=causal,
                                              return_attention_scores=True)
        dy = np.random.default_rng(4).standard_normal(y.shape).astype(y.dtype)
        ds = np.random.default_rng(5).standard_normal(scores.shape).astype(y.dtype)
        dxs = backward([dy, ds])
    return [y, scores, *dxs[:3], *(g.copy() for g in layer.grads.values())]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_one_sample_per_block_on_three_workers_gives_one_workers_bits(monkeypatch, causal,
                                                                      dropout):
    layer = _layer(np.float32, dropout)
    xs = _inputs(np.float32)
    seed = 7 if dropout else None
    whole = _run(layer, xs, 1, causal, seed)
    monkeypatch.setattr(kernels.geometry, "batch_block", lambda n, bytes_per_image: 1)
    blocks = _run(layer, xs, 3, causal, seed)
    for got, want in zip(blocks, whole):
        np.testing.assert_array_equal(got, want)


def test_blocks_compute_keras_attention():
    """Against the formula in one batched expression: softmax(QKᵀ/√k, masked)·V·Wo + bo."""
    layer = _layer(np.float64)
    q_in, v_in, k_in, mask = _inputs(np.float64)
    w = layer.weights
    q = np.einsum("btd,dhk->bthk", q_in, w["query/kernel"]) + w["query/bias"]
    k = np.einsum("bsd,dhk->bshk", k_in, w["key/kernel"]) + w["key/bias"]
    v = np.einsum("bsd,dhk->bshk", v_in, w["value/kernel"]) + w["value/bias"]
    scores = np.einsum("bthk,bshk->bhts", q, k) / math.sqrt(3)
    keep = (mask != 0) & np.tril(np.ones((5, 7), dtype=bool))[None]
    scores = np.where(keep[:, None], scores, -1e9)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = np.einsum("bhts,bshv->bthv", p, v)
    want = np.einsum("bthv,hvo->bto", o, w["attention_output/kernel"]) + \
        w["attention_output/bias"]
    got = _run(layer, [q_in, v_in, k_in, mask], 2, causal=True)
    np.testing.assert_allclose(got[0], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], p, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_heads_with_scores_past_the_bound_take_the_maximum_out_and_others_not(dtype,
                                                                               tolerance):
    """Without a mask, heads whose scores are within ±BOUNDED_SCORE (by |q|·|k|) exp them as
    they are, the others take each query's maximum out first: both give the softmax of the
    formula (sample 1's scores reach the hundreds, where exp without the maximum overflows)."""
    from kconf.engine.layers.attention_core import bounded
    layer = _layer(dtype)
    q_in, v_in, k_in, _ = _inputs(dtype, batch=3)
    q_in[1] *= 40
    w = layer.weights
    q = np.einsum("btd,dhk->bthk", q_in, w["query/kernel"]) + w["query/bias"]
    k = np.einsum("bsd,dhk->bshk", k_in, w["key/kernel"]) + w["key/bias"]
    v = np.einsum("bsd,dhk->bshk", v_in, w["value/kernel"]) + w["value/bias"]
    q = q / math.sqrt(3)
    within = bounded(q.transpose(0, 2, 1, 3), k.transpose(0, 2, 1, 3))
    assert within[0].all() and not within[1].any()
    scores = np.einsum("bthk,bshk->bhts", q, k)
    assert np.abs(scores[1]).max() > 200
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = np.einsum("bthv,hvo->bto", np.einsum("bhts,bshv->bthv", p, v),
                     w["attention_output/kernel"]) + w["attention_output/bias"]
    got = _run(layer, [q_in, v_in, k_in], 2, causal=False)
    np.testing.assert_allclose(got[1], p, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(got[0], want, rtol=tolerance, atol=tolerance * 10)
    assert all(np.isfinite(g).all() for g in got)
