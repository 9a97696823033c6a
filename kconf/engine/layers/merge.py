"""Merge layers: Keras's Concatenate, Add, Subtract, Multiply, Average, Maximum, Minimum and Dot.

Every merge layer takes a list of at least two inputs (``n_inputs = None``): ``forward`` gets
a list of arrays, ``compute_output_shape`` a list of shapes, and ``backward(dy)`` returns a
list of input gradients in the same order. None of them has weights.
"""
from __future__ import annotations

from functools import reduce

from kconf.args.fields import Bool
from kconf.args.layer import Axes, Axis, LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer
from kconf.errors import ShapeError
from kconf.shapes import format_shape, known_size


class MergeArgs(LayerArgs):
    """Add, Subtract, Multiply, Average, Maximum, Minimum: no arguments of their own."""


class ConcatenateArgs(LayerArgs):
    axis: Axis = -1


class DotArgs(LayerArgs):
    axes: Axes
    normalize: Bool = False

NORM_EPSILON = 1e-7  # Dot(normalize=True): smallest L2 norm divided by (zero vectors give 0)


class _Merge(Layer):
    """Shared arity check; subclasses implement ``_output_shape(shapes)`` and ``forward``."""

    n_inputs = None
    exactly: int | None = None  # Subtract and Dot take exactly two inputs

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        name = type(self).__name__
        if self.exactly is not None and len(shapes) != self.exactly:
            raise ShapeError(f"{name} needs exactly {self.exactly} inputs, got {len(shapes)}")
        if len(shapes) < 2:
            raise ShapeError(f"{name} needs at least 2 inputs, got {len(shapes)}")
        return self._output_shape(shapes)

    def _output_shape(self, shapes):
        raise NotImplementedError


_CLASH = object()  # what _merge_dims returns for two different known dimensions


