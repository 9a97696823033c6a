"""Interpolation: ``${fit.batch_size}`` and ``${env:DATA_DIR}`` inside a config's values.

Resolved after includes and overrides, before validation:

- ``${a.b.c}`` is the value at that config path (list items by index: ``.0`` or ``[0]``,
  ``-1`` the last), as it is written in the files (after includes and overrides; defaults
  that are not written cannot be referred to);
- ``${env:NAME}`` is the environment variable ``NAME``; ``${env:NAME,default}`` gives a
  default for when it is not set;
- a string that is one reference and nothing else becomes the referenced value with its
  type (a number, a list, a mapping; an environment variable that reads as a number or
  ``true``/``false`` becomes one); inside longer text the value is written as text;
- ``$${`` writes a literal ``${``.

A reference to an unknown path, an unset variable without default, a malformed reference
or a cycle is a problem at the string that holds it; that value is then left out of the
checks, so the one mistake is reported once.
"""
from __future__ import annotations

import copy
import os
import re
from typing import Any

from kconf.config.source import POISON, Source, parse_yaml
from kconf.errors import ConfigPath, Problem, SourcePos, format_path
from kconf.text import show, suggest

_START = re.compile(r"\$\$\{|\$\{")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX = re.compile(r"\[(-?\d+)\]")


