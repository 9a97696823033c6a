"""Convolution of a block of images: im2col for any number of spatial axes, strides,
dilations and groups, or products on shifted rows (``shifted_rows``) for 2-D stride-1 layers;
the input gradients, one also used as a transposed convolution (see ``kconf.engine.kernels``).
"""
from __future__ import annotations

import itertools
import math

from kconf.engine.backend import xp
from kconf.engine.kernels.geometry import (interior, padded_buffer, window_offsets, window_slice,
                                          windows)
from kconf.engine.kernels.shifted_rows import ShiftedRows


# --- convolution -------------------------------------------------------------------------------

def uses_shifted_rows(in_shape, pads, window, strides, channels_in: int, channels_out: int,
                      dilation=None, groups: int = 1) -> bool:
    """Whether a convolution runs on shifted rows (``ShiftedRows``) rather than im2col: 2-D,
    stride 1, rows of ``kw·cin`` >= 64 numbers, at most 32 output channels, and windows at
    no fewer than 90% of the padded image's positions.

    Narrower rows make products that lose to im2col's single wide one; with more output
    channels im2col's product is already efficient, and the garbage rows and the adds of the
    kh products make shifted rows slower (forward) or no faster (backward). With few, im2col's
    product is narrow and slow, and shifted rows win on large images (vgg's 98×98, 4% of the
    positions garbage); on small ones the garbage (21% on resnet_small's 16×16 'same'
    layers) and the shorter products lose to im2col by a third (bench/README.md has the
    numbers).
    """
    if not (len(window) == 2 and all(s == 1 for s in strides)
            and (dilation is None or all(d == 1 for d in dilation)) and groups == 1
            and window[1] * channels_in >= 64 and channels_out <= 32):
        return False
    padded = [length + before + after for length, (before, after) in zip(in_shape, pads)]
    windows_at = math.prod(p - k + 1 for p, k in zip(padded, window))
    return windows_at >= 0.9 * math.prod(padded)


def convolution(images: int, in_shape, pads, window, strides, out_shape, cin: int, cout: int,
                dtype, dilation=None, groups: int = 1):
    """A convolution of blocks of up to ``images`` images: on shifted rows where
    ``uses_shifted_rows`` says so, else im2col. Both have ``forward(x, kernel, z, bias)`` and
    ``gradients(x, dz, kernel, dkernel, dx)``; each worker makes its own (its scratch).

    Args:
        images: the most images in a block.
        in_shape: the input's spatial lengths.
        pads: ``paddings(...)`` of the input.
        window, strides: the kernel's spatial size and the strides.
        out_shape: the output's spatial lengths.
        cin, cout: channels in and out.
        dtype: the computation's dtype.
        dilation: the kernel's dilation along each axis (None: 1).
        groups: channel groups (``Im2colConvolution``).

    Returns:
        A ``ShiftedRows`` or an ``Im2colConvolution``.
    """
    if uses_shifted_rows(in_shape, pads, window, strides, cin, cout, dilation, groups):
        return ShiftedRows(images, in_shape, pads, window, cin, cout, dtype)
    return Im2colConvolution(images, in_shape, pads, window, strides, out_shape, cin, dtype,
                             dilation, groups)


