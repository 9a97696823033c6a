"""SeparableConv1D and SeparableConv2D: a depthwise convolution (no bias, no activation)
followed by a pointwise one, a 1x1 convolution to ``filters`` channels with the bias and the
activation (Keras's ``SeparableConv*``, channels_last). Both are ``convolution.convolve``:
the depthwise one grouped by input channel (see ``depthwise.py``), the pointwise one plain.
"""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import Bool, IntPair, IntSingle, PositiveInt
from kconf.args.layer import Activation, Initializer, LayerArgs, Padding
from kconf.engine import activations
from kconf.engine.layers.base import WeightSpec
from kconf.engine.layers.convolution import ConvWindow, convolve


class Separable(ConvWindow):
    """A separable convolution with ``rank`` spatial axes (Keras's ``BaseSeparableConv``).

    Args:
        filters: output channels of the pointwise convolution.
        kernel_size, strides, padding, dilation_rate: the depthwise convolution's.
        depth_multiplier: depthwise filters per input channel.
        activation: activation name, None for linear (after the bias).
        use_bias: add a bias per output channel.
        depthwise_initializer, pointwise_initializer, bias_initializer: initializer specs.

    Weights: ``depthwise_kernel`` (*kernel_size, cin, depth_multiplier),
    ``pointwise_kernel`` (*1s, cin·depth_multiplier, filters), then ``bias`` (filters,).
    """

    rank: ClassVar[int]
    input_grads_optional = True
    uses_workers = True

    def __init__(self, filters: int, kernel_size, strides, padding: str, dilation_rate,
                 depth_multiplier: int, activation, use_bias: bool, depthwise_initializer,
                 pointwise_initializer, bias_initializer, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self._set_window(kernel_size, strides, padding, dilation_rate)
        self.depth_multiplier = depth_multiplier
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.depthwise_initializer = depthwise_initializer
        self.pointwise_initializer = pointwise_initializer
        self.bias_initializer = bias_initializer

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._spatial(input_shape), self.filters)

    def weight_specs(self, input_shape):
        middle = input_shape[-1] * self.depth_multiplier
        specs = [WeightSpec("depthwise_kernel",
                            (*self.kernel_size, input_shape[-1], self.depth_multiplier),
                            self.depthwise_initializer),
                 WeightSpec("pointwise_kernel", (*(1,) * self.rank, middle, self.filters),
                            self.pointwise_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.filters,), self.bias_initializer))
        return specs

    def flops(self, input_shape):
        """Per output position: 2 · prod(kernel_size) · cin·depth_multiplier (depthwise),
        plus 2 · cin·depth_multiplier · filters (pointwise)."""
        sizes = self._positions_and_taps(input_shape)
        if sizes is None:
            return 0
        positions, taps = sizes
        middle = input_shape[-1] * self.depth_multiplier
        return 2 * positions * middle * (taps + self.filters)

    def forward(self, x, training=False, rng=None):
        cin = x.shape[-1]
        depthwise = self.weights["depthwise_kernel"]
        pointwise = self.weights["pointwise_kernel"]
        out_shape = self._spatial(x.shape)
        grouped = depthwise.reshape(*self.kernel_size, 1, cin * self.depth_multiplier)
        middle, depthwise_backward = convolve(x, grouped, None, activations.get(None),
                                              self.strides, self.padding, self.dilation_rate,
                                              cin, out_shape)
        bias = self.weights["bias"] if self.use_bias else None
        ones = (1,) * self.rank
        y, pointwise_backward = convolve(middle, pointwise, bias, self.activation, ones,
                                         "valid", ones, 1, out_shape)

        def backward(dy, need_dx=True):
            dmiddle, dpointwise, dbias = pointwise_backward(dy)
            dx, ddepthwise, _ = depthwise_backward(dmiddle, need_dx)
            self.grads["depthwise_kernel"] += ddepthwise.reshape(depthwise.shape)
            self.grads["pointwise_kernel"] += dpointwise
            if self.use_bias:
                self.grads["bias"] += dbias
            return dx

        return y, backward


class SeparableConv1DArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True

    filters: PositiveInt
    kernel_size: IntSingle
    strides: IntSingle = (1,)
    padding: Padding = "valid"
    dilation_rate: IntSingle = (1,)
    depth_multiplier: PositiveInt = 1
    activation: Activation | None = None
    use_bias: Bool = True
    depthwise_initializer: Initializer = "glorot_uniform"
    pointwise_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"


class SeparableConv1D(Separable):
    """Keras ``SeparableConv1D``: input (batch, steps, channels)."""

    rank = 1

    def __init__(self, filters: int, kernel_size, strides=(1,), padding: str = "valid",
                 dilation_rate=(1,), depth_multiplier: int = 1, activation=None,
                 use_bias: bool = True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, dilation_rate,
                         depth_multiplier, activation, use_bias, depthwise_initializer,
                         pointwise_initializer, bias_initializer, **kwargs)


class SeparableConv2DArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True

    filters: PositiveInt
    kernel_size: IntPair
    strides: IntPair = (1, 1)
    padding: Padding = "valid"
    dilation_rate: IntPair = (1, 1)
    depth_multiplier: PositiveInt = 1
    activation: Activation | None = None
    use_bias: Bool = True
    depthwise_initializer: Initializer = "glorot_uniform"
    pointwise_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"


class SeparableConv2D(Separable):
    """Keras ``SeparableConv2D``: input (batch, height, width, channels)."""

    rank = 2

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 dilation_rate=(1, 1), depth_multiplier: int = 1, activation=None,
                 use_bias: bool = True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, dilation_rate,
                         depth_multiplier, activation, use_bias, depthwise_initializer,
                         pointwise_initializer, bias_initializer, **kwargs)
