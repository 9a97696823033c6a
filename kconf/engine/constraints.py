"""Weight constraints (``keras.constraints``): a projection applied to a weight, in place,
after each optimizer update, as Keras's optimizer applies them.

Norms are taken over ``axis`` (Keras's default 0: for a Dense kernel, each unit's incoming
weights), in the weight's dtype, with Keras's ε = 1e-7 in the denominators.
"""
from __future__ import annotations

from typing import Any

from kconf.engine.backend import xp

_EPSILON = 1e-7


def _norms(w, axis):
    return xp.sqrt(xp.square(w).sum(axis=axis, keepdims=True))


def _axis(axis):
    return tuple(axis) if isinstance(axis, (list, tuple)) else axis


class MaxNorm:
    """Scale each slice whose norm exceeds ``max_value`` down to it (``w · min(‖w‖, m) /
    (ε + ‖w‖)``: the others shrink by ε, as in Keras)."""

    class_name = "MaxNorm"

    def __init__(self, max_value: float = 2.0, axis=0):
        self.max_value = max_value
        self.axis = _axis(axis)

    def __call__(self, w) -> None:
        norms = _norms(w, self.axis)
        desired = xp.clip(norms, 0, w.dtype.type(self.max_value))
        w *= desired / (w.dtype.type(_EPSILON) + norms)

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": _keras_axis(self.axis)}


class MinMaxNorm:
    """Move each slice's norm into ``[min_value, max_value]`` by ``rate``."""

    class_name = "MinMaxNorm"

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis=0):
        self.min_value = min_value
        self.max_value = max_value
        self.rate = rate
        self.axis = _axis(axis)

    def __call__(self, w) -> None:
        t = w.dtype.type
        norms = _norms(w, self.axis)
        desired = (t(self.rate) * xp.clip(norms, t(self.min_value), t(self.max_value))
                   + t(1 - self.rate) * norms)
        w *= desired / (t(_EPSILON) + norms)

    def get_config(self) -> dict[str, Any]:
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": _keras_axis(self.axis)}


class NonNeg:
    """Negative entries become 0."""

    class_name = "NonNeg"

    def __call__(self, w) -> None:
        xp.maximum(w, 0, out=w)

    def get_config(self) -> dict[str, Any]:
        return {}


class UnitNorm:
    """Each slice divided by its norm (+ ε)."""

    class_name = "UnitNorm"

    def __init__(self, axis=0):
        self.axis = _axis(axis)

    def __call__(self, w) -> None:
        w /= w.dtype.type(_EPSILON) + _norms(w, self.axis)

    def get_config(self) -> dict[str, Any]:
        return {"axis": _keras_axis(self.axis)}


def _keras_axis(axis):
    return list(axis) if isinstance(axis, tuple) else axis


CONSTRAINTS = {c.class_name: c for c in (MaxNorm, MinMaxNorm, NonNeg, UnitNorm)}


def get(spec: tuple[str, dict[str, Any]]):
    """A constraint from ``(Keras class name, arguments)``."""
    name, args = spec
    return CONSTRAINTS[name](**args)
