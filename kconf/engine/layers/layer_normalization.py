"""LayerNormalization: each sample standardized over ``axis``, then ``y = x̂·gamma + beta``.

``x̂ = (x − mean)·rsqrt(var + epsilon)`` with the mean and the biased variance taken over the
normalized axes of each sample (Keras's ``ops.layer_normalization``); gamma and beta have the
shape of those axes. Keras computes ``inv = rsqrt(var + ε)·gamma``, ``y = x·inv + (beta −
mean·inv)``, and so does ``forward``. ``rms_scaling`` (Keras 3's deprecated flag, kept for its
configs) skips the centring: ``y = x·rsqrt(var + ε)·gamma``, no beta.

The helpers ``normalized_axes``, ``moments`` and ``standardize_backward`` are shared with
BatchNormalization and GroupNormalization, which standardize over other axes;
``standardize_affine`` (the whole forward and backward) with GroupNormalization.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Union

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from kconf.args.fields import Bool, KerasForm, PositiveFloat, config_error
from kconf.args.layer import Initializer, LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer, WeightSpec
from kconf.engine.ops import current_ops
from kconf.errors import ShapeError
from kconf.shapes import format_shape
from kconf.text import show


# LayerNormalization's blocks of rows for the workers: about this many numbers each (256 KB
# of float32: a block's arrays stay in cache across its passes).
_BLOCK_SIZE = 1 << 16


def _axis_or_axes(value: Any) -> int | tuple[int, ...]:
    """One axis, or a list of distinct axes (a one-element list is its axis)."""
    def axis(v):
        return isinstance(v, int) and not isinstance(v, bool) and v != 0

    if axis(value):
        return value
    if value == 0 or (isinstance(value, (list, tuple)) and 0 in value):
        raise config_error("batch_axis", "axis 0 is the batch axis; count the axes of one "
                                         "sample from 1, or from the end with -1")
    if (isinstance(value, (list, tuple)) and value and all(axis(v) for v in value)
            and len(set(value)) == len(value)):
        return value[0] if len(value) == 1 else tuple(value)
    raise config_error("axes", "expected an axis (a nonzero integer, negative counts from the "
                               "end) or a list of distinct axes, got " + show(value))


_AXIS_SCHEMA = {"type": "integer", "not": {"const": 0}}

#: Keras's ``axis=-1`` or ``axis=[1, 2]``: the axes a layer normalizes over.
AxisOrAxes = Annotated[
    Union[int, tuple[int, ...]],
    PlainValidator(_axis_or_axes),
    PlainSerializer(lambda v: v if isinstance(v, int) else list(v), when_used="json"),
    WithJsonSchema({"anyOf": [_AXIS_SCHEMA, {"type": "array", "items": _AXIS_SCHEMA,
                                             "minItems": 1, "uniqueItems": True}]}),
    KerasForm("axes"),
]


def normalized_axes(layer: Layer, input_shape, axis) -> tuple[int, ...]:
    """``axis`` (an int or several) as sorted non-negative axes of ``input_shape``, each a
    known size; a ShapeError names the layer otherwise (the batch axis included)."""
    rank = len(input_shape)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    name = type(layer).__name__
    out = []
    for a in axes:
        if not -rank <= a < rank or a % rank == 0:
            raise ShapeError(f"{name}: axis {a} is not an axis of one sample of the input "
                             f"{format_shape(input_shape)}")
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise ShapeError(f"{name}: axis {show(list(axes))} names an axis twice for the input "
                         f"{format_shape(input_shape)}")
    for a in out:
        if input_shape[a] is None:
            raise ShapeError(f"{name} needs a known size on axis {a}, got input shape "
                             f"{format_shape(input_shape)}")
    return tuple(sorted(out))


def moments(x, axes: tuple[int, ...]):
    """The mean and the biased variance over ``axes``, kept as size-1 axes (Keras's
    ``ops.moments``: ``var = mean(|x − mean|²)``)."""
    mean = x.mean(axis=axes, keepdims=True)
    return mean, ((x - mean) ** 2).mean(axis=axes, keepdims=True)


def standardize_backward(g, x_hat, r, axes: tuple[int, ...]):
    """The input gradient of ``x̂ = (x − mean)·r``, ``r = rsqrt(var + ε)``, with the mean and
    variance over ``axes``, given ``g = dL/dx̂``: ``r·(g − mean(g) − x̂·mean(g·x̂))``."""
    return r * (g - g.mean(axis=axes, keepdims=True)
                - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))


def standardize_affine(layer: Layer, x, axes: tuple[int, ...], others: tuple[int, ...], wshape):
    """``y = x̂·gamma + beta`` with ``x̂`` standardized over ``axes`` and the layer's
    ``epsilon``, ``gamma`` and ``beta`` (each where the layer has it, reshaped to ``wshape``),
    computed as Keras does: ``inv = rsqrt(var + ε)·gamma``, ``y = x·inv + (beta − mean·inv)``.

    Returns:
        ``(y, backward)``; ``backward(dy, need_dx=True)`` adds the weight gradients (summed
        over ``others``) and returns the input gradient, or None without ``need_dx``.
    """
    mean, var = moments(x, axes)
    r = 1 / xp.sqrt(var + x.dtype.type(layer.epsilon))
    gamma = layer.weights["gamma"].reshape(wshape) if "gamma" in layer.weights else None
    center = "beta" in layer.weights
    inv = r if gamma is None else r * gamma
    y = x * inv + (-mean * inv)
    if center:
        y += layer.weights["beta"].reshape(wshape)

    def backward(dy, need_dx=True):
        x_hat = (x - mean) * r
        if gamma is not None:
            layer.grads["gamma"] += (dy * x_hat).sum(axis=others).reshape(
                layer.grads["gamma"].shape)
        if center:
            layer.grads["beta"] += dy.sum(axis=others).reshape(layer.grads["beta"].shape)
        if not need_dx:
            return None
        g = dy if gamma is None else dy * gamma
        return standardize_backward(g, x_hat, r, axes)

    return y, backward


def broadcast_shape(input_rank: int, axes: tuple[int, ...], sizes) -> tuple[int, ...]:
    """The shape that broadcasts a weight over the axes ``axes`` (sizes ``sizes``)."""
    shape = [1] * input_rank
    for a, n in zip(axes, sizes):
        shape[a] = n
    return tuple(shape)


class LayerNormalizationArgs(LayerArgs):
    """``LayerNormalization(axis=-1, epsilon=1e-3, center=True, scale=True, ...)``."""

    axis: AxisOrAxes = -1
    epsilon: PositiveFloat = 1e-3
    center: Bool = True
    scale: Bool = True
    rms_scaling: Bool = False
    beta_initializer: Initializer = "zeros"
    gamma_initializer: Initializer = "ones"


class LayerNormalization(Layer):
    """Normalize each sample over ``axis`` (one axis or several).

    Args:
        axis: the axis or axes normalized (not the batch axis).
        epsilon: added to the variance.
        center: learn ``beta`` (none with ``rms_scaling``).
        scale: learn ``gamma`` (always with ``rms_scaling``, as Keras).
        rms_scaling: divide by ``sqrt(var + ε)`` without subtracting the mean.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)
    input_grads_optional = True

    def __init__(self, axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 rms_scaling: bool = False, beta_initializer="zeros", gamma_initializer="ones",
                 **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.rms_scaling = rms_scaling
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer

    def compute_output_shape(self, input_shape):
        normalized_axes(self, input_shape, self.axis)
        return input_shape

    def weight_specs(self, input_shape):
        axes = normalized_axes(self, input_shape, self.axis)
        shape = tuple(input_shape[a] for a in axes)
        specs = []
        if self.scale or self.rms_scaling:
            specs.append(WeightSpec("gamma", shape, self.gamma_initializer))
        if self.center and not self.rms_scaling:
            specs.append(WeightSpec("beta", shape, self.beta_initializer))
        return specs

    def forward(self, x, training=False, rng=None):
        axes = normalized_axes(self, (None, *x.shape[1:]), self.axis)
        wshape = broadcast_shape(x.ndim, axes, [x.shape[a] for a in axes])
        others = tuple(a for a in range(x.ndim) if a not in axes)  # what weight grads sum over
        if not self.rms_scaling:
            if axes == tuple(range(x.ndim - len(axes), x.ndim)):  # the last axes: rows
                return self._standardize_rows(x, math.prod(x.shape[a] for a in axes))
            return standardize_affine(self, x, axes, others, wshape)
        gamma = self.weights["gamma"].reshape(wshape) if "gamma" in self.weights else None
        mean, var = moments(x, axes)
        r = 1 / xp.sqrt(var + x.dtype.type(self.epsilon))
        inv = r if gamma is None else r * gamma
        y = x * inv

        def backward(dy, need_dx=True):
            x_r = x * r
            if gamma is not None:
                self.grads["gamma"] += (dy * x_r).sum(axis=others).reshape(
                    self.grads["gamma"].shape)
            if not need_dx:
                return None
            g = dy if gamma is None else dy * gamma
            m = 1
            for a in axes:
                m *= x.shape[a]
            return r * g - (x - mean) * r ** 3 / m * (g * x).sum(axis=axes, keepdims=True)

        return y, backward

    def _standardize_rows(self, x, size: int):
        """``standardize_affine`` where the normalized axes are the last ones: each row of
        ``size`` numbers standardized, ``y = x̂·gamma + beta`` with ``x̂ = (x − mean)·r``
        (Keras's ``x·inv + (beta − mean·inv)`` with the mean taken out first: the same
        numbers up to rounding). The row sums are matrix-vector products; x̂ is kept for
        backward, whose row means of ``g = dy·gamma`` and ``g·x̂`` are products with gamma.
        Blocks of rows run on the ops' workers (each row's numbers are its own, whichever
        block it is in)."""
        rows = x.reshape(-1, size)
        dtype = x.dtype
        n = dtype.type(size)
        ones = xp.ones(size, dtype=dtype)
        gamma = self.weights["gamma"].reshape(-1) if "gamma" in self.weights else None
        beta = self.weights["beta"].reshape(-1) if "beta" in self.weights else None
        x_hat, y = xp.empty_like(rows), xp.empty_like(rows)
        r = xp.empty((rows.shape[0], 1), dtype=dtype)
        ops = current_ops()
        blocks = _row_blocks(rows) if ops.workers > 1 else [slice(None)]  # one: no loop

        def forward_blocks(worker, mine):
            for b in mine:
                centred = xp.subtract(rows[b], ((rows[b] @ ones) / n)[:, None], out=x_hat[b])
                var = (centred * centred) @ ones
                var /= n
                var += dtype.type(self.epsilon)
                xp.sqrt(var, out=var)
                xp.divide(1, var[:, None], out=r[b])
                centred *= r[b]
                if gamma is None:
                    y[b] = centred
                else:
                    xp.multiply(centred, gamma, out=y[b])
                if beta is not None:
                    y[b] += beta

        ops.parallel(forward_blocks, blocks)

        def backward(dy, need_dx=True):
            d = dy.reshape(rows.shape)
            scaled = xp.empty_like(d) if gamma is not None or need_dx else None  # dy·x̂
            dx = xp.empty_like(d) if need_dx else None
            weight = ones if gamma is None else gamma

            def backward_blocks(worker, mine):
                for b in mine:
                    if scaled is not None:
                        xp.multiply(d[b], x_hat[b], out=scaled[b])
                    if dx is None:
                        continue
                    mean_g = (d[b] @ weight) / n  # mean(g), g = dy·gamma
                    mean_gx = (scaled[b] @ weight) / n  # mean(g·x̂)
                    out = xp.multiply(x_hat[b], mean_gx[:, None], out=dx[b])
                    xp.subtract(d[b] if gamma is None else d[b] * gamma, out, out=out)
                    out -= mean_g[:, None]
                    out *= r[b]

            ops.parallel(backward_blocks, blocks)
            if gamma is not None:
                self.grads["gamma"] += ops.sum_rows(scaled).reshape(self.grads["gamma"].shape)
            if beta is not None:
                self.grads["beta"] += ops.sum_rows(d).reshape(self.grads["beta"].shape)
            return None if dx is None else dx.reshape(x.shape)

        return y.reshape(x.shape), backward


def _row_blocks(rows) -> list[slice]:
    """Blocks of about ``_BLOCK_SIZE`` numbers of a 2-D array's rows, whole rows each."""
    per_block = max(1, _BLOCK_SIZE // max(rows.shape[1], 1))
    return [slice(start, min(start + per_block, rows.shape[0]))
            for start in range(0, rows.shape[0], per_block)]
