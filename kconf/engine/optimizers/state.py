"""An optimizer's state as checkpoints keep it: ``get_state`` and ``set_state``, a base of
``Optimizer`` (see ``kconf.engine.optimizers.base``)."""
from __future__ import annotations

from typing import Any

from kconf.engine.backend import xp


class SlotState:
    """``get_state`` / ``set_state`` of an ``Optimizer``: its ``iterations``, the slots
    (``_slots``), the options' arrays (``_extra``) and the scalar state named in
    ``scalars``, restored bit for bit."""

    def get_state(self) -> dict[str, Any]:
        """The step count and copies of all slots.

        Returns:
            ``{"iterations": int, "<slot>.<index>": array, ...}`` (no slots before the first
            step).
        """
        state: dict[str, Any] = {"iterations": self.iterations}
        for name in self.scalars:
            state[name] = float(getattr(self, name))
        for name, arrays in {**(self._slots or {}), **(self._extra or {})}.items():
            for i, array in enumerate(arrays):
                state[f"{name}.{i}"] = array.copy()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` returned (slots are copied, not shared).

        Args:
            state: a dict from ``get_state`` (arrays may come back from an ``.npz`` file).

        Raises:
            ValueError: if the slots in ``state`` are not those this optimizer uses.
        """
        slots: dict[str, dict[int, Any]] = {}
        extra: dict[str, dict[int, Any]] = {}
        extra_names = self.options.extra_slots()
        for key, value in state.items():
            if key == "iterations" or key in self.scalars:
                continue
            name, _, index = key.rpartition(".")
            if name in extra_names and index.isdigit():
                extra.setdefault(name, {})[int(index)] = value
                continue
            if name not in self.slot_names() or not index.isdigit():
                raise ValueError(f"{type(self).__name__} has no slot {key!r}")
            slots.setdefault(name, {})[int(index)] = value
        if slots:
            if set(slots) != set(self.slot_names()):
                raise ValueError(
                    f"{type(self).__name__} needs slots {sorted(self.slot_names())}, "
                    f"state has {sorted(slots)}"
                )
            counts = {len(by_index) for by_index in slots.values()}
            n = counts.pop()
            if counts or any(sorted(by_index) != list(range(n)) for by_index in slots.values()):
                raise ValueError("optimizer state has an incomplete set of slots")
            self._slots = {
                name: [xp.array(by_index[i], copy=True) for i in range(n)]
                for name, by_index in slots.items()
            }
        else:
            self._slots = None
        if extra and set(extra) != set(extra_names):
            raise ValueError(f"{type(self).__name__} keeps {sorted(extra_names)} with these "
                             f"options, state has {sorted(extra)}")
        self._extra = ({name: [xp.array(by_index[i], copy=True) for i in range(len(by_index))]
                        for name, by_index in extra.items()} or None)
        for name in self.scalars:
            if name in state:
                setattr(self, name, float(state[name]))
        self._planned = None
        self.iterations = int(state["iterations"])
