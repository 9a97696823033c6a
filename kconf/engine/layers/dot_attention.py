"""Keras's Attention (Luong) and AdditiveAttention (Bahdanau).

Each takes ``[query, value]`` or ``[query, value, key]`` (``key`` is ``value`` when left
out), as Keras's call does (``CallSignature.keras_list``): a graph line reads
``a = attention(query=x, value=y)`` or ``a = attention(x, y)``; ``forward`` returns one
gradient per tensor. The call options ``use_causal_mask`` and ``return_attention_scores``
come as keyword arguments; with ``return_attention_scores`` the second output is the
attention weights after dropout, as Keras returns them.

Keras's implicit masks (``kconf.engine.masks``) reach ``forward`` as ``mask=[query's,
value's, ...]``: scores of masked values are lowered by 1e9 (Keras's ``_apply_scores``) and
masked query steps output 0; the output carries the query's mask. Sequences only: query
``(batch, T, dim)``, value and key ``(batch, S, dim)``.
"""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import Bool, Fraction, choice
from kconf.args.layer import LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.attention_core import (
    CALL_OPTIONS,
    MASKED_SCORE,
    QueryMask,
    keep_mask,
    sequence_shapes,
    softmax,
)
from kconf.engine.layers.base import CallSignature, Layer, WeightSpec
from kconf.engine.layers.dropout import Dropout
from kconf.errors import ShapeError
from kconf.shapes import format_shape

#: Attention's ``score_mode``.
ScoreMode = choice("score mode", ("dot", "concat"))


class AttentionArgs(LayerArgs):
    """``Attention(use_scale=False, score_mode="dot", dropout=0.0)``."""

    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})

    use_scale: Bool = False
    score_mode: ScoreMode = "dot"
    dropout: Fraction = 0.0


class AdditiveAttentionArgs(LayerArgs):
    """``AdditiveAttention(use_scale=True, dropout=0.0)``."""

    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})

    use_scale: Bool = True
    dropout: Fraction = 0.0


