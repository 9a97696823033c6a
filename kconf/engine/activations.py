"""Activations with Keras 3 semantics.

Each activation is a function ``f(z) -> (y, backward)`` where ``backward(dy) -> dz`` is a
closure over what that call computed. Everything is elementwise and vectorized (softmax works
on the last axis), and the input dtype is kept: float32 in, float32 out (and the same for
``dz``). Constants are Python floats, which NumPy treats as weakly typed, so they never
promote a float32 array.

``in_place(f)`` is a variant of ``f`` that may overwrite its argument: layers whose
pre-activation array is theirs alone (Dense's, Conv2D's) save an allocation and a pass with it.
It computes the same values bit for bit.
"""
from __future__ import annotations

import math

from kconf.engine.backend import xp

# Keras's SELU constants (Klambauer et al., 2017).
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# erf: a power series below the switch point and a continued fraction for erfc above it;
# with these term counts both reach float64 rounding error (checked against math.erf).
_ERF_SWITCH = 2.5
_ERF_SERIES_TERMS = 40
_ERFC_FRACTION_TERMS = 30


def _sigmoid(z):
    """Logistic function without overflow for large |z| (exp only sees non-positive values)."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def erf(x):
    """Vectorized error function, accurate to float64 rounding; returns the input's float dtype.

    For |x| < 2.5 it sums ``erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n (2x^2)^n x / (1*3*...*(2n+1))``
    (all terms positive, so no cancellation); beyond that it evaluates the classical continued
    fraction ``erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))``.
    Both are evaluated with a fixed number of terms, innermost first, over whole arrays.
    """
    x = xp.asarray(x)
    dtype = x.dtype if xp.issubdtype(x.dtype, xp.floating) else xp.dtype(xp.float64)
    a = xp.abs(x).astype(xp.float64)  # float64 inside, so float32 results are correctly rounded
    out = xp.empty_like(a)

    small = a < _ERF_SWITCH
    s = a[small]
    two_s2 = 2.0 * s * s
    acc = xp.ones_like(s)
    for n in range(_ERF_SERIES_TERMS, 0, -1):
        acc = 1.0 + acc * two_s2 / (2 * n + 1)
    out[small] = _TWO_OVER_SQRT_PI * s * xp.exp(-s * s) * acc

    large = ~small
    b = a[large]
    frac = b.copy()
    for k in range(_ERFC_FRACTION_TERMS, 0, -1):
        frac = b + (0.5 * k) / frac
    out[large] = 1.0 - _INV_SQRT_PI * xp.exp(-b * b) / frac

    return xp.copysign(out, x).astype(dtype, copy=False)


def linear(z):
    """Identity."""
    return z, lambda dy: dy


def relu(z):
    """max(z, 0); the gradient at 0 is 0, as in Keras."""
    mask = z > 0
    return _rectified(z), lambda dy: dy * mask


def _relu_in_place(z):
    """``relu`` writing into ``z``; y > 0 exactly where z > 0, so backward masks with y."""
    y = _rectified(z, out=z)
    return y, lambda dy: dy * (y > 0)


#: ``_rectified``'s longest line of zeros (longer lines were slower, as in
#: ``kernels.channels.LINE``).
_ZEROS_LINE = 1024
_zero_lines: dict = {}  # (length, dtype) -> a read-only line of zeros


def _rectified(z, out=None):
    """``xp.maximum(z, 0, out=out)``, bit for bit (NaN and -0.0 included), against a line
    of zeros: NumPy's maximum with a broadcast scalar runs a loop about 2.2 times slower than
    with two contiguous operands (2 MB of float32: 0.26 against 0.12 ms on the 2-core EPYC),
    so a C-contiguous ``z`` is taken as rows of up to ``_ZEROS_LINE`` numbers, each against
    one line of zeros."""
    length = math.gcd(z.size, _ZEROS_LINE)
    if length < 64 or not z.flags.c_contiguous or (out is not None and out is not z):
        return xp.maximum(z, 0, out=out)
    key = (length, z.dtype)
    zeros = _zero_lines.get(key)
    if zeros is None:
        zeros = xp.zeros(length, dtype=z.dtype)
        zeros.flags.writeable = False
        _zero_lines[key] = zeros
    rows = z.reshape(-1, length)
    if out is not None:
        xp.maximum(rows, zeros, out=rows)
        return out
    return xp.maximum(rows, zeros).reshape(z.shape)


def _tanh_in_place(z):
    """``tanh`` writing into ``z``."""
    y = xp.tanh(z, out=z)
    return y, lambda dy: dy * (1.0 - y * y)


def sigmoid(z):
    """1 / (1 + exp(-z)), stable for large |z|."""
    y = _sigmoid(z)
    return y, lambda dy: dy * y * (1.0 - y)


def tanh(z):
    """Hyperbolic tangent."""
    y = xp.tanh(z)
    return y, lambda dy: dy * (1.0 - y * y)


def softmax(z):
    """Softmax over the last axis (shifted by the row max, so it never overflows)."""
    # fmax: the row max (a NaN row stays NaN through exp), faster than max on short rows
    e = xp.exp(z - xp.fmax.reduce(z, axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)

    def backward(dy):
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))

    return y, backward


def elu(z):
    """z for z > 0, exp(z) - 1 otherwise (Keras alpha = 1)."""
    positive = z > 0
    neg = xp.expm1(xp.minimum(z, 0))
    y = xp.where(positive, z, neg)
    return y, lambda dy: dy * xp.where(positive, 1.0, neg + 1.0)


def selu(z):
    """scale * (z for z > 0, alpha * (exp(z) - 1) otherwise), with Keras's constants."""
    positive = z > 0
    neg = SELU_ALPHA * xp.expm1(xp.minimum(z, 0))
    y = SELU_SCALE * xp.where(positive, z, neg)
    return y, lambda dy: dy * (SELU_SCALE * xp.where(positive, 1.0, neg + SELU_ALPHA))


