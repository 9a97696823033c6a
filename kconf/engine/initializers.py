"""Initializers (STUB: being completed): ``get(spec)`` returns ``init(shape, rng) -> ndarray``."""
from __future__ import annotations

import math

from kconf.engine.backend import xp


def _fans(shape):
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) < 2:
        n = shape[0] if shape else 1
        return n, n
    rf = math.prod(shape[:-2])
    return shape[-2] * rf, shape[-1] * rf


def glorot_uniform(shape, rng):
    fan_in, fan_out = _fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def zeros(shape, rng):
    return xp.zeros(shape)


INITIALIZERS = {"glorot_uniform": glorot_uniform, "zeros": zeros}


def get(spec):
    if callable(spec):
        return spec
    return INITIALIZERS[spec]
