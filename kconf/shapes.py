"""Shapes as Keras has them: tuples with the batch axis first, ``None`` where unknown.

Layers compute them, the graph checks them, the data sources compare arrays with them and the
reports print them, all with these few helpers.
"""
from __future__ import annotations

#: A shape, batch axis included: ``(None, 32, 32, 3)``.
Shape = tuple[int | None, ...]


def known_size(dims) -> int | None:
    """The product of ``dims`` (1 for none), or None when any of them is unknown (None)."""
    total = 1
    for d in dims:
        if d is None:
            return None
        total *= d
    return total


def format_shape(shape: Shape) -> str:
    """``(None, 32)`` the way Keras prints shapes."""
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"
