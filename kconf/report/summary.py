"""The model summary as rich renderables: Keras's layer table, totals, and the node table."""
from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from kconf.engine.layers.base import format_shape
from kconf.graph.ir import build_shape


def _param_count(layer) -> int:
    return layer.count_params(build_shape(layer))


def _output_shape(layer) -> str:
    shapes = layer.inbound_nodes[0].output_shapes
    return ", ".join(format_shape(s) for s in shapes)


def _type_name(layer) -> str:
    return getattr(layer, "kind", None) or type(layer).__name__


def layer_table(model, title: str | None = None, expand: bool = False) -> Table:
    """Keras's ``model.summary()`` table; functional models get the ``Connected to`` column.

    With ``expand``, the layers of nested models follow their model's row, indented.
    """
    functional = not model.sequential
    table = Table(title=title, box=box.HEAVY_HEAD, title_justify="left")
    table.add_column("Layer (type)")
    table.add_column("Output Shape")
    table.add_column("Param #", justify="right")
    if functional:
        table.add_column("Connected to")

    def add_rows(layers, depth: int) -> None:
        for layer in layers:
            row = ["  " * depth + ("└ " if depth else "") + f"{layer.name} ({_type_name(layer)})",
                   _output_shape(layer), f"{_param_count(layer):,}"]
            if functional:
                refs = [t.ref() for node in layer.inbound_nodes for t in node.inputs]
                row.append(", ".join(refs) or "-")
            table.add_row(*row)
            inner = _nested_layers(layer)
            if expand and inner:
                add_rows(inner, depth + 1)

    add_rows(model.layers, 0)
    return table


def _nested_layers(layer) -> list:
    """The layers inside a nested model (also through TimeDistributed), without InputLayers."""
    graph = getattr(layer, "graph", None) or getattr(getattr(layer, "layer", None), "graph", None)
    if graph is None:
        return []
    return [l for l in graph.layers if l.n_inputs != 0]


def totals_line(model) -> Text:
    """``Total params: 1,234 (4.8 KB)  Trainable: ...  Non-trainable: ...``"""
    trainable = sum(_param_count(l) for l in model.graph.layers if l.trainable)
    total = sum(_param_count(l) for l in model.graph.layers)
    return Text(f"Total params: {total:,} ({_bytes(total * 4)})  Trainable: {trainable:,}  "
                f"Non-trainable: {total - trainable:,}")


def node_table(model) -> Table | None:
    """One row per call of every layer called more than once (Keras's summary hides these)."""
    shared = [l for l in model.graph.layers if len(l.inbound_nodes) > 1]
    if not shared:
        return None
    table = Table(title="Nodes of layers called more than once", box=box.SIMPLE,
                  title_justify="left")
    for col in ("layer", "node", "inbound", "input shape", "output shape", "tensor"):
        table.add_column(col)
    for layer in shared:
        for node in layer.inbound_nodes:
            table.add_row(layer.name, str(node.index), ", ".join(t.ref() for t in node.inputs),
                          ", ".join(format_shape(s) for s in node.input_shapes),
                          ", ".join(format_shape(s) for s in node.output_shapes),
                          ", ".join(t.name for t in node.outputs))
    return table


def imports_text(import_paths) -> Text | None:
    """The Python code a config would run, so a reviewer sees it."""
    if not import_paths:
        return None
    from kconf.errors import format_path
    lines = [f"  {spec}  ({format_path(path)})" for path, spec in import_paths]
    return Text("Runs Python code from:\n" + "\n".join(lines))


def summary_renderables(model, source: str | None = None, import_paths=(),
                        expand: bool = False) -> Group:
    """Everything ``kconf summary`` shows, as one renderable."""
    title = f'Model "{model.name}"' + (f" ({source})" if source else "")
    parts = [layer_table(model, title, expand), totals_line(model)]
    for extra in (node_table(model), imports_text(import_paths)):
        if extra is not None:
            parts += [Text(""), extra]
    return Group(*parts)


def render_text(renderable, width: int = 120) -> str:
    """Render to plain text (no colour), e.g. for summary.txt in a run folder."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue()


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    raise AssertionError("unreachable")
