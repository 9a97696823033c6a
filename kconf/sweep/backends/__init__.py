"""Backends that run a sweep's trials: ``local`` (processes on this machine). Each implements
``kconf.sweep.backends.base.TrialRunner``; ``get_backend`` makes one by name."""
from __future__ import annotations

import importlib
from typing import Any

from kconf.sweep.backends.base import BackendError, Reporter, RunOptions, TrialRunner

#: name -> "module:class", imported only when asked for (a backend may need extra packages).
BACKENDS = {
    "local": "kconf.sweep.backends.local:LocalBackend",
}


def get_backend(name: str, **options: Any) -> TrialRunner:
    """A backend by name.

    Args:
        name: a key of ``BACKENDS``.
        options: the backend's own options (a cluster's address...).

    Raises:
        BackendError: an unknown name (the valid ones are listed).
    """
    if name not in BACKENDS:
        raise BackendError(f"unknown sweep backend {name!r}; available: {', '.join(BACKENDS)}")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)(**options)


__all__ = ["BACKENDS", "BackendError", "Reporter", "RunOptions", "TrialRunner", "get_backend"]
