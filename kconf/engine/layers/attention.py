"""Attention layers: Keras's MultiHeadAttention, Attention (Luong) and AdditiveAttention (Bahdanau).

Each takes named inputs (``call_signature``): ``query``, ``value`` and an optional ``key``
(``value`` when left out), so a graph line reads as the Keras call,
``a = mha(query=x, value=y, use_causal_mask=True)`` or ``a = mha(x, y)``; ``forward`` gets
the tensors as a list in that order and returns one gradient per tensor. The call options
(``use_causal_mask``, ``return_attention_scores``) come as keyword arguments of
``compute_output_shape`` and ``forward``; with ``return_attention_scores`` the layer has two
outputs, the result and the attention scores.

MultiHeadAttention also takes an ``attention_mask`` tensor (batch, T, S), nonzero where a
query position may attend to a key position (``mha(x, y, attention_mask=m)``).

Keras's implicit masks (``kconf.engine.masks``: a ``mask_zero`` Embedding, ``Masking``)
reach ``forward`` as ``mask=[query's, value's, key's ...]`` (None for a tensor without one).
MultiHeadAttention ANDs the query's (B, T, 1), the value's and the key's (B, 1, S), the
``attention_mask`` and the causal mask into the scores it keeps; Attention and
AdditiveAttention lower the scores of masked values by 1e9 and set the output of masked
query steps to 0. The output carries the query's mask, as in Keras.

Sequences only: query ``(batch, T, dim)``, value and key ``(batch, S, dim)`` (Keras's
``attention_axes=None`` on rank-3 inputs, the common case). Masked scores are replaced by
−1e9 before the softmax (MultiHeadAttention, as Keras's ``Softmax`` layer) or lowered by 1e9
(Attention, AdditiveAttention, as Keras's ``_apply_scores``).
"""
from __future__ import annotations

import math
from typing import ClassVar, Union

from pydantic import model_validator

from kconf.args.fields import Bool, Fraction, PositiveInt, choice, config_error
from kconf.args.layer import Fixed, Initializer, LayerArgs
from kconf.engine import kernels
from kconf.engine import masks
from kconf.engine.backend import xp
from kconf.engine.layers.base import CallSignature, Layer, WeightSpec
from kconf.engine.layers.dropout import Dropout
from kconf.engine.ops import current_ops
from kconf.errors import ShapeError
from kconf.shapes import format_shape

#: What Keras puts in place of a masked score before the softmax (``_large_negative_number``).
MASKED_SCORE = -1e9

_OPTIONS = {"use_causal_mask": bool, "return_attention_scores": bool}

#: Attention's ``score_mode``.
ScoreMode = choice("score mode", ("dot", "concat"))


# --- MultiHeadAttention -----------------------------------------------------------------------


class MultiHeadAttentionArgs(LayerArgs):
    """``MultiHeadAttention(num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
    output_shape=None, attention_axes=None, ...)``; ``value_dim`` defaults to ``key_dim``,
    ``output_shape`` to the query's last dimension."""

    config_only: ClassVar[tuple[str, ...]] = ("attention_axes",)
    engine_names: ClassVar[dict[str, str]] = {"output_shape": "output_dims"}
    # Keras hands it to each projection (a penalty per projection's output), not implemented
    keras_activity_regularizer: ClassVar[bool] = False
    keras_fixed: ClassVar[dict[str, Fixed]] = {
        # Keras writes the axes it chose once built: [1] for rank-3 inputs, as None
        "attention_axes": ((None, 1, [1]), "kconf's MultiHeadAttention attends over the "
                                           "sequence axis only (attention_axes=None on "
                                           "rank-3 inputs)"),
        "sliding_window": ((None,), "sliding-window attention is not implemented in kconf"),
        "use_gate": ((False,), "gated attention is not implemented in kconf"),
    }
    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed", "flash_attention"})

    num_heads: PositiveInt
    key_dim: PositiveInt
    value_dim: PositiveInt | None = None
    dropout: Fraction = 0.0
    use_bias: Bool = True
    output_shape: Union[PositiveInt, tuple[PositiveInt, ...], None] = None
    attention_axes: Union[int, tuple[int, ...], None] = None
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"

    @model_validator(mode="after")
    def _sequence_axis_only(self):
        if self.attention_axes not in (None, 1, (1,)):
            raise config_error("unsupported", "attention_axes other than the sequence axis is "
                                              "not supported: leave it null (or 1, the same on "
                                              "kconf's rank-3 inputs)", at="attention_axes")
        return self


