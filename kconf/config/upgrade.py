"""``kconf upgrade``: rewrite a config file in the current version of the config language.

A migration turns a file of version N into version N+1 as a list of edits, each naming the
config path it changes (rename a key, set a value, delete an entry). The edits are applied
to the file's data (what the new file must mean) and to its text, span by span, so that
comments and layout are kept; when the edited text does not read back as that data (a
value written through a YAML alias, a flow-style document), the file is written anew
in kconf's layout and the result says that its comments were not kept.

Version 0 -> 1, Keras 2's spellings to Keras 3's:

- an optimizer's ``lr`` -> ``learning_rate`` (any field's old alias, for that matter: also
  LeakyReLU's ``alpha`` -> ``negative_slope``);
- an optimizer's ``decay: d`` -> ``learning_rate: {InverseTimeDecay: {initial_learning_rate:
  lr, decay_steps: 1, decay_rate: d}}`` (the same learning rate at every step); ``decay: 0``
  is dropped; a decay beside a schedule has no Keras 3 spelling and stays;
- a layer's shape shortcuts -> ``input_shape``: ``input_dim: n`` -> ``[n]`` (Dense), a
  recurrent layer's ``input_dim: n`` and ``input_length: t`` -> ``[t, n]`` (``[null, n]``
  without a length), an Embedding's ``input_length: t`` -> ``[t]`` (its ``input_dim`` is the
  vocabulary and stays).
"""
from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml
from pydantic import AliasChoices, BaseModel, ValidationError

from kconf.config.compile import OPTIMIZER_SPECS
from kconf.config.include import INCLUDE_KEY
from kconf.config.loader import located_error, read_yaml
from kconf.config.source import POISON, parse_yaml
from kconf.config.version import CONFIG_VERSION, VERSION_KEY, take_version
from kconf.engine.layers import REGISTRY
from kconf.errors import ConfigPath, Problem, format_path
from kconf.files import write_atomic
from kconf.keras_io.yaml_text import config_yaml, flow


@dataclass(frozen=True)
class Edit:
    """One change of a migration, at a path of the file as it is written.

    Attributes:
        kind: ``"rename"`` (the key at ``path`` becomes ``value``), ``"set"`` (the value at
            ``path`` becomes ``value``) or ``"delete"`` (the entry at ``path`` goes).
        path: the config path of the key or value, in the file before any edit.
        value: the new key or value.
    """

    kind: str
    path: ConfigPath
    value: Any = None


@dataclass
class Upgrade:
    """The result of upgrading a file.

    Attributes:
        file: the file as given.
        version: the version the file was written in.
        old: its text.
        new: the upgraded text (equal to ``old`` when there was nothing to do).
        notes: what the user should know (values kept as they were, comments not kept).
    """

    file: str
    version: int
    old: str
    new: str
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.new != self.old

    def diff(self) -> str:
        """The change as a unified diff (empty when there is none)."""
        return "".join(difflib.unified_diff(
            self.old.splitlines(keepends=True), self.new.splitlines(keepends=True),
            fromfile=self.file, tofile=f"{self.file} (version {CONFIG_VERSION})"))

    def write(self) -> None:
        """Replace the file by the upgraded text (atomically)."""
        write_atomic(self.file, self.new)


def upgrade_file(file: str | os.PathLike) -> Upgrade:
    """Upgrade a config file to the current version (nothing is written).

    Args:
        file: a YAML config (or a file that others include).

    Returns:
        The ``Upgrade``: old and new text, diff, notes.

    Raises:
        ConfigError: the file cannot be read, or its ``kconf:`` key is malformed or newer
            than this kconf.
    """
    file = os.fspath(file)
    parsed = read_yaml(file)
    if parsed.fatal or not isinstance(parsed.data, dict):
        problems = parsed.problems or [Problem("a config must be a mapping of sections",
                                               (), parsed.source.locate(()))]
        raise located_error(problems, parsed.source)
    data = parsed.data
    written = VERSION_KEY in data
    version, problem = take_version(data, parsed.source)
    if problem is not None:
        raise located_error([problem], parsed.source)
    if not written:
        version = 0  # written before versions existed: its spellings may be old ones
    text = parsed.source.text or ""
    notes: list[str] = []
    edits: list[Edit] = []
    for step in range(version, CONFIG_VERSION):
        edits += MIGRATIONS[step](data, notes)
    if written and version == CONFIG_VERSION and not edits:
        return Upgrade(file, version, text, text, notes)
    head = Edit("set", (VERSION_KEY,), CONFIG_VERSION) if written else None
    expected = {VERSION_KEY: CONFIG_VERSION, **apply_edits(data, edits)}
    new = _edit_text(text, edits, head)
    if new is None or _read_back(new) != expected:
        notes.append("the file is written anew in kconf's layout: its comments are not kept "
                     "(a value written through a YAML alias or a flow-style document)")
        new = config_yaml(expected)
    if isinstance(data.get(INCLUDE_KEY), (str, list)):
        notes.append("the files it includes are upgraded on their own: kconf upgrade each")
    return Upgrade(file, version, text, new, notes)


