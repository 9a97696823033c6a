"""Reading YAML safely into plain data, keeping the position of every key and value.

PyYAML's safe *composer* builds the node tree (with marks); this module turns nodes into
dicts, lists and scalars itself, so that it can record positions, refuse duplicate keys and
refuse every tag that is not plain data (``!!python/object`` is an error, never code).

Reading is bounded, so that no file can hang kconf or exhaust its memory:

- a file larger than ``max_config_bytes()`` (64 MiB; ``KCONF_MAX_CONFIG_MB``) is refused
  before it is read;
- nesting deeper than ``max_config_depth()`` (100 levels; ``KCONF_MAX_CONFIG_DEPTH``) is
  refused while composing (PyYAML's composer would otherwise recurse until Python's
  recursion limit);
- aliases (``*name``) are copied, but their positions are kept by reference (an error under an
  alias is located where the anchored value is written), and a document whose aliases
  would expand to more than ``ALIAS_EXPANSION`` values beyond its own is refused before
  anything is copied ("billion laughs").

Everything else is linear in the size of the file.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kconf.errors import ConfigPath, Problem, SourcePos

DICT_FILE = "<dict>"
OVERRIDE_FILE = "<override>"

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("null", "bool", "int", "float", "str", "timestamp", "binary")}
_MAP_TAG = _CORE + "map"
_SEQ_TAG = _CORE + "seq"
_MERGE_TAG = _CORE + "merge"


#: How many values a document's aliases may add beyond the values it writes.
ALIAS_EXPANSION = 100_000
DEFAULT_MAX_MB = 64
DEFAULT_MAX_DEPTH = 100


def _env_limit(name: str, default: int) -> int:
    """A positive integer from the environment, else ``default``."""
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def max_config_bytes() -> int:
    """The largest YAML file kconf reads: ``KCONF_MAX_CONFIG_MB`` MiB (default 64)."""
    return _env_limit("KCONF_MAX_CONFIG_MB", DEFAULT_MAX_MB) << 20


def max_config_depth() -> int:
    """The deepest nesting kconf reads: ``KCONF_MAX_CONFIG_DEPTH`` levels (default 100)."""
    return _env_limit("KCONF_MAX_CONFIG_DEPTH", DEFAULT_MAX_DEPTH)


def size_problem(size: int, file: str) -> Problem | None:
    """The problem of a file of ``size`` bytes, if it is over the limit."""
    limit = max_config_bytes()
    if size <= limit:
        return None
    return Problem(f"the file is {size / (1 << 20):.1f} MiB, more than the {limit >> 20} MiB "
                   "a config may be (set KCONF_MAX_CONFIG_MB to read larger files)", (),
                   SourcePos(file))


class _Bounded:
    """A composer that refuses nesting deeper than ``max_depth``."""

    max_depth = DEFAULT_MAX_DEPTH
    _depth = 0
    #: Whether the document has an alias (only then can it expand beyond its own size).
    aliased = False

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            self.aliased = True
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"the values are nested deeper than {self.max_depth} levels "
                                "(set KCONF_MAX_CONFIG_DEPTH to read deeper files)",
                    event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Loader(_Bounded, yaml.SafeLoader):
    """SafeLoader that also reads ``1e-6`` as a float (YAML 1.1 wants ``1.0e-6``) and refuses
    nesting deeper than ``max_depth``; its error messages are the ones users see."""


try:  # libyaml's parser (in C), PyYAML's composer (in Python, so that depth is bounded)
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml: the pure-Python loader does it all
    _FastLoader = None
else:
    class _FastLoader(_Bounded, yaml.composer.Composer, CParser,
                      yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
        """``_Loader`` with the scanning and parsing in C: about four times as fast on a
        large file. Its error messages differ, so a file it refuses is read again by
        ``_Loader`` for the message."""

        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)


for _cls in (_Loader, _FastLoader):
    if _cls is not None:
        _cls.add_implicit_resolver(
            _CORE + "float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
            list("-+0123456789"))


class _Poison:
    """Stands for a value that could not be read; errors at or under it are not reported."""

    def __repr__(self) -> str:
        return "<unreadable value>"

    def __deepcopy__(self, memo) -> "_Poison":
        return self  # one marker: ``value is POISON`` holds for copies too


POISON = _Poison()


class Source:
    """Where a config came from, and where each of its values sits.

    Attributes:
        file: the path as given (``"<dict>"`` for a dict).
        text: the YAML text, or None for a dict.
        base_dir: the directory relative data paths are resolved against (the file's
            directory; the working directory for a dict).
    """

    def __init__(self, file: str = DICT_FILE, text: str | None = None,
                 base_dir: Path | None = None,
                 values: dict[ConfigPath, SourcePos] | None = None,
                 keys: dict[ConfigPath, SourcePos] | None = None,
                 aliases: dict[ConfigPath, ConfigPath] | None = None):
        self.file = file
        self.text = text
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self._values = dict(values or {})
        self._keys = dict(keys or {})
        self._aliases = dict(aliases or {})  # an alias's path -> its anchored value's path

    def _anchored(self, path: ConfigPath) -> ConfigPath | None:
        """The path of the same value where its anchor is written, for a path strictly
        under an alias (None when no alias is on the path)."""
        for end in range(len(path) - 1, -1, -1):
            target = self._aliases.get(path[:end])
            if target is not None:
                return (*target, *path[end:])
        return None

    def locate(self, path: Sequence[str | int]) -> SourcePos:
        """Position of the value at ``path``, else of its nearest enclosing value.

        Args:
            path: a config path, e.g. ``("data", "train", "npz", "path")``.

        Returns:
            A ``SourcePos``; without a line when nothing on the path has one (dicts), and
            with file ``"<override>"`` for values set by an override.
        """
        path = tuple(path)
        pos = self._values.get(path)
        if pos is not None:
            return pos
        anchored = self._anchored(path)
        if anchored is not None:  # a value copied by an alias: where the original is
            return self.locate(anchored)
        for end in range(len(path) - 1, -1, -1):
            pos = self._values.get(path[:end])
            if pos is not None:
                return pos
        return SourcePos(self.file)

    def locate_key(self, path: Sequence[str | int]) -> SourcePos:
        """Position of the key that names ``path`` (for unknown keys), else ``locate(path)``."""
        path = tuple(path)
        pos = self._keys.get(path)
        if pos is None and (anchored := self._anchored(path)) is not None:
            pos = self._keys.get(anchored)
        return pos or self.locate(path)

    def value_pos(self, path: ConfigPath) -> SourcePos | None:
        """The position recorded for exactly ``path``'s value (None when none is)."""
        return self._values.get(path)

    def key_pos(self, path: ConfigPath) -> SourcePos | None:
        """The position recorded for exactly ``path``'s key (None when none is)."""
        return self._keys.get(path)

    def alias_target(self, path: ConfigPath) -> ConfigPath | None:
        """The anchored value's path when ``path`` is written as an alias (``*name``)."""
        return self._aliases.get(path)

    def set_override(self, path: ConfigPath) -> None:
        """Record that ``path`` (and everything under it) now comes from an override."""
        for table in (self._values, self._keys, self._aliases):
            for p in [p for p in table if p[:len(path)] == path]:
                del table[p]
        self._values[path] = self._keys[path] = SourcePos(OVERRIDE_FILE)

    def __repr__(self) -> str:
        return f"Source({self.file!r})"


