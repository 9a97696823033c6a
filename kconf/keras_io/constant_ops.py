"""Keras operations on a tensor and a constant, read as kconf layers.

Keras 3 writes arithmetic on a symbolic tensor (``x + 3.0``, ``x * (1.0 / 6.0)``) into a
functional model's graph as an operation of module ``keras.src.ops.numpy``, the constant in
the call's arguments:

    {"module": "keras.src.ops.numpy", "class_name": "Add", "name": "add",
     "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", ...}, 3.0], ...}]}

keras.applications emit them (MobileNetV3's hard sigmoid ``ReLU(6)(x + 3) * (1/6)``). Each
such call is one ``Rescaling`` (``y = x · scale + offset``), with the same float32 numbers:

    x + c, c + x   Rescaling(scale=1, offset=c)     x · 1 is x, so the sum is Keras's
    x - c          Rescaling(scale=1, offset=-c)
    c - x          Rescaling(scale=-1, offset=c)    -x is exact
    x · c, c · x   Rescaling(scale=c)               x·c + 0 is x·c
    x / c          Rescaling(scale=1/c)             within an ulp of Keras's x / c

Operations of two tensors (ConvNeXt's residual ``Add``) stay what they are (kconf's merge
layers of the same names); a constant that is not one number (an array) and ``c / x`` are
reported.
"""
from __future__ import annotations

from typing import Any

#: Keras operation class -> (scale, offset) of ``x op c`` as a function of ``c``.
_OPS = {
    "Add": lambda c: (1.0, c),
    "Subtract": lambda c: (1.0, -c),
    "Multiply": lambda c: (c, 0.0),
    "TrueDivide": lambda c: (1.0 / c, 0.0),
    "Divide": lambda c: (1.0 / c, 0.0),
}
#: ``c op x`` where the constant comes first, as (scale, offset) of ``c``.
_CONSTANT_FIRST = {
    "Add": lambda c: (1.0, c),
    "Multiply": lambda c: (c, 0.0),
    "Subtract": lambda c: (-1.0, c),
}


def constant_operation(entry: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The ``Rescaling`` config of an operation on a tensor and a number.

    Args:
        entry: a layer entry of a functional model's JSON.

    Returns:
        ``(config, None)``: the Rescaling config (``name``, ``scale``, ``offset``);
        ``(None, why)``: an operation with a constant kconf cannot reproduce;
        ``(None, None)``: not an operation with a constant (left as it is).
    """
    if not str(entry.get("module") or "").startswith("keras.src.ops"):
        return None, None
    cls = entry.get("class_name")
    nodes = entry.get("inbound_nodes") or []
    if cls not in _OPS or len(nodes) != 1 or not isinstance(nodes[0], dict):
        return None, None
    args = list(nodes[0].get("args") or [])
    if len(args) != 2 or nodes[0].get("kwargs"):
        return None, None
    tensors = [_is_tensor(a) for a in args]
    if all(tensors) or not any(tensors):
        return None, None
    constant = args[tensors.index(False)]
    if not _is_number(constant):
        return None, (f"{cls} of a tensor and {_short(constant)}: kconf reads an operation "
                      "with a constant only when the constant is one number")
    if not tensors[0] and cls not in _CONSTANT_FIRST:
        return None, (f"{cls} with the constant first ({constant!r} {cls.lower()} x) has no "
                      "kconf layer")
    if cls in ("TrueDivide", "Divide") and constant == 0:
        return None, f"{cls} by zero"
    scale, offset = (_OPS if tensors[0] else _CONSTANT_FIRST)[cls](float(constant))
    name = entry.get("name") or (entry.get("config") or {}).get("name") or cls.lower()
    return {"name": name, "scale": scale, "offset": offset}, None


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