class _DotAttention(QueryMask, Layer):
    """What Attention and AdditiveAttention share: inputs ``[query, value, key]``,
    ``softmax(scores)`` over the value axis (causal positions lowered by 1e9), dropout on the
    weights, ``y = weights · value``; with ``return_attention_scores`` the second output is the
    weights after dropout, as Keras returns them. Subclasses give ``_scores(q, k)`` ->
    (scores, backward(d_scores) -> (dq, dk))."""

    n_inputs = None
    call_signature = CallSignature(("query", "value", "key"), required=2, options=CALL_OPTIONS,
                                   defaults={"key": "value"}, keras_list=True)

    def __init__(self, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.dropout = dropout
        self._dropout = Dropout(dropout)

    def compute_output_shape(self, input_shape, use_causal_mask=False,
                             return_attention_scores=False):
        query, value, key = sequence_shapes(self, [tuple(s) for s in input_shape],
                                            ("query", "value", "key"))
        if query[-1] is not None and key[-1] is not None and query[-1] != key[-1]:
            raise ShapeError(f"{type(self).__name__}: query {format_shape(query)} and key "
                             f"{format_shape(key)} must have the same features")
        out = (query[0], query[1], value[-1])
        if return_attention_scores:
            return [out, (query[0], query[1], value[1])]
        return out

    def forward(self, xs, training=False, rng=None, use_causal_mask=False,
                return_attention_scores=False, mask=None):
        query, value = xs[0], xs[1]
        key = xs[2] if len(xs) > 2 else value
        q_mask, v_mask = (None, None) if mask is None else (mask[0], mask[1])  # as Keras
        scores, scores_backward = self._scores(query, key)
        keep = None if v_mask is None else xp.asarray(v_mask, dtype=bool)[:, None, :]
        if use_causal_mask:
            causal = keep_mask(None, True, query.shape[1], value.shape[1])
            keep = causal if keep is None else keep & causal
        if keep is not None:
            scores = xp.where(keep, scores, scores - scores.dtype.type(-MASKED_SCORE))
        probs, softmax_backward = softmax(scores)
        weights, dropout_backward = self._dropout.forward(probs, training=training, rng=rng)
        y = xp.matmul(weights, value)
        q_keep = None if q_mask is None else xp.asarray(q_mask, dtype=bool)[:, :, None]
        if q_keep is not None:  # masked query steps output 0
            y = xp.where(q_keep, y, y.dtype.type(0))

        def backward(dy):
            d_weights = None
            if return_attention_scores:
                dy, d_weights = dy
            if q_keep is not None:
                dy = xp.where(q_keep, dy, dy.dtype.type(0))
            dw = xp.matmul(dy, value.transpose(0, 2, 1))
            if d_weights is not None:
                dw = dw + d_weights
            d_value = xp.matmul(weights.transpose(0, 2, 1), dy)
            dq, dk = scores_backward(softmax_backward(dropout_backward(dw)))
            if len(xs) > 2:
                return [dq, d_value, dk]
            return [dq, d_value + dk]

        return ([y, weights] if return_attention_scores else y), backward

    def _scores(self, query, key):
        raise NotImplementedError


class Attention(_DotAttention):
    """Keras's Attention (Luong): scores ``query · keyᵀ`` (× ``scale`` with ``use_scale``),
    or with ``score_mode="concat"`` ``concat_score_weight · Σ tanh(scale · (query + key))``
    over the features.

    Args:
        use_scale: learn a scalar ``scale`` (initial 1).
        score_mode: ``"dot"`` or ``"concat"`` (which adds the scalar ``concat_score_weight``).
        dropout: the fraction of attention weights dropped in training.
        **kwargs: name, trainable.
    """

    def __init__(self, use_scale: bool = False, score_mode: str = "dot", dropout: float = 0.0,
                 **kwargs):
        super().__init__(dropout=dropout, **kwargs)
        self.use_scale = use_scale
        self.score_mode = score_mode

    def weight_specs(self, input_shape):
        specs = []
        if self.use_scale:
            specs.append(WeightSpec("scale", (), "ones"))
        if self.score_mode == "concat":
            specs.append(WeightSpec("concat_score_weight", (), "ones"))
        return specs

    def flops(self, input_shape):
        """The score and combine products (dot mode); concat's sums are elementwise."""
        query, value = input_shape[0], input_shape[1]
        t, s, d, dv = query[1], value[1], query[-1], value[-1]
        if None in (t, s, d, dv):
            return 0
        return 2 * t * s * ((d if self.score_mode == "dot" else 0) + dv)

    def _scores(self, query, key):
        if self.score_mode == "dot":
            raw = xp.matmul(query, key.transpose(0, 2, 1))
            if not self.use_scale:
                return raw, lambda ds: (xp.matmul(ds, key), xp.matmul(ds.transpose(0, 2, 1),
                                                                      query))
            scale = self.weights["scale"]

            def dot_backward(ds):
                self.grads["scale"] += (ds * raw).sum()
                ds = ds * scale
                return xp.matmul(ds, key), xp.matmul(ds.transpose(0, 2, 1), query)

            return raw * scale, dot_backward
        scale = self.weights["scale"] if self.use_scale else None
        weight = self.weights["concat_score_weight"]
        pre = query[:, :, None, :] + key[:, None, :, :]  # (B, T, S, D)
        th = xp.tanh(pre if scale is None else scale * pre)
        total = th.sum(axis=-1)

        def concat_backward(ds):
            self.grads["concat_score_weight"] += (ds * total).sum()
            d_th = (ds * weight)[..., None] * (1 - th * th)
            if scale is not None:
                self.grads["scale"] += (d_th * pre).sum()
                d_th = d_th * scale
            return d_th.sum(axis=2), d_th.sum(axis=1)

        return weight * total, concat_backward


class AdditiveAttention(_DotAttention):
    """Keras's AdditiveAttention (Bahdanau): scores ``Σ scale · tanh(query + key)`` over the
    features, ``scale`` a learnt vector (glorot_uniform) with ``use_scale``, else 1.

    Args:
        use_scale: learn the per-feature ``scale``.
        dropout: the fraction of attention weights dropped in training.
        **kwargs: name, trainable.
    """

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, **kwargs):
        super().__init__(dropout=dropout, **kwargs)
        self.use_scale = use_scale

    def weight_specs(self, input_shape):
        if not self.use_scale:
            return []
        return [WeightSpec("scale", (input_shape[0][-1],), "glorot_uniform")]

    def flops(self, input_shape):
        """The combine product; the scores are elementwise."""
        query, value = input_shape[0], input_shape[1]
        t, s, dv = query[1], value[1], value[-1]
        return 0 if None in (t, s, dv) else 2 * t * s * dv

    def _scores(self, query, key):
        th = xp.tanh(query[:, :, None, :] + key[:, None, :, :])  # (B, T, S, D)
        if not self.use_scale:
            def plain_backward(ds):
                d_pre = ds[..., None] * (1 - th * th)
                return d_pre.sum(axis=2), d_pre.sum(axis=1)

            return th.sum(axis=-1), plain_backward
        scale = self.weights["scale"]

        def scaled_backward(ds):
            self.grads["scale"] += (ds[..., None] * th).sum(axis=(0, 1, 2))
            d_pre = (ds[..., None] * scale) * (1 - th * th)
            return d_pre.sum(axis=2), d_pre.sum(axis=1)

        return (th * scale).sum(axis=-1), scaled_backward
