"""BatchNormalization: ``y = (x − mean)·rsqrt(var + epsilon)·gamma + beta`` per feature of
``axis``, with batch statistics in training and moving statistics at inference.

Training (``forward(x, training=True)`` of a layer that is not frozen): the mean and the
biased variance over every axis but ``axis`` (the batch and, for images, the pixels), and the
state moves toward them in place, once per call: ``moving = moving·momentum + batch·(1 −
momentum)`` (Keras's update, before the output is returned). The backward pass goes through
the batch mean and variance. Inference, and training of a frozen layer (``trainable: false``,
Keras 3's rule): the moving statistics, which are constants. ``forward`` computes as Keras's
``ops.batch_normalization``: ``inv = rsqrt(var + ε)·gamma``, ``y = x·inv + (beta − mean·inv)``.

Weights in Keras's order: gamma, beta (trainable, each unless ``scale``/``center`` is off),
then the state moving_mean and moving_variance (see ``kconf/engine/layers/base.py``).
"""
from __future__ import annotations

from typing import Annotated, ClassVar

from kconf.args.fields import Bool, KerasForm, PositiveFloat, bounded
from kconf.args.layer import Axis, Fixed, Initializer, LayerArgs
from kconf.engine import masks
from kconf.engine.backend import xp
from kconf.engine.kernels import column_sums, lines
from kconf.engine.layers.base import Layer, WeightSpec
from kconf.engine.layers.layer_normalization import (
    broadcast_shape,
    moments,
    normalized_axes,
    standardize_backward,
)

#: A momentum in [0, 1].
Momentum = bounded(float, ge=0, le=1)
#: The feature axis; Keras 2 wrote it as a list of one (``[3]``) once built.
FeatureAxis = Annotated[Axis, KerasForm("axes")]


class BatchNormalizationArgs(LayerArgs):
    """``BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
    ...)``."""

    keras_fixed: ClassVar[dict[str, Fixed]] = {
        "renorm": ((False,), "batch renormalization is not implemented in kconf"),
        "renorm_clipping": ((None, {}), "batch renormalization is not implemented in kconf"),
        "virtual_batch_size": ((None,), "ghost batch normalization is not implemented in "
                                        "kconf"),
        "adjustment": ((None,), "adjustment functions are not implemented in kconf"),
    }
    # renorm_momentum acts only with renorm; fused is Keras 2's choice of kernel: neither
    # changes a number here.
    keras_ignored: ClassVar[frozenset[str]] = frozenset({"renorm_momentum", "fused"})

    axis: FeatureAxis = -1
    momentum: Momentum = 0.99
    epsilon: PositiveFloat = 1e-3
    center: Bool = True
    scale: Bool = True
    beta_initializer: Initializer = "zeros"
    gamma_initializer: Initializer = "ones"
    moving_mean_initializer: Initializer = "zeros"
    moving_variance_initializer: Initializer = "ones"
    synchronized: Bool = False