# --- the migrations -----------------------------------------------------------------------


def _v0_to_v1(data: dict[str, Any], notes: list[str]) -> list[Edit]:
    """Keras 2's spellings -> Keras 3's (see the module's docstring)."""
    edits: list[Edit] = []
    compile_ = data.get("compile")
    if isinstance(compile_, dict):
        edits += _optimizer_edits(compile_.get("optimizer"), ("compile", "optimizer"), notes)
    _walk_layers(data, (), edits, notes)
    return edits


#: Version N -> the migration from N to N+1.
MIGRATIONS: dict[int, Callable[[dict[str, Any], list[str]], list[Edit]]] = {0: _v0_to_v1}


def _single(value: Any) -> tuple[str, dict[str, Any]] | None:
    """``(tag, args)`` of a ``{Tag: {args}}`` mapping."""
    if isinstance(value, dict) and len(value) == 1:
        ((tag, args),) = value.items()
        if isinstance(tag, str) and isinstance(args, dict):
            return tag, args
    return None


def _alias_edits(args: dict[str, Any], model: type[BaseModel], path: ConfigPath) -> list[Edit]:
    """Renames of old spellings (a field's other validation aliases) to the field's name."""
    edits = []
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        if not isinstance(alias, AliasChoices) or name in args:
            continue
        old = [c for c in alias.choices if isinstance(c, str) and c != name and c in args]
        if len(old) == 1:
            edits.append(Edit("rename", (*path, old[0]), name))
    return edits


def _optimizer_edits(value: Any, path: ConfigPath, notes: list[str]) -> list[Edit]:
    found = _single(value)
    if found is None or found[0] not in OPTIMIZER_SPECS:
        return []
    name, args = found
    model = OPTIMIZER_SPECS[name].model_fields[name].annotation
    at = (*path, name)
    edits = _alias_edits(args, model, at)
    if "decay" not in args:
        return edits
    decay = args["decay"]
    if decay == 0:
        return [*edits, Edit("delete", (*at, "decay"))]
    given = "learning_rate" if "learning_rate" in args else "lr" if "lr" in args else None
    rate = args[given] if given else model.model_fields["learning_rate"].default
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or \
            isinstance(decay, bool) or not isinstance(decay, (int, float)):
        notes.append(f"{format_path((*at, 'decay'))}: kept; Keras 3 has no decay beside a "
                     "learning-rate schedule (fold it into the schedule)")
        return edits
    schedule = {"InverseTimeDecay": {"initial_learning_rate": rate, "decay_steps": 1,
                                     "decay_rate": decay}}
    if given is None:  # the decay entry becomes the learning rate
        return [*edits, Edit("set", (*at, "decay"), schedule),
                Edit("rename", (*at, "decay"), "learning_rate")]
    return [*edits, Edit("set", (*at, given), schedule), Edit("delete", (*at, "decay"))]


def _walk_layers(value: Any, path: ConfigPath, edits: list[Edit], notes: list[str]) -> None:
    """The edits of every ``{Layer: {args}}`` under ``value`` (wrapped layers too)."""
    found = _single(value)
    if found is not None and found[0] in REGISTRY and REGISTRY[found[0]].args is not None:
        name, args = found
        model = REGISTRY[name].args
        at = (*path, name)
        edits += _alias_edits(args, model, at)
        edits += _shape_edits(args, model, at, notes)
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        _walk_layers(item, (*path, key), edits, notes)


