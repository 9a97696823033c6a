"""The model summary as rich renderables: Keras's layer table, totals, and the node table.

Beyond Keras, the layer table has a ``FLOPs`` column: each layer's forward floating-point
operations for one sample, summed over its calls in the graph (see ``Layer.flops`` for what
is counted), and a line with the model's total.
"""
from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from kconf.graph.ir import build_shape
from kconf.graph.ir import graph_flops, node_flops
from kconf.shapes import format_shape


def _param_count(layer) -> int:
    return layer.count_params(build_shape(layer))


def _output_shape(layer, graph) -> str:
    """A layer's output shape; ``multiple`` for a shared layer whose calls give different
    shapes (as Keras's summary, whose ``layer.output_shape`` has no single answer then)."""
    nodes = graph.nodes_of(layer)
    shapes = nodes[0].output_shapes
    if any(tuple(n.output_shapes) != tuple(shapes) for n in nodes[1:]):
        return "multiple"
    return ", ".join(format_shape(s) for s in shapes)


def _layer_flops(layer, graph) -> int:
    """Forward FLOPs of one sample through every call of ``layer`` in ``graph``."""
    return sum(node_flops(node) for node in graph.nodes_of(layer))


def format_flops(n: int) -> str:
    """``169.9M``: a FLOP count in powers of 1000 (K, M, G, T), one decimal."""
    for unit in ("", "K", "M", "G"):
        if abs(n) < 1000:
            return f"{n:.1f}{unit}" if unit else str(int(n))
        n /= 1000
    return f"{n:.1f}T"


def _type_name(layer) -> str:
    return getattr(layer, "kind", None) or type(layer).__name__


def layer_table(model, title: str | None = None, expand: bool = False) -> Table:
    """Keras's ``model.summary()`` table; functional models get the ``Connected to`` column.

    With ``expand``, the layers of nested models follow their model's row, indented (their
    FLOPs are those of one call of the nested model). The last column is kconf's own: forward
    FLOPs per sample, summed over the layer's calls.
    """
    functional = not model.sequential
    table = Table(title=title, box=box.HEAVY_HEAD, title_justify="left")
    table.add_column("Layer (type)")
    table.add_column("Output Shape")
    table.add_column("Param #", justify="right")
    if functional:
        table.add_column("Connected to")
    table.add_column("FLOPs", justify="right")

    def add_rows(layers, graph, depth: int) -> None:
        for layer in layers:
            row = ["  " * depth + ("└ " if depth else "") + f"{layer.name} ({_type_name(layer)})",
                   _output_shape(layer, graph), f"{_param_count(layer):,}"]
            if functional:
                refs = [graph.ref(t) for node in graph.nodes_of(layer) for t in node.inputs]
                row.append(", ".join(refs) or "-")
            row.append(format_flops(_layer_flops(layer, graph)))
            table.add_row(*row)
            inner_graph = _nested_graph(layer)
            if expand and inner_graph is not None:
                add_rows(_nested_layers(layer), inner_graph, depth + 1)

    add_rows(model.layers, model.graph, 0)
    return table


def _nested_graph(layer):
    """The graph of a nested model (also through TimeDistributed), or None."""
    return getattr(layer, "graph", None) or getattr(getattr(layer, "layer", None), "graph", None)


def _nested_layers(layer) -> list:
    """The layers inside a nested model (also through TimeDistributed), without InputLayers."""
    graph = _nested_graph(layer)
    if graph is None:
        return []
    return [l for l in graph.layers if l.n_inputs != 0]


def totals_line(model) -> Text:
    """Keras 3's three lines under the table (``keras/src/utils/summary_utils.py``)::

         Total params: 82,305 (321.50 KB)
         Trainable params: 82,305 (321.50 KB)
         Non-trainable params: 0 (0.00 B)

    Each weight counts once (a shared layer's too); state and frozen layers' weights are the
    non-trainable ones; sizes are of float32 numbers. Keras adds an ``Optimizer params``
    line once its optimizer has built its slots, which kconf's summary, made before any
    training, never has.
    """
    trainable, non_trainable = model.param_counts()
    text = Text()
    for i, (label, count) in enumerate((("Total", trainable + non_trainable),
                                        ("Trainable", trainable),
                                        ("Non-trainable", non_trainable))):
        text.append("\n" if i else "")
        text.append(f" {label} params: ", style="bold")
        text.append(f"{count:,} ({readable_memory_size(count * 4)})")
    return text


def flops_line(model) -> Text:
    """``Forward FLOPs per sample: 423.1M (training step ≈ 3×: 1.3G)``"""
    forward = graph_flops(model.graph)
    return Text(f"Forward FLOPs per sample: {format_flops(forward)}  "
                f"(training ≈ 3× forward: {format_flops(3 * forward)})")


def node_table(model) -> Table | None:
    """One row per call of every layer called more than once (Keras's summary hides these)."""
    graph = model.graph
    shared = [l for l in graph.layers if len(graph.nodes_of(l)) > 1]
    if not shared:
        return None
    table = Table(title="Nodes of layers called more than once", box=box.SIMPLE,
                  title_justify="left")
    for col in ("layer", "node", "inbound", "input shape", "output shape", "tensor"):
        table.add_column(col)
    for layer in shared:
        for index, node in enumerate(graph.nodes_of(layer)):
            table.add_row(layer.name, str(index), ", ".join(graph.ref(t) for t in node.inputs),
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
    parts = [layer_table(model, title, expand), totals_line(model), flops_line(model)]
    for extra in (node_table(model), imports_text(import_paths)):
        if extra is not None:
            parts += [Text(""), extra]
    return Group(*parts)


def render_text(renderable, width: int = 120) -> str:
    """Render to plain text (no colour), e.g. for summary.txt in a run folder."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.file.getvalue()


def readable_memory_size(n: float) -> str:
    """``321.50 KB``: a size in bytes as Keras's summary writes it (powers of 1024, two
    decimals, up to PB)."""
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    for unit in units:
        if n / 1024 < 1:
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} {units[-1]}"
