"""Convolution and pooling kernels, shared by the convolution and pooling layers.

Arrays are channels-last with any number of spatial axes: ``(batch, *spatial, channels)``;
a window (kernel or pool size) and its strides have one entry per spatial axis, so a 1-D, 2-D
or 3-D layer calls the same functions. What is here:

* padding arithmetic: ``output_length`` / ``padding_amounts`` for one axis (Keras's
  ``valid`` and ``same``, TensorFlow's rule: the odd padding goes after; ``causal``: all of it
  before), ``output_shape`` / ``paddings`` for all spatial axes, ``pad``; ``dilated_window``
  (a dilated kernel's extent, which the padding arithmetic takes as its window);
* windows: ``windows`` (every window as a strided view), ``window_slice`` (one offset of
  every window), ``window_offsets``;
* blocks of the batch: ``image_blocks``, sized by a byte budget (``BLOCK_BYTES``), and
  ``even_blocks`` (equal blocks, as many as a multiple of ``BLOCK_MULTIPLE``: the
  convolutions');
* convolution of a block of images: ``Im2colConvolution`` (any number of spatial axes,
  strides, dilations and groups) and ``ShiftedRows`` (2-D, stride 1, on shifted rows of the
  flat input), chosen by ``convolution``; ``conv_transpose`` (a convolution's input gradient
  as a layer of its own);
* max pooling: ``max_pool``; average pooling: ``average_pool``;
* per-channel work on (rows, channels) matrices: ``column_sums`` (sums down the columns,
  rounded about as once) and ``lines`` (rows per wide line for per-channel elementwise
  passes), used by BatchNormalization.

Blocks. A convolution's im2col matrix is ``prod(window)`` times the size of the input
(vgg's second convolution: 340 MB at batch 32), so it is never whole and never kept: it is
built a block of images at a time into a scratch buffer, used by the block's product at
once, and built again in backward for the kernel gradient. A block of a few MB is still in
the CPU's cache when its product reads it. The loops over blocks are memory blocking: their
length is set by a byte budget, and each step works on whole images. The layers run the
blocks on ``Ops.parallel``'s workers, one convolution object (its scratch) per worker.

Layout: ``geometry`` (padding arithmetic, windows, blocks of the batch), ``convolution``
(im2col, the input gradients, the choice of kernel), ``shifted_rows``, ``pooling``,
``channels``; this package names what the layers use.
"""
from __future__ import annotations

from kconf.engine.kernels.channels import column_sums, lines
from kconf.engine.kernels.convolution import (
    Im2colConvolution,
    conv_transpose,
    convolution,
    uses_shifted_rows,
)
from kconf.engine.kernels.geometry import (
    BLOCK_BYTES,
    batch_block,
    dilated_window,
    even_blocks,
    image_blocks,
    output_length,
    output_shape,
    pad,
    padding_amounts,
    paddings,
    window_offsets,
    window_slice,
    windows,
)
from kconf.engine.kernels.pooling import average_pool, max_pool
from kconf.engine.kernels.shifted_rows import ShiftedRows

__all__ = ["BLOCK_BYTES", "Im2colConvolution", "ShiftedRows", "average_pool", "batch_block",
           "column_sums", "conv_transpose", "convolution", "dilated_window", "even_blocks",
           "image_blocks", "lines", "max_pool", "output_length", "output_shape", "pad",
           "padding_amounts", "paddings", "uses_shifted_rows", "window_offsets",
           "window_slice", "windows"]
