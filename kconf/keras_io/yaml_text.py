"""A config as YAML text laid out like the files in ``configs/``: sections as blocks, one
layer, input or graph line per line, each layer's arguments in flow style, comments on top.

    # yaml-language-server: $schema=../schemas/kconf.schema.json
    # Imported from model.keras (Keras 3.15.1) by kconf import-keras.
    name: mlp
    model:
      sequential:
        - Dense: {units: 64, activation: relu, input_shape: [20]}
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import yaml

#: Sections whose entries are one line each (``name: {flow}``).
_LINE_PER_ENTRY = ("inputs", "layers", "compile", "data", "fit")
#: Lists written one item per line.
_LINE_PER_ITEM = ("sequential", "graph")


def config_yaml(config: Mapping[str, Any], header: Sequence[str] = (),
                notes: Mapping[str, Sequence[str]] | None = None) -> str:
    """The YAML text of a config.

    Args:
        config: the config as plain data, keys in the order to write them.
        header: comment lines for the top of the file (without ``# ``).
        notes: top-level key -> comment lines written just above that section.

    Returns:
        The text, ending with a newline; ``yaml.safe_load`` of it equals ``config``.
    """
    notes = notes or {}
    lines = [f"# {line}" if line else "#" for line in header]
    for key, value in config.items():
        lines += [f"# {line}" for line in notes.get(key, ())]
        lines += _entry(key, value, (key,), 0)
    return "\n".join(lines) + "\n"


def _entry(key: str, value: Any, path: tuple[str, ...], depth: int) -> list[str]:
    """``key: value`` at ``depth``: on one line, or the key and its block below."""
    pad = "  " * depth
    if isinstance(value, list) and path[-1] in _LINE_PER_ITEM:
        return [f"{pad}{key}:"] + [f"{pad}  - {_item(item)}" for item in value]
    if isinstance(value, dict) and value and _is_block(path):
        out = [f"{pad}{key}:"]
        for k, v in value.items():
            out += _entry(str(k), v, (*path, str(k)), depth + 1)
        return out
    return [f"{pad}{flow(key)}: {flow(value)}"]


def _is_block(path: tuple[str, ...]) -> bool:
    """Whether the mapping at ``path`` is written as a block (else on one line)."""
    if len(path) == 1:
        return True
    last = path[-1]
    if last in ("sequential", "functional"):
        return True
    if path[0] == "models" and len(path) == 2:
        return True
    return last in _LINE_PER_ENTRY and (len(path) == 1 or path[-2] == "functional")


def _item(value: Any) -> str:
    """A list item on its line: ``Dense: {units: 64}`` for a one-key mapping (a layer), a
    graph line as plain text where YAML allows it."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        return f"{flow(key)}: {flow(inner)}"
    if isinstance(value, str):
        text = yaml.safe_dump(value, default_flow_style=False, width=float("inf"),
                              allow_unicode=True)
        return text.removesuffix("\n").removesuffix("\n...")
    return flow(value)


def flow(value: Any) -> str:
    """One value in YAML flow style (``{units: 64, activation: relu}``, ``[20]``, ``relu``),
    quoted where YAML needs it."""
    text = yaml.safe_dump([value], default_flow_style=True, sort_keys=False,
                          width=float("inf"), allow_unicode=True).strip()
    return text[1:-1]
