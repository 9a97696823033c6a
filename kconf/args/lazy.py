"""A mapping whose members are made on their first look-up: the registries of layers,
optimizers, losses and metrics, so that start-up does not grow with them; and a module's
names imported on their first access (``lazy_names``)."""
from __future__ import annotations

import importlib
import threading
from typing import Any, Callable, Iterable, Iterator, Mapping


class LazyMembers(Mapping):
    """Tag -> member, each member made by ``make(tag)`` on its first look-up and kept (once,
    also when threads validate configs at the same time: a wrapper class is unique)."""

    def __init__(self, tags: Iterable[str], make: Callable[[str], Any]):
        self._tags = tuple(tags)
        self._known = frozenset(self._tags)
        self._make = make
        self._made: dict[str, Any] = {}
        self._lock = threading.RLock()

    def __getitem__(self, tag: str) -> Any:
        member = self._made.get(tag)
        if member is None:
            if tag not in self._known:
                raise KeyError(tag)
            with self._lock:
                member = self._made.get(tag)
                if member is None:
                    member = self._made[tag] = self._make(tag)
        return member

    def __contains__(self, tag: object) -> bool:
        return tag in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._tags)

    def __len__(self) -> int:
        return len(self._tags)

    def made(self) -> tuple[str, ...]:
        """The tags whose member has been built so far (start-up tests)."""
        return tuple(self._made)


def lazy_names(namespace: dict[str, Any],
               names: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list]]:
    """A module's ``__getattr__`` and ``__dir__`` (PEP 562) for ``names`` (name -> the module
    that defines it): each is imported on its first access, then kept in ``namespace`` (the
    module's ``globals()``)."""
    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(module), name)
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
