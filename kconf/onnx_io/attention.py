"""MultiHeadAttention, Attention and AdditiveAttention (inference: no dropout), with the
attention mask, the causal mask and the inputs' masks as kconf applies them."""
from __future__ import annotations

import math

import numpy as np

from kconf.engine.layers.attention_core import MASKED_SCORE
from kconf.onnx_io.builder import Builder, Call, Result


def _causal(b: Builder, t: int | None, s: int | None, query: str, value: str) -> str:
    """(1, T, S) booleans, True where query step i may see value step j <= i."""
    if t is not None and s is not None:
        return b.const(np.tril(np.ones((t, s), dtype=bool))[None], np.bool_, hint="causal")
    size = b.op("Concat", [b.op("Shape", [query], start=1, end=2),
                           b.op("Shape", [value], start=1, end=2)], axis=0)
    ones = b.op("ConstantOfShape", [size], value=b.tensor(1.0, 1))
    lower = b.op("Trilu", [ones], upper=0)
    return b.unsqueeze(b.op("Cast", [lower], to=9), [0])


def _and(b: Builder, a: str | None, c: str) -> str:
    return c if a is None else b.op("And", [a, c])


def _query_mask_result(call: Call, outputs: list[str]) -> Result:
    """The query's mask goes on (none on the attention scores)."""
    q = call.masks[0] if call.masks else None
    return Result(outputs, [q] + [None] * (len(outputs) - 1))


def multi_head_attention(b: Builder, call: Call):
    layer = call.layer
    w = layer.weights
    query, value = call.inputs[0], call.inputs[1]
    key = call.inputs[2] if len(call.inputs) > 2 else value
    q_shape, v_shape = call.in_shapes[0], call.in_shapes[1]
    t, s = q_shape[1], v_shape[1]
    h, kd = layer.num_heads, layer.key_dim
    keep = None
    if len(call.inputs) > 3:
        given = b.op("Cast", [call.inputs[3]], to=1)  # nonzero entries are kept, as Keras
        keep = b.op("Not", [b.op("Equal", [given, b.const(0.0)])])
    if call.options.get("use_causal_mask"):
        keep = _and(b, keep, _causal(b, t, s, query, value))
    masks = call.masks or []
    for m, axis in zip(masks[:3], (-1, -2, -2)):
        if m is not None:
            keep = _and(b, keep, b.unsqueeze(m, [axis]))

    def project(x, name, scale=None):
        kernel = w[f"{name}/kernel"]  # (dim, heads, size)
        bias = w[f"{name}/bias"].reshape(-1) if layer.use_bias else None
        y = b.matmul_bias(x, kernel.reshape(kernel.shape[0], -1), bias)
        y = b.reshape(y, (0, 0, *kernel.shape[1:]))  # (B, T, H, size): 0 keeps a dim
        if scale is not None:
            y = b.op("Mul", [y, b.const(scale)])
        return b.transpose(y, [0, 2, 1, 3])  # heads second

    qh = project(query, "query", np.float32(1.0 / math.sqrt(kd)))
    kh = project(key, "key")
    vh = project(value, "value")
    scores = b.op("MatMul", [qh, b.transpose(kh, [0, 1, 3, 2])])  # (B, H, T, S)
    if keep is not None:
        scores = b.op("Where", [b.unsqueeze(keep, [1]), scores, b.const(MASKED_SCORE)])
    probs = b.op("Softmax", [scores], axis=-1)
    o = b.transpose(b.op("MatMul", [probs, vh]), [0, 2, 1, 3])  # (B, T, H, V)
    kernel = w["attention_output/kernel"]  # (H, V, *out)
    o = b.reshape(o, (0, 0, kernel.shape[0] * kernel.shape[1]))
    out_dims = kernel.shape[2:]
    y = b.op("MatMul", [o, b.const(kernel.reshape(kernel.shape[0] * kernel.shape[1], -1),
                                   hint="output_kernel")])
    if len(out_dims) > 1:
        y = b.reshape(y, (0, 0, *out_dims))
    if layer.use_bias:
        y = b.op("Add", [y, b.const(w["attention_output/bias"], hint="output_bias")])
    outputs = [y, probs] if call.options.get("return_attention_scores") else [y]
    return _query_mask_result(call, outputs)


def dot_attention(b: Builder, call: Call):
    layer = call.layer
    kind = type(layer).__name__
    query, value = call.inputs[0], call.inputs[1]
    key = call.inputs[2] if len(call.inputs) > 2 else value
    t, s = call.in_shapes[0][1], call.in_shapes[1][1]
    w = layer.weights
    if kind == "Attention" and layer.score_mode == "dot":
        scores = b.op("MatMul", [query, b.transpose(key, [0, 2, 1])])
        if layer.use_scale:
            scores = b.op("Mul", [scores, b.const(w["scale"])])
    else:  # a sum over the features of tanh(query + key), (B, T, S, D)
        pre = b.op("Add", [b.unsqueeze(query, [2]), b.unsqueeze(key, [1])])
        if kind == "Attention":
            if layer.use_scale:
                pre = b.op("Mul", [pre, b.const(w["scale"])])
            th = b.op("Tanh", [pre])
            total = b.op("ReduceSum", [th, b.ints([-1])], keepdims=0)
            scores = b.op("Mul", [total, b.const(w["concat_score_weight"])])
        else:
            th = b.op("Tanh", [pre])
            if layer.use_scale:
                th = b.op("Mul", [th, b.const(w["scale"])])
            scores = b.op("ReduceSum", [th, b.ints([-1])], keepdims=0)
    masks = call.masks or [None, None]
    keep = None if masks[1] is None else b.unsqueeze(masks[1], [1])
    if call.options.get("use_causal_mask"):
        keep = _and(b, keep, _causal(b, t, s, query, value))
    if keep is not None:
        lowered = b.op("Sub", [scores, b.const(-MASKED_SCORE)])
        scores = b.op("Where", [keep, scores, lowered])
    probs = b.op("Softmax", [scores], axis=-1)
    y = b.op("MatMul", [probs, value])
    if masks[0] is not None:
        y = b.op("Where", [b.unsqueeze(masks[0], [-1]), y, b.const(0.0)])
    outputs = [y, probs] if call.options.get("return_attention_scores") else [y]
    return _query_mask_result(call, outputs)
