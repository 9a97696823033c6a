"""The layer contract every engine layer follows.

Three phases (see STYLE.md): the constructor takes Keras's keyword arguments and validates
nothing the schema already did; ``compute_output_shape`` and ``weight_specs`` work on shapes
alone (so ``validate``/``summary`` need no arrays); ``build`` creates the weights; ``forward``
returns ``(y, backward)`` where ``backward(dy)`` returns ``dx`` and *adds* into ``self.grads``.
Nothing about one call is stored on ``self``: a layer called twice (shared) just works.

``flops(input_shape)`` is the forward cost of one sample, by one convention for every layer:
2 FLOPs per multiply-add of the matrix products (Dense, Conv2D, the recurrent layers' input
and recurrent products, Dot); elementwise work (activations, bias, pooling, dropout, merges,
embedding lookups) counts 0. A training step costs about 3 × forward (forward, gradient of
the inputs, gradient of the weights), the convention of the issue's numbers and of the
reference scripts. A size that is unknown (None outside the batch axis) makes the count 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kconf.engine.backend import floatx, xp
from kconf.engine import initializers
from kconf.errors import ShapeError
from kconf.graph.nodes import NodeAPI

Shape = tuple[int | None, ...]
Backward = Callable[[Any], Any]


@dataclass(frozen=True)
class WeightSpec:
    """One weight: Keras name ('kernel', 'bias', ...), shape, and initializer spec."""

    name: str
    shape: tuple[int, ...]
    initializer: Any = "zeros"
    trainable: bool = True


class Layer(NodeAPI):
    """Base class. Subclasses set ``n_inputs`` (1, or None for any number >= 2) and implement
    ``compute_output_shape``, ``forward`` and, if they have weights, ``weight_specs``.

    ``forward`` returns ``(y, backward)``; ``backward(dy)`` adds the weight gradients into
    ``grads`` and returns the input gradient(s). Layers with ``input_grads_optional`` also
    take ``backward(dy, need_dx=False)``, which only adds the weight gradients (the graph
    runner asks for that where no gradient flows further back).

    A layer keeps no record of its calls: the graph does (``kconf.graph``); Keras's node API
    (``layer.output``, ``get_output_at(i)`` ...) comes from ``NodeAPI``, which reads it."""

    n_inputs: int | None = 1
    input_grads_optional: bool = False

    def __init__(self, name: str | None = None, trainable: bool = True):
        self.name = name or ""
        self.trainable = trainable
        self.weights: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.built = False

    # --- shape phase -------------------------------------------------------------------
    def compute_output_shape(self, input_shape: Shape) -> Shape:
        raise NotImplementedError

    def weight_specs(self, input_shape: Shape) -> list[WeightSpec]:
        return []

    def count_params(self, input_shape: Shape) -> int:
        total = 0
        for spec in self.weight_specs(input_shape):
            n = 1
            for d in spec.shape:
                n *= d
            total += n
        return total

    def flops(self, input_shape: Shape) -> int:
        """Forward floating-point operations for ONE sample (see the module docstring).

        Args:
            input_shape: the shape of one call's input, batch axis first (None); a list of
                shapes for layers with several inputs.

        Returns:
            2 per multiply-add of the layer's matrix products; 0 for layers without any, and
            0 where a size the count needs is unknown.
        """
        return 0

    # --- weights -----------------------------------------------------------------------
    def build(self, input_shape: Shape, rng, dtype=floatx) -> None:
        """Create weights in Keras order with the given ``numpy.random.Generator``."""
        self.weights = {}
        for spec in self.weight_specs(input_shape):
            value = initializers.get(spec.initializer)(spec.shape, rng)
            self.weights[spec.name] = xp.ascontiguousarray(value, dtype=dtype)
        self.zero_grads()
        self.built = True

    def zero_grads(self) -> None:
        self.grads = {k: xp.zeros_like(v) for k, v in self.weights.items()}

    def get_weights(self) -> list:
        return [w.copy() for w in self.weights.values()]

    def set_weights(self, values) -> None:
        values = list(values)
        if len(values) != len(self.weights):
            raise ValueError(
                f"layer {self.name!r} expects {len(self.weights)} weight arrays, got {len(values)}"
            )
        for (key, old), new in zip(self.weights.items(), values):
            new = xp.asarray(new)
            if new.shape != old.shape:
                raise ValueError(
                    f"layer {self.name!r} weight {key!r} has shape {old.shape}, got {new.shape}"
                )
            old[...] = new  # in place: optimizers and caches keep referring to the same array

    # --- compute -----------------------------------------------------------------------
    def forward(self, x, training: bool = False, rng=None) -> tuple[Any, Backward]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def require_rank(layer: Layer, input_shape: Shape, rank: int, what: str) -> None:
    """Raise a ShapeError unless ``input_shape`` (batch included) has ``rank`` dimensions."""
    if len(input_shape) != rank:
        raise ShapeError(
            f"{type(layer).__name__} expects {what} (rank {rank} with the batch axis), "
            f"got input shape {format_shape(input_shape)}"
        )


def known_size(dims) -> int | None:
    """The product of ``dims`` (1 for none), or None when any of them is unknown (None)."""
    total = 1
    for d in dims:
        if d is None:
            return None
        total *= d
    return total


def format_shape(shape: Shape) -> str:
    """``(None, 32)`` the way Keras prints shapes."""
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"
