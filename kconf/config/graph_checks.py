"""Checks of a model's layers and graph lines, after the schema: the names in graphs, and the
models that layers wrapping a model (``TimeDistributed``) name.

Graph lines are checked in order: an argument refers to the latest binding of its name on
an *earlier* line (targets may be rebound, as the Python examples reuse ``x``). A name that
only a later line (or the line itself) binds is "used before it is defined"; this rule also
makes a cycle impossible, so a cycle is reported as a use before definition.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from kconf.args.names import MERGE_HELPERS
from kconf.config.functional import FunctionalConfig, graph_part_position
from kconf.config.layers import LAYER_SPECS, LayerSpecBase
from kconf.config.source import Source
from kconf.engine.layers import REGISTRY
from kconf.engine.layers.time_distributed import TimeDistributedArgs
from kconf.errors import ConfigPath, Problem
from kconf.text import suggest


def check_wrapped(spec: LayerSpecBase, path: ConfigPath, models: Sequence[str],
                   source: Source, uses: set[str]) -> list[Problem]:
    """The models that TimeDistributed layers (nested ones too) name must exist."""
    args = spec.args
    if not isinstance(args, TimeDistributedArgs):
        return []
    path = (*path, "layer")
    if isinstance(args.layer, LayerSpecBase):
        return check_wrapped(args.layer, (*path, args.layer.tag), models, source, uses)
    if args.layer in models:
        uses.add(args.layer)
        return []
    return [Problem(_unknown_model(args.layer, models), path, source.locate(path))]


def _unknown_model(name: str, models: Sequence[str]) -> str:
    if not models:
        return (f"unknown model {name!r}: no models section defines it (wrap a layer, like "
                "{Dense: {units: 10}}, or define the model under models)")
    close = suggest(name, models)
    hint = f" (did you mean {close!r}?)" if close else f"; models: {', '.join(models)}"
    return f"unknown model {name!r}{hint}"


# --- a functional model's names ---------------------------------------------------------------


def check_functional(fn: FunctionalConfig, models: Sequence[str], source: Source,
                      prefix: ConfigPath, uses: set[str]) -> list[Problem]:
    """Names in a functional model: declared once, defined before use, all used."""
    problems: list[Problem] = []
    inputs, layers = fn.inputs, fn.layers

    def key_problem(section: str, name: str, message: str) -> None:
        path = (*prefix, section, name)
        problems.append(Problem(message, path, source.locate_key(path)))

    used_inputs: set[str] = set()
    called: set[str] = set()
    for name in inputs:
        if name in MERGE_HELPERS:
            key_problem("inputs", name, f"{name!r} is the name of a helper (the merge layer "
                                        f"{MERGE_HELPERS[name]}); give the input another name")
        elif name in models:
            key_problem("inputs", name, f"{name!r} names both an input and a model "
                                        f"(models.{name}); give each its own name")
    for name, spec in layers.items():
        if name in inputs:
            key_problem("layers", name, f"{name!r} names both an input and a layer; give each "
                                        "its own name")
        elif name in models:
            key_problem("layers", name, f"{name!r} names both a layer and a model "
                                        f"(models.{name}); give each its own name")
        elif name in MERGE_HELPERS:
            key_problem("layers", name, f"{name!r} is the name of a helper (the merge layer "
                                        f"{MERGE_HELPERS[name]}); give the layer another name")
            called.add(name)  # calls of the name are the helper's: one problem is enough
        if spec.args.name is not None:
            path = (*prefix, "layers", name, spec.tag, "name")
            problems.append(Problem(f"a functional model's layer is named by its key "
                                    f"({name!r}); remove name", path, source.locate_key(path)))
        problems += check_wrapped(spec, (*prefix, "layers", name, spec.tag), models, source,
                                   uses)

    first_binding: dict[str, int] = {}
    for i, call in enumerate(fn.graph):
        for target in call.targets:
            first_binding.setdefault(target, i)
    defined: dict[str, int] = {name: -1 for name in inputs}  # name -> line of latest binding
    suggested: set[str | None] = set()  # layers a misspelt call probably meant

    for i, call in enumerate(fn.graph):
        line = (*prefix, "graph", i)

        def at(part: Any, message: str) -> None:
            problems.append(Problem(message, line, graph_part_position(source, line, call, part)))

        if call.helper is None:
            callee = call.callee
            if callee in layers:
                called.add(callee)
            elif callee in models:
                uses.add(callee)
            else:
                at("callee", _not_a_layer(callee, layers, models, defined, first_binding))
                suggested.add(suggest(callee, [*layers, *models, *MERGE_HELPERS]))
        tensor_args = [(("arg", k), arg) for k, arg in enumerate(call.args)]
        tensor_args += [(("kwarg", k), kw.tensor) for k, kw in enumerate(call.keywords)
                        if kw.tensor is not None]
        tensor_args += [(("kwlist", (k, j)), name) for k, kw in enumerate(call.keywords)
                        for j, name in enumerate(kw.tensors)]
        for part, arg in tensor_args:
            if arg in defined:
                if defined[arg] == -1:
                    used_inputs.add(arg)
            elif arg in first_binding:
                where = _line_name(source, (*prefix, "graph", first_binding[arg]),
                                   first_binding[arg])
                at(part, f"{arg!r} is used before it is defined ({where} defines it)")
            elif arg in layers or arg in models:
                kind = "layer" if arg in layers else "model"
                at(part, f"{arg!r} is a {kind}, not a tensor: call it on a tensor "
                         f"(`y = {arg}(x)`)")
            else:
                at(part, _unknown_tensor(arg, defined))
        if call.helper is None and (call.keywords or call.callee in layers):
            for part, message in _call_problems(call, layers, models):
                at(part, message)
        for k, target in enumerate(call.targets):
            # A result may share its layer's name (the docs' `main_output = Dense(...,
            # name='main_output')(x)`): callees are layers, arguments are tensors.
            if target in inputs:
                at(("target", k), f"{target!r} is an input; give the result another name")
            elif target in call.targets[:k]:
                at(("target", k), f"{target!r} is assigned twice on this line")
        for target in call.targets:
            defined[target] = i

    listed: set[str] = set()
    for k, name in enumerate(fn.outputs):
        path = (*prefix, "outputs", k)
        pos = source.locate(path)
        if name in listed:
            problems.append(Problem(f"output {name!r} is listed twice", path, pos))
        listed.add(name)
        if name in defined:
            if defined[name] == -1:
                used_inputs.add(name)
        elif name in layers or name in models:
            problems.append(Problem(_layer_as_output(name, fn), path, pos))
        else:
            problems.append(Problem(_unknown_output(name, defined), path, pos))

    for name in inputs:
        if name not in used_inputs:
            key_problem("inputs", name, f"input {name!r} is not used by any graph line")
    for name in layers:
        if name not in called and name not in suggested:
            key_problem("layers", name, f"layer {name!r} is declared but no graph line "
                                        "calls it")
    return problems


def _call_problems(call, layers: Mapping[str, Any],
                   models: Sequence[str]) -> list[tuple[Any, str]]:
    """What is wrong with how a line calls a layer that takes named tensors or options
    (``mha(query=x, value=y, use_causal_mask=True)``), or with keywords given to a layer or
    a model that takes none: ``(part of the line, message)`` pairs."""
    callee = call.callee
    if callee in models and callee not in layers:
        return [(("keyword", 0), f"{callee!r} is a model: call it on its input tensors by "
                                 "position, without keywords")]
    if callee not in layers:
        return []  # an unknown callee is reported already
    class_name = layers[callee].class_name
    signature = REGISTRY[class_name].layer.call_signature
    if signature is None:
        if not call.keywords:
            return []
        return [(("keyword", 0), f"{callee} ({class_name}) takes its tensors by position and "
                                 "no keyword arguments; give a layer's arguments under "
                                 "layers:")]
    problems: list[tuple[Any, str]] = []
    what = f"{callee} ({class_name})"
    known = [*signature.tensors, *signature.tensor_lists, *signature.options]
    if len(call.args) > len(signature.tensors):
        problems.append((("arg", len(signature.tensors)),
                         f"{what} takes at most {len(signature.tensors)} tensors by position "
                         f"({', '.join(signature.tensors)})"))
    named = {}
    for k, kw in enumerate(call.keywords):
        part = ("keyword", k)
        if kw.key not in known:
            close = suggest(kw.key, known)
            hint = f" (did you mean {close!r}?)" if close else ""
            problems.append((part, f"{what} takes the keywords {', '.join(known)}, not "
                                   f"{kw.key!r}{hint}"))
        elif kw.key in signature.tensor_lists:
            if not kw.tensors:
                shown = kw.tensor if kw.tensor is not None else kw.value
                problems.append((part, f"{kw.key} is a list of tensors ({kw.key}=[h, c]), "
                                       f"got {shown!r}"))
        elif kw.tensors:
            one = "tensor" if kw.key in signature.tensors else "value"
            problems.append((part, f"{kw.key} takes one {one}, not a list"))
        elif kw.key in signature.tensors:
            if kw.tensor is None:
                problems.append((part, f"{kw.key} is a tensor: give a tensor's name "
                                       f"({kw.key}=x), not {kw.value!r}"))
            elif signature.tensors.index(kw.key) < len(call.args):
                problems.append((part, f"{kw.key} is given twice, by position and by "
                                       "keyword"))
            else:
                named[kw.key] = kw.tensor
        else:
            kind = signature.options[kw.key]
            ok = kw.tensor is None and isinstance(kw.value, kind) and (
                kind is bool or not isinstance(kw.value, bool))
            if not ok:
                shown = kw.tensor if kw.tensor is not None else kw.value
                words = "True or False" if kind is bool else f"an {kind.__name__}"
                problems.append((part, f"{kw.key} is {words}, got {shown!r}"))
    if not problems:
        try:
            signature.arrange(list(call.args), named)
        except ValueError:
            given = [*signature.tensors[:len(call.args)], *named]
            missing = [t for t in signature.tensors[:signature.required] if t not in given]
            what_missing = " and ".join(missing) or "the tensors before the last one given"
            usual = ", ".join(signature.tensors[:signature.required])
            problems.append(("callee", f"{what} needs {what_missing} (by position or "
                                       f"keyword: {callee}({usual}))"))
    return problems


def _line_name(source: Source, path: ConfigPath, index: int) -> str:
    """How a message refers to a graph line: its line in the file, else its index."""
    pos = source.locate(path)
    return f"line {pos.line}" if pos.line is not None else f"graph[{index}]"


def _not_a_layer(callee: str, layers: Mapping[str, Any], models: Sequence[str],
                 defined: Mapping[str, int], bound: Mapping[str, int]) -> str:
    if callee in defined or callee in bound:
        return f"{callee!r} is a tensor, not a layer: call a layer on it (`y = layer({callee})`)"
    if callee in LAYER_SPECS:
        return (f"{callee!r} is a layer class, not a layer: declare one under layers "
                f"(e.g. {callee.lower()}: {{{callee}: {{...}}}}) and call it by that name")
    close = suggest(callee, [*layers, *models, *MERGE_HELPERS])
    if close is not None:
        return f"{callee!r} is not a layer (did you mean {close!r}?)"
    known = ", ".join([*layers, *models]) or "none"
    return f"{callee!r} is not a layer, a model or a helper; layers and models: {known}"


def _unknown_tensor(name: str, defined: Mapping[str, int]) -> str:
    close = suggest(name, list(defined))
    if close is not None:
        return f"unknown tensor {name!r} (did you mean {close!r}?)"
    return f"unknown tensor {name!r}; defined before this line: {', '.join(defined)}"


def _unknown_output(name: str, defined: Mapping[str, int]) -> str:
    close = suggest(name, list(defined))
    hint = f" (did you mean {close!r}?)" if close is not None else ""
    return f"output {name!r} is not computed by any graph line{hint}"


def _layer_as_output(name: str, fn: FunctionalConfig) -> str:
    computed = [t for call in fn.graph if call.callee == name for t in call.targets]
    kind = "layer" if name in fn.layers else "model"
    message = f"{name!r} is a {kind}; outputs are tensors, the results of graph lines"
    if len(computed) == 1:
        message += f" (did you mean {computed[0]!r}, the tensor it computes?)"
    return message
