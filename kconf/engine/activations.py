"""Activations: each is ``f(z) -> (y, backward)`` with ``backward(dy) -> dz``. (STUB: being completed.)"""
from __future__ import annotations

from kconf.engine.backend import xp


def linear(z):
    return z, lambda dy: dy


def relu(z):
    mask = z > 0
    return z * mask, lambda dy: dy * mask


def softmax(z):
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)

    def backward(dy):
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))

    return y, backward


ACTIVATIONS = {"linear": linear, "relu": relu, "softmax": softmax}


def get(name):
    """The activation function for a Keras name (None means linear)."""
    if name is None:
        return linear
    if callable(name):
        return name
    return ACTIVATIONS[name]
