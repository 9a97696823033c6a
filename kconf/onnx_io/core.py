"""Dense, activations, shape changes, merges, embeddings and the layers that are the identity
at inference (dropout, noise, augmentation). Each converter takes ``(builder, call)`` and
returns its output name(s), or a ``Result`` with the masks it makes."""
from __future__ import annotations

import numpy as np

from kconf.engine.layers.merge import NORM_EPSILON as DOT_EPSILON
from kconf.engine.layers.unit_normalization import NORM_EPSILON as UNIT_EPSILON
from kconf.onnx_io import activations
from kconf.onnx_io.builder import Builder, Call, Result

#: layers that are the identity in inference mode (kconf's predict)
INFERENCE_IDENTITY = (
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity", "RandomFlip",
    "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast",
)


def identity(b: Builder, call: Call):
    return b.op("Identity", [call.x])


def dense(b: Builder, call: Call):
    layer = call.layer
    y = b.matmul_bias(call.x, layer.weights["kernel"],
                      layer.weights["bias"] if layer.use_bias else None)
    return activations.apply(b, layer.activation, y)


def activation(b: Builder, call: Call):
    return b.op("Identity", [activations.apply(b, call.layer.activation, call.x)])


def relu(b: Builder, call: Call):
    layer, x = call.layer, call.x
    if layer.max_value is None and not layer.negative_slope and not layer.threshold:
        return b.op("Relu", [x])
    t = b.const(float(layer.threshold or 0.0))
    above = b.op("Greater", [x, t])
    y = b.op("Where", [above, x, b.const(0.0)])
    if layer.max_value is not None:
        y = b.op("Min", [y, b.const(float(layer.max_value))])
    if layer.negative_slope:
        below = b.op("Mul", [b.op("Sub", [x, t]), b.const(float(layer.negative_slope))])
        y = b.op("Where", [b.op("Less", [x, t]), below, y])
    return y


def leaky_relu(b: Builder, call: Call):
    return b.op("LeakyRelu", [call.x], alpha=float(call.layer.negative_slope))


def elu(b: Builder, call: Call):
    return b.op("Elu", [call.x], alpha=float(call.layer.alpha))


def prelu(b: Builder, call: Call):
    alpha = call.layer.weights["alpha"]  # one sample's shape (1 on shared axes)
    return b.op("PRelu", [call.x, b.const(alpha[None], hint="alpha")])


def softmax(b: Builder, call: Call):
    return b.op("Softmax", [call.x], axis=int(call.layer.axis))


def flatten(b: Builder, call: Call):
    return b.op("Flatten", [call.x], axis=1)


def reshape(b: Builder, call: Call):
    return b.reshape(call.x, call.out_shapes[0])


def permute(b: Builder, call: Call):
    return b.transpose(call.x, [0, *call.layer.dims])


def repeat_vector(b: Builder, call: Call):
    x = b.unsqueeze(call.x, [1])
    return b.op("Tile", [x, b.ints([1, call.layer.n, 1])])


def masking(b: Builder, call: Call):
    differs = b.op("Not", [b.op("Equal", [call.x, b.const(float(call.layer.mask_value))])])
    keep = b.op("ReduceMax", [b.op("Cast", [differs], to=6), b.ints([-1])], keepdims=1)  # int32
    keep_f = b.op("Cast", [keep], to=1)
    mask = b.op("Cast", [b.squeeze(keep, [-1])], to=9)
    return Result([b.op("Mul", [call.x, keep_f])], [mask])


# --- merges --------------------------------------------------------------------------------


def _merged_mask(b: Builder, call: Call, how: str) -> list[str | None] | None:
    """An elementwise merge's mask: the OR of the inputs' when every one has one."""
    if not call.masks or any(m is None for m in call.masks):
        return None
    return [_fold(b, how, call.masks)]


def _fold(b: Builder, op: str, xs: list[str]) -> str:
    out = xs[0]
    for x in xs[1:]:
        out = b.op(op, [out, x])
    return out


def elementwise(b: Builder, call: Call):
    kind = type(call.layer).__name__
    xs = call.inputs
    if kind == "Subtract":
        y = b.op("Sub", xs)
    elif kind in ("Maximum", "Minimum"):
        y = b.op(kind[:3], xs)
    elif kind == "Average":
        y = b.op("Mul", [_fold(b, "Add", xs), b.const(1.0 / len(xs))])
    else:
        y = _fold(b, "Add" if kind == "Add" else "Mul", xs)
    return Result([y], _merged_mask(b, call, "Or"))