@dataclass
class ParsedYaml:
    """Plain data read from YAML, with its source and the problems found while reading."""

    data: Any
    source: Source
    problems: list[Problem] = field(default_factory=list)
    #: Paths whose value could not be read (errors there would only repeat the problem).
    poisoned: set[ConfigPath] = field(default_factory=set)
    #: True when the text could not be parsed at all (``data`` is None).
    fatal: bool = False


def parse_yaml(text: str, file: str, base_dir: Path | None = None) -> ParsedYaml:
    """Read one YAML document into plain data and positions.

    Args:
        text: the YAML text.
        file: the name used in positions (the path as the user gave it).
        base_dir: directory for relative data paths (default: the file's directory).

    Returns:
        A ``ParsedYaml``; syntax errors make it ``fatal``, refused tags and duplicate keys
        are problems alongside the data that could be read.
    """
    if base_dir is None:
        base_dir = Path(file).resolve().parent
    too_big = size_problem(len(text), file)
    if too_big is not None:
        return ParsedYaml(None, Source(file, None, base_dir), [too_big], fatal=True)
    loader = None
    try:
        loader, node = _compose(text)
    except yaml.MarkedYAMLError as err:
        problem = _syntax_problem(err, text, file)
        return ParsedYaml(None, Source(file, text, base_dir), [problem], fatal=True)
    except yaml.reader.ReaderError as err:
        before = text[:err.position]
        pos = SourcePos(file, before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1)
        char = err.character if isinstance(err.character, str) else chr(err.character)
        message = f"invalid YAML: character {ord(char):#06x} is not allowed ({err.reason})"
        return ParsedYaml(None, Source(file, text, base_dir), [Problem(message, (), pos)],
                          fatal=True)
    finally:
        if loader is not None:
            loader.dispose()
    if node is not None and loader.aliased:
        written, expanded = _counts(node)
        if expanded > written + ALIAS_EXPANSION:
            problem = Problem(f"the aliases (*name) of this file expand to {expanded:,} values "
                              f"from the {written:,} it writes; a config repeats a value a "
                              "few times at most", (), SourcePos(file, 1, 1))
            return ParsedYaml(None, Source(file, text, base_dir), [problem], fatal=True)
    builder = _Builder(loader, file)
    data = builder.build(node, ()) if node is not None else None
    source = Source(file, text, base_dir, builder.values, builder.keys, builder.aliases)
    return ParsedYaml(data, source, builder.problems, builder.poisoned)