def _shape_edits(args: dict[str, Any], model: type[BaseModel], at: ConfigPath,
                 notes: list[str]) -> list[Edit]:
    """Keras 2's shape shortcuts (``input_dim``, ``input_length``) -> ``input_shape``, the
    shape the layer's arguments say (``shortcut_shape``)."""
    given = [f for f in getattr(model, "shape_shortcuts", ()) if f in args]
    if not given or "input_shape" in args or "batch_input_shape" in args:
        return []
    try:
        shape = model.model_validate(args).shortcut_shape()
    except ValidationError:
        notes.append(f"{format_path(at)}: {', '.join(given)} kept; the layer's arguments are "
                     "not valid (kconf validate says why)")
        return []
    first, *rest = given
    return [Edit("set", (*at, first), list(shape)), Edit("rename", (*at, first), "input_shape"),
            *(Edit("delete", (*at, f)) for f in rest)]


# --- applying edits --------------------------------------------------------------------------


def apply_edits(data: dict[str, Any], edits: list[Edit]) -> dict[str, Any]:
    """``data`` with ``edits`` applied (a copy; renamed keys keep their place).

    Values are set and entries deleted first, at their paths as written; keys are renamed
    last, so every path names the file before the edits.
    """
    out = copy.deepcopy(data)
    order = {"set": 0, "delete": 0, "rename": 1}
    for edit in sorted(edits, key=lambda e: order[e.kind]):
        parent = out
        for key in edit.path[:-1]:
            parent = parent[key]
        key = edit.path[-1]
        if edit.kind == "set":
            parent[key] = edit.value
        elif edit.kind == "delete":
            del parent[key]
        else:
            items = list(parent.items())
            parent.clear()
            parent.update((edit.value if k == key else k, v) for k, v in items)
    return out


def _read_back(text: str) -> Any:
    parsed = parse_yaml(text, "<upgraded>")
    return None if parsed.fatal or parsed.problems or parsed.data is POISON else parsed.data


def _edit_text(text: str, edits: list[Edit], head: Edit | None) -> str | None:
    """``text`` with the edits made span by span (None where a path cannot be found)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(root, yaml.MappingNode) or not root.value:
        return None
    spans: list[tuple[int, int, str]] = []
    for edit in [*edits, *([head] if head else [])]:
        span = _span(text, root, edit)
        if span is None:
            return None
        spans.append(span)
    if head is None:  # the version key goes first, after the comments on top
        first = root.value[0][0].start_mark.index
        start = text.rfind("\n", 0, first) + 1
        spans.append((start, start, f"{VERSION_KEY}: {CONFIG_VERSION}\n"))
    spans.sort()
    for (_, end), (start, _, _) in zip(((s, e) for s, e, _ in spans), spans[1:]):
        if start < end:
            return None  # overlapping edits
    for start, end, new in reversed(spans):
        text = text[:start] + new + text[end:]
    return text


def _span(text: str, root: yaml.Node, edit: Edit) -> tuple[int, int, str] | None:
    """The text span an edit replaces, and its replacement."""
    parent: yaml.Node = root
    for key in edit.path[:-1]:
        parent = _child(parent, key)
        if parent is None:
            return None
    if not isinstance(parent, yaml.MappingNode):
        return None
    pairs = [(k, v) for k, v in parent.value if k.value == edit.path[-1]]
    if len(pairs) != 1:
        return None
    index = parent.value.index(pairs[0])
    key, value = pairs[0]
    if edit.kind == "rename":
        return key.start_mark.index, key.end_mark.index, flow(edit.value)
    if edit.kind == "set":
        return value.start_mark.index, value.end_mark.index, flow(edit.value)
    line_start = text.rfind("\n", 0, key.start_mark.index) + 1
    if not parent.flow_style and not text[line_start:key.start_mark.index].strip():
        line_end = text.find("\n", value.end_mark.index)
        return line_start, len(text) if line_end < 0 else line_end + 1, ""
    if index + 1 < len(parent.value):
        return key.start_mark.index, parent.value[index + 1][0].start_mark.index, ""
    if index > 0:
        return parent.value[index - 1][1].end_mark.index, value.end_mark.index, ""
    return key.start_mark.index, value.end_mark.index, ""


def _child(node: yaml.Node, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        found = [v for k, v in node.value if k.value == key]
        return found[0] if len(found) == 1 else None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    return None
