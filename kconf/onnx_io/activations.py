"""Keras activations (kconf's functions, by identity) as ONNX nodes."""
from __future__ import annotations

import math

from kconf.engine import activations as act
from kconf.onnx_io.builder import Builder, Unsupported


def _softplus(b: Builder, x: str) -> str:
    """max(x, 0) + log(1 + exp(-|x|)): no overflow for large |x|, as kconf computes it."""
    tail = b.op("Exp", [b.op("Neg", [b.op("Abs", [x])])])
    return b.op("Add", [b.op("Relu", [x]), b.op("Log", [b.op("Add", [tail, b.const(1.0)])])])


def _gelu(b: Builder, x: str) -> str:
    phi = b.op("Erf", [b.op("Mul", [x, b.const(1.0 / math.sqrt(2.0))])])
    half = b.op("Mul", [b.op("Add", [phi, b.const(1.0)]), b.const(0.5)])
    return b.op("Mul", [x, half])


def _gelu_tanh(b: Builder, x: str) -> str:
    cube = b.op("Mul", [b.op("Mul", [x, x]), x])
    inner = b.op("Add", [x, b.op("Mul", [cube, b.const(0.044715)])])
    t = b.op("Tanh", [b.op("Mul", [inner, b.const(math.sqrt(2.0 / math.pi))])])
    return b.op("Mul", [b.op("Mul", [x, b.const(0.5)]), b.op("Add", [t, b.const(1.0)])])


def _mish(b: Builder, x: str) -> str:
    return b.op("Mul", [x, b.op("Tanh", [_softplus(b, x)])])


_SIMPLE = {
    act.relu: ("Relu", {}),
    act.sigmoid: ("Sigmoid", {}),
    act.tanh: ("Tanh", {}),
    act.softmax: ("Softmax", {"axis": -1}),
    act.log_softmax: ("LogSoftmax", {"axis": -1}),
    act.elu: ("Elu", {"alpha": 1.0}),
    act.selu: ("Selu", {"alpha": act.SELU_ALPHA, "gamma": act.SELU_SCALE}),
    act.softsign: ("Softsign", {}),
    act.hard_sigmoid: ("HardSigmoid", {"alpha": 1.0 / 6.0, "beta": 0.5}),
    act.hard_silu: ("HardSwish", {}),
    act.leaky_relu: ("LeakyRelu", {"alpha": 0.2}),
    act.exponential: ("Exp", {}),
}

_COMPOSED = {
    act.softplus: _softplus,
    act.gelu: _gelu,
    act.gelu_approximate: _gelu_tanh,
    act.mish: _mish,
    act.swish: lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])]),
    act.relu6: lambda b, x: b.op("Clip", [x, b.const(0.0), b.const(6.0)]),
}


def apply(b: Builder, fn, x: str) -> str:
    """``fn(x)`` for one of kconf's activation functions.

    Raises:
        Unsupported: an activation with no ONNX form here (a custom function).
    """
    if fn is act.linear or fn is None:
        return x
    if fn in _SIMPLE:
        op, attrs = _SIMPLE[fn]
        return b.op(op, [x], **attrs)
    if fn in _COMPOSED:
        return _COMPOSED[fn](b, x)
    name = getattr(fn, "__name__", repr(fn))
    raise Unsupported(f"activation {name!r} has no ONNX form")


def has_onnx_form(fn) -> bool:
    """Whether ``apply`` can express ``fn``."""
    return fn is act.linear or fn is None or fn in _SIMPLE or fn in _COMPOSED
