"""The shape arithmetic every kernel shares: Keras's padding rules, strided windows over the
spatial axes, and the blocks of images the batch is cut into (see ``kconf.engine.kernels``)."""
from __future__ import annotations

import itertools

from numpy.lib.stride_tricks import as_strided

from kconf.engine.backend import xp

# --- padding arithmetic ------------------------------------------------------------------------

def output_length(length: int | None, size: int, stride: int, padding: str) -> int | None:
    """Output length along one axis: valid ``floor((in - k) / s) + 1`` (0 when the window
    does not fit), same and causal ``ceil(in / s)``.

    Args:
        length: the input's length along the axis; None (unknown) stays None.
        size: the window's length along it.
        stride: the stride along it.
        padding: ``"valid"``, ``"same"`` or ``"causal"``.

    Returns:
        The output's length, or None.
    """
    if length is None:
        return None
    if padding in ("same", "causal"):
        return -(-length // stride)
    return (length - size) // stride + 1 if length >= size else 0


def padding_amounts(length: int, size: int, stride: int, padding: str) -> tuple[int, int]:
    """``(before, after)`` zero padding along one axis; for ``same`` the odd one goes after,
    as in TensorFlow (not Caffe's or PyTorch's rule); ``causal`` pads ``size - 1`` before
    (Keras's Conv1D: an output never sees a later step).

    Args:
        length, size, stride, padding: as for ``output_length``.

    Returns:
        The padding before and after the input; ``(0, 0)`` for ``valid``.
    """
    if padding == "causal":
        return size - 1, 0
    if padding != "same":
        return 0, 0
    out = -(-length // stride)
    total = max((out - 1) * stride + size - length, 0)
    return total // 2, total - total // 2


def output_shape(spatial, window, strides, padding: str) -> tuple:
    """``output_length`` along every spatial axis.

    Args:
        spatial: the input's spatial lengths (entries may be None).
        window, strides: one entry per spatial axis.
        padding: ``"valid"`` or ``"same"``.

    Returns:
        The output's spatial lengths.
    """
    return tuple(output_length(length, size, stride, padding)
                 for length, size, stride in zip(spatial, window, strides))


def paddings(spatial, window, strides, padding: str) -> tuple[tuple[int, int], ...]:
    """``padding_amounts`` along every spatial axis: ``((before, after), ...)``.

    Args:
        spatial, window, strides, padding: as for ``output_shape`` (lengths known).

    Returns:
        One ``(before, after)`` pair per spatial axis.
    """
    return tuple(padding_amounts(length, size, stride, padding)
                 for length, size, stride in zip(spatial, window, strides))


def dilated_window(window, dilation=None) -> tuple[int, ...]:
    """The extent of a dilated kernel along each axis, ``(k - 1)·d + 1`` (the window itself
    when ``dilation`` is None): what the padding arithmetic takes as the window."""
    if dilation is None:
        return tuple(window)
    return tuple((k - 1) * d + 1 for k, d in zip(window, dilation))


def pad(x, pads, value=0.0):
    """``x`` (batch, *spatial, channels) padded on its spatial axes.

    Args:
        x: the array.
        pads: one ``(before, after)`` pair per spatial axis.
        value: what the padding holds (max pooling pads with -inf).

    Returns:
        ``x`` itself when there is no padding, else a padded copy.
    """
    if not any(before or after for before, after in pads):
        return x
    return xp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=value)


def padded_buffer(images: int, spatial, pads, channels: int, dtype):
    """An uninitialised (images, *padded spatial, channels) array whose borders (the
    padding) are zero: a scratch buffer into whose interior blocks of images are copied.

    Only the borders are written: ``zeros`` of a large buffer gets fresh pages from the
    system, zeroed and faulted in on first touch, every time a layer makes one (ResNet's
    small padded convolutions spent a fifth of their step there); ``empty`` reuses the
    memory that NumPy's allocator keeps.

    Args:
        images: the most images the buffer holds.
        spatial: the input's spatial lengths.
        pads: one ``(before, after)`` pair per spatial axis.
        channels: the last axis's length.
        dtype: the element type.

    Returns:
        The array.
    """
    buf = xp.empty((images, *(length + before + after for length, (before, after)
                              in zip(spatial, pads)), channels), dtype=dtype)
    for axis, (length, (before, after)) in enumerate(zip(spatial, pads), start=1):
        lead = (slice(None),) * axis
        buf[(*lead, slice(0, before))] = 0
        buf[(*lead, slice(before + length, None))] = 0
    return buf


def interior(spatial, pads) -> tuple[slice, ...]:
    """The slices of the spatial axes of a padded array that hold the input."""
    return tuple(slice(before, before + length) for length, (before, _) in zip(spatial, pads))


# --- windows -----------------------------------------------------------------------------------

def windows(xpad, out_shape, window, strides, dilation=None):
    """Every window of ``xpad`` as one strided view (no copy).

    Args:
        xpad: the (padded) input, (batch, *spatial, channels).
        out_shape: the output's spatial lengths.
        window, strides: one entry per spatial axis.
        dilation: the kernel's dilation along each axis (None: 1).

    Returns:
        A read-only ``(batch, *out_shape, *window, channels)`` view: ``[b, *o, *k, c]`` is
        ``xpad[b, *(o·s + k·d), c]``.
    """
    batch_stride, *spatial_strides, channel_stride = xpad.strides
    dilation = dilation or (1,) * len(window)
    return as_strided(
        xpad, shape=(xpad.shape[0], *out_shape, *window, xpad.shape[-1]),
        strides=(batch_stride, *(s * step for s, step in zip(spatial_strides, strides)),
                 *(s * d for s, d in zip(spatial_strides, dilation)), channel_stride),
        writeable=False)


def window_slice(a, offset, strides, out_shape):
    """The cell at ``offset`` inside every window of ``a``: a strided (batch, *out_shape,
    channels) slice (a view, writable when ``a`` is).

    Args:
        a: (batch, *spatial, channels), padded as the windows need.
        offset: a position inside the window, one entry per spatial axis.
        strides: the windows' strides.
        out_shape: the number of windows along each spatial axis.
    """
    return a[(slice(None),
              *(slice(i, i + s * (o - 1) + 1, s) for i, s, o in zip(offset, strides, out_shape)),
              slice(None))]


def window_offsets(window) -> list[tuple[int, ...]]:
    """Every position inside a window, in row-major order (``(0, 0), (0, 1), ...``)."""
    return list(itertools.product(*(range(size) for size in window)))


# --- blocks of the batch -----------------------------------------------------------------------

# The scratch budget of one block (see the module docstring): big enough that a block's
# products keep BLAS busy, small enough to stay in the cache.
BLOCK_BYTES = 4 * 2**20


def batch_block(n: int, bytes_per_image: int) -> int:
    """Images per block so that a block's scratch stays within ``BLOCK_BYTES`` (at least 1)."""
    return max(1, min(n, BLOCK_BYTES // max(bytes_per_image, 1)))


def image_blocks(n: int, bytes_per_image: int) -> list[tuple[int, slice]]:
    """The batch's blocks of images, numbered.

    Args:
        n: the batch size.
        bytes_per_image: the scratch one image needs.

    Returns:
        ``[(0, slice(0, b)), (1, slice(b, 2b)), ...]`` with ``b = batch_block(n,
        bytes_per_image)``; the last block may be shorter.
    """
    block = batch_block(n, bytes_per_image)
    return [(number, slice(start, min(start + block, n)))
            for number, start in enumerate(range(0, n, block))]


#: ``even_blocks`` cuts a batch into a multiple of this many blocks, so that 2 or 4 workers
#: get equal shares of a layer whose batch fits one or a few blocks.
BLOCK_MULTIPLE = 4


def even_blocks(n: int, bytes_per_image: int) -> list[tuple[int, slice]]:
    """The batch's blocks of images, numbered, of equal sizes (the larger first where they
    differ by one), each within ``BLOCK_BYTES`` (``batch_block``), as many as a multiple of
    ``BLOCK_MULTIPLE`` (at most one block per image).

    Where ``image_blocks`` leaves the rest of the batch to a short last block, and fits a
    small layer's batch in one block, these blocks keep every worker busy: resnet_small's
    convolutions made 1 to 5 blocks of a batch of 32 (a first layer of 32 images in one
    block, 28 + 4 images in the 8×8 layers), which two workers shared 1:0 to 3:2. The
    blocks depend on the batch and the sizes only, not on the number of workers.

    Args:
        n: the batch size.
        bytes_per_image: the scratch one image needs.

    Returns:
        ``[(0, slice(0, b0)), (1, slice(b0, b0 + b1)), ...]``.
    """
    count = -(-n // batch_block(n, bytes_per_image))
    count = min(n, -(-count // BLOCK_MULTIPLE) * BLOCK_MULTIPLE)
    size, larger = divmod(n, count)
    blocks, start = [], 0
    for number in range(count):
        stop = start + size + (number < larger)
        blocks.append((number, slice(start, stop)))
        start = stop
    return blocks

