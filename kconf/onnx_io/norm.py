"""BatchNormalization (moving statistics), LayerNormalization and GroupNormalization,
computed in the order kconf (and Keras) computes them: ``y = x·inv + (beta − mean·inv)``."""
from __future__ import annotations

import numpy as np

from kconf.engine.layers.layer_normalization import broadcast_shape, normalized_axes
from kconf.onnx_io.builder import Builder, Call, Unsupported


def batch_normalization(b: Builder, call: Call):
    layer = call.layer
    (axis,) = normalized_axes(layer, call.shape, layer.axis)
    if call.shape[axis] is None:
        raise Unsupported("the normalized axis must have a known size")
    wshape = broadcast_shape(len(call.shape), (axis,), (call.shape[axis],))[1:]
    w = layer.weights
    r = (1 / np.sqrt(w["moving_variance"] + np.float32(layer.epsilon))).astype(np.float32)
    inv = r * w["gamma"] if layer.scale else r
    shift = -w["moving_mean"] * inv
    if layer.center:
        shift = shift + w["beta"]
    y = b.op("Mul", [call.x, b.const(inv.reshape(wshape), hint="inv")])
    return b.op("Add", [y, b.const(shift.reshape(wshape), hint="shift")])


def _moments(b: Builder, x: str, axes) -> tuple[str, str]:
    """The mean and biased variance over ``axes`` (kept as size-1 axes)."""
    axes = b.ints(axes)
    mean = b.op("ReduceMean", [x, axes], keepdims=1)
    centred = b.op("Sub", [x, mean])
    var = b.op("ReduceMean", [b.op("Mul", [centred, centred]), axes], keepdims=1)
    return mean, var


def _standardize(b: Builder, x: str, axes, eps: float, gamma, beta, rms: bool = False) -> str:
    mean, var = _moments(b, x, axes)
    inv = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [var, b.const(eps)])])])
    if gamma is not None:
        inv = b.op("Mul", [inv, b.const(gamma, hint="gamma")])
    if rms:  # Keras's rms_scaling: x · rsqrt(var + ε) · gamma, no centring or beta
        return b.op("Mul", [x, inv])
    y = b.op("Add", [b.op("Mul", [x, inv]), b.op("Neg", [b.op("Mul", [mean, inv])])])
    if beta is not None:
        y = b.op("Add", [y, b.const(beta, hint="beta")])
    return y


def layer_normalization(b: Builder, call: Call):
    layer = call.layer
    axes = normalized_axes(layer, call.shape, layer.axis)
    wshape = broadcast_shape(len(call.shape), axes, [call.shape[a] for a in axes])
    w = layer.weights
    gamma = w["gamma"].reshape(wshape) if "gamma" in w else None
    beta = w["beta"].reshape(wshape) if "beta" in w else None
    return _standardize(b, call.x, axes, float(np.float32(layer.epsilon)), gamma, beta,
                        rms=bool(layer.rms_scaling))


def group_normalization(b: Builder, call: Call):
    layer = call.layer
    if any(d is None for d in call.shape[1:]):
        raise Unsupported("GroupNormalization needs a known input shape")
    axis, channels, groups = layer._split(call.shape)
    shape = call.shape
    grouped = (None, *shape[1:axis], groups, channels // groups, *shape[axis + 1:])
    wshape = [1] * len(grouped)
    wshape[axis:axis + 2] = groups, channels // groups
    reduce = [a for a in range(1, len(grouped)) if a != axis]
    w = layer.weights
    gamma = w["gamma"].reshape(wshape) if "gamma" in w else None
    beta = w["beta"].reshape(wshape) if "beta" in w else None
    y = _standardize(b, b.reshape(call.x, grouped), reduce, float(np.float32(layer.epsilon)),
                     gamma, beta)
    return b.reshape(y, shape)
