"""What the trackers share: their optional extras and how a config is flattened into
parameters. A module of its own so that the trackers and the package import it without a
cycle."""
from __future__ import annotations

import importlib
from typing import Any

from kconf.errors import ConfigError, Problem

EXTRAS = {"TensorBoard": ("tensorboardX", "tensorboard", "tensorboardX"),
          "MLflow": ("mlflow", "mlflow", "mlflow")}


def install_hint(name: str) -> str:
    """The sentence naming the extra that a tracking callback needs."""
    module, extra, _ = EXTRAS[name]
    return f"{name} needs {module}, an optional extra: pip install 'kconf[{extra}]'"


def import_extra(name: str):
    """The writer module of a tracking callback (``tensorboardX``, ``mlflow``).

    Raises:
        ConfigError: it is not installed; the message names the extra.
    """
    module = EXTRAS[name][0]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError([Problem(install_hint(name))]) from None


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys: ``{"fit.epochs": 3, "model.sequential.0.Dense.units":
    64}`` (list items by index; an empty mapping or list is kept as its own value)."""
    items: list[tuple[str, Any]]
    if isinstance(data, dict):
        items = [(str(k), v) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(str(i), v) for i, v in enumerate(data)]
    else:
        return {prefix: data}
    if not items:
        return {prefix: data} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return out