def _compose(text: str):
    """``(loader, node tree)`` of one document: the fast loader first, ``_Loader`` for the
    message of a file it refuses (or where libyaml is missing).

    Raises:
        yaml.MarkedYAMLError, yaml.reader.ReaderError: as ``_Loader`` reports them.
    """
    depth = max_config_depth()
    if _FastLoader is not None:
        loader = _FastLoader(text)
        loader.max_depth = depth
        try:
            return loader, loader.get_single_node()
        except yaml.YAMLError:
            loader.dispose()
    loader = _Loader(text)  # checks for unprintable characters at once
    loader.max_depth = depth
    try:
        return loader, loader.get_single_node()
    except BaseException:
        loader.dispose()
        raise


def _counts(root: Node) -> tuple[int, int]:
    """(nodes written, values the document expands to): each node counted once, then with
    every alias copied; linear in the nodes, whatever the aliases expand to."""
    size: dict[int, int] = {}
    order: list[Node] = []
    stack, seen = [root], {id(root)}
    while stack:  # every distinct node once, parents before children
        node = stack.pop()
        order.append(node)
        for child in _children(node):
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    for node in reversed(order):  # children before parents; a cycle's back edge counts 1
        size[id(node)] = 1 + sum(size.get(id(c), 1) for c in _children(node))
    return len(order), size[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _syntax_problem(err: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    """One problem for a YAML syntax error, at its mark; tabs get their own message."""
    mark = err.problem_mark or err.context_mark
    if mark is None:
        return Problem(f"invalid YAML: {err.problem or err}", (), SourcePos(file))
    line, col = mark.line, mark.column
    lines = text.splitlines()
    message = f"invalid YAML: {err.problem}"
    context = err.context_mark
    if err.context and context is not None and (context.line, context.column) != (line, col):
        message += f" ({err.context} at line {context.line + 1}, column {context.column + 1})"
    if line < len(lines):
        current = lines[line]
        indent = current[:len(current) - len(current.lstrip(" \t"))]
        if "\t" in indent:
            message, col = "tabs cannot indent YAML; use spaces", indent.index("\t")
        elif col < len(current) and current[col] == "\t":
            message = "a tab cannot separate YAML tokens here; use spaces"
    return Problem(message, (), SourcePos(file, line + 1, col + 1))


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


class _Builder:
    """Turns a node tree into plain data, recording positions and problems."""

    def __init__(self, loader: _Loader, file: str):
        self.loader = loader
        self.file = file
        self.values: dict[ConfigPath, SourcePos] = {}
        self.keys: dict[ConfigPath, SourcePos] = {}
        self.problems: list[Problem] = []
        self.poisoned: set[ConfigPath] = set()
        self._open: dict[int, ConfigPath] = {}  # nodes being built -> their paths
        self._built: dict[int, tuple[ConfigPath, Any]] = {}  # collections built: path, value
        self.aliases: dict[ConfigPath, ConfigPath] = {}

    def pos(self, node: Node) -> SourcePos:
        return SourcePos(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def refuse(self, node: Node, path: ConfigPath, message: str) -> _Poison:
        self.problems.append(Problem(message, path, self.pos(node)))
        self.poisoned.add(path)
        return POISON

    def refuse_tag(self, node: Node, path: ConfigPath) -> _Poison:
        return self.refuse(node, path, f"YAML tag {_show_tag(node.tag)} is not allowed: a "
                                       "config holds plain data only (mappings, lists, "
                                       "strings, numbers, true/false, null)")

    def build(self, node: Node, path: ConfigPath) -> Any:
        self.values[path] = self.pos(node)
        if id(node) in self._open:  # an alias inside the value it names
            outer = self._open[id(node)]
            self.poisoned.add(outer)
            return self.refuse(node, outer, "a YAML alias cannot refer to a value that "
                                            "contains it")
        earlier = self._built.get(id(node))
        if earlier is not None:  # an alias of a collection built already: a copy, its
            first, value = earlier  # positions kept by reference to the anchored one
            if first != path:
                self.aliases[path] = first
            if first in self.poisoned:
                self.poisoned.add(path)
            return copy.deepcopy(value)
        if isinstance(node, ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                return self.refuse_tag(node, path)
            try:  # the tag's constructor itself: scalars need none of construct_object's
                return self.loader.yaml_constructors[node.tag](self.loader, node)  # caching
            except yaml.constructor.ConstructorError as err:
                return self.refuse(node, path, f"cannot read this value: {err.problem}")
        self._open[id(node)] = path
        try:
            if isinstance(node, SequenceNode):
                if node.tag != _SEQ_TAG:
                    return self.refuse_tag(node, path)
                value = [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            elif node.tag != _MAP_TAG:
                return self.refuse_tag(node, path)
            else:
                value = self.mapping(node, path)
        finally:
            del self._open[id(node)]
        self._built[id(node)] = (path, value)
        return value

    def key(self, node: Node, path: ConfigPath) -> str | None:
        """A mapping key as the text written (``on`` stays ``"on"``); None if refused."""
        if not isinstance(node, ScalarNode):
            self.problems.append(Problem("a key must be a plain name, not a mapping or a list",
                                         path, self.pos(node)))
            return None
        if node.tag not in _SCALAR_TAGS:
            self.refuse_tag(node, path)
            return None
        return node.value

    def mapping(self, node: MappingNode, path: ConfigPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        own = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        for key_node, value_node in node.value:  # YAML merge keys ('<<: *defaults') first
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                for src in sources:
                    if not isinstance(src, MappingNode) or src.tag != _MAP_TAG:
                        self.problems.append(Problem("a merge key '<<' needs a mapping or a "
                                                     "list of mappings", path, self.pos(src)))
                        continue
                    for key, value in self.mapping(src, path).items():
                        result.setdefault(key, value)
        first: dict[str, Node] = {}
        for key_node, value_node in own:  # keys written here win over merged ones
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in first:
                where = first[key].start_mark
                self.problems.append(Problem(
                    f"duplicate key {key!r} (first given at line {where.line + 1}, column "
                    f"{where.column + 1}); remove one of them", path, self.pos(key_node)))
                continue
            first[key] = key_node
            sub = (*path, key)
            if key in result:  # forget the positions of the merged value it replaces
                for table in (self.values, self.keys):
                    for p in [p for p in table if p[:len(sub)] == sub]:
                        del table[p]
            self.keys[sub] = self.pos(key_node)
            result[key] = self.build(value_node, sub)
        return result
