"""``model.functional``: named inputs, layer instances, a graph of calls, named outputs.

    model:
      functional:
        inputs:  {tweet_a: {shape: [280, 256]}, tweet_b: {shape: [280, 256]}}
        layers:  {shared_lstm: {LSTM: {units: 64}}, merge: {Concatenate: {}}, ...}
        graph:
          - encoded_a = shared_lstm(tweet_a)
          - encoded_b = shared_lstm(tweet_b)
          - merged = merge(encoded_a, encoded_b)
        outputs: [merged]

A graph line reads like the Keras code: ``targets = callee(tensor, ...)``. It is read with
Python's ``ast`` module and only read: nothing in it is ever evaluated or run. The callee is
a layer of ``layers``, a model of the top-level ``models`` section, or a lowercase merge
helper (``concatenate(a, b, axis=1)``, an anonymous merge layer whose keyword arguments are
the layer's arguments). Several targets (``x, h, c = lstm(x)``) take the outputs of a layer
with several (``return_state``).

The schema checks each line's form; the checks that need the whole model and positions
inside a line (unknown names, use before definition...) are in ``checks``.
"""

import ast
from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)

from kconf.args.fields import ConfigModel, Name, PositiveInt, Shape, choice, config_error
from kconf.text import show, suggest
from kconf.config.layers import LAYER_SPECS, LayerSpec, LayerSpecBase
from kconf.args.layer import LayerArgs
from kconf.args.names import DTYPE_NAMES, MERGE_HELPERS
from kconf.config.problems import convert_error
from kconf.config.source import Source
from kconf.errors import ConfigPath, SourcePos, format_path

#: How every graph line reads; the start of every message about a line's form.
GRAPH_LINE_USAGE = "a graph line reads `result = layer(tensor, ...)`"

DType = choice("dtype", DTYPE_NAMES)


class InputConfig(ConfigModel):
    """One input of a functional model, as ``keras.Input(shape, batch_size, dtype)``."""

    shape: Shape = Field(description="shape of one sample, without the batch axis; null for "
                                     "a dimension of any size")
    dtype: DType = "float32"
    batch_size: PositiveInt | None = None


# --- graph lines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphKeyword:
    """One keyword of a layer's call (``value=x``, ``use_causal_mask=True``).

    Attributes:
        key: the keyword.
        tensor: the tensor it names (``value=x``), or None for an option or a list.
        value: the option's value (True/False, an integer, a pair), when ``tensor`` is None.
        key_offset, value_offset: where the keyword and its value start in the line.
        tensors: the tensors of a list of names (``initial_state=[h, c]``), else empty.
        tensor_offsets: where each of ``tensors`` starts in the line.
    """

    key: str
    tensor: str | None
    value: Any
    key_offset: int
    value_offset: int
    tensors: tuple[str, ...] = ()
    tensor_offsets: tuple[int, ...] = ()


@dataclass(frozen=True)
class GraphCall:
    """One validated graph line: ``targets = callee(args)``.

    Attributes:
        targets: the names the line binds, in order (several for a multi-output layer).
        callee: the layer, model or helper called.
        args: the tensor names it is called on, in order (a list argument is flattened).
        helper: for a helper form (``concatenate(a, b, axis=1)``), the anonymous layer it
            makes (``{Concatenate: {axis: 1}}``); None otherwise.
        keywords: the keywords of a layer's call (``mha(query=x, value=y,
            use_causal_mask=True)``), in order; whether the layer takes them is checked with
            the whole model (``checks``). A helper's keywords are its layer's arguments
            (``helper``), not these.
        text: the line as written.
        target_offsets, callee_offset, arg_offsets: where each name starts in ``text``
            (0-based); ``locate_graph_part`` turns them into file positions.
    """

    targets: tuple[str, ...]
    callee: str
    args: tuple[str, ...]
    helper: LayerSpecBase | None
    text: str
    target_offsets: tuple[int, ...]
    callee_offset: int
    arg_offsets: tuple[int, ...]
    keywords: tuple[GraphKeyword, ...] = ()

    def span(self, part: Any) -> tuple[int, str]:
        """``(offset in text, name)`` of ``"callee"``, ``("arg", k)``, ``("target", k)``,
        ``("keyword", k)`` (the k-th keyword), ``("kwarg", k)`` (the tensor it names) or
        ``("kwlist", (k, j))`` (the j-th tensor of its list)."""
        if part == "callee":
            return self.callee_offset, self.callee
        kind, k = part
        if kind == "arg":
            return self.arg_offsets[k], self.args[k]
        if kind == "target":
            return self.target_offsets[k], self.targets[k]
        if kind == "keyword":
            return self.keywords[k].key_offset, self.keywords[k].key
        if kind == "kwarg" and self.keywords[k].tensor is not None:
            return self.keywords[k].value_offset, self.keywords[k].tensor
        if kind == "kwlist":
            (k, j) = k
            return self.keywords[k].tensor_offsets[j], self.keywords[k].tensors[j]
        raise ValueError(f"unknown graph line part {part!r}")

    def __str__(self) -> str:
        return self.text