def _merge_dims(a, b):
    """The common value of two dimensions where None matches anything; _CLASH when they differ."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    return _CLASH


def _broadcast_dims(a, b):
    """Keras's elementwise merge of two dimensions: a 1 takes the other's size (broadcast);
    else as ``_merge_dims``."""
    if a == 1:
        return b
    if b == 1:
        return a
    return _merge_dims(a, b)


def _unbroadcast(g, shape):
    """The gradient ``g`` of a broadcast input of ``shape``: summed over the axes the input
    was broadcast along (its size-1 axes where ``g``'s are larger)."""
    if g.shape == tuple(shape):
        return g
    axes = tuple(i for i, (n, m) in enumerate(zip(shape, g.shape)) if n == 1 and m != 1)
    return g.sum(axis=axes, keepdims=True)


class _ElementWise(_Merge):
    """Inputs of one rank combined entry by entry; a dimension of 1 broadcasts against the
    others' (Keras's Multiply of (N, H, W, C) and (N, 1, 1, C) in a squeeze-and-excite block),
    its gradient summed back over the broadcast axes; None matches anything. Masks
    (``kconf.engine.masks``): the output's is the OR of the inputs' when every input has
    one, else none (Keras's ``Merge.compute_mask``)."""

    supports_masking = True

    def mask_origins(self, origins, **options):
        return None if any(o is None for o in origins) else origins[0]

    def compute_mask(self, xs, mask, **options):
        return reduce(xp.logical_or, mask)

    def _output_shape(self, shapes):
        out = shapes[0]
        for shape in shapes[1:]:
            dims = [_broadcast_dims(a, b) for a, b in zip(out, shape)]
            if len(shape) != len(out) or _CLASH in dims:
                raise ShapeError(f"{type(self).__name__}: input shapes {format_shape(shapes[0])} "
                                 f"and {format_shape(shape)} do not match (nor broadcast: "
                                 "sizes must be equal or 1)")
            out = tuple(dims)
        return out


class Add(_ElementWise):
    """Sum of the inputs: ``y = x0 + x1 + ...``.

    Args:
        **kwargs: name, trainable.
    """

    fresh_output = True  # the sum is a new array; backward never reads it

    def forward(self, xs, training=False, rng=None):
        def backward(dy):  # dy itself, no copy: no backward writes into its dy
            return [_unbroadcast(dy, x.shape) for x in xs]

        return reduce(xp.add, xs), backward


class Subtract(_ElementWise):
    """Difference of exactly two inputs: ``y = x0 - x1``.

    Args:
        **kwargs: name, trainable.
    """

    exactly = 2

    def forward(self, xs, training=False, rng=None):
        def backward(dy):
            return [_unbroadcast(dy, xs[0].shape), -_unbroadcast(dy, xs[1].shape)]

        return xs[0] - xs[1], backward


class Multiply(_ElementWise):
    """Product of the inputs: ``y = x0 * x1 * ...``.

    Args:
        **kwargs: name, trainable.
    """

    def forward(self, xs, training=False, rng=None):
        def backward(dy):
            # the product of the others, never a division (inputs may be zero)
            return [_unbroadcast(reduce(xp.multiply, [x for j, x in enumerate(xs) if j != i],
                                        dy), xs[i].shape)
                    for i in range(len(xs))]

        return reduce(xp.multiply, xs), backward


class Average(_ElementWise):
    """Mean of the inputs: ``y = (x0 + x1 + ...) / n``.

    Args:
        **kwargs: name, trainable.
    """

    def forward(self, xs, training=False, rng=None):
        n = len(xs)

        def backward(dy):
            return [_unbroadcast(dy / n, x.shape) for x in xs]

        return reduce(xp.add, xs) / n, backward


class _Extremum(_ElementWise):
    """Maximum / Minimum: the gradient goes to the input that attains the extremum, the first
    such input on ties. Subclasses set ``pick`` (xp.maximum or xp.minimum)."""

    def forward(self, xs, training=False, rng=None):
        y = reduce(self.pick, xs)

        def backward(dy):
            dxs = []
            taken = xp.zeros(y.shape, dtype=bool)
            for x in xs:
                wins = (x == y) & ~taken
                taken |= wins
                dxs.append(_unbroadcast(xp.where(wins, dy, xp.zeros((), dtype=dy.dtype)),
                                        x.shape))
            return dxs

        return y, backward


class Maximum(_Extremum):
    """Element-wise maximum of the inputs; on ties the gradient goes to the first input.

    Args:
        **kwargs: name, trainable.
    """

    pick = staticmethod(xp.maximum)


class Minimum(_Extremum):
    """Element-wise minimum of the inputs; on ties the gradient goes to the first input.

    Args:
        **kwargs: name, trainable.
    """

    pick = staticmethod(xp.minimum)


class Concatenate(_Merge):
    """Inputs joined along ``axis``; every other dimension must match. A mask on any input
    gives the output one (``compute_mask``).

    Args:
        axis: the axis to join on, counting the batch axis as 0 (default -1, the last).
        **kwargs: name, trainable.
    """

    supports_masking = True

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def _output_shape(self, shapes):
        rank = len(shapes[0])
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 0 < axis < rank:
            raise ShapeError(f"Concatenate: axis {self.axis} is out of range for input shape "
                             f"{format_shape(shapes[0])}" + (" (axis 0 is the batch axis)"
                                                             if axis == 0 else ""))
        out = list(shapes[0])
        for shape in shapes[1:]:
            dims = [_merge_dims(a, b) for a, b in zip(out, shape)]
            if len(shape) != rank or _CLASH in dims[:axis] + dims[axis + 1:]:
                raise ShapeError(f"Concatenate: shapes {format_shape(shapes[0])} and "
                                 f"{format_shape(shape)} cannot be concatenated on axis "
                                 f"{self.axis}")
            joined = None if out[axis] is None or shape[axis] is None else out[axis] + shape[axis]
            out = [*dims[:axis], joined, *dims[axis + 1:]]
        return tuple(out)

    def mask_origins(self, origins, **options):
        return next((o for o in origins if o is not None), None)

    def compute_mask(self, xs, mask, **options):
        """Keras's: each input's mask broadcast over its features (all True for an input
        without one), joined along ``axis``, then any over the last axis."""
        parts = [xp.ones(x.shape, dtype=bool) if m is None
                 else xp.broadcast_to(xp.asarray(m, dtype=bool)[..., None], x.shape)
                 for x, m in zip(xs, mask)]
        return xp.concatenate(parts, axis=self.axis).any(axis=-1)

    def forward(self, xs, training=False, rng=None):
        sizes = [x.shape[self.axis] for x in xs]
        cuts = [sum(sizes[:i + 1]) for i in range(len(sizes) - 1)]

        def backward(dy):
            return xp.split(dy, cuts, axis=self.axis)

        return xp.concatenate(xs, axis=self.axis), backward


class Dot(_Merge):
    """Batch-wise dot product of two inputs along ``axes`` (Keras's ``batch_dot``).

    For each sample, the contracted axis of the first input meets the contracted axis of the
    second; the output keeps the first input's other axes, then the second's. Two (N, d)
    inputs give (N, 1); (N, a, k) and (N, k, b) with ``axes=(2, 1)`` give (N, a, b).

    Args:
        axes: an int (the same axis of both inputs) or a pair (one per input); the batch axis
            is 0 and cannot be contracted; negative values count from the end of each input.
        normalize: L2-normalise both inputs along their contracted axes first, so that the
            output is the cosine proximity. Norms below 1e-7 count as 1e-7.
        **kwargs: name, trainable.
    """

    exactly = 2

    def __init__(self, axes, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.axes = axes if isinstance(axes, int) else tuple(axes)
        if not isinstance(self.axes, int) and len(self.axes) != 2:
            raise ValueError(f"Dot axes must be an int or a pair of ints, got {axes!r}")
        self.normalize = normalize

    def _resolve_axes(self, ranks) -> tuple[int, int]:
        """The contracted axis of each input as a non-negative index."""
        pair = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        return tuple(a + r if a < 0 else a for a, r in zip(pair, ranks))

    def _output_shape(self, shapes):
        s1, s2 = shapes
        for shape in shapes:
            if len(shape) < 2:
                raise ShapeError(f"Dot needs inputs of rank 2 or more (batch axis included), "
                                 f"got {format_shape(shape)}")
        a1, a2 = self._resolve_axes((len(s1), len(s2)))
        for axis, shape in ((a1, s1), (a2, s2)):
            if not 0 < axis < len(shape):
                raise ShapeError(f"Dot: axes {self.axes} do not fit input shape "
                                 f"{format_shape(shape)} (axis 0 is the batch axis)")
        if _merge_dims(s1[a1], s2[a2]) is _CLASH:
            raise ShapeError(f"Dot: axis {a1} of {format_shape(s1)} has size {s1[a1]} but "
                             f"axis {a2} of {format_shape(s2)} has size {s2[a2]}; they must match")
        if _merge_dims(s1[0], s2[0]) is _CLASH:
            raise ShapeError(f"Dot: batch sizes of {format_shape(s1)} and {format_shape(s2)} "
                             f"differ")
        out = (_merge_dims(s1[0], s2[0]), *s1[1:a1], *s1[a1 + 1:], *s2[1:a2], *s2[a2 + 1:])
        return out if len(out) > 1 else (*out, 1)

    def flops(self, input_shapes):
        """2 · P · k · Q per sample: the (P, k) @ (k, Q) product of the flattened inputs
        (the normalisation, if any, is elementwise and not counted)."""
        s1, s2 = (tuple(s) for s in input_shapes)
        a1, a2 = self._resolve_axes((len(s1), len(s2)))
        left = known_size(s1[1:a1] + s1[a1 + 1:])
        right = known_size(s2[1:a2] + s2[a2 + 1:])
        k = s1[a1] if s1[a1] is not None else s2[a2]
        if left is None or right is None or k is None:
            return 0
        return 2 * left * k * right

    def forward(self, xs, training=False, rng=None):
        x1, x2 = xs
        a1, a2 = self._resolve_axes((x1.ndim, x2.ndim))
        (u1, norm_back1), (u2, norm_back2) = (_l2_normalize(x1, a1, self.normalize),
                                              _l2_normalize(x2, a2, self.normalize))
        # (N, P, k) @ (N, k, Q): the first input's other axes flattened to P, the second's to Q
        left = xp.moveaxis(u1, a1, -1)
        right = xp.moveaxis(u2, a2, 1)
        n, k = left.shape[0], left.shape[-1]
        lmat = left.reshape(n, -1, k)
        rmat = right.reshape(n, k, -1)
        y = (lmat @ rmat).reshape(n, *left.shape[1:-1], *right.shape[2:])
        if y.ndim == 1:
            y = y.reshape(n, 1)

        def backward(dy):
            dmat = dy.reshape(n, lmat.shape[1], rmat.shape[2])
            dleft = (dmat @ rmat.transpose(0, 2, 1)).reshape(left.shape)
            dright = (lmat.transpose(0, 2, 1) @ dmat).reshape(right.shape)
            return [norm_back1(xp.moveaxis(dleft, -1, a1)),
                    norm_back2(xp.moveaxis(dright, 1, a2))]

        return y, backward


def _l2_normalize(x, axis: int, enabled: bool):
    """``(x / max(‖x‖, eps) along axis, backward)``; the identity when not ``enabled``."""
    if not enabled:
        return x, lambda du: du
    norm = xp.sqrt((x * x).sum(axis=axis, keepdims=True))
    clamped = norm <= NORM_EPSILON
    denom = xp.where(clamped, xp.asarray(NORM_EPSILON, dtype=x.dtype), norm)
    u = x / denom

    def backward(du):
        # d(x/‖x‖) = (du - u·Σ(du·u)) / ‖x‖ where the norm is live, du / eps where clamped
        projected = xp.where(clamped, du, du - u * (du * u).sum(axis=axis, keepdims=True))
        return projected / denom

    return u, backward
