"""Image helpers of the preprocessing layers (channels-last batches ``(N, H, W, C)``): Keras
3's resize as two interpolation matrices, and its centred crop to an aspect ratio.

Keras 3 resizes with ``jax.image.resize`` (antialias off): half-pixel centres, output pixel
``o`` samples the input at ``s = (o + 0.5) · in/out − 0.5``. ``bilinear`` weighs the two
nearest input pixels by a triangle kernel, the weights renormalised where the kernel falls
off the image (so the edges clamp); ``nearest`` takes pixel ``floor((o + 0.5) · in/out)``.
Either is a matrix (out, in) per spatial axis, so a resize is two products and its gradient
the two transposed products.
"""
from __future__ import annotations

from kconf.engine.backend import xp

#: The interpolations kconf reproduces (Keras also has bicubic, lanczos3, lanczos5, area).
INTERPOLATIONS = ("bilinear", "nearest")


def resize_matrix(size_in: int, size_out: int, interpolation: str, dtype):
    """The (size_out, size_in) matrix that resizes one axis as Keras 3 does."""
    scale = size_in / size_out
    if interpolation == "nearest":
        offsets = ((xp.arange(size_out, dtype=xp.float32) + 0.5)
                   * xp.float32(size_in) / xp.float32(size_out))
        index = xp.minimum(xp.floor(offsets).astype(xp.int64), size_in - 1)
        m = xp.zeros((size_out, size_in), dtype=dtype)
        m[xp.arange(size_out), index] = 1
        return m
    sample = (xp.arange(size_out, dtype=xp.float64) + 0.5) * scale - 0.5
    w = xp.maximum(0.0, 1.0 - xp.abs(sample[:, None] - xp.arange(size_in)[None, :]))
    w /= w.sum(axis=1, keepdims=True)
    return w.astype(dtype)


def resize(x, height: int, width: int, interpolation: str):
    """Resize a channels-last batch to (height, width).

    Args:
        x: images (N, H, W, C).
        height, width: the output size.
        interpolation: ``bilinear`` or ``nearest``.

    Returns:
        ``(y, backward)``: y (N, height, width, C) in x's dtype; ``backward(dy)`` the
        gradient of x.
    """
    _, h, w, _ = x.shape
    if (h, w) == (height, width):
        return x, _identity
    mh = resize_matrix(h, height, interpolation, x.dtype)
    mw = resize_matrix(w, width, interpolation, x.dtype)
    y = xp.einsum("oh,nhwc->nowc", mh, x, optimize=True)
    y = xp.einsum("pw,nowc->nopc", mw, y, optimize=True)

    def backward(dy):
        dx = xp.einsum("pw,nopc->nowc", mw, dy, optimize=True)
        return xp.einsum("oh,nowc->nhwc", mh, dx, optimize=True)

    return xp.ascontiguousarray(y), backward


def aspect_crop_box(height: int, width: int, target_height: int,
                    target_width: int) -> tuple[int, int, int, int]:
    """The largest centred window of an (height, width) image with the target's aspect
    ratio, as Keras computes it (``smart_resize``, ``crop_to_aspect_ratio``).

    Returns:
        ``(top, left, crop_height, crop_width)``.
    """
    crop_h = max(min(height, int(float(width * target_height) / target_width)), 1)
    crop_w = max(min(width, int(float(height * target_width) / target_height)), 1)
    return int(float(height - crop_h) / 2), int(float(width - crop_w) / 2), crop_h, crop_w


def crop(x, top: int, left: int, height: int, width: int):
    """A window of a channels-last batch; ``(y, backward)``, the gradient zero outside."""
    if (top, left, height, width) == (0, 0, *x.shape[1:3]):
        return x, _identity
    y = x[:, top:top + height, left:left + width, :]
    shape = x.shape

    def backward(dy):
        dx = xp.zeros(shape, dtype=dy.dtype)
        dx[:, top:top + height, left:left + width, :] = dy
        return dx

    return y, backward


def crop_resize(x, box: tuple[int, int, int, int], height: int, width: int,
                interpolation: str = "bilinear"):
    """The window ``box`` = ``(top, left, crop_height, crop_width)`` of a channels-last
    batch, resized to (height, width); ``(y, backward)``."""
    cropped, crop_back = crop(x, *box)
    y, resize_back = resize(cropped, height, width, interpolation)

    def backward(dy):
        return crop_back(resize_back(dy))

    return y, backward


