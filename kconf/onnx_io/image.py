"""Resizing, CenterCrop, RandomCrop (inference: its centred window) and bilinear UpSampling2D.

kconf resizes with one (out, in) interpolation matrix per spatial axis (``kconf.engine.images``,
``upsampling.interpolation_matrix``); the export applies those same matrices as two MatMuls,
so it computes exactly what kconf computes. Crops are Slices of the static window.
"""
from __future__ import annotations

import numpy as np

from kconf.engine import images
from kconf.engine.layers.upsampling import interpolation_matrix
from kconf.onnx_io.builder import Builder, Call, Unsupported


def _hw(call: Call) -> tuple[int, int]:
    h, w = call.shape[1:3]
    if h is None or w is None:
        raise Unsupported("the image height and width must be known")
    return h, w


def along_hw(b: Builder, x: str, mh, mw) -> str:
    """``mh`` (out, H) along the rows and ``mw`` (out, W) along the columns of NHWC ``x``."""
    if mh is not None:  # (N, H, W, C) -> (N, W, C, H) @ mh.T -> back
        y = b.op("MatMul", [b.transpose(x, [0, 2, 3, 1]), b.const(mh.T, hint="rows")])
        x = b.transpose(y, [0, 3, 1, 2])
    if mw is not None:  # (N, H, W, C) -> (N, H, C, W) @ mw.T -> back
        y = b.op("MatMul", [b.transpose(x, [0, 1, 3, 2]), b.const(mw.T, hint="cols")])
        x = b.transpose(y, [0, 1, 3, 2])
    return x


def crop_resize(b: Builder, x: str, box, height: int, width: int, interpolation: str) -> str:
    """``images.crop_resize``: the window ``box`` = (top, left, h, w), resized."""
    top, left, ch, cw = box
    x = b.slice(x, [top, left], [top + ch, left + cw], [1, 2])
    if (ch, cw) == (height, width):
        return b.op("Identity", [x])
    mh = images.resize_matrix(ch, height, interpolation, np.float32)
    mw = images.resize_matrix(cw, width, interpolation, np.float32)
    return along_hw(b, x, mh, mw)


def resizing(b: Builder, call: Call):
    layer = call.layer
    h, w = _hw(call)
    if layer.interpolation not in images.INTERPOLATIONS:
        raise Unsupported(f"interpolation {layer.interpolation!r} is not one kconf computes")
    box = (0, 0, h, w)
    if layer.crop_to_aspect_ratio:
        box = images.aspect_crop_box(h, w, layer.height, layer.width)
    return crop_resize(b, call.x, box, layer.height, layer.width, layer.interpolation)


def center_crop(b: Builder, call: Call):
    layer = call.layer
    h, w = _hw(call)
    if h >= layer.height and w >= layer.width:
        box = ((h - layer.height) // 2, (w - layer.width) // 2, layer.height, layer.width)
    else:
        box = images.aspect_crop_box(h, w, layer.height, layer.width)
    return crop_resize(b, call.x, box, layer.height, layer.width, "bilinear")


def random_crop(b: Builder, call: Call):
    layer = call.layer
    h, w = _hw(call)
    top, left, _, _ = images.aspect_crop_box(h, w, layer.height, layer.width)
    box = (top, left, min(layer.height, h - top), min(layer.width, w - left))
    return crop_resize(b, call.x, box, layer.height, layer.width, "bilinear")


def bilinear_upsampling(b: Builder, call: Call) -> str:
    h, w = _hw(call)
    size = call.layer.size
    return along_hw(b, call.x, interpolation_matrix(h, size[0], np.float32),
                    interpolation_matrix(w, size[1], np.float32))