def softplus(z):
    """log(1 + exp(z)) computed as max(z, 0) + log1p(exp(-|z|)); its derivative is sigmoid."""
    y = xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z)))
    return y, lambda dy: dy * _sigmoid(z)


def softsign(z):
    """z / (1 + |z|)."""
    denom = 1.0 + xp.abs(z)
    return z / denom, lambda dy: dy / (denom * denom)


def gelu(z):
    """Exact GELU (Keras 3 default, approximate=False): z * Phi(z) with Phi the normal CDF."""
    cdf = 0.5 * (1.0 + erf(z * _INV_SQRT_2))
    y = z * cdf

    def backward(dy):
        pdf = _INV_SQRT_2PI * xp.exp(-0.5 * z * z)
        return dy * (cdf + z * pdf)

    return y, backward


def hard_sigmoid(z):
    """Keras 3's relu6(z + 3) / 6 = clip(z / 6 + 1/2, 0, 1); slope 1/6 strictly inside (-3, 3)."""
    y = xp.clip(z / 6.0 + 0.5, 0.0, 1.0)
    inside = (z > -3.0) & (z < 3.0)
    return y, lambda dy: dy * inside / 6.0


def swish(z):
    """z * sigmoid(z) (also called silu)."""
    s = _sigmoid(z)
    y = z * s
    return y, lambda dy: dy * (s + y * (1.0 - s))


def relu6(z):
    """min(max(z, 0), 6); slope 1 strictly inside (0, 6)."""
    inside = (z > 0.0) & (z < 6.0)
    return xp.clip(z, 0.0, 6.0), lambda dy: dy * inside


def leaky_relu(z):
    """z for z >= 0, 0.2 z otherwise (Keras 3's ``leaky_relu`` name, negative_slope 0.2)."""
    return leaky_relu_with(z, 0.2)


def leaky_relu_with(z, negative_slope: float):
    """z for z >= 0, ``negative_slope`` · z otherwise."""
    slope = xp.where(z >= 0, 1.0, negative_slope).astype(z.dtype, copy=False)
    return z * slope, lambda dy: dy * slope


def elu_with(z, alpha: float):
    """z for z > 0, alpha · (exp(z) - 1) otherwise (Keras's ``elu(x, alpha)``)."""
    positive = z > 0
    neg = alpha * xp.expm1(xp.minimum(z, 0))
    y = xp.where(positive, z, neg)
    return y, lambda dy: dy * xp.where(positive, 1.0, neg + alpha)


def hard_silu(z):
    """Keras 3's hard_silu (alias hard_swish): z · relu6(z + 3) / 6."""
    h = xp.clip(z / 6.0 + 0.5, 0.0, 1.0)
    inside = (z > -3.0) & (z < 3.0)
    return z * h, lambda dy: dy * (h + z * inside / 6.0)


def mish(z):
    """z · tanh(softplus(z)); d/dz = tanh(sp) + z · (1 - tanh(sp)^2) · sigmoid(z)."""
    t = xp.tanh(xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.abs(z))))
    y = z * t

    def backward(dy):
        return dy * (t + z * (1.0 - t * t) * _sigmoid(z))

    return y, backward


def log_softmax(z):
    """log(softmax(z)) over the last axis: z - max - log(sum(exp(z - max)))."""
    shifted = z - xp.fmax.reduce(z, axis=-1, keepdims=True)
    y = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))

    def backward(dy):
        return dy - xp.exp(y) * dy.sum(axis=-1, keepdims=True)

    return y, backward


def exponential(z):
    """exp(z) (it overflows where exp does: above about 88 in float32)."""
    y = xp.exp(z)
    return y, lambda dy: dy * y


def gelu_approximate(z):
    """GELU's tanh form (Keras's ``gelu(x, approximate=True)``):
    0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))."""
    c = math.sqrt(2.0 / math.pi)
    t = xp.tanh(c * (z + 0.044715 * z * z * z))
    y = 0.5 * z * (1.0 + t)

    def backward(dy):
        return dy * (0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * z * z))

    return y, backward


ACTIVATIONS = {
    "linear": linear,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "elu": elu,
    "selu": selu,
    "softplus": softplus,
    "softsign": softsign,
    "gelu": gelu,
    "hard_sigmoid": hard_sigmoid,
    "swish": swish,
    "silu": swish,
    "relu6": relu6,
    "leaky_relu": leaky_relu,
    "hard_silu": hard_silu,
    "hard_swish": hard_silu,
    "mish": mish,
    "log_softmax": log_softmax,
    "exponential": exponential,
}


_IN_PLACE = {relu: _relu_in_place, tanh: _tanh_in_place, linear: linear}


def in_place(fn):
    """The variant of activation ``fn`` that may overwrite its input (``fn`` itself where
    there is none)."""
    return _IN_PLACE.get(fn, fn)


def has_in_place(fn) -> bool:
    """Whether ``in_place(fn)`` returns its input array, written over, as the output."""
    return fn in _IN_PLACE


def get(name):
    """The activation function for a Keras name.

    Args:
        name: a key of ``ACTIVATIONS``, None (meaning linear), or an activation function.

    Returns:
        ``f(z) -> (y, backward)``.

    Raises:
        KeyError: for an unknown name (the config schema reports those to users first).
    """
    if name is None:
        return linear
    if callable(name):
        return name
    return ACTIVATIONS[name]
