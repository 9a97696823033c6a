"""Initializers with Keras 3 formulas.

``get(spec)`` returns ``init(shape, rng) -> ndarray`` where ``rng`` is a
``numpy.random.Generator``; the arrays come back in float64 and the caller casts them. A spec is
a Keras name (``"he_normal"``) or a one-key dict ``{name: {arg: value}}`` for the initializers
that take arguments (``{"random_normal": {"stddev": 0.01}}``).

Every entry of ``INITIALIZERS`` is itself an ``init(shape, rng, **args)`` whose keyword
arguments carry Keras's defaults, so ``INITIALIZERS[name](shape, rng)`` works directly.
"""
from __future__ import annotations

import functools
import inspect
import math

from kconf.engine.backend import xp

# Standard deviation of a unit normal truncated to [-2, 2]; Keras divides by it so that the
# truncated draws of the variance-scaling initializers have the intended variance.
_TRUNCATED_STD = 0.87962566103423978


def _fans(shape):
    """Keras's (fan_in, fan_out): a conv kernel (..., in, out) counts its receptive field."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) < 2:
        n = shape[0] if shape else 1
        return n, n
    rf = math.prod(shape[:-2])
    return shape[-2] * rf, shape[-1] * rf


def _truncated(shape, rng, mean, stddev):
    """Normal(mean, stddev) with every draw beyond 2 stddev drawn again."""
    out = rng.standard_normal(size=shape)
    flat = out.reshape(-1)
    bad = xp.flatnonzero(xp.abs(flat) > 2.0)
    while bad.size:
        flat[bad] = rng.standard_normal(size=bad.size)
        bad = bad[xp.abs(flat[bad]) > 2.0]
    return mean + stddev * out


def _variance_scaling(shape, rng, scale, mode, distribution):
    """Keras VarianceScaling: variance scale / n, n = fan_in, fan_out or their mean;
    ``normal`` and ``truncated_normal`` are the truncated normal (Keras's meaning)."""
    fan_in, fan_out = _fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    n = max(1.0, n)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * scale / n)
        return rng.uniform(-limit, limit, size=shape)
    if distribution == "untruncated_normal":
        return rng.normal(0.0, math.sqrt(scale / n), size=shape)
    return _truncated(shape, rng, 0.0, math.sqrt(scale / n) / _TRUNCATED_STD)


def glorot_uniform(shape, rng):
    """Uniform in ±sqrt(6 / (fan_in + fan_out))."""
    return _variance_scaling(shape, rng, 1.0, "fan_avg", "uniform")


def glorot_normal(shape, rng):
    """Truncated normal with variance 2 / (fan_in + fan_out)."""
    return _variance_scaling(shape, rng, 1.0, "fan_avg", "normal")


def he_uniform(shape, rng):
    """Uniform in ±sqrt(6 / fan_in)."""
    return _variance_scaling(shape, rng, 2.0, "fan_in", "uniform")


def he_normal(shape, rng):
    """Truncated normal with variance 2 / fan_in."""
    return _variance_scaling(shape, rng, 2.0, "fan_in", "normal")


def lecun_uniform(shape, rng):
    """Uniform in ±sqrt(3 / fan_in)."""
    return _variance_scaling(shape, rng, 1.0, "fan_in", "uniform")


def lecun_normal(shape, rng):
    """Truncated normal with variance 1 / fan_in."""
    return _variance_scaling(shape, rng, 1.0, "fan_in", "normal")


def variance_scaling(shape, rng, scale=1.0, mode="fan_in", distribution="truncated_normal"):
    """Keras VarianceScaling: variance ``scale / n`` (n: fan_in, fan_out or fan_avg), drawn
    from a truncated normal, a normal (``untruncated_normal``) or a uniform."""
    return _variance_scaling(shape, rng, scale, mode, distribution)


def zeros(shape, rng):
    """All zeros."""
    return xp.zeros(shape)


def ones(shape, rng):
    """All ones."""
    return xp.ones(shape)


def constant(shape, rng, value=0.0):
    """Every entry equal to ``value``."""
    return xp.full(shape, float(value))


def random_normal(shape, rng, mean=0.0, stddev=0.05):
    """Normal(mean, stddev)."""
    return rng.normal(mean, stddev, size=shape)


def random_uniform(shape, rng, minval=-0.05, maxval=0.05):
    """Uniform in [minval, maxval)."""
    return rng.uniform(minval, maxval, size=shape)


def truncated_normal(shape, rng, mean=0.0, stddev=0.05):
    """Normal(mean, stddev) with values beyond 2 stddev from the mean drawn again."""
    return _truncated(shape, rng, mean, stddev)


def orthogonal(shape, rng, gain=1.0):
    """Keras Orthogonal: QR of a normal (rows, cols) matrix, rows = prod(shape[:-1]).

    Q's columns are sign-corrected by the diagonal of R (so the result is uniformly
    distributed), transposed when rows < cols (then the rows are orthonormal), reshaped to
    ``shape`` and multiplied by ``gain``.
    """
    if len(shape) < 2:
        raise ValueError(
            f"the orthogonal initializer needs a shape of rank >= 2, got {tuple(shape)}"
        )
    rows = math.prod(shape[:-1])
    cols = shape[-1]
    a = rng.standard_normal(size=(max(rows, cols), min(rows, cols)))
    q, r = xp.linalg.qr(a)
    q = q * xp.sign(xp.diag(r))
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)


INITIALIZERS = {
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "lecun_uniform": lecun_uniform,
    "lecun_normal": lecun_normal,
    "variance_scaling": variance_scaling,
    "zeros": zeros,
    "ones": ones,
    "random_normal": random_normal,
    "random_uniform": random_uniform,
    "truncated_normal": truncated_normal,
    "constant": constant,
    "orthogonal": orthogonal,
}


def arguments(name: str) -> dict:
    """The keyword arguments the initializer ``name`` accepts, with their Keras defaults."""
    params = list(inspect.signature(INITIALIZERS[name]).parameters.values())[2:]
    return {p.name: p.default for p in params}


def get(spec):
    """The initializer for a spec.

    Args:
        spec: a name in ``INITIALIZERS``; a one-key dict ``{name: {arg: value}}`` (the args
            may be None or empty); or a function ``init(shape, rng)``, returned as is.

    Returns:
        ``init(shape, rng) -> ndarray`` (float64).

    Raises:
        KeyError: an unknown name.
        TypeError: a malformed spec or an argument the initializer does not take.
    """
    if callable(spec):
        return spec
    if isinstance(spec, str):
        return INITIALIZERS[spec]
    if isinstance(spec, dict) and len(spec) == 1:
        ((name, args),) = spec.items()
        fn = INITIALIZERS[name]
        args = dict(args or {})
        accepted = arguments(name)
        unknown = sorted(set(args) - set(accepted))
        if unknown:
            valid = ", ".join(accepted) or "none"
            raise TypeError(
                f"initializer {name!r} got unexpected argument(s) {', '.join(unknown)} "
                f"(valid: {valid})"
            )
        return functools.partial(fn, **args) if args else fn
    raise TypeError(f"an initializer is a name or a one-key dict {{name: {{args}}}}, got {spec!r}")