class _NotAGraphLine(Exception):
    """Why a line is not of the graph-line form (the message's second half)."""


def _offset(starts: list[int], node: ast.AST) -> int:
    """A node's position as an index into the (ASCII) text."""
    return starts[node.lineno - 1] + node.col_offset


def _literal(node: ast.AST) -> Any:
    """A keyword argument's value: an int, True/False, or a pair of ints; never evaluated."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int)):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int):
        return -node.operand.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Name) and node.id in ("true", "false"):
        raise _NotAGraphLine(f"write {node.id.capitalize()}, as in Python")
    raise _NotAGraphLine("a keyword's value is an integer, True/False or a pair like (1, 2)")


def _helper_spec(helper: str, kwargs: dict[str, Any]) -> LayerSpecBase:
    """The anonymous merge layer of a helper call, its keywords checked as the layer's args."""
    class_name = MERGE_HELPERS[helper]
    spec = LAYER_SPECS[class_name]
    args_type = spec.model_fields[class_name].annotation
    own = [f for f in args_type.model_fields if f not in LayerArgs.model_fields]
    for key in kwargs:
        if key not in own:
            if not own:
                raise _NotAGraphLine(f"{helper} takes no keyword arguments")
            close = suggest(key, own)
            hint = f" (did you mean {close!r}?)" if close and close != key else ""
            raise _NotAGraphLine(f"{helper} takes the keyword{'s' if len(own) > 1 else ''} "
                                 f"{', '.join(own)}, not {key!r}{hint}")
    try:
        return spec.model_validate({class_name: kwargs})
    except ValidationError as err:
        problem = convert_error(err.errors()[0], spec, Source())
        where = format_path(problem.path[1:])
        raise _NotAGraphLine(f"{helper}: {where + ': ' if where else ''}{problem.message}") \
            from None


def parse_graph_line(text: Any) -> GraphCall:
    """Read one graph line (without evaluating anything in it).

    Args:
        text: the line, e.g. ``"x, h, c = lstm(x)"`` or ``"y = concatenate([a, b], axis=1)"``.

    Returns:
        The ``GraphCall``.

    Raises:
        PydanticCustomError: the line is not ``targets = callee(names...)``; the message says
            how a graph line reads and what is wrong with this one.
    """
    if not isinstance(text, str):
        raise config_error("graph_line", f"{GRAPH_LINE_USAGE}, got {show(text)}")
    try:
        return _parse(text)
    except _NotAGraphLine as why:
        raise config_error("graph_line", f"{GRAPH_LINE_USAGE}: {why}") from None


def _parse(text: str) -> GraphCall:
    if not text.strip():
        raise _NotAGraphLine("this one is empty")
    if not text.isascii():
        raise _NotAGraphLine("names are letters, digits and '_' (ASCII)")
    lead = len(text) - len(text.lstrip())
    body = text[lead:]
    try:
        tree = ast.parse(body, mode="exec")
    except SyntaxError:
        raise _NotAGraphLine("this one is not valid Python syntax") from None
    if len(tree.body) != 1:
        raise _NotAGraphLine("give one call per line")
    stmt = tree.body[0]
    if not isinstance(stmt, ast.Assign):
        raise _NotAGraphLine("name the result of each call (`x = ...`)")
    if len(stmt.targets) != 1:
        raise _NotAGraphLine("only one `=` per line")
    starts = [lead]
    for line in body.split("\n")[:-1]:
        starts.append(starts[-1] + len(line) + 1)

    target = stmt.targets[0]
    names = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
    if not names or not all(isinstance(n, ast.Name) for n in names):
        raise _NotAGraphLine("the result is a name, or names separated by commas")
    call = stmt.value
    if not isinstance(call, ast.Call):
        raise _NotAGraphLine("the value is a call of a layer, a model or a helper")
    if isinstance(call.func, ast.Call):
        raise _NotAGraphLine("a layer is not built inside a graph line: declare it under "
                             "layers: and call it by its name")
    if not isinstance(call.func, ast.Name):
        raise _NotAGraphLine("call a layer, a model or a helper by its name only (declare a "
                             "layer under layers:)")
    callee = call.func.id

    args = call.args
    if len(args) == 1 and isinstance(args[0], (ast.List, ast.Tuple)):
        args = args[0].elts  # Keras's list style: merge([a, b])
    if not all(isinstance(a, ast.Name) for a in args):
        raise _NotAGraphLine("the arguments are tensor names, or one list of them")
    if any(kw.arg is None for kw in call.keywords):
        raise _NotAGraphLine("`**` is not allowed; write each keyword")

    helper = None
    keywords: list[GraphKeyword] = []
    if callee in MERGE_HELPERS:
        helper = _helper_spec(callee, {kw.arg: _literal(kw.value) for kw in call.keywords})
    else:
        keywords = [_keyword(starts, kw) for kw in call.keywords]
    if not args and not any(kw.tensor is not None or kw.tensors for kw in keywords):
        raise _NotAGraphLine("call it on at least one tensor")

    return GraphCall(
        targets=tuple(n.id for n in names),
        callee=callee,
        args=tuple(a.id for a in args),
        helper=helper,
        text=text,
        target_offsets=tuple(_offset(starts, n) for n in names),
        callee_offset=_offset(starts, call.func),
        arg_offsets=tuple(_offset(starts, a) for a in args),
        keywords=tuple(keywords),
    )


