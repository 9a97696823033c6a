"""Dense: ``y = activation(x @ kernel + bias)`` on the last axis (so rank-3 inputs work per step)."""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import Bool, PositiveInt
from kconf.args.layer import Activation, Initializer, LayerArgs
from kconf.engine import activations
from kconf.engine.layers.base import Layer, WeightSpec
from kconf.engine.ops import current_ops
from kconf.errors import ShapeError
from kconf.shapes import known_size


class DenseArgs(LayerArgs):
    """``Dense(units, activation=None, use_bias=True, ...)``; ``input_dim`` is Keras's shortcut
    for ``input_shape: [input_dim]``."""

    shape_shortcuts: ClassVar[tuple[str, ...]] = ("input_dim",)

    units: PositiveInt
    activation: Activation | None = None
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"
    input_dim: PositiveInt | None = None

    def shortcut_shape(self) -> tuple[int | None, ...] | None:
        """``input_dim: 20`` means ``input_shape: [20]``."""
        return None if self.input_dim is None else (self.input_dim,)


class Dense(Layer):
    supports_masking = True  # a mask passes through (kconf.engine.masks)
    input_grads_optional = True

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ShapeError(
                f"Dense needs inputs with a known last dimension, got {input_shape}"
            )
        return (*input_shape[:-1], self.units)

    def weight_specs(self, input_shape):
        specs = [WeightSpec("kernel", (input_shape[-1], self.units), self.kernel_initializer)]
        if self.use_bias:
            specs.append(WeightSpec("bias", (self.units,), self.bias_initializer))
        return specs

    def flops(self, input_shape):
        """2 · features · units per position: ``x @ kernel`` at each entry of the middle axes."""
        positions = known_size(input_shape[1:-1])
        if positions is None or input_shape[-1] is None:
            return 0
        return 2 * positions * input_shape[-1] * self.units

    def forward(self, x, training=False, rng=None):
        kernel = self.weights["kernel"]
        ops = current_ops()  # inside a parallel step its products go to the workers
        flat_x = x.reshape(-1, x.shape[-1])  # the middle axes as rows: one 2-D product
        z = ops.matmul(flat_x, kernel).reshape(*x.shape[:-1], self.units)
        if self.use_bias:
            z += self.weights["bias"]
        y, act_backward = activations.in_place(self.activation)(z)  # z is ours

        def backward(dy, need_dx=True):
            dz = act_backward(dy)
            flat_dz = dz.reshape(-1, dz.shape[-1])
            ops.add_matmul(self.grads["kernel"], flat_x.T, flat_dz)
            if self.use_bias:
                self.grads["bias"] += ops.sum_rows(flat_dz)
            return ops.matmul(flat_dz, kernel.T).reshape(x.shape) if need_dx else None

        return y, backward
