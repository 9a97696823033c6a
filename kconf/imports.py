"""The one way a config runs Python code: an explicit ``package.module:attribute`` path."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path


def import_object(spec: str, search_dirs: tuple[Path, ...] = ()):
    """Import ``module:attr``, looking first in ``search_dirs`` (e.g. the config's folder).

    Raises:
        ImportError: the module or attribute cannot be found (message says which).
    """
    module_name, _, attr = spec.partition(":")
    added = [str(d) for d in search_dirs if str(d) not in sys.path]
    sys.path[:0] = added
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import module {module_name!r}: {exc}") from None
    finally:
        for d in added:
            sys.path.remove(d)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ImportError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ImportError(f"{spec!r} is not callable")
    return obj
