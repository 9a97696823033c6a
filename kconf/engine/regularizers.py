"""Weight and activity regularizers (``keras.regularizers``): a penalty of an array, added to
the loss, and its gradient.

Each is called on an array (``penalty = reg(w)``, in the array's dtype, as Keras computes it)
and gives the penalty's gradient (``reg.gradient(w)``). ``get`` makes one from its config
form ``(class name, arguments)`` (``kconf.args.weight_options.option_value``).
"""
from __future__ import annotations

from typing import Any

from kconf.engine.backend import xp


class L1L2:
    """``l1 · Σ|w| + l2 · Σw²`` (Keras's ``L1``, ``L2`` and ``L1L2``; ``class_name`` says
    which one it was given as, for export)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0, class_name: str = "L1L2"):
        self.l1 = float(l1)
        self.l2 = float(l2)
        self.class_name = class_name

    def __call__(self, w) -> float:
        t = w.dtype.type
        total = t(0.0)
        if self.l1:
            total += t(self.l1) * xp.abs(w).sum(dtype=w.dtype)
        if self.l2:
            total += t(self.l2) * xp.square(w).sum(dtype=w.dtype)
        return float(total)

    def gradient(self, w):
        t = w.dtype.type
        g = xp.zeros_like(w)
        if self.l1:
            g += t(self.l1) * xp.sign(w)
        if self.l2:
            g += t(2.0 * self.l2) * w
        return g

    def get_config(self) -> dict[str, Any]:
        if self.class_name == "L1":
            return {"l1": self.l1}
        if self.class_name == "L2":
            return {"l2": self.l2}
        return {"l1": self.l1, "l2": self.l2}


class OrthogonalRegularizer:
    """``factor · ½ · Σ_{i≠j} |n_i · n_j| / (k(k − 1)/2)`` over the L2-normalised rows
    (``mode: rows``) or columns of a rank-2 weight, as Keras 3 (rows scaled by
    ``min(1/‖row‖, 1/ε)``, ε = 1e-7)."""

    class_name = "OrthogonalRegularizer"

    def __init__(self, factor: float = 0.01, mode: str = "rows"):
        self.factor = float(factor)
        self.mode = mode

    def _rows(self, w):
        if w.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer needs a rank-2 weight, got shape {w.shape}")
        return w if self.mode == "rows" else w.T

    def _parts(self, x):
        """(scales, normalised rows, their products without the diagonal, factor / pairs)."""
        t = x.dtype.type
        inv = xp.minimum(1.0 / xp.sqrt(xp.square(x).sum(axis=1, keepdims=True)), t(1e7))
        n = x * inv
        product = n @ n.T
        xp.fill_diagonal(product, 0.0)
        k = x.shape[0]
        return inv, n, product, t(self.factor * 0.5 / (k * (k - 1) / 2.0))

    def __call__(self, w) -> float:
        _, _, product, scale = self._parts(self._rows(w))
        return float(scale * xp.abs(product).sum(dtype=w.dtype))

    def gradient(self, w):
        x = self._rows(w)
        inv, n, product, scale = self._parts(x)
        g = scale * xp.sign(product)  # d / d product, zero on the diagonal
        dn = (g + g.T) @ n
        clipped = inv >= x.dtype.type(1e7)  # the scale is a constant there
        dx = inv * (dn - xp.where(clipped, 0.0, inv * inv * (dn * x).sum(axis=1, keepdims=True)) * x)
        return dx.astype(w.dtype, copy=False) if self.mode == "rows" else dx.T.astype(w.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}


def get(spec: tuple[str, dict[str, Any]]):
    """A regularizer from ``(Keras class name, arguments)``."""
    name, args = spec
    if name == "OrthogonalRegularizer":
        return OrthogonalRegularizer(**args)
    return L1L2(args.get("l1", 0.0), args.get("l2", 0.0), class_name=name)
