"""Keras's MultiHeadAttention on sequences (the attention itself: ``attention_core``;
Attention and AdditiveAttention: ``dot_attention``).

It takes named inputs (``call_signature``): ``query``, ``value``, an optional ``key``
(``value`` when left out) and an optional ``attention_mask`` tensor (batch, T, S), nonzero
where a query position may attend to a key position, so a graph line reads as the Keras
call, ``a = mha(query=x, value=y, use_causal_mask=True)`` or ``a = mha(x, y)``;
``forward`` gets the tensors as a list in that order and returns one gradient per tensor.
The call options (``use_causal_mask``, ``return_attention_scores``) come as keyword
arguments of ``compute_output_shape`` and ``forward``; with ``return_attention_scores`` the
layer has two outputs, the result and the attention scores.

Keras's implicit masks (``kconf.engine.masks``: a ``mask_zero`` Embedding, ``Masking``)
reach ``forward`` as ``mask=[query's, value's, key's ...]`` (None for a tensor without one):
the layer ANDs the query's (B, T, 1), the value's and the key's (B, 1, S), the
``attention_mask`` and the causal mask into the scores it keeps (the others are replaced by
−1e9 before the softmax, as Keras's ``Softmax`` layer does). The output carries the query's
mask, as in Keras.

Sequences only: query ``(batch, T, dim)``, value and key ``(batch, S, dim)`` (Keras's
``attention_axes=None`` on rank-3 inputs, the common case). Projections of one array (all
three in self-attention, ``mha(x, x)``) are one matrix product with their kernels side by
side, forward and backward.
"""
from __future__ import annotations

import math
from typing import ClassVar, Union

from pydantic import model_validator

from kconf.args.fields import Bool, Fraction, PositiveInt, config_error
from kconf.args.layer import Fixed, Initializer, LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.attention_core import (
    CALL_OPTIONS,
    QueryMask,
    attend,
    keep_mask,
    sequence_shapes,
)
from kconf.engine.layers.base import CallSignature, Layer, WeightSpec
from kconf.engine.layers.dropout import Dropout
from kconf.engine.ops import current_ops
from kconf.errors import ShapeError
from kconf.shapes import format_shape

#: The projections, in the order their kernels sit side by side when they read one array.
_PROJECTIONS = ("query", "key", "value")


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


class MultiHeadAttention(QueryMask, Layer):
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
                                   options=CALL_OPTIONS, defaults={"key": "value"})
    #: Keras's weights file keeps the weights in its sublayers' groups: (group, the name of
    #: its ``vars``, the prefix of the weights stored there, None for a weightless sublayer)
    keras_weight_groups = (("query_dense", "query", "query/"), ("key_dense", "key", "key/"),
                           ("value_dense", "value", "value/"),
                           ("output_dense", "attention_output", "attention_output/"),
                           ("_dropout_layer", "dropout", None), ("_softmax", "softmax", None))

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
        query, value, key = sequence_shapes(
            self, shapes, ("query", "value", "key", "attention_mask"), known_features=True)
        mask = shapes[3] if len(shapes) > 3 else None
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

    def forward(self, xs, training=False, rng=None, use_causal_mask=False,
                return_attention_scores=False, mask=None):
        query, value = xs[0], xs[1]
        key = xs[2] if len(xs) > 2 else value
        keep = keep_mask(xs[3] if len(xs) > 3 else None, use_causal_mask,
                         query.shape[1], value.shape[1])
        if mask is not None:  # the inputs' masks: query (B, T, 1), value and key (B, 1, S)
            for m, axis in zip(mask[:3], (-1, -2, -2)):
                if m is not None:
                    m = xp.expand_dims(xp.asarray(m, dtype=bool), axis)
                    keep = m if keep is None else keep & m
        ops = current_ops()
        groups = _Projections.of(self, (query, key, value))
        projected = {}
        for group in groups:
            projected.update(group.forward(ops))
        dropout = self._dropout if training and self.dropout > 0 else None
        biases = ([self.weights[f"{n}/bias"] for n in _PROJECTIONS] if self.use_bias
                  else None)  # added by attend's blocks
        o, probs, attend_backward = attend(  # the queries scaled as Keras does
            projected["query"], projected["key"], projected["value"], biases=biases,
            scale=1.0 / math.sqrt(self.key_dim), keep=keep, dropout=dropout, rng=rng,
            want_probs=return_attention_scores)
        kernel = self.weights["attention_output/kernel"]
        flat_kernel = kernel.reshape(-1, kernel[0, 0].size)  # (heads · value_dim, out)
        flat_o = o.reshape(-1, flat_kernel.shape[0])
        y = ops.matmul(flat_o, flat_kernel).reshape(*o.shape[:2], *kernel.shape[2:])
        if self.use_bias:
            y += self.weights["attention_output/bias"]

        def backward(dy):
            d_probs = None
            if return_attention_scores:
                dy, d_probs = dy
            flat_dy = dy.reshape(-1, flat_kernel.shape[1])
            ops.add_matmul(self.grads["attention_output/kernel"].reshape(flat_kernel.shape),
                           flat_o.T, flat_dy)
            if self.use_bias:
                self.grads["attention_output/bias"] += ops.sum_rows(flat_dy).reshape(
                    kernel.shape[2:])
            do = ops.matmul(flat_dy, flat_kernel.T).reshape(o.shape)
            outs = {}
            for group in groups:
                outs.update(group.grad_buffers())
            attend_backward(do, d_probs, out=(outs["query"], outs["key"], outs["value"]))
            for group in groups:
                group.add_weight_grads(self, ops)
            # one gradient per tensor given: query, value (and the key when key is value),
            # key, and none for a mask
            parts = [("query",), ("key", "value") if len(xs) == 2 else ("value",), ("key",)]
            dxs = [_Projections.owning(groups, names[0]).input_grad(ops, names).reshape(x.shape)
                   for names, x in zip(parts, xs[:3])]
            return dxs + [None] * (len(xs) - 3)

        return ([y, probs] if return_attention_scores else y), backward


