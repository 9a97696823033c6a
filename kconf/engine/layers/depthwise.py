"""DepthwiseConv1D and DepthwiseConv2D: each input channel convolved with its own
``depth_multiplier`` filters (Keras's ``DepthwiseConv*``, channels_last).

A depthwise convolution is a grouped one with one group per input channel: Keras's kernel
(*kernel_size, cin, depth_multiplier) is, reshaped (no copy), the grouped kernel
(*kernel_size, 1, cin·depth_multiplier), whose output channel ``c·depth_multiplier + m`` is
input channel c's m-th filter, Keras's order. So the math is ``convolution.convolve`` with
``groups = cin``.
"""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import Bool, IntPair, IntSingle, PositiveInt
from kconf.args.layer import Activation, Initializer, LayerArgs, Padding
from kconf.engine import activations
from kconf.engine.layers.base import WeightSpec
from kconf.engine.layers.convolution import ConvWindow, convolve


class Depthwise(ConvWindow):
    """A depthwise convolution with ``rank`` spatial axes (Keras's ``BaseDepthwiseConv``).

    Args:
        kernel_size: int or ``rank`` ints.
        strides: int or ``rank`` ints.
        padding: 'valid' or 'same'.
        depth_multiplier: filters per input channel.
        dilation_rate: int or ``rank`` ints.
        activation: activation name, None for linear.
        use_bias: add a bias per output channel.
        depthwise_initializer, bias_initializer: initializer specs.

    Weights: ``kernel`` (*kernel_size, cin, depth_multiplier), then ``bias``
    (cin·depth_multiplier,).
    """

    rank: ClassVar[int]
    input_grads_optional = True
    uses_workers = True
    #: its ``kernel`` takes the ``depthwise_`` regularizer and constraint, as in Keras
    weight_option_names: ClassVar[dict[str, str]] = {"kernel": "depthwise"}

    def __init__(self, kernel_size, strides, padding: str, depth_multiplier: int,
                 dilation_rate, activation, use_bias: bool, depthwise_initializer,
                 bias_initializer, **kwargs):
        super().__init__(**kwargs)
        self._set_window(kernel_size, strides, padding, dilation_rate)
        self.depth_multiplier = depth_multiplier
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.depthwise_initializer = depthwise_initializer
        self.bias_initializer = bias_initializer

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._spatial(input_shape),
                input_shape[-1] * self.depth_multiplier)

    def weight_specs(self, input_shape):
        cin = input_shape[-1]
        specs = [WeightSpec("kernel", (*self.kernel_size, cin, self.depth_multiplier),
                            self.depthwise_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (cin * self.depth_multiplier,),
                                    self.bias_initializer))
        return specs

    def flops(self, input_shape):
        """2 · prod(kernel_size) per output value."""
        sizes = self._positions_and_taps(input_shape)
        if sizes is None:
            return 0
        positions, taps = sizes
        return 2 * positions * taps * input_shape[-1] * self.depth_multiplier

    def forward(self, x, training=False, rng=None):
        cin = x.shape[-1]
        kernel = self.weights["kernel"]
        grouped = kernel.reshape(*self.kernel_size, 1, cin * self.depth_multiplier)
        bias = self.weights["bias"] if self.use_bias else None
        y, convolution_backward = convolve(x, grouped, bias, self.activation, self.strides,
                                           self.padding, self.dilation_rate, cin,
                                           self._spatial(x.shape))

        def backward(dy, need_dx=True):
            dx, dkernel, dbias = convolution_backward(dy, need_dx)
            self.grads["kernel"] += dkernel.reshape(kernel.shape)
            if self.use_bias:
                self.grads["bias"] += dbias
            return dx

        return y, backward


class DepthwiseConv1DArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True

    kernel_size: IntSingle
    strides: IntSingle = (1,)
    padding: Padding = "valid"
    depth_multiplier: PositiveInt = 1
    dilation_rate: IntSingle = (1,)
    activation: Activation | None = None
    use_bias: Bool = True
    depthwise_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"


class DepthwiseConv1D(Depthwise):
    """Keras ``DepthwiseConv1D``: input (batch, steps, channels); ``kernel`` (k, cin,
    depth_multiplier)."""

    rank = 1

    def __init__(self, kernel_size, strides=(1,), padding: str = "valid",
                 depth_multiplier: int = 1, dilation_rate=(1,), activation=None,
                 use_bias: bool = True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, dilation_rate,
                         activation, use_bias, depthwise_initializer, bias_initializer,
                         **kwargs)


class DepthwiseConv2DArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True

    kernel_size: IntPair
    strides: IntPair = (1, 1)
    padding: Padding = "valid"
    depth_multiplier: PositiveInt = 1
    dilation_rate: IntPair = (1, 1)
    activation: Activation | None = None
    use_bias: Bool = True
    depthwise_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"


class DepthwiseConv2D(Depthwise):
    """Keras ``DepthwiseConv2D``: input (batch, height, width, channels); ``kernel`` (kh, kw,
    cin, depth_multiplier)."""

    rank = 2

    def __init__(self, kernel_size, strides=(1, 1), padding: str = "valid",
                 depth_multiplier: int = 1, dilation_rate=(1, 1), activation=None,
                 use_bias: bool = True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, dilation_rate,
                         activation, use_bias, depthwise_initializer, bias_initializer,
                         **kwargs)