class Im2colConvolution:
    """One worker's im2col convolution (any strides, dilations and groups, any number of
    spatial axes), block by block.

    Forward: a strided view of the (padded) block gathers every receptive field into a
    ``(b·prod(out), prod(window)·cin)`` matrix (``cols``), multiplied by the kernel reshaped
    to ``(prod(window)·cin, cout)``. Kernel gradient: ``cols.T @ dz``, with ``cols`` built
    again. Input gradient: see ``_InputGradient``.

    ``cols(x)`` is the block's matrix: rows in (image, *output position) order, columns in
    the kernel's (*window, c) order. Every block is written into the same scratch buffer
    (sized for ``images`` images), so use it before asking for the next one.

    With ``groups`` g > 1 (Keras's grouped convolution: input channels and filters split in
    g consecutive groups, group i's filters see only group i's channels; the kernel is
    ``(*window, cin/g, cout)``), ``cols`` is ``(g, rows, prod(window)·cin/g)``, one matrix
    per group, and the products are batched over the groups.

    Args:
        images: the most images in a block.
        in_shape: the input's spatial lengths.
        pads: one ``(before, after)`` pair per spatial axis.
        window, strides: the kernel's spatial size and the strides.
        out_shape: the output's spatial lengths.
        cin: input channels.
        dtype: the computation's dtype.
        dilation: the kernel's dilation along each axis (None: 1).
        groups: channel groups.
    """

    def __init__(self, images: int, in_shape, pads, window, strides, out_shape, cin: int,
                 dtype, dilation=None, groups: int = 1):
        self.pads, self.window, self.strides, self.out_shape = pads, window, strides, out_shape
        self.dilation, self.groups = dilation, groups
        self.padded = None
        if any(before or after for before, after in pads):  # zero borders written once
            self.padded = padded_buffer(images, in_shape, pads, cin, dtype)
            self.interior = interior(in_shape, pads)
        self._windows = {}  # block size -> windows of the padded buffer (a view)
        self._dx = None  # the input gradient's writer, made on first use
        self.images = images
        # 1x1, stride 1, unpadded, one group: im2col's matrix is the input itself
        self.pointwise = (groups == 1 and self.padded is None and dilation is None
                          and all(w == 1 for w in window) and all(s == 1 for s in strides))
        self.dtype = dtype
        self.scratch = None if self.pointwise else xp.empty(
            (images * math.prod(out_shape), math.prod(window) * cin), dtype=dtype)

    def cols(self, x, fresh: bool = False):
        """The block ``x``'s im2col matrix (a view of the scratch, or with ``fresh`` an array
        of its own, to keep); ``(groups, rows, prod(window)·cin/groups)`` when grouped."""
        b, cin = x.shape[0], x.shape[-1]
        if self.pointwise:
            return xp.ascontiguousarray(x, dtype=self.dtype).reshape(-1, cin)  # a 1x1 stride-1 window: the rows are the pixels
        if self.padded is not None:
            self.padded[(slice(0, b), *self.interior)] = x
            view = self._windows.get(b)
            if view is None:  # the padded buffer's windows: made once per block size
                view = self._windows[b] = windows(self.padded[:b], self.out_shape,
                                                  self.window, self.strides, self.dilation)
        else:
            view = windows(x, self.out_shape, self.window, self.strides, self.dilation)
        rows = b * math.prod(self.out_shape)
        scratch = xp.empty_like(self.scratch) if fresh else self.scratch
        if self.groups == 1:
            cols = scratch[:rows]
            xp.copyto(cols.reshape(b, *self.out_shape, *self.window, cin), view)
            return cols
        g = self.groups
        cols = scratch.reshape(-1)[:rows * scratch.shape[1]].reshape(g, rows, -1)
        view = view.reshape(*view.shape[:-1], g, cin // g)
        xp.copyto(cols.reshape(g, b, *self.out_shape, *self.window, cin // g),
                  xp.moveaxis(view, -2, 0))
        return cols

    def forward(self, x, kernel, z, bias=None) -> None:
        """``z`` (b, *out, cout) = the convolution of the block ``x`` with ``kernel``
        (*window, cin/groups, cout), plus ``bias`` if given."""
        cout = kernel.shape[-1]
        if self.groups == 1:
            xp.matmul(self.cols(x), kernel.reshape(-1, cout), out=z.reshape(-1, cout))
        else:
            zg = xp.matmul(self.cols(x), _group_kernel(kernel, self.groups))  # (g, rows, f)
            z.reshape(-1, self.groups, cout // self.groups)[...] = zg.transpose(1, 0, 2)
        if bias is not None:
            z += bias

    def gradients(self, x, dz, kernel, dkernel, dx, keep: bool = False):
        """The block's kernel gradient into ``dkernel`` (prod(window)·cin/groups, cout), and
        its input gradient into ``dx`` (b, *spatial, cin) unless that is None, from ``dz``
        (b, *out, cout).

        With ``keep`` the kernel gradient is left for later (``Ops.defer``): its matrix is
        built into an array of its own, not this worker's scratch, and the function that
        writes it into ``dkernel`` is returned (it reads ``x`` and ``dz``, which must not
        change meanwhile); without, it is written now and None returned.
        """
        if dx is not None and self._dx is None:
            self._dx = self._input_gradient(kernel, x.shape[1:-1])
        if dx is not None and self._dx.shares_dz_matrix:
            return self._dx.gradients(x, dz, dkernel, dx, keep)  # both from dz's matrix
        cols = self.cols(x, fresh=keep)

        def kernel_gradient() -> None:
            rows = dz.reshape(-1, dz.shape[-1])
            if self.groups == 1:
                xp.matmul(cols.T, rows, out=dkernel)
                return
            g, cout = self.groups, dz.shape[-1]
            dzg = rows.reshape(-1, g, cout // g).transpose(1, 0, 2)
            dkg = xp.matmul(cols.transpose(0, 2, 1), dzg)  # (g, P·cin/g, f)
            dkernel[...] = dkg.reshape(g, math.prod(self.window), -1, cout // g).transpose(
                1, 2, 0, 3).reshape(dkernel.shape)

        if not keep:
            kernel_gradient()  # while the scratch holds x's matrix
        if dx is not None:
            self._dx.add_block(dz, dx)
        return kernel_gradient if keep else None

    def _input_gradient(self, kernel, in_shape):
        """The writer of this worker's dx: a strided convolution's phase by phase
        (``_PhaseInputGradient``), a stride-1 one's as a convolution
        (``_TransposedInputGradient``), a dilated or grouped one's and a 1×1 one's (one
        product) by ``_InputGradient``."""
        if self.dilation is not None or self.groups != 1 or math.prod(self.window) == 1:
            return _InputGradient(kernel, self.pads, self.strides, self.dilation, self.groups)
        if any(s > 1 for s in self.strides):
            return _PhaseInputGradient(kernel, self.images, in_shape, self.pads, self.strides,
                                       self.out_shape, self.dtype)
        return _TransposedInputGradient(kernel, self.images, in_shape, self.pads,
                                        self.out_shape, self.dtype)


def conv_transpose(x, kernel, pads, strides, dilation, y) -> None:
    """``y`` (b, *out, cout) = the transposed convolution of ``x`` (b, *in, cin): the input
    gradient of the convolution of y's (padded) positions with ``kernel`` (*window, cout,
    cin) whose output is x; ``pads`` crop the full result to y.

    Args:
        x: the input (contiguous).
        kernel: (*window, cout, cin), Keras's ``Conv*Transpose`` layout.
        pads: one ``(before, after)`` pair per spatial axis: y starts ``before`` into the
            full result, which reaches ``after`` past y's end (or ends inside it).
        strides, dilation: one entry per spatial axis.
        y: the output, written.
    """
    _InputGradient(kernel, pads, strides, dilation).add_block(x, y)


def _group_kernel(kernel, groups: int):
    """A grouped kernel (*window, cin/g, cout) as one matrix per group: (g, P·cin/g, cout/g)."""
    *window, cin_g, cout = kernel.shape
    return xp.ascontiguousarray(kernel.reshape(math.prod(window), cin_g, groups,
                                               cout // groups).transpose(2, 0, 1, 3)).reshape(
        groups, -1, cout // groups)


class _InputGradient:
    """One worker's writer of a convolution's dx, a block of images at a time
    (``add_block``).

    Each kernel offset adds ``dz @ kernel[offset].T`` into its strided slice of the (padded)
    dx, so overlapping windows add up; the first offset sets its slice, so only the rest of
    dx needs zeros. These prod(window) small products beat one ``dz @ kernel.T`` followed by
    col2im (whose adds read rows strided by prod(window)·cin) and dx as a convolution of the
    padded dz with the flipped kernel (an im2col of dz as large as the forward one); per
    block, the products and the adds stay in the cache. A dilated kernel's offset ``k``
    lands ``k·d`` into the window; grouped, each group's products are batched.
    """

    shares_dz_matrix = False  # see _TransposedInputGradient

    def __init__(self, kernel, pads, strides, dilation=None, groups: int = 1):
        self.kernel, self.pads, self.strides, self.groups = kernel, pads, strides, groups
        self.offsets = window_offsets(kernel.shape[:-2])
        self.dilation = dilation or (1,) * len(self.offsets[0])
        self._product = None  # scratch for one offset's product, and for the padded dx
        self._padded = None

    def add_block(self, dz, dx) -> None:
        """Write ``dx`` (b, *spatial, cin) of a block of images from their ``dz``
        (b, *out, cout)."""
        b, *out_shape, cout = dz.shape
        spatial = dx.shape[1:-1]
        cin = dx.shape[-1]
        g = self.groups
        padded = any(before or after for before, after in self.pads)
        rows = b * math.prod(out_shape)
        if self._product is None or self._product.shape[0] < rows:
            self._product = xp.empty((rows, cin), dtype=self.kernel.dtype)
            if padded:
                self._padded = xp.empty((b, *(length + before + after for length, (
                    before, after) in zip(spatial, self.pads)), cin), dtype=self.kernel.dtype)
        dxp = self._padded[:b] if padded else dx
        dzrows = dz.reshape(-1, cout)
        dzg = dzrows.reshape(-1, g, cout // g).transpose(1, 0, 2) if g > 1 else None
        prod = self._product[:rows]
        for offset in self.offsets:
            if g == 1:
                xp.matmul(dzrows, self.kernel[offset].T, out=prod)
            else:  # (g, rows, f) @ (g, f, cin/g), back to (rows, cin)
                k_g = self.kernel[offset].reshape(cin // g, g, cout // g).transpose(1, 2, 0)
                prod.reshape(rows, g, cin // g)[...] = xp.matmul(dzg, k_g).transpose(1, 0, 2)
            part = prod.reshape(b, *out_shape, cin)
            target = window_slice(dxp, tuple(i * d for i, d in zip(offset, self.dilation)),
                                  self.strides, out_shape)
            if any(offset):
                target += part
                continue
            if all(s == 1 for s in self.strides):
                # the first offset sets its corner (out_shape from 0); zero the rest, axis
                # by axis
                for axis, length in enumerate(out_shape):
                    dxp[(slice(None), *(slice(0, o) for o in out_shape[:axis]),
                         slice(length, None))] = 0
            else:
                dxp.fill(0)
            target[...] = part
        if padded:
            dx[...] = dxp[(slice(None), *interior(spatial, self.pads))]


class _TransposedInputGradient:
    """One worker's writer of a stride-1 convolution's dx (``add_block``, as
    ``_InputGradient``): the convolution of dz, padded ``k − 1 − before`` and ``k − 1 −
    after``, with the kernel flipped along every spatial axis and its channels swapped
    (``convolution``: im2col, or shifted rows where they pay).

    One product of depth ``prod(window)·cout`` and im2col's copy of dz replace
    ``_InputGradient``'s prod(window) products of depth cout and its strided adds: on
    resnet_small's layers (16–64 channels, 8×8 to 32×32 images) a third less time; on vgg's
    the same within the noise (bench/README.md).

    Args:
        kernel: (*window, cin, cout).
        images: the most images in a block.
        in_shape: the convolution's input's spatial lengths (dx's).
        pads: its ``(before, after)`` padding per spatial axis.
        out_shape: its output's spatial lengths (dz's).
        dtype: the computation's dtype.
    """

    def __init__(self, kernel, images: int, in_shape, pads, out_shape, dtype):
        *window, cin, cout = kernel.shape
        self.window, self.cin = tuple(window), cin
        self.flip = tuple(slice(None, None, -1) for _ in window)
        self.kernel = xp.ascontiguousarray(kernel[self.flip].swapaxes(-1, -2), dtype=dtype)
        dz_pads = tuple((k - 1 - before, k - 1 - after) for k, (before, after)
                        in zip(window, pads))
        self.conv = convolution(images, out_shape, dz_pads, window, (1,) * len(window),
                                in_shape, cout, cin, dtype)
        #: whether ``gradients`` can give the kernel gradient too (dz's im2col matrix)
        self.shares_dz_matrix = isinstance(self.conv, Im2colConvolution)

    def add_block(self, dz, dx) -> None:
        """Write ``dx`` (b, *spatial, cin) of a block of images from their ``dz``
        (b, *out, cout)."""
        self.conv.forward(dz, self.kernel, dx)

    def gradients(self, x, dz, dkernel, dx, keep: bool = False):
        """The block's ``dx`` and its kernel gradient (into ``dkernel``, (prod(window)·cin,
        cout)) from one im2col matrix, dz's (only where ``shares_dz_matrix``); with ``keep``
        the kernel gradient is left for later, as ``Im2colConvolution.gradients`` says.

        Row q of dz's matrix holds, at the flipped offset of kernel offset k, the dz of the
        output whose window puts offset k on input position q; so ``x_rowsᵀ @ matrix``
        (cin, prod(window)·cout) is the kernel gradient with its offsets flipped, and x's
        own im2col matrix (as large as dz's) is not built in backward.
        """
        cols = self.conv.cols(dz, fresh=keep)
        cin = self.cin
        xp.matmul(cols, self.kernel.reshape(-1, cin), out=dx.reshape(-1, cin))

        def kernel_gradient() -> None:
            flipped = xp.reshape(x, (-1, cin)).T @ cols  # (cin, prod(window)·cout)
            cout = dkernel.shape[-1]
            dkernel.reshape(*self.window, cin, cout)[...] = xp.moveaxis(
                flipped.reshape(cin, *self.window, cout)[(slice(None), *self.flip)], 0, -2)

        if not keep:
            kernel_gradient()
        return kernel_gradient if keep else None


class _PhaseInputGradient:
    """One worker's writer of a strided convolution's dx (``add_block``, as
    ``_InputGradient``), one phase of dx at a time.

    With stride s along an axis, the input positions ``s·a + r`` of one residue r (a phase)
    receive only the kernel taps ``i ≡ r + before (mod s)``, and from consecutive outputs:
    along each axis, ``dx[s·a + r] = Σ_m dz[a + c − m] @ kernel[i0 + s·m]ᵀ`` (``i0`` the
    first such tap, ``c = (r + before − i0) / s``), a stride-1 correlation of dz (cropped or
    padded) with those taps flipped. Each phase is an im2col convolution of dz
    (``Im2colConvolution``), written into its strided slice of dx in one pass; a phase that
    no tap reaches is zero. The products are those of forward, with phases' windows of
    ceil(k/s) taps; ``_InputGradient``'s prod(window) products of depth cout and strided
    adds took twice as long on resnet_small's stride-2 layers (bench/README.md).

    Args:
        kernel: (*window, cin, cout).
        images: the most images in a block.
        in_shape: the convolution's input's spatial lengths (dx's).
        pads: its ``(before, after)`` padding per spatial axis.
        strides: its strides.
        out_shape: its output's spatial lengths (dz's).
        dtype: the computation's dtype.
    """

    shares_dz_matrix = False  # see _TransposedInputGradient

    def __init__(self, kernel, images: int, in_shape, pads, strides, out_shape, dtype):
        *window, cin, cout = kernel.shape
        per_axis = [[_phase(k, s, before, length, r, out) for r in range(s)] for k, s,
                    (before, _), length, out in zip(window, strides, pads, in_shape, out_shape)]
        self.strides, self.cin = tuple(strides), cin
        self.phases = []  # (dx's slice, dz's crop, kernel, convolution, output shape)
        for residues, axes in zip(itertools.product(*(range(s) for s in strides)),
                                  itertools.product(*per_axis)):
            target = tuple(slice(r, None, s) for r, s in zip(residues, strides))
            if any(axis is None for axis in axes):  # no tap reaches this phase
                self.phases.append((target, None, None, None, None))
                continue
            taps = tuple(axis[0] for axis in axes)
            crop = tuple(axis[1] for axis in axes)
            phase_pads = tuple(axis[2] for axis in axes)
            lengths = tuple(axis[3] for axis in axes)
            flip = kernel[taps][tuple(slice(None, None, -1) for _ in window)]
            sub = xp.ascontiguousarray(flip.swapaxes(-1, -2), dtype=dtype)
            cropped = tuple(c.stop - c.start for c in crop)
            conv = Im2colConvolution(images, cropped, phase_pads, sub.shape[:-2],
                                     (1,) * len(window), lengths, cout, dtype)
            self.phases.append((target, crop, sub, conv, lengths))
        self.buffer = None

    def add_block(self, dz, dx) -> None:
        """Write ``dx`` (b, *spatial, cin) of a block of images from their ``dz``
        (b, *out, cout)."""
        b = dz.shape[0]
        for target, crop, sub, conv, lengths in self.phases:
            part = dx[(slice(None), *target)]
            if conv is None:
                part[...] = 0
                continue
            size = b * math.prod(lengths) * self.cin
            if self.buffer is None or self.buffer.size < size:
                self.buffer = xp.empty(max(size, 1), dtype=dx.dtype)
            out = self.buffer[:size].reshape(b, *lengths, self.cin)
            conv.forward(dz[(slice(None), *crop)], sub, out)
            part[...] = out


def _phase(k: int, s: int, before: int, length: int, r: int, out: int):
    """One axis of one phase of ``_PhaseInputGradient``: (the taps, as a slice of the
    kernel's axis; dz's crop; the phase convolution's padding; the phase's length), or None
    where no tap reaches the phase (or it has no positions)."""
    i0 = (r + before) % s
    count = -(-(length - r) // s)  # positions s·a + r < length
    if i0 >= k or count <= 0:
        return None
    taps = -(-(k - i0) // s)
    c = (r + before - i0) // s
    start = c - taps + 1  # dz's index for a = 0 at the first flipped tap
    stop = count - 1 + c + 1  # one past the last index any position reads
    crop = slice(max(start, 0), min(stop, out))
    return (slice(i0, k, s), crop, (max(-start, 0), max(stop - out, 0)), count)