def _keyword(starts: list[int], kw: ast.keyword) -> GraphKeyword:
    """A layer call's keyword: a tensor name (``value=x``), a list of tensor names
    (``initial_state=[h, c]``) or an option's literal value (``use_causal_mask=True``; YAML's
    ``true``/``false`` are read as True/False here)."""
    value = kw.value
    tensor, literal = None, None
    if isinstance(value, ast.Name) and value.id in ("true", "false"):
        literal = value.id == "true"
    elif isinstance(value, ast.Name):
        tensor = value.id
    elif (isinstance(value, (ast.List, ast.Tuple)) and value.elts
          and all(isinstance(e, ast.Name) for e in value.elts)):
        names = [e.id for e in value.elts]
        if any(n in ("true", "false") for n in names):
            raise _NotAGraphLine("a list of tensors holds tensor names only")
        return GraphKeyword(kw.arg, None, None, _offset(starts, kw), _offset(starts, value),
                            tuple(names), tuple(_offset(starts, e) for e in value.elts))
    else:
        literal = _literal(value)
    return GraphKeyword(kw.arg, tensor, literal, _offset(starts, kw), _offset(starts, value))


#: A graph line: written as a string, validated as a ``GraphCall``, written back as the string.
GraphLine = Annotated[
    GraphCall,
    PlainValidator(parse_graph_line),
    PlainSerializer(lambda call: call.text, return_type=str),
    WithJsonSchema({"type": "string", "description": "result = layer(tensor, ...)"}),
]


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class FunctionalConfig(ConfigModel):
    """A functional model: ``inputs``, ``layers``, ``graph`` (calls, in order), ``outputs``."""

    inputs: dict[Name, InputConfig] = Field(min_length=1, description="input name -> "
                                                                      "{shape, dtype}")
    layers: dict[Name, LayerSpec] = Field(
        default_factory=dict, description="layer instance name -> {ClassName: {args}}")
    graph: list[GraphLine] = Field(min_length=1, description="one call per line, in order: "
                                                             "result = layer(tensor, ...)")
    outputs: Annotated[
        list[Name], Field(min_length=1),
        BeforeValidator(_one_or_many, json_schema_input_type=Union[Name, list[Name]]),
    ] = Field(description="the output tensors' names (one name or a list)")

    def input_names(self) -> list[str]:
        """The inputs' names, in order."""
        return list(self.inputs)

    def producers(self) -> dict[str, int]:
        """Each tensor name -> the index of the graph line whose binding is the last one."""
        out = {}
        for i, call in enumerate(self.graph):
            for target in call.targets:
                out[target] = i
        return out

    def outputs_by_callee(self) -> dict[str, list[str]]:
        """Each layer (or model) that computed outputs -> those outputs, in output order."""
        producers = self.producers()
        out: dict[str, list[str]] = {}
        for name in dict.fromkeys(self.outputs):
            line = producers.get(name)
            if line is not None and self.graph[line].helper is None:
                out.setdefault(self.graph[line].callee, []).append(name)
        return out

    def output_aliases(self) -> dict[str, str]:
        """Layer (or model) names that may stand for an output in losses, metrics and data.

        The name of an output is its tensor name (in ``outputs``); the layer (or model) whose
        call computed it may be used instead, as Keras keys outputs by layer, unless that
        layer computed several of the outputs.

        Returns:
            layer or model name -> output tensor name.
        """
        return {callee: outs[0] for callee, outs in self.outputs_by_callee().items()
                if len(outs) == 1}


# --- positions inside a line ------------------------------------------------------------------


def graph_part_position(source: Source, line_path: ConfigPath, call: GraphCall,
                        part: Any) -> SourcePos:
    """Where one name of a graph line sits in the file.

    Args:
        source: the positions of the file the line is in.
        line_path: the line's config path (``("model", "functional", "graph", 3)``).
        call: the validated line.
        part: ``"callee"``, ``("arg", k)`` or ``("target", k)``; ``"line"`` for the line.

    Returns:
        The name's file:line:col; the line's start where the name cannot be placed exactly
        (block scalars, escapes, overrides, dicts).
    """
    pos = source.locate(line_path)
    if part == "line" or pos.line is None or source.text is None or pos.file != source.file:
        return pos
    offset, name = call.span(part)
    rows = source.text.splitlines()
    if pos.line > len(rows) or "\n" in call.text[:offset]:
        return pos
    row = rows[pos.line - 1]
    start = pos.col - 1
    if row[start:start + 1] in ("'", '"'):
        start += 1
    elif row[start:start + 1] in ("|", ">"):
        return pos
    col = start + offset
    if row[col:col + len(name)] != name:
        return pos
    return SourcePos(pos.file, pos.line, col + 1)
