"""The ONNX graph under construction, and the table of layer converters.

A converter (``kconf.onnx_io.table``) turns one call of a kconf layer (a ``Call``: its layer,
its input value names, their static shapes with the batch axis None, their masks) into ONNX
nodes, and returns the names of its outputs. A layer it cannot express raises
``Unsupported`` with the reason; the exporter collects every such reason before it reports
them (nothing is dropped silently).

Values are float32 NHWC tensors as in kconf (channels last); a converter that needs ONNX's
channels-first operators transposes around them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Unsupported(Exception):
    """A layer (or one of its settings) that ONNX export cannot express; the message says why."""


@dataclass
class Call:
    """One call of a layer, as a converter sees it.

    Attributes:
        layer: the engine layer.
        inputs: the ONNX names of its input values, in the order of the node's inputs.
        in_shapes: their static shapes (batch axis None).
        out_shapes: the output shapes.
        masks: per input, the ONNX name of its bool (N, T) mask, or None.
        options: the call's keyword options (``use_causal_mask``...).
    """

    layer: Any
    inputs: list[str]
    in_shapes: list[tuple]
    out_shapes: list[tuple]
    masks: list[str | None] = field(default_factory=list)
    options: dict = field(default_factory=dict)

    @property
    def x(self) -> str:
        return self.inputs[0]

    @property
    def shape(self) -> tuple:
        return self.in_shapes[0]

    @property
    def mask(self) -> str | None:
        return self.masks[0] if self.masks else None


@dataclass
class Result:
    """A converter's outputs, and the masks it computed for them (None: the default, the first
    input's mask passed through where the graph says an output carries one)."""

    outputs: list[str]
    masks: list[str | None] | None = None


class Builder:
    """ONNX nodes and initializers, with fresh names and cached constants."""

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self._used: set[str] = set()
        self._next: dict[str, int] = {}  # hint -> the last suffix given
        self._consts: dict[tuple, str] = {}
        self._arrays: dict[int, tuple[Any, str]] = {}  # id(weight array) -> (it, its name)
        self.prefix = ""  # the current layer's name, for readable node names

    def fresh(self, hint: str) -> str:
        """A value name not used yet, from ``hint``."""
        base = hint.replace("/", "_") or "v"
        name, k = base, self._next.get(base, 1)
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._next[base] = k
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        """Claim a name (a graph input or output) so no other value takes it."""
        self._used.add(name)

    def const(self, value, dtype=np.float32, hint: str = "const") -> str:
        """An initializer holding ``value`` (float32 unless ``dtype``); small ones are shared."""
        from onnx import numpy_helper

        seen = self._arrays.get(id(value))
        if seen is not None and seen[0] is value and np.dtype(dtype) == value.dtype:
            return seen[1]  # a shared layer's weights, written once
        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        key = None
        if array.size <= 16:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.fresh(f"{self.prefix}{hint}" if hint != "const" else f"c_{hint}")
        self.initializers.append(numpy_helper.from_array(array, name))
        if key is not None:
            self._consts[key] = name
        elif isinstance(value, np.ndarray):
            self._arrays[id(value)] = (value, name)  # kept alive, so its id stays its own
        return name

    @staticmethod
    def tensor(value, onnx_type: int):
        """A one-element tensor attribute (``ConstantOfShape``'s value)."""
        from onnx import helper

        return helper.make_tensor("value", onnx_type, [1], [value])

    def ints(self, values) -> str:
        """An int64 1-D constant (shapes, axes, pads, slice bounds)."""
        return self.const(list(values), np.int64)

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1,
           **attrs) -> Any:
        """Add a node; return its output name (a list when ``outputs`` > 1 or is a list)."""
        from onnx import helper

        many = not (isinstance(outputs, int) and outputs == 1)
        if isinstance(outputs, int):
            outputs = [self.fresh(f"{self.prefix}{op_type}") for _ in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs),
                                           name=self.fresh(f"n_{self.prefix}{op_type}"),
                                           **attrs))
        return list(outputs) if many else outputs[0]

    # --- helpers converters share ----------------------------------------------------------

    def reshape(self, x: str, shape) -> str:
        """Reshape to ``shape``, its batch axis given as None or -1 (kept dynamic)."""
        dims = [-1 if d is None else int(d) for d in shape]
        return self.op("Reshape", [x, self.ints(dims)])

    def transpose(self, x: str, perm) -> str:
        return self.op("Transpose", [x], perm=list(perm))

    def matmul_bias(self, x: str, kernel, bias=None) -> str:
        """``x @ kernel (+ bias)`` over the last axis (any leading axes)."""
        y = self.op("MatMul", [x, self.const(kernel, hint="kernel")])
        if bias is not None:
            y = self.op("Add", [y, self.const(bias, hint="bias")])
        return y

    def slice(self, x: str, starts, ends, axes, steps=None) -> str:
        inputs = [x, self.ints(starts), self.ints(ends), self.ints(axes)]
        if steps is not None:
            inputs.append(self.ints(steps))
        return self.op("Slice", inputs)

    def squeeze(self, x: str, axes) -> str:
        return self.op("Squeeze", [x, self.ints(axes)])

    def unsqueeze(self, x: str, axes) -> str:
        return self.op("Unsqueeze", [x, self.ints(axes)])