def concatenate(b: Builder, call: Call):
    y = b.op("Concat", call.inputs, axis=int(call.layer.axis))
    if not any(m is not None for m in call.masks):
        return Result([y])
    parts = []  # Keras: each input's mask over its features, joined, any over the last axis
    for x, shape, m in zip(call.inputs, call.in_shapes, call.masks):
        if m is None:
            parts.append(b.op("ConstantOfShape", [b.op("Shape", [x])], value=b.tensor(1, 6)))
        else:
            part = b.op("Expand", [b.unsqueeze(m, [-1]), b.op("Shape", [x])])
            parts.append(b.op("Cast", [part], to=6))
    joined = b.op("Concat", parts, axis=int(call.layer.axis))
    anyv = b.op("ReduceMax", [joined, b.ints([-1])], keepdims=0)
    return Result([y], [b.op("Cast", [anyv], to=9)])


def _l2_normalize(b: Builder, x: str, axis: int) -> str:
    norm = b.op("Sqrt", [b.op("ReduceSum", [b.op("Mul", [x, x]), b.ints([axis])], keepdims=1)])
    small = b.op("LessOrEqual", [norm, b.const(DOT_EPSILON)])
    return b.op("Div", [x, b.op("Where", [small, b.const(DOT_EPSILON), norm])])


def dot(b: Builder, call: Call):
    layer = call.layer
    (s1, s2), (x1, x2) = call.in_shapes, call.inputs
    a1, a2 = layer._resolve_axes((len(s1), len(s2)))
    if layer.normalize:
        x1, x2 = _l2_normalize(b, x1, a1), _l2_normalize(b, x2, a2)
    perm1 = [d for d in range(len(s1)) if d != a1] + [a1]
    perm2 = [0, a2] + [d for d in range(1, len(s2)) if d != a2]
    left = b.reshape(b.transpose(x1, perm1), (0, -1 if len(s1) > 2 else 1, s1[a1]))
    right = b.reshape(b.transpose(x2, perm2), (0, s2[a2], -1 if len(s2) > 2 else 1))
    return b.reshape(b.op("MatMul", [left, right]), call.out_shapes[0])


def custom_scale(b: Builder, call: Call):
    shortcut, residual = call.inputs
    return b.op("Add", [b.op("Mul", [residual, b.const(float(call.layer.scale))]), shortcut])


# --- scaling, normalization, embeddings -----------------------------------------------------


def rescaling(b: Builder, call: Call):
    y = b.op("Mul", [call.x, b.const(np.float32(call.layer.scale))])
    return b.op("Add", [y, b.const(np.float32(call.layer.offset))])


def normalization(b: Builder, call: Call):
    layer = call.layer
    probe = np.zeros((1, *call.shape[1:]), np.float32)  # the engine's own statistics
    mean, scale = layer._statistics(probe)
    if layer.invert:
        return b.op("Add", [b.op("Mul", [call.x, b.const(scale, hint="scale")]),
                            b.const(mean, hint="mean")])
    return b.op("Div", [b.op("Sub", [call.x, b.const(mean, hint="mean")]),
                        b.const(scale, hint="scale")])


def unit_normalization(b: Builder, call: Call):
    from kconf.engine.layers.layer_normalization import normalized_axes

    axes = normalized_axes(call.layer, call.shape, call.layer.axis)
    squares = b.op("ReduceSum", [b.op("Mul", [call.x, call.x]), b.ints(axes)], keepdims=1)
    inv = b.op("Min", [b.op("Reciprocal", [b.op("Sqrt", [squares])]),
                       b.const(1.0 / UNIT_EPSILON)])
    return b.op("Mul", [call.x, inv])


def layer_scale(b: Builder, call: Call):
    return b.op("Mul", [call.x, b.const(call.layer.weights["gamma"], hint="gamma")])


def embedding(b: Builder, call: Call):
    layer = call.layer
    ids = b.op("Cast", [call.x], to=7)  # int64 ids, whatever the input's dtype
    y = b.op("Gather", [b.const(layer.weights["embeddings"], hint="embeddings"), ids], axis=0)
    if not layer.mask_zero:
        return Result([y], [call.mask] if call.mask else None)
    return Result([y], [b.op("Not", [b.op("Equal", [ids, b.const(0, np.int64)])])])
