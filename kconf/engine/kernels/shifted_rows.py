"""Products on shifted rows: a stride-1 2-D convolution without im2col (``ShiftedRows``),
chosen by ``kernels.convolution.uses_shifted_rows``."""
from __future__ import annotations

from kconf.engine.backend import xp
from kconf.engine.kernels.geometry import padded_buffer


class ShiftedRows:
    """A stride-1 2-D convolution without im2col: products on shifted views of the
    flattened input, for blocks of up to ``images`` images of one call.

    Number every pixel of a block of (padded) images by its flat index ``P = (image·hp +
    row)·wp + column``, and compute an output for every ``P``, as if each window could start
    anywhere (those whose window runs off the right or bottom edge are garbage, a few percent
    of the rows, and are never read). Kernel row ``i`` of the window at ``P`` reads the ``kw``
    pixels ``P + i·wp ... P + i·wp + kw - 1``: ``kw·cin`` consecutive numbers of the flat
    input. Split the positions by ``P mod kw``: for the positions ``P = kw·m + r``, those
    stretches start ``kw·cin`` numbers apart, so they are the rows of a plain reshape of a
    slice of the input, a ``(M_r, kw·cin)`` matrix with no copy. Hence

        z[r::kw] = Σ_i  x_flat[(r + i·wp)·cin :].reshape(M_r, kw·cin) @ kernel[i]

    (kh products) for each residue r: kh·kw products of ``(M_r, kw·cin) @ (kw·cin, cout)``
    replace im2col's copy (kh·kw times the input) and its one product. The kernel gradient is the same
    products transposed, ``Σ_r A_ir.T @ dz[r::kw]`` with dz zero at the garbage positions,
    and the input gradient adds ``dz[r::kw] @ kernel[i].T`` into the same slices of a flat
    dx. Where this pays is ``uses_shifted_rows``.

    Args:
        images: the most images in a block.
        in_shape: the input's (height, width).
        pads: ((top, bottom), (left, right)) zero padding.
        window: (kh, kw).
        cin, cout: channels in and out.
        dtype: the computation's dtype.
    """

    def __init__(self, images: int, in_shape, pads, window, cin: int, cout: int, dtype):
        (top, bottom), (left, right) = pads
        h, w = in_shape
        kh, kw = window
        self.h, self.w, self.top, self.left = h, w, top, left
        self.hp, self.wp = h + top + bottom, w + left + right
        self.ho, self.wo = self.hp - kh + 1, self.wp - kw + 1
        self.kh, self.kw, self.cin, self.cout = kh, kw, cin, cout
        pixels = images * self.hp * self.wp
        self.padded = (padded_buffer(images, in_shape, pads, cin, dtype)
                       if top or bottom or left or right else None)
        self.full = xp.empty((pixels, cout), dtype=dtype)  # z or dz at every position
        self.tmp = xp.empty((-(-pixels // kw), max(cout, kw * cin)), dtype=dtype)
        self.small = xp.empty((kw * cin, cout), dtype=dtype)

    def _flat(self, x):
        """The block's input, zero-padded, as one flat array."""
        if self.padded is None:
            return x.reshape(-1)
        b = x.shape[0]
        self.padded[:b, self.top:self.top + self.h, self.left:self.left + self.w] = x
        return self.padded[:b].reshape(-1)

    def _spans(self, b: int):
        """(r, M_r, [the (M_r, kw·cin) input slice's start for each kernel row])."""
        kh, kw, wp, cin = self.kh, self.kw, self.wp, self.cin
        positions = b * self.hp * wp - (kh - 1) * wp - (kw - 1)  # windows inside the block
        for r in range(min(kw, positions)):
            rows = -(-(positions - r) // kw)
            yield r, rows, [(r + i * wp) * cin for i in range(kh)]

    def _rows(self, flat, start: int, rows: int):
        return flat[start:start + rows * self.kw * self.cin].reshape(rows, self.kw * self.cin)

    def forward(self, x, kernel, z, bias=None) -> None:
        """``z`` (b, ho, wo, cout) = the correlation of the block ``x`` (b, h, w, cin) with
        ``kernel`` (kh, kw, cin, cout), plus ``bias`` if given (added as the outputs are
        copied out of the garbage)."""
        b = x.shape[0]
        flat = self._flat(x)
        full = self.full[:b * self.hp * self.wp]
        for r, rows, starts in self._spans(b):
            out = full[r::self.kw][:rows]
            for i, start in enumerate(starts):
                k_i = kernel[i].reshape(-1, self.cout)
                if i == 0:
                    xp.matmul(self._rows(flat, start, rows), k_i, out=out)
                    continue
                tmp = self.tmp[:rows, :self.cout]
                xp.matmul(self._rows(flat, start, rows), k_i, out=tmp)
                out += tmp
        valid = full.reshape(b, self.hp, self.wp, self.cout)[:, :self.ho, :self.wo]
        if bias is None:
            z[...] = valid
        else:
            xp.add(valid, bias, out=z)

    def gradients(self, x, dz, kernel, dkernel, dx, keep: bool = False) -> None:
        """The block's kernel gradient into ``dkernel`` (kh·kw·cin, cout), and its input
        gradient into ``dx`` (b, h, w, cin) unless that is None, from ``dz`` (b, ho, wo, cout).
        Both now, whatever ``keep`` (``Im2colConvolution.gradients``) says: the kernel
        gradient's products read the scratch that dx's then overwrite; returns None.
        """
        b = x.shape[0]
        dkernel = dkernel.reshape(self.kh, self.kw * self.cin, self.cout)
        flat = self._flat(x)
        full4 = self.full[:b * self.hp * self.wp].reshape(b, self.hp, self.wp, self.cout)
        full4[:, :self.ho, :self.wo] = dz  # and zeros where the garbage outputs were
        full4[:, self.ho:] = 0
        full4[:, :self.ho, self.wo:] = 0
        full = full4.reshape(-1, self.cout)
        spans = list(self._spans(b))
        for i in range(self.kh):
            for r, rows, starts in spans:
                out = dkernel[i] if r == 0 else self.small
                xp.matmul(self._rows(flat, starts[i], rows).T, full[r::self.kw][:rows], out=out)
                if r:
                    dkernel[i] += out
        if dx is None:
            return
        if self.padded is None:
            dflat = dx.reshape(-1)
        else:
            dflat = self.padded[:b].reshape(-1)  # the input's copy is no longer needed
        for r, rows, starts in spans:
            d = full[r::self.kw][:rows]
            for i, start in enumerate(starts):
                k_t = kernel[i].reshape(-1, self.cout).T
                target = self._rows(dflat, start, rows)
                if r == i == 0:  # the first product sets its slice (from 0), zeros the rest
                    xp.matmul(d, k_t, out=target)
                    dflat[target.size:] = 0
                    continue
                tmp = self.tmp[:rows, :self.kw * self.cin]
                xp.matmul(d, k_t, out=tmp)
                target += tmp
        if self.padded is not None:
            dx[...] = self.padded[:b, self.top:self.top + self.h, self.left:self.left + self.w]
            self.padded[:b].fill(0)  # zero borders again for the next block's input