def smart_resize(x, height: int, width: int, interpolation: str = "bilinear"):
    """Keras's ``smart_resize``: the centred window with the target's aspect ratio, resized
    to (height, width); ``(y, backward)``."""
    box = aspect_crop_box(x.shape[1], x.shape[2], height, width)
    return crop_resize(x, box, height, width, interpolation)


def _identity(dy):
    """Backward of the identity."""
    return dy


# --- affine sampling (RandomTranslation, RandomRotation, RandomZoom) --------------------------

#: How points outside the image are filled (``jax.scipy.ndimage.map_coordinates``'s modes that
#: Keras's affine layers offer): ``reflect`` (d c b a | a b c d | d c b a), ``wrap``,
#: ``constant`` (``fill_value``), ``nearest`` (the edge pixel).
FILL_MODES = ("reflect", "wrap", "constant", "nearest")


def _fix_index(index, size: int, mode: str):
    """Integer pixel indices brought into the image as ``fill_mode`` says (jax's fixers)."""
    if mode == "wrap":
        return index % size
    if mode == "reflect":
        s = 2 * size  # jax's mirror of 2·index + 1 with size 2·size + 1, halved
        return (xp.abs((2 * index + 1 + s) % (2 * s) - s) - 1) // 2
    return xp.clip(index, 0, size - 1)  # nearest; constant masks the outside apart


def affine_sample(x, rows, cols, interpolation: str, fill_mode: str, fill_value: float):
    """Sample a channels-last batch at real-valued points, as Keras 3's ``affine_transform``
    (``jax.scipy.ndimage.map_coordinates`` per image: order 1 for bilinear, 0 for nearest,
    rounding half away from zero).

    Args:
        x: images (N, H, W, C).
        rows, cols: (N, Ho, Wo) input coordinates of each output pixel.
        interpolation: ``bilinear`` or ``nearest``.
        fill_mode: one of ``FILL_MODES``.
        fill_value: the value outside the image for ``constant``.

    Returns:
        ``(y, backward)``: y (N, Ho, Wo, C) in x's dtype; ``backward(dy)`` the gradient of x.
    """
    n, h, w, _ = x.shape
    batch = xp.arange(n)[:, None, None]
    taps = []  # (row index, col index, weight) of each contributing pixel
    for r, wr in _taps(rows.astype(xp.float32), interpolation):
        for c, wc in _taps(cols.astype(xp.float32), interpolation):
            weight = (wr * wc).astype(x.dtype)
            if fill_mode == "constant":
                inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
                outside_weight = weight * ~inside
                weight = weight * inside
            else:
                outside_weight = None
            taps.append((_fix_index(r, h, fill_mode), _fix_index(c, w, fill_mode), weight,
                         outside_weight))
    y = xp.zeros((*rows.shape, x.shape[3]), dtype=x.dtype)
    for r, c, weight, outside in taps:
        y += weight[..., None] * x[batch, r, c]
        if outside is not None and fill_value != 0:
            y += (outside * x.dtype.type(fill_value))[..., None]

    def backward(dy):
        dx = xp.zeros(x.shape, dtype=dy.dtype)
        for r, c, weight, _ in taps:
            xp.add.at(dx, (batch, r, c), weight[..., None] * dy)
        return dx

    return y, backward


def _taps(coord, interpolation: str):
    """The integer pixels a coordinate reads and their weights."""
    if interpolation == "nearest":
        index = (xp.sign(coord) * xp.floor(xp.abs(coord) + 0.5)).astype(xp.int64)
        return [(index, xp.ones_like(coord))]
    lower = xp.floor(coord)
    upper_weight = coord - lower
    index = lower.astype(xp.int64)
    return [(index, 1 - upper_weight), (index + 1, upper_weight)]


def output_grid(height: int, width: int):
    """The (row, col) coordinates of every output pixel, each (1, H, W) float32."""
    rows, cols = xp.meshgrid(xp.arange(height, dtype=xp.float32),
                             xp.arange(width, dtype=xp.float32), indexing="ij")
    return rows[None], cols[None]