class MultiHeadAttention(Layer):
    """Keras's MultiHeadAttention on sequences.

    With ``Q = query·Wq + bq`` (batch, T, heads, key_dim), ``K = key·Wk + bk``,
    ``V = value·Wv + bv``: ``P = softmax(Q·Kᵀ / sqrt(key_dim))`` per head over the key axis
    (masked entries −1e9), ``O = dropout(P)·V``, ``y = O·Wo + bo``. With
    ``return_attention_scores`` the second output is ``P`` (before dropout), shape
    (batch, heads, T, S).

    Args:
        num_heads, key_dim, value_dim, dropout, use_bias, output_shape, kernel_initializer,
            bias_initializer: as Keras's.
        **kwargs: name, trainable.
    """

    n_inputs = None
    uses_workers = True  # the attention of blocks of samples runs on the ops' workers
    call_signature = CallSignature(("query", "value", "key", "attention_mask"), required=2,
                                   options=_OPTIONS, defaults={"key": "value"})
    #: Keras's weights file keeps the weights in its sublayers' groups: (group, the name of
    #: its ``vars``, the prefix of the weights stored there, None for a weightless sublayer)
    keras_weight_groups = (("query_dense", "query", "query/"), ("key_dense", "key", "key/"),
                           ("value_dense", "value", "value/"),
                           ("output_dense", "attention_output", "attention_output/"),
                           ("_dropout_layer", "dropout", None), ("_softmax", "softmax", None))
    supports_masking = True
    takes_mask = True

    def mask_origins(self, origins, return_attention_scores=False, **options):
        return _query_mask_out(self, origins, return_attention_scores)

    def compute_mask(self, xs, mask, return_attention_scores=False, **options):
        return _query_mask(mask, return_attention_scores)

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None,
                 dropout: float = 0.0, use_bias: bool = True, output_dims=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self.output_dims = output_dims  # Keras's ``output_shape`` (that name is the node API's)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self._dropout = Dropout(dropout)

    @property
    def _value_dim(self) -> int:
        return self.value_dim or self.key_dim

    def _out_dims(self, query_dim: int) -> tuple[int, ...]:
        if self.output_dims is None:
            return (query_dim,)
        return (self.output_dims,) if isinstance(self.output_dims, int) else tuple(self.output_dims)

    def _shapes(self, input_shape):
        """(query, value, key, mask or None) shapes, checked."""
        shapes = [tuple(s) for s in input_shape]
        if not 2 <= len(shapes) <= 4:
            raise ShapeError(f"MultiHeadAttention takes query, value, key and attention_mask "
                             f"(2 to 4 tensors), got {len(shapes)}")
        query, value = shapes[:2]
        key = shapes[2] if len(shapes) > 2 else value
        mask = shapes[3] if len(shapes) > 3 else None
        for what, shape in (("query", query), ("value", value), ("key", key)):
            if len(shape) != 3 or shape[-1] is None:
                raise ShapeError(f"MultiHeadAttention expects a {what} of shape (batch, steps, "
                                 f"features) with known features, got {format_shape(shape)}")
        if None not in (value[1], key[1]) and value[1] != key[1]:
            raise ShapeError(f"MultiHeadAttention: value {format_shape(value)} and key "
                             f"{format_shape(key)} must have the same number of steps")
        if mask is not None and (len(mask) != 3 or any(
                m is not None and d is not None and m != d
                for m, d in zip(mask[1:], (query[1], value[1])))):
            raise ShapeError(f"MultiHeadAttention: attention_mask must have shape (batch, T, S) "
                             f"= (None, {query[1]}, {value[1]}), got {format_shape(mask)}")
        return query, value, key, mask

    def compute_output_shape(self, input_shape, use_causal_mask=False,
                             return_attention_scores=False):
        query, value, _, _ = self._shapes(input_shape)
        out = (query[0], query[1], *self._out_dims(query[-1]))
        if return_attention_scores:
            return [out, (query[0], self.num_heads, query[1], value[1])]
        return out

    def weight_specs(self, input_shape):
        query, value, key, _ = self._shapes(input_shape)
        h, k, v = self.num_heads, self.key_dim, self._value_dim
        kinit, binit = self.kernel_initializer, self.bias_initializer
        specs = []
        for name, dim, size in (("query", query[-1], k), ("key", key[-1], k),
                                ("value", value[-1], v)):
            specs.append(WeightSpec(f"{name}/kernel", (dim, h, size), kinit))
            if self.use_bias:
                specs.append(WeightSpec(f"{name}/bias", (h, size), binit))
        out = self._out_dims(query[-1])
        specs.append(WeightSpec("attention_output/kernel", (h, v, *out), kinit))
        if self.use_bias:
            specs.append(WeightSpec("attention_output/bias", out, binit))
        return specs

    def flops(self, input_shape):
        """The four projections and the two products of every head (score and combine)."""
        query, value, key, _ = self._shapes(input_shape)
        t, s = query[1], value[1]
        if t is None or s is None:
            return 0
        h, k, v = self.num_heads, self.key_dim, self._value_dim
        out = math.prod(self._out_dims(query[-1]))
        projections = t * query[-1] * h * k + s * key[-1] * h * k + s * value[-1] * h * v
        return 2 * (projections + h * t * s * (k + v) + t * h * v * out)

    def _project(self, x, name: str):
        """``x @ kernel + bias`` of one EinsumDense: (batch, steps, heads, size)."""
        kernel = self.weights[f"{name}/kernel"]
        y = current_ops().matmul(x.reshape(-1, x.shape[-1]),
                                 kernel.reshape(kernel.shape[0], -1))
        y = y.reshape(*x.shape[:2], *kernel.shape[1:])
        if self.use_bias:
            y += self.weights[f"{name}/bias"]
        return y

    def _project_backward(self, x, dy, name: str):
        """Add the projection's weight gradients; return its input gradient."""
        kernel = self.weights[f"{name}/kernel"]
        flat_dy = dy.reshape(-1, kernel.shape[1] * kernel.shape[2])
        ops = current_ops()
        ops.add_matmul(self.grads[f"{name}/kernel"].reshape(kernel.shape[0], -1),
                       x.reshape(-1, x.shape[-1]).T, flat_dy)
        if self.use_bias:
            self.grads[f"{name}/bias"] += dy.sum(axis=(0, 1))
        dx = ops.matmul(flat_dy, kernel.reshape(kernel.shape[0], -1).T)
        return dx.reshape(x.shape)

    def forward(self, xs, training=False, rng=None, use_causal_mask=False,
                return_attention_scores=False, mask=None):
        query, value = xs[0], xs[1]
        key = xs[2] if len(xs) > 2 else value
        keep = _keep_mask(xs[3] if len(xs) > 3 else None, use_causal_mask,
                          query.shape[1], value.shape[1])
        ops = current_ops()
        if mask is not None:  # the inputs' masks: query (B, T, 1), value and key (B, 1, S)
            axes = (-1, -2, -2)
            for m, axis in zip(mask[:3], axes):
                if m is not None:
                    m = xp.expand_dims(xp.asarray(m, dtype=bool), axis)
                    keep = m if keep is None else keep & m
        scale = query.dtype.type(1.0 / math.sqrt(self.key_dim))
        q = self._project(query, "query") * scale  # (B, T, H, K), scaled as Keras does
        k = self._project(key, "key")  # (B, S, H, K)
        v = self._project(value, "value")  # (B, S, H, V)
        qh, kh, vh = (a.transpose(0, 2, 1, 3) for a in (q, k, v))  # heads second
        kernel = self.weights["attention_output/kernel"]
        h, vd = kernel.shape[:2]
        batch, t, s = q.shape[0], q.shape[1], k.shape[1]
        # The scores, softmax and weighted values run a block of samples at a time on the
        # ops' workers (each block's products are the same per-head products as one batched
        # matmul, so the numbers do not depend on the blocks); the projections before and
        # after are single products that ops.matmul shares out.
        blocks = _sample_blocks(batch, h * t * s * q.itemsize)
        probs = xp.empty((batch, h, t, s), dtype=q.dtype)

        def scores_blocks(worker, mine):
            for _, rows in mine:
                scores = probs[rows]
                xp.matmul(qh[rows], kh[rows].transpose(0, 1, 3, 2), out=scores)
                if keep is not None:
                    mask = keep[rows if keep.shape[0] > 1 else slice(None)][:, None]
                    xp.copyto(scores, scores.dtype.type(MASKED_SCORE), where=~mask)
                _softmax_in_place(scores)

        ops.parallel(scores_blocks, blocks)
        dropped, dropout_backward = self._dropout.forward(probs, training=training, rng=rng)
        o = xp.empty((batch, t, h, vd), dtype=q.dtype)  # (B, T, H, V)
        oh = o.transpose(0, 2, 1, 3)  # its heads-second view, written by the blocks

        def combine_blocks(worker, mine):
            for _, rows in mine:
                oh[rows] = xp.matmul(dropped[rows], vh[rows])

        ops.parallel(combine_blocks, blocks)
        y = ops.matmul(o.reshape(batch, t, h * vd).reshape(-1, h * vd),
                       kernel.reshape(h * vd, -1))
        y = y.reshape(batch, t, *kernel.shape[2:])
        if self.use_bias:
            y += self.weights["attention_output/bias"]

        def backward(dy):
            d_scores_out = None
            if return_attention_scores:
                dy, d_scores_out = dy
            ops = current_ops()
            flat_dy = dy.reshape(-1, kernel[0, 0].size)
            flat_o = o.reshape(-1, h * vd)
            ops.add_matmul(self.grads["attention_output/kernel"].reshape(h * vd, -1), flat_o.T,
                           flat_dy)
            if self.use_bias:
                self.grads["attention_output/bias"] += flat_dy.sum(axis=0).reshape(kernel.shape[2:])
            do = ops.matmul(flat_dy, kernel.reshape(h * vd, -1).T).reshape(o.shape)
            doh = do.transpose(0, 2, 1, 3)
            d_dropped = xp.empty(probs.shape, dtype=do.dtype)
            dv = xp.empty(v.shape, dtype=do.dtype)
            dvh = dv.transpose(0, 2, 1, 3)

            def value_blocks(worker, mine):
                for _, rows in mine:
                    xp.matmul(doh[rows], vh[rows].transpose(0, 1, 3, 2), out=d_dropped[rows])
                    dvh[rows] = xp.matmul(dropped[rows].transpose(0, 1, 3, 2), doh[rows])

            ops.parallel(value_blocks, blocks)
            d_probs = dropout_backward(d_dropped)
            if d_scores_out is not None:
                d_probs = d_probs + d_scores_out
            dq = xp.empty(q.shape, dtype=do.dtype)
            dk = xp.empty(k.shape, dtype=do.dtype)
            dqh, dkh = dq.transpose(0, 2, 1, 3), dk.transpose(0, 2, 1, 3)

            def score_blocks(worker, mine):
                for _, rows in mine:
                    d_scores = _softmax_backward(probs[rows], d_probs[rows])
                    if keep is not None:
                        mask = keep[rows if keep.shape[0] > 1 else slice(None)][:, None]
                        d_scores = xp.where(mask, d_scores, 0)
                    dqh[rows] = xp.matmul(d_scores, kh[rows]) * scale
                    dkh[rows] = xp.matmul(d_scores.transpose(0, 1, 3, 2), qh[rows])

            ops.parallel(score_blocks, blocks)
            dxs = [self._project_backward(query, dq, "query"),
                   self._project_backward(value, dv, "value")]
            d_key = self._project_backward(key, dk, "key")
            if len(xs) > 2:
                dxs.append(d_key)
            else:
                dxs[1] = dxs[1] + d_key
            if len(xs) > 3:
                dxs.append(None)  # the mask has no gradient
            return dxs

        return ([y, probs] if return_attention_scores else y), backward


