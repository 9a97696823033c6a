"""GroupNormalization: the channels of ``axis`` split into ``groups``, each sample
standardized per group (over the group's channels and every other axis of the sample), then
``y = x̂·gamma + beta`` per channel.

As Keras: the input is viewed with the channel axis split into ``(groups, channels //
groups)``, the mean and biased variance taken over every axis of that view but the batch and
the group axis, and ``inv = rsqrt(var + ε)·gamma``, ``y = x·inv + (beta − mean·inv)``.
``groups: -1`` gives one group per channel (instance normalization); ``groups: 1`` is a
LayerNormalization over the whole sample with per-channel weights.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Strict, WithJsonSchema

from kconf.args.fields import Bool, PositiveFloat, config_error
from kconf.args.layer import Axis, Initializer, LayerArgs
from kconf.engine.layers.base import Layer, WeightSpec
from kconf.engine.layers.layer_normalization import normalized_axes, standardize_affine
from kconf.errors import ShapeError
from kconf.shapes import format_shape
from kconf.text import show


def _groups(value: Any) -> int:
    if value == 0 or value < -1:
        raise config_error("groups", "groups must be a positive integer, or -1 for one group "
                                     f"per channel, got {show(value)}")
    return value


#: A number of groups, or -1 (one per channel).
Groups = Annotated[int, Strict(), AfterValidator(_groups),
                   WithJsonSchema({"anyOf": [{"type": "integer", "exclusiveMinimum": 0},
                                             {"const": -1}]})]


class GroupNormalizationArgs(LayerArgs):
    """``GroupNormalization(groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, ...)``."""

    groups: Groups = 32
    axis: Axis = -1
    epsilon: PositiveFloat = 1e-3
    center: Bool = True
    scale: Bool = True
    beta_initializer: Initializer = "zeros"
    gamma_initializer: Initializer = "ones"


class GroupNormalization(Layer):
    """Normalize each sample per group of channels.

    Args:
        groups: how many groups the channels of ``axis`` form (it must divide them); -1
            for one group per channel.
        axis: the channel axis (not the batch axis).
        epsilon: added to the variance.
        center: learn ``beta``.
        scale: learn ``gamma``.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)
    input_grads_optional = True

    def __init__(self, groups: int = 32, axis: int = -1, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer="zeros",
                 gamma_initializer="ones", **kwargs):
        super().__init__(**kwargs)
        self.groups = groups
        self.axis = axis
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer

    def _split(self, input_shape) -> tuple[int, int, int]:
        """(the channel axis, its channels, the number of groups), or a ShapeError."""
        (axis,) = normalized_axes(self, input_shape, self.axis)
        channels = input_shape[axis]
        groups = channels if self.groups == -1 else self.groups
        if channels % groups:
            raise ShapeError(
                f"GroupNormalization: groups ({groups}) must divide the {channels} channels "
                f"of axis {axis}, got input shape {format_shape(input_shape)}")
        return axis, channels, groups

    def compute_output_shape(self, input_shape):
        self._split(input_shape)
        return input_shape

    def weight_specs(self, input_shape):
        _, channels, _ = self._split(input_shape)
        specs = []
        if self.scale:
            specs.append(WeightSpec("gamma", (channels,), self.gamma_initializer))
        if self.center:
            specs.append(WeightSpec("beta", (channels,), self.beta_initializer))
        return specs

    def forward(self, x, training=False, rng=None):
        axis, channels, groups = self._split((None, *x.shape[1:]))
        # the grouped view: (..., groups, channels // groups, ...) at the channel axis
        grouped = (*x.shape[:axis], groups, channels // groups, *x.shape[axis + 1:])
        wshape = [1] * len(grouped)
        wshape[axis:axis + 2] = groups, channels // groups
        reduce = tuple(a for a in range(1, len(grouped)) if a != axis)
        others = tuple(a for a in range(len(grouped)) if a not in (axis, axis + 1))
        xg = x.reshape(grouped)
        y, grouped_backward = standardize_affine(self, xg, reduce, others, wshape)

        def backward(dy, need_dx=True):
            dx = grouped_backward(dy.reshape(grouped), need_dx)
            return None if dx is None else dx.reshape(x.shape)

        return y.reshape(x.shape), backward
