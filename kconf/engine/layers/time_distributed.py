"""TimeDistributed: one single-input layer applied to every time step of a (N, T, ...) input.

The batch and time axes are folded into one, ``(N·T, ...)``, the inner layer runs once on
that, and its output is unfolded to ``(N, T, ...)``: one vectorized call, no loop over steps.

The wrapper owns no weights: ``weights`` and ``grads`` *are* the inner layer's (read-through
properties), so wrapping a layer that is already built, or used elsewhere in the graph,
shares its weights, and gradients of every step add into the inner layer's ``grads``.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from kconf.args.fields import config_error
from kconf.args.layer import LayerArgs
from kconf.engine.backend import floatx
from kconf.engine.layers.base import Layer
from kconf.errors import ShapeError
from kconf.shapes import format_shape



class TimeDistributedArgs(LayerArgs):
    """``TimeDistributed(layer)``: ``layer`` is a layer (``{Dense: {units: 10}}``) or the name of
    a model of the ``models`` section. Its type, ``InnerLayer``, is the config's union of every
    layer (``kconf.config.layers`` completes this model with it). The graph constructor builds
    the inner layer (or model) itself, so ``layer_kwargs()`` is empty."""

    keras_ignored: ClassVar[frozenset[str]] = frozenset({"layer"})  # read apart on import

    layer: InnerLayer  # noqa: F821 (resolved by kconf.config.layers)

    @model_validator(mode="after")
    def _shape_on_the_wrapper(self):
        if not isinstance(self.layer, str):
            inner = self.layer.args
            for field in (*inner.shape_shortcuts, "input_shape", "batch_input_shape"):
                if getattr(inner, field) is not None:
                    raise config_error(
                        "input_hints", "give the input shape to TimeDistributed (with the "
                                       "time axis first), not to the layer it wraps",
                        at=f"layer.{self.layer.tag}.{field}")
            if getattr(inner, "activity_regularizer", None) is not None:
                # Keras 3's TimeDistributed calls the wrapped layer's call(), not the layer:
                # the regularizer adds no loss there
                raise config_error(
                    "activity_regularizer",
                    "Keras's TimeDistributed ignores the activity_regularizer of the layer it "
                    "wraps (it adds no loss); for a penalty on the output, put an "
                    "ActivityRegularization layer after the TimeDistributed",
                    at=f"layer.{self.layer.tag}.activity_regularizer")
        return self

    @property
    def model_name(self) -> str | None:
        """The model this wraps (a name of the ``models`` section), or None for a layer."""
        return self.layer if isinstance(self.layer, str) else None

    def layer_kwargs(self) -> dict[str, Any]:
        """Nothing: the wrapped layer is built by the graph constructor from ``layer``."""
        return {}


class TimeDistributed(Layer):
    """Apply ``layer`` to every time step (axis 1) of its input.

    Args:
        layer: any single-input ``Layer`` instance (a Dense, a Conv2D, a model used as a
            layer); it keeps its weights if it is already built.
        **kwargs: name, trainable.
    """

    supports_masking = True  # a mask passes through (kconf.engine.masks)

    def __init__(self, layer: Layer, **kwargs):
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed wraps a Layer instance, got {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer
        if not self.trainable:  # a frozen wrapper freezes what it wraps (Keras's setter)
            self.trainable = False

    @property
    def input_grads_optional(self) -> bool:
        return self.layer.input_grads_optional

    # --- weights: the inner layer's, read through ----------------------------------------
    @property
    def weights(self):
        return self.layer.weights

    @weights.setter
    def weights(self, value):
        if "layer" not in vars(self):
            return  # Layer.__init__'s `self.weights = {}`, before the inner layer is attached
        self.layer.weights = value

    @property
    def grads(self):
        return self.layer.grads

    @grads.setter
    def grads(self, value):
        if "layer" not in vars(self):
            return  # Layer.__init__'s `self.grads = {}`
        self.layer.grads = value

    def zero_grads(self) -> None:
        self.layer.zero_grads()

    @property
    def sublayers(self) -> list[Layer]:
        return [self.layer] if "layer" in vars(self) else []

    def weight_entries(self, input_shape):
        """The inner layer's weights at one step's shape; none trainable while frozen."""
        return [(owner, spec, trainable and self.trainable) for owner, spec, trainable
                in self.layer.weight_entries(self._step_shape(input_shape))]

    def get_weights(self) -> list:
        return self.layer.get_weights()

    def set_weights(self, values) -> None:
        self.layer.set_weights(values)

    # --- shapes -----------------------------------------------------------------------------
    def _step_shape(self, input_shape):
        """The shape the inner layer sees: batch and time folded into one axis."""
        if self.layer.n_inputs != 1:
            raise ShapeError(f"TimeDistributed wraps layers that take one input; "
                             f"{type(self.layer).__name__} does not")
        input_shape = tuple(input_shape)
        if len(input_shape) < 3:
            raise ShapeError(f"TimeDistributed needs inputs of rank 3 or more (batch, time, ...), "
                             f"got input shape {format_shape(input_shape)}")
        n, t = input_shape[:2]
        return (None if n is None or t is None else n * t, *input_shape[2:])

    def compute_output_shape(self, input_shape):
        step = self._step_shape(input_shape)
        try:
            inner = self.layer.compute_output_shape(step)
        except ShapeError as exc:
            raise ShapeError(f"TimeDistributed({type(self.layer).__name__}) on input shape "
                             f"{format_shape(tuple(input_shape))}: {exc}") from exc
        return (input_shape[0], input_shape[1], *inner[1:])

    def weight_specs(self, input_shape):
        return self.layer.weight_specs(self._step_shape(input_shape))

    def count_params(self, input_shape) -> int:
        return self.layer.count_params(self._step_shape(input_shape))

    def flops(self, input_shape):
        """The inner layer's per-sample count on one step, times the number of steps (0 when
        that is unknown)."""
        steps = input_shape[1]
        if steps is None:
            return 0
        return steps * self.layer.flops((None, *tuple(input_shape)[2:]))

    def build(self, input_shape, rng, dtype=floatx) -> None:
        """Build the inner layer for one step's shape, unless it is built (then share it)."""
        if not self.layer.built:
            self.layer.build(self._step_shape(input_shape), rng, dtype=dtype)
        self.built = True

    # --- compute ----------------------------------------------------------------------------
    def forward(self, x, training=False, rng=None):
        n, t = x.shape[:2]
        y, inner_backward = self.layer.forward(x.reshape(n * t, *x.shape[2:]),
                                               training=training, rng=rng)

        def backward(dy, need_dx=True):
            dy = dy.reshape(n * t, *dy.shape[2:])
            if not need_dx:  # only asked when the inner layer's input_grads_optional
                inner_backward(dy, need_dx=False)
                return None
            return inner_backward(dy).reshape(x.shape)

        return y.reshape(n, t, *y.shape[1:]), backward