def _sample_blocks(n: int, bytes_per_sample: int) -> list[tuple[int, slice]]:
    """The batch's blocks of samples for MultiHeadAttention's workers: each block's scores
    (and the few arrays of their size that softmax and its backward make) stay within the
    cache budget of a convolution's block."""
    return kernels.image_blocks(n, 4 * bytes_per_sample)


def _softmax_in_place(z) -> None:
    """``z`` becomes its softmax over the last axis (the same operations, in the same order,
    as ``_softmax``: the same numbers)."""
    z -= z.max(axis=-1, keepdims=True)
    xp.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)


def _softmax_backward(p, dp):
    """The gradient of the scores given the softmax ``p`` and the gradient ``dp`` of it."""
    return p * (dp - (dp * p).sum(axis=-1, keepdims=True))
def _query_mask_out(layer, origins, return_attention_scores=False, **options):
    """The output carries the query's mask (the attention scores, when returned, none)."""
    if any(o is not None for o in origins[3:]):  # attention_mask is data, not a masked tensor
        raise masks.refusal(layer, next(o for o in origins[3:] if o is not None))
    return [origins[0], None] if return_attention_scores else origins[0]


def _query_mask(mask, return_attention_scores=False):
    """At run time: the query's mask (and none for the attention scores)."""
    return [mask[0], None] if return_attention_scores else mask[0]