class _Fail(Exception):
    """A reference that cannot be resolved: the message and its offset in the string."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.message, self.offset = message, offset


def interpolate(data: dict[str, Any], source: Source, poisoned: set[ConfigPath]
                ) -> list[Problem]:
    """Resolve every ``${...}`` in ``data`` (in place).

    Args:
        data: the config's top-level mapping, includes and overrides applied.
        source: its positions (for the problems).
        poisoned: paths whose values could not be read; the paths of values that cannot be
            resolved are added (their value becomes an unreadable marker).

    Returns:
        One problem per reference that cannot be resolved.
    """
    resolver = _Resolver(data, source, poisoned)
    resolver.walk(data, ())
    return resolver.problems


def _needs(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


class _Resolver:
    def __init__(self, data: dict[str, Any], source: Source, poisoned: set[ConfigPath]):
        self.data, self.source, self.poisoned = data, source, poisoned
        self.problems: list[Problem] = []
        self.active: list[ConfigPath] = []  # strings being resolved, outermost first
        self.finished: set[ConfigPath] = set()  # strings resolved (their text may hold "${")

    def walk(self, node: Any, path: ConfigPath) -> None:
        """Resolve every string under ``node`` (at ``path``)."""
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            sub = (*path, key)
            if _needs(value) and sub not in self.finished:
                self.string(sub)
            elif isinstance(value, (dict, list)):
                self.walk(value, sub)

    def string(self, path: ConfigPath) -> Any:
        """Resolve the string at ``path``, store and return its value (``POISON`` when it
        cannot be resolved)."""
        if path in self.finished:
            return self._get(path)
        if path in self.active:
            chain = " -> ".join(format_path(p) for p in self.active[self.active.index(path):])
            raise _Fail(f"reference cycle: {chain} -> {format_path(path)}")
        text = self._get(path)
        self.active.append(path)
        try:
            value = self._value(text)
        except _Fail as fail:
            self.problems.append(Problem(fail.message, path, self._pos(path, text, fail.offset)))
            value = POISON
        finally:
            self.active.pop()
        if value is POISON:
            self.poisoned.add(path)
        self._set(path, value)
        self._finish(value, path)
        return value

    def _value(self, text: str) -> Any:
        """The value of a string: one reference's value, or the text with each replaced."""
        pieces: list[Any] = []
        whole = None
        pos = 0
        for match in _START.finditer(text):
            if match.start() < pos:
                continue  # inside a reference already read
            pieces.append(text[pos:match.start()])
            if match.group() == "$${":
                pieces.append("${")
                pos = match.end()
                continue
            end = text.find("}", match.end())
            if end < 0:
                raise _Fail("'${' without a closing '}' (write $${ for a literal ${)",
                            match.start())
            body = text[match.end():end]
            try:
                value = self._reference(body.strip())
            except _Fail as fail:
                raise _Fail(fail.message, match.start()) from None
            if match.start() == 0 and end == len(text) - 1:
                whole = typed_env(value)
                break
            if value is POISON:
                return POISON
            try:
                pieces.append(_as_text(value, body))
            except _Fail as fail:
                raise _Fail(fail.message, match.start()) from None
            pos = end + 1
        else:
            pieces.append(text[pos:])
            return "".join(pieces)
        return whole

    def _reference(self, body: str) -> Any:
        """The value ``${body}`` refers to."""
        if not body:
            raise _Fail("empty reference '${}'; write a config path like ${fit.batch_size} "
                        "or ${env:NAME}")
        scheme, colon, rest = body.partition(":")
        if colon and re.fullmatch(r"\s*[A-Za-z_]\w*\s*", scheme):
            if scheme.strip() != "env":
                raise _Fail(f"unknown resolver {scheme.strip()!r} in ${{{body}}}; kconf knows "
                            "env: (${env:NAME} or ${env:NAME,default}) and config paths "
                            "(${fit.batch_size})")
            return _env(rest, body)
        return self._lookup(body)

    def _lookup(self, body: str) -> Any:
        """The resolved value at the config path ``body``, copied."""
        parts = _INDEX.sub(r".\1", body).split(".")
        if any(not p.strip() for p in parts):
            raise _Fail(f"malformed reference ${{{body}}}; write a config path with dots "
                        "between keys, like ${fit.batch_size} or ${model.sequential.0.Dense}")
        node: Any = self.data
        at: ConfigPath = ()
        for part in (p.strip() for p in parts):
            if isinstance(node, dict):
                if part not in node:
                    raise _Fail(_unknown(body, at, part, node))
                key: str | int = part
            elif isinstance(node, list):
                if not re.fullmatch(r"-?\d+", part):
                    raise _Fail(f"unknown reference ${{{body}}}: {format_path(at)} is a list; "
                                f"index it with a number, like {format_path(at)}.0")
                key = int(part)
                if not -len(node) <= key < len(node):
                    raise _Fail(f"unknown reference ${{{body}}}: index {key} is out of range, "
                                f"{format_path(at)} has {len(node)} items")
                key %= len(node)
            else:
                raise _Fail(f"unknown reference ${{{body}}}: {format_path(at)} is "
                            f"{show(node)}, which has no {part!r}")
            at = (*at, key)
            node = node[key]
            if _needs(node):
                node = self.string(at)
            if node is POISON:
                return POISON
        if isinstance(node, (dict, list)):
            inside = next((p for p in self.active if p[:len(at)] == at), None)
            if inside is not None:
                raise _Fail(f"reference cycle: {format_path(inside)} refers to "
                            f"{format_path(at)}, which holds it")
            self.walk(node, at)
            node = self._get(at)
        return copy.deepcopy(node)

    # --- storing values and positions ----------------------------------------------------
    def _get(self, path: ConfigPath) -> Any:
        node: Any = self.data
        for key in path:
            node = node[key]
        return node

    def _set(self, path: ConfigPath, value: Any) -> None:
        self._get(path[:-1])[path[-1]] = value

    def _finish(self, value: Any, path: ConfigPath) -> None:
        """Mark ``path`` and the strings under it resolved (a copied value is)."""
        self.finished.add(path)
        if isinstance(value, dict):
            for key, item in value.items():
                self._finish(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._finish(item, (*path, i))

    def _pos(self, path: ConfigPath, text: str, offset: int) -> SourcePos:
        """Where the reference at ``offset`` of the string at ``path`` is written: its own
        column when the string is on one line of this file as written, else the string's."""
        pos = self.source.locate(path)
        if self.source.text is None or pos.file != self.source.file or pos.line is None:
            return pos
        lines = self.source.text.splitlines()
        if pos.line > len(lines):
            return pos
        start = (pos.col or 1) - 1
        line = lines[pos.line - 1]
        quote = 1 if line[start:start + 1] in ("'", '"') else 0
        if line[start + quote:].startswith(text[:offset]):
            return SourcePos(pos.file, pos.line, start + quote + offset + 1)
        return pos


def _unknown(body: str, at: ConfigPath, part: str, node: dict[str, Any]) -> str:
    where = format_path(at) if at else "the config"
    keys = [str(k) for k in node]
    close = suggest(part, keys)
    if close is not None:
        hint = f" (did you mean {close!r}?)"
    elif keys:
        hint = f"; it has {', '.join(keys)}"
    else:
        hint = ""
    return (f"unknown reference ${{{body}}}: {where} has no key {part!r}{hint} (a reference "
            "sees the values written in the config, not defaults)")


def _env(rest: str, body: str) -> Any:
    """``${env:NAME}`` / ``${env:NAME,default}``: the variable, read as a number or
    true/false when it is one when the reference is the whole value (then typed later)."""
    name, comma, default = rest.partition(",")
    name = name.strip()
    if not _ENV_NAME.fullmatch(name):
        raise _Fail(f"malformed reference ${{{body}}}: {name!r} is not an environment "
                    "variable's name (letters, digits and '_')")
    value = os.environ.get(name)
    if value is None:
        if not comma:
            raise _Fail(f"environment variable {name} is not set (set it, or give a default: "
                        f"${{env:{name},default}})")
        value = default.strip()
    return _EnvText(value)


class _EnvText(str):
    """An environment variable's text (a whole-value reference reads it as YAML)."""


def _as_text(value: Any, body: str) -> str:
    """A referenced value written inside a longer string."""
    if isinstance(value, (dict, list)):
        kind = "mapping" if isinstance(value, dict) else "list"
        raise _Fail(f"${{{body}}} is a {kind}, which cannot be written inside text; use the "
                    f"reference as the whole value")
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool) or value is None:
        return show(value)
    return str(value)


def typed_env(value: Any) -> Any:
    """An environment variable's text as a number or true/false when it reads as one."""
    if not isinstance(value, _EnvText):
        return value
    parsed = parse_yaml(str(value), "<env>")
    if not parsed.fatal and not parsed.problems and isinstance(parsed.data, (bool, int, float)):
        return parsed.data
    return str(value)
