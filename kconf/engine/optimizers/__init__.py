"""Optimizers with Keras 3 semantics, one small class each, grouped by family:

- ``base``: the machinery every optimizer shares (slots, the flat and blockwise updates, how
  row-sparse gradients are applied) — read its docstring first; ``state``: its
  ``get_state`` / ``set_state``;
- ``rows``: row-sparse gradients (``RowGrad``, ``coalesce_rows``);
- ``options``: Keras's options of every optimizer (weight decay, clipping, EMA, gradient
  accumulation, loss scaling) and the order they run in;
- ``sgd`` (SGD), ``adaptive`` (RMSprop, Adagrad, Adadelta), ``adam`` (Adam, AdamW, Adamax,
  Nadam, Lamb), ``lion`` (Lion), ``ftrl`` (Ftrl).

``from kconf.engine.optimizers import SGD, RowGrad, get, OPTIMIZERS`` works as before.
"""
from __future__ import annotations

from kconf.engine.optimizers.adam import Adam, Adamax, AdamW, Lamb, Nadam
from kconf.engine.optimizers.adaptive import Adadelta, Adagrad, RMSprop
from kconf.engine.optimizers.base import Optimizer
from kconf.engine.optimizers.rows import RowGrad, coalesce_rows
from kconf.engine.optimizers.ftrl import Ftrl
from kconf.engine.optimizers.lion import Lion
from kconf.engine.optimizers.options import Options
from kconf.engine.optimizers.sgd import SGD

__all__ = ["OPTIMIZERS", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "Ftrl", "Lamb",
           "Lion", "Nadam", "Optimizer", "Options", "RMSprop", "RowGrad", "SGD",
           "coalesce_rows", "get"]

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "SGD": SGD, "RMSprop": RMSprop, "Adam": Adam, "AdamW": AdamW, "Adamax": Adamax,
    "Nadam": Nadam, "Adagrad": Adagrad, "Adadelta": Adadelta, "Ftrl": Ftrl, "Lion": Lion,
    "Lamb": Lamb,
}


def get(name: str, **kwargs) -> Optimizer:
    """An optimizer from its class name or Keras string alias.

    Args:
        name: a class name of ``OPTIMIZERS`` (``"SGD"``, ``"AdamW"``, ...), or one matched
            case-insensitively (``"sgd"``, ``"adamw"``).
        **kwargs: constructor arguments (``learning_rate``, ``momentum``, ``clipnorm``,
            ``lazy_sparse``, ...).

    Returns:
        A new optimizer instance.

    Raises:
        KeyError: for an unknown name.
    """
    by_lower = {key.lower(): cls for key, cls in OPTIMIZERS.items()}
    cls = OPTIMIZERS.get(name) or by_lower.get(str(name).lower())
    if cls is None:
        raise KeyError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return cls(**kwargs)
