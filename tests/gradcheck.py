"""Finite-difference gradient checks in float64, shared by the layer, activation and loss tests."""
from __future__ import annotations

import numpy as np


def numeric_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``x`` (perturbed in place)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    g = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return grad


def assert_close_grad(analytic, numeric, name: str, rtol: float = 1e-5, atol: float = 1e-7):
    """Relative comparison that tolerates tiny gradients; names the gradient on failure."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    assert analytic.shape == numeric.shape, f"{name}: shape {analytic.shape} != {numeric.shape}"
    scale = max(np.abs(numeric).max(), np.abs(analytic).max(), 1.0)
    err = np.abs(analytic - numeric).max() / scale
    assert err < rtol or np.allclose(analytic, numeric, rtol=rtol, atol=atol), (
        f"{name}: max scaled error {err:.3g}\nanalytic={analytic.ravel()[:8]}\nnumeric={numeric.ravel()[:8]}"
    )
