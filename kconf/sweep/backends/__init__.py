"""Backends that run a sweep's trials: ``local`` (processes on this machine) and ``ray`` (Ray
Tune, on a local Ray instance or a cluster; needs the ``ray`` extra). Each implements
``kconf.sweep.backends.base.TrialRunner``; ``get_backend`` makes one by name."""
from __future__ import annotations

import importlib
import inspect
from typing import Any

from kconf.sweep.backends.base import BackendError, Reporter, RunOptions, TrialRunner

#: name -> "module:class", imported only when asked for (a backend may need extra packages).
BACKENDS = {
    "local": "kconf.sweep.backends.local:LocalBackend",
    "ray": "kconf.sweep.backends.ray:RayBackend",
}


def get_backend(name: str, **options: Any) -> TrialRunner:
    """A backend by name.

    Args:
        name: a key of ``BACKENDS``.
        options: the backend's own options (``address`` of a Ray cluster...).

    Raises:
        BackendError: an unknown name (the valid ones are listed), an option the backend
            does not take, or a backend whose packages are not installed (the message says
            which extra to install).
    """
    if name not in BACKENDS:
        raise BackendError(f"unknown sweep backend {name!r}; available: {', '.join(BACKENDS)}")
    module, _, cls = BACKENDS[name].partition(":")
    try:
        backend = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise BackendError(
            f"the {name} sweep backend needs packages that are not installed ({exc}); install "
            f"them with: pip install 'kconf[{name}]' (in a checkout: pip install -e '.[{name}]')"
        ) from None
    try:
        inspect.signature(backend).bind(**options)
    except TypeError:
        raise BackendError(f"the {name} sweep backend takes no option "
                           f"{', '.join(map(repr, options))}") from None
    return backend(**options)


__all__ = ["BACKENDS", "BackendError", "Reporter", "RunOptions", "TrialRunner", "get_backend"]