class BatchNormalization(Layer):
    """Normalize each feature of ``axis`` with the batch's statistics (training) or the
    moving ones (inference).

    Args:
        axis: the feature axis (not the batch axis); statistics are taken over the others.
        momentum: how much of the moving statistics each training call keeps.
        epsilon: added to the variance.
        center: learn ``beta``.
        scale: learn ``gamma``.
        synchronized: in a data-parallel run (``kconf.distributed``), the batch statistics
            over every rank's shard of the batch (Keras 3's argument; statistics are per
            rank otherwise, as Keras's are per replica); no effect in one process.
    """

    #: Sums over the ranks of a data-parallel run (``DataParallel.sum`` and ``weight``), set
    #: on a synchronized layer by ``DataParallel.attach``; None in one process.
    sync = None

    def mask_origins(self, origins, **options):
        """A masked input is refused: Keras computes the batch statistics over the data steps
        only (``call(mask=...)``), which kconf does not implement."""
        if origins[0] is not None:
            raise masks.MaskError(
                f"BatchNormalization cannot take the mask made by {origins[0]}: Keras computes "
                "the batch statistics over the data steps only, which kconf does not "
                "implement; use LayerNormalization, or consume the mask first")
        return None

    input_grads_optional = True
    fresh_output = True  # every path makes y anew; backward reads x (or x − mean), never y

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", synchronized: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        self.synchronized = synchronized

    def compute_output_shape(self, input_shape):
        normalized_axes(self, input_shape, self.axis)
        return input_shape

    def weight_specs(self, input_shape):
        (axis,) = normalized_axes(self, input_shape, self.axis)
        shape = (input_shape[axis],)
        specs = []
        if self.scale:
            specs.append(WeightSpec("gamma", shape, self.gamma_initializer))
        if self.center:
            specs.append(WeightSpec("beta", shape, self.beta_initializer))
        return specs + [
            WeightSpec("moving_mean", shape, self.moving_mean_initializer, trainable=False),
            WeightSpec("moving_variance", shape, self.moving_variance_initializer,
                       trainable=False),
        ]

    def forward(self, x, training=False, rng=None):
        (axis,) = normalized_axes(self, (None, *x.shape[1:]), self.axis)
        wshape = broadcast_shape(x.ndim, (axis,), (x.shape[axis],))
        others = tuple(a for a in range(x.ndim) if a != axis)
        moving_mean, moving_var = self.weights["moving_mean"], self.weights["moving_variance"]
        batch_stats = training and self.trainable  # a frozen layer runs in inference mode
        if batch_stats and self.sync is not None:
            return self._synchronized_training(x, axis, others, wshape)
        if batch_stats and axis == x.ndim - 1 and x.flags.c_contiguous and x.ndim > 2:
            return self._channels_last_training(x)
        if batch_stats:
            mean, var = moments(x, others)
            keep = self.momentum
            moving_mean[...] = moving_mean * keep + mean.reshape(-1) * (1.0 - keep)
            moving_var[...] = moving_var * keep + var.reshape(-1) * (1.0 - keep)
        else:
            # copies: the closure keeps this call's statistics whatever later calls do
            mean, var = moving_mean.reshape(wshape).copy(), moving_var.reshape(wshape)
        r = 1 / xp.sqrt(var + x.dtype.type(self.epsilon))
        gamma = self.weights["gamma"].reshape(wshape) if self.scale else None
        inv = r if gamma is None else r * gamma
        # Keras's ops.batch_normalization: x·inv + (beta − mean·inv), the sum of two
        # small arrays first: two passes over x
        shift = -mean * inv
        if self.center:
            shift += self.weights["beta"].reshape(wshape)
        y = x * inv
        y += shift

        def backward(dy, need_dx=True):
            x_hat = (x - mean) * r
            if self.scale:
                self.grads["gamma"] += (dy * x_hat).sum(axis=others)
            if self.center:
                self.grads["beta"] += dy.sum(axis=others)
            if not need_dx:
                return None
            if not batch_stats:  # constant statistics: y is affine in x
                return dy * inv
            g = dy if gamma is None else dy * gamma
            return standardize_backward(g, x_hat, r, others)

        return y, backward

    def _channels_last_training(self, x):
        """``forward`` in training for channels last (images, sequences): the same formulas
        on ``x`` as a (rows, channels) matrix, in fewer and faster passes over it.

        The sums over the rows are ``column_sums`` (BLAS products with a vector of ones,
        blocked so that they round as a float64 sum; NumPy's sums down the rows of a few
        channels are several times slower); the passes with one number per channel run on
        wide lines (``kernels.channels.lines``). Forward keeps ``x − mean``; the variance is
        ``mean((x − mean)²)`` as before, the output Keras's ``x·inv + (beta − mean·inv)``,
        written over the squares. Backward reuses the weight gradients' sums for the input
        gradient: with ``x̂ = (x − mean)·r``, ``Σdy`` and ``Σdy·x̂ = r·Σdy·(x − mean)``
        (beta's and gamma's gradients), ``dx = (dy − x̂·Σdy·x̂/n − Σdy/n)·r·gamma``, the
        formula of ``standardize_backward`` with its two means written out, as
        ``dy·inv − (x − mean)·(r·inv·Σdy·x̂/n) − inv·Σdy/n``.
        """
        c = x.shape[-1]
        n = x.size // c
        k = lines(n, c)
        dtype = x.dtype.type
        wide = x.reshape(-1, k * c)  # k rows of c channels a line

        def tile(vector):
            return xp.tile(vector, k)

        mean = column_sums(x.reshape(n, c)) / dtype(n)
        centered = wide - tile(mean)
        y = centered * centered  # the squares, then the output
        var = column_sums(y.reshape(n, c)) / dtype(n)
        keep = self.momentum
        moving_mean, moving_var = self.weights["moving_mean"], self.weights["moving_variance"]
        moving_mean[...] = moving_mean * keep + mean * (1.0 - keep)
        moving_var[...] = moving_var * keep + var * (1.0 - keep)
        r = 1 / xp.sqrt(var + dtype(self.epsilon))
        gamma = self.weights["gamma"] if self.scale else None
        inv = r if gamma is None else r * gamma
        shift = -mean * inv
        if self.center:
            shift += self.weights["beta"]
        xp.multiply(wide, tile(inv), out=y)
        y += tile(shift)

        def backward(dy, need_dx=True):
            dy_wide = dy.reshape(-1, k * c)
            sum_dy = column_sums(dy_wide.reshape(n, c))
            product = dy_wide * centered
            sum_dy_x_hat = column_sums(product.reshape(n, c)) * r
            if self.scale:
                self.grads["gamma"] += sum_dy_x_hat
            if self.center:
                self.grads["beta"] += sum_dy
            if not need_dx:
                return None
            dx = xp.multiply(dy_wide, tile(inv), out=product)
            dx -= centered * tile(r * inv * sum_dy_x_hat / dtype(n))
            dx -= tile(inv * sum_dy / dtype(n))
            return dx.reshape(x.shape)

        return y.reshape(x.shape), backward

    def _synchronized_training(self, x, axis, others, wshape):
        """``forward`` in training on one rank of a data-parallel run, with the statistics of
        the global batch: the sums of ``x`` and of ``(x − mean)²`` over every rank's shard
        (two passes, as ``moments``), and in backward the sums of ``dy`` and ``dy·x̂``.

        A rank's ``dy`` is the gradient of its shard's mean loss; ``sync.weight`` (its share
        of the batch) turns it into its part of the global batch's: the global sums are of
        ``dy·weight``, and this rank's ``dx`` is scaled back by ``1/weight``, as the rest of
        its backward pass is (the gradients are weighted once, when they are summed).
        """
        sync = self.sync
        dtype = x.dtype.type
        count = x.size // x.shape[axis]  # this rank's values per feature
        total, n = sync.sum([x.sum(axis=others, dtype=xp.float64), float(count)])
        mean = (total / n).astype(x.dtype).reshape(wshape)
        centered = x - mean
        (squares,) = sync.sum([(centered * centered).sum(axis=others, dtype=xp.float64)])
        var = (squares / n).astype(x.dtype).reshape(wshape)
        keep = self.momentum
        moving_mean, moving_var = self.weights["moving_mean"], self.weights["moving_variance"]
        moving_mean[...] = moving_mean * keep + mean.reshape(-1) * (1.0 - keep)
        moving_var[...] = moving_var * keep + var.reshape(-1) * (1.0 - keep)
        r = 1 / xp.sqrt(var + dtype(self.epsilon))
        gamma = self.weights["gamma"].reshape(wshape) if self.scale else None
        inv = r if gamma is None else r * gamma
        y = centered * inv
        if self.center:
            y += self.weights["beta"].reshape(wshape)

        def backward(dy, need_dx=True):
            x_hat = centered * r
            sum_dy = dy.sum(axis=others)
            sum_dy_x_hat = (dy * x_hat).sum(axis=others)
            if self.scale:
                self.grads["gamma"] += sum_dy_x_hat.reshape(-1)
            if self.center:
                self.grads["beta"] += sum_dy.reshape(-1)
            if not need_dx:
                return None
            w = sync.weight
            g_sum, gx_sum = sync.sum([sum_dy * w, sum_dy_x_hat * w])
            scale = 1.0 / (n * w)
            dx = dy - x_hat * (gx_sum * scale).astype(x.dtype).reshape(wshape)
            dx -= (g_sum * scale).astype(x.dtype).reshape(wshape)
            return dx * inv

        return y, backward