def _softmax(z):
    """Softmax over the last axis and its backward."""
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)

    def backward(dp):
        return p * (dp - (dp * p).sum(axis=-1, keepdims=True))

    return p, backward


def _keep_mask(mask, causal: bool, t: int, s: int):
    """Which scores count, (B or 1, T, S) booleans, or None for all: ``mask`` (nonzero
    entries kept, as Keras casts it to bool) and, with ``causal``, position i sees j <= i."""
    keep = None if mask is None else xp.asarray(mask) != 0
    if causal:
        lower = xp.tril(xp.ones((t, s), dtype=bool))[None]
        keep = lower if keep is None else keep & lower
    return keep


# --- Attention and AdditiveAttention ----------------------------------------------------------


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


class _DotAttention(Layer):
    """What Attention and AdditiveAttention share: inputs ``[query, value, key]``,
    ``softmax(scores)`` over the value axis (causal positions lowered by 1e9), dropout on the
    weights, ``y = weights · value``; with ``return_attention_scores`` the second output is the
    weights after dropout, as Keras returns them. Subclasses give ``_scores(q, k)`` ->
    (scores, backward(d_scores) -> (dq, dk))."""

    n_inputs = None
    call_signature = CallSignature(("query", "value", "key"), required=2, options=_OPTIONS,
                                   defaults={"key": "value"}, keras_list=True)
    supports_masking = True
    takes_mask = True

    def mask_origins(self, origins, return_attention_scores=False, **options):
        return _query_mask_out(self, origins, return_attention_scores)

    def compute_mask(self, xs, mask, return_attention_scores=False, **options):
        return _query_mask(mask, return_attention_scores)

    def __init__(self, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.dropout = dropout
        self._dropout = Dropout(dropout)

    def compute_output_shape(self, input_shape, use_causal_mask=False,
                             return_attention_scores=False):
        name = type(self).__name__
        shapes = [tuple(s) for s in input_shape]
        if not 2 <= len(shapes) <= 3:
            raise ShapeError(f"{name} takes [query, value] or [query, value, key], got "
                             f"{len(shapes)} tensors")
        query, value = shapes[:2]
        key = shapes[2] if len(shapes) > 2 else value
        for what, shape in (("query", query), ("value", value), ("key", key)):
            if len(shape) != 3:
                raise ShapeError(f"{name} expects a {what} of shape (batch, steps, features), "
                                 f"got {format_shape(shape)}")
        if query[-1] is not None and key[-1] is not None and query[-1] != key[-1]:
            raise ShapeError(f"{name}: query {format_shape(query)} and key {format_shape(key)} "
                             "must have the same features")
        if None not in (value[1], key[1]) and value[1] != key[1]:
            raise ShapeError(f"{name}: value {format_shape(value)} and key {format_shape(key)} "
                             "must have the same number of steps")
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
            causal = _keep_mask(None, True, query.shape[1], value.shape[1])
            keep = causal if keep is None else keep & causal
        if keep is not None:
            scores = xp.where(keep, scores, scores - scores.dtype.type(-MASKED_SCORE))
        probs, softmax_backward = _softmax(scores)
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
