"""ActivityRegularization: the identity, adding an L1/L2 penalty of its output to the loss
(``keras.layers.ActivityRegularization``)."""
from __future__ import annotations

from kconf.args.fields import NonNegativeFloat
from kconf.args.layer import LayerArgs
from kconf.engine.added_losses import add_loss
from kconf.engine.backend import xp
from kconf.engine.layers.base import Layer


class ActivityRegularizationArgs(LayerArgs):
    """``ActivityRegularization(l1=0.0, l2=0.0)``."""

    l1: NonNegativeFloat = 0.0
    l2: NonNegativeFloat = 0.0


class ActivityRegularization(Layer):
    """``y = x``; each call adds ``(l1 · sum|x| + l2 · sum x²) / batch size`` to the loss
    (Keras's L1L2 activity regularizer, normalized by the batch as Keras 3 does), in training
    and evaluation alike (see ``kconf.engine.added_losses``).

    Args:
        l1: the L1 factor.
        l2: the L2 factor.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)
    adds_loss = True

    def __init__(self, l1: float = 0.0, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.l1 = l1
        self.l2 = l2

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def penalty(self, x) -> float:
        """The loss one call on ``x`` adds."""
        total = 0.0
        if self.l1:
            total += self.l1 * float(xp.abs(x).sum())
        if self.l2:
            total += self.l2 * float((x * x).sum())
        return total / x.shape[0]

    def forward(self, x, training=False, rng=None):
        add_loss(self.penalty(x))
        n = x.shape[0]

        def backward(dy):
            dx = dy.copy()
            if self.l1:
                dx += x.dtype.type(self.l1 / n) * xp.sign(x)
            if self.l2:
                dx += x.dtype.type(2.0 * self.l2 / n) * x
            return dx

        return x, backward