class _Projections:
    """The projections (query, key, value) that read one input array: one product, their
    kernels side by side (self-attention: all three); backward, one product for their
    kernels' gradients and one for the input gradient of side-by-side columns.

    Args:
        layer: the MultiHeadAttention.
        x: the input, (batch, steps, features).
        names: the projections reading it, in ``_PROJECTIONS`` order.
    """

    def __init__(self, layer: MultiHeadAttention, x, names: list[str]):
        self.x, self.names, self.use_bias = x, names, layer.use_bias
        kernels = [layer.weights[f"{n}/kernel"] for n in names]
        self.shapes = {n: k.shape[1:] for n, k in zip(names, kernels)}  # (heads, size)
        self.kernel = xp.concatenate([k.reshape(k.shape[0], -1) for k in kernels], axis=1)
        self.columns, start = {}, 0
        for n, k in zip(names, kernels):
            self.columns[n] = slice(start, start + k.shape[1] * k.shape[2])
            start += k.shape[1] * k.shape[2]
        self.flat_x = x.reshape(-1, x.shape[-1])
        self.d = None  # the gradient of the product, (batch · steps, Σ heads · size)

    @classmethod
    def of(cls, layer: MultiHeadAttention, arrays) -> list[_Projections]:
        """The groups of the query, key and value projections by the array they read."""
        groups: list[tuple[object, list[str]]] = []
        for name, x in zip(_PROJECTIONS, arrays):
            group = next((g for g in groups if g[0] is x), None)
            if group is None:
                groups.append((x, [name]))
            else:
                group[1].append(name)
        return [cls(layer, x, names) for x, names in groups]

    @staticmethod
    def owning(groups: list[_Projections], name: str) -> _Projections:
        """The group with the projection ``name``."""
        return next(g for g in groups if name in g.names)

    def _views(self, flat) -> dict:
        """Each projection's columns of a (batch · steps, Σ heads · size) array, as
        (batch, steps, heads, size)."""
        return {n: flat[:, self.columns[n]].reshape(*self.x.shape[:2], *self.shapes[n])
                for n in self.names}

    def forward(self, ops) -> dict:
        """{name: its projection before the bias}, (batch, steps, heads, size) views of one
        product."""
        return self._views(ops.matmul(self.flat_x, self.kernel))

    def grad_buffers(self) -> dict:
        """{name: the array its gradient goes to}, views of one new array."""
        self.d = xp.empty((self.flat_x.shape[0], self.kernel.shape[1]), dtype=self.kernel.dtype)
        return self._views(self.d)

    def add_weight_grads(self, layer: MultiHeadAttention, ops) -> None:
        """Add the kernels' and biases' gradients from the filled ``grad_buffers``."""
        if len(self.names) == 1:
            grad = layer.grads[f"{self.names[0]}/kernel"]
            ops.add_matmul(grad.reshape(self.kernel.shape), self.flat_x.T, self.d)
        else:
            d_kernel = ops.matmul(self.flat_x.T, self.d)
            for n in self.names:
                grad = layer.grads[f"{n}/kernel"]
                grad += d_kernel[:, self.columns[n]].reshape(grad.shape)
        if self.use_bias:
            sums = ops.sum_rows(self.d)
            for n in self.names:
                grad = layer.grads[f"{n}/bias"]
                grad += sums[self.columns[n]].reshape(grad.shape)

    def input_grad(self, ops, names: tuple[str, ...]):
        """The input gradient through the projections ``names`` (side by side here): one
        product, (batch · steps, features)."""
        columns = slice(self.columns[names[0]].start, self.columns[names[-1]].stop)
        return ops.matmul(self.d[:, columns], self.kernel[:, columns].T)
