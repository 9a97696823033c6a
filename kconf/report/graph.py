"""The model graph as Graphviz DOT and Mermaid text, in the spirit of Keras's ``plot_model``.

What is drawn:

- **One box per layer**, labelled ``name (Type)`` and the output shape. A layer called more
  than once (a shared layer) is still one box: it gets one incoming edge per call, each
  labelled ``node <i>: <tensor>`` (the call's node index, as in ``kconf summary``'s node
  table, and the name of the tensor it is called on); if its calls give different output
  shapes, the box lists them per node. Other edges are labelled with the tensor's name.
- **Inputs and outputs are marked**: InputLayers are blue (a stadium in Mermaid); the boxes
  computing the model's outputs are green with a double border (a subroutine box in
  Mermaid) and an ``output: <tensor>`` line (inside its cluster when a nested model that
  computes an output is expanded).
- **Nested models** (a named model called like a layer, or wrapped in TimeDistributed) are
  one box, ``enc (Sequential)``, as ``plot_model`` draws them by default. With ``expand``
  they become a cluster (DOT ``subgraph cluster_…``, Mermaid ``subgraph``) holding the
  nested model's own layers, InputLayers included; the outer edges then go into the nested
  InputLayers and out of the layers computing the nested outputs, so a nested model called
  twice is still drawn once.

The drawing is first collected in a ``GraphView`` (boxes, clusters, edges), a plain data
structure that ``to_dot`` and ``to_mermaid`` only format; nothing here needs Graphviz. When
Graphviz's ``dot`` program is installed, ``render_dot`` turns the DOT file into SVG or PNG.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from kconf.errors import KconfError
from kconf.shapes import format_shape

FORMATS = ("dot", "mermaid")
SUFFIXES = {"dot": ".dot", "mermaid": ".mmd"}
RENDER_FORMATS = ("svg", "png")
GRAPHVIZ_URL = "https://graphviz.org/download/"

# Words a Mermaid flowchart reads as keywords: never used as a node id as they are.
_MERMAID_KEYWORDS = {"end", "graph", "flowchart", "subgraph", "class", "classdef", "style",
                     "click", "linkstyle", "direction", "call", "href", "default"}

_COLORS = {"layer": ("#f8fafc", "#475569"), "input": ("#dbeafe", "#1d4ed8"),
           "output": ("#dcfce7", "#15803d")}


class RenderError(KconfError):
    """The DOT text could not be rendered (no ``dot`` program, or ``dot`` failed)."""


@dataclass
class Box:
    """One layer: its id in the text, label lines, and whether it is a model input/output."""

    id: str
    lines: list[str]
    is_input: bool = False
    outputs: list[str] = field(default_factory=list)

    @property
    def role(self) -> str:
        """``output``, ``input`` or ``layer``: how the box is styled."""
        return "output" if self.outputs else "input" if self.is_input else "layer"


@dataclass
class Cluster:
    """A group of boxes: the whole model (the root), or an expanded nested model."""

    id: str
    lines: list[str]
    boxes: list[Box] = field(default_factory=list)
    clusters: list["Cluster"] = field(default_factory=list)

    def all_boxes(self) -> list[Box]:
        """This cluster's boxes and those of every cluster inside it."""
        return self.boxes + [b for c in self.clusters for b in c.all_boxes()]


@dataclass
class Edge:
    """A tensor going from the box of the layer producing it to the box of a layer using it."""

    source: str
    target: str
    label: str


@dataclass
class GraphView:
    """What ``to_dot`` and ``to_mermaid`` draw: the model's name, its boxes and its edges."""

    name: str
    title: str
    root: Cluster
    edges: list[Edge]

    def boxes(self) -> list[Box]:
        """Every box, clusters included."""
        return self.root.all_boxes()


def graph_view(model, expand: bool = False, source: str | None = None) -> GraphView:
    """Collect the boxes and edges that draw ``model``.

    Args:
        model: a ``Model`` (``model_from_config`` gives one without weights, instantly).
        expand: draw nested models as clusters of their layers instead of one box each.
        source: the config file, shown in the title.

    Returns:
        The ``GraphView`` that ``to_dot`` and ``to_mermaid`` format.
    """
    kind = "Sequential" if model.sequential else "Functional"
    title = f'Model "{model.name}" ({kind})' + (f" — {source}" if source else "")
    ids = _Ids()
    root = Cluster("", [title])  # drawn as the graph itself, so it needs no id
    edges: list[Edge] = []
    producer = _add_graph(model.graph, root, (), expand, ids, edges)
    boxes = {box.id: box for box in root.all_boxes()}
    for tensor in model.graph.outputs:  # inside a cluster when its model is expanded
        box = boxes[producer(tensor)]
        box.outputs.append(tensor.name)
        box.lines.append(f"output: {tensor.name}")
    return GraphView(model.name, title, root, edges)


def _add_graph(graph, cluster: Cluster, prefix: tuple[str, ...], expand: bool,
               ids: "_Ids", edges: list[Edge]):
    """Add a graph's layers to ``cluster`` and its edges to ``edges``; return the function
    giving the id of the box that produces one of this graph's tensors."""
    box_of: dict[int, str] = {}
    inner_of: dict[int, tuple] = {}

    def source(tensor) -> str:
        layer = tensor.node.layer
        if id(layer) in inner_of:
            inner, resolve = inner_of[id(layer)]
            return resolve(inner.outputs[tensor.index])
        return box_of[id(layer)]

    def target(layer, i: int) -> str:
        if id(layer) in inner_of:
            inner, resolve = inner_of[id(layer)]
            return resolve(inner.inputs[i])
        return box_of[id(layer)]

    for layer in graph.layers:
        nodes = graph.nodes_of(layer)
        path = (*prefix, layer.name)
        lines = [f"{layer.name} ({_type_name(layer)})"]
        wrapped = getattr(layer, "layer", None)
        if wrapped is not None:
            lines.append(f"wraps {wrapped.name} ({_type_name(wrapped)})")
        lines += _shape_lines(nodes)
        inner = _nested_graph(layer) if expand else None
        if inner is not None:
            sub = Cluster(ids.new("cluster_" + "__".join(path)), lines)
            cluster.clusters.append(sub)
            inner_of[id(layer)] = (inner, _add_graph(inner, sub, path, expand, ids, edges))
            continue
        box = Box(ids.new("__".join(path)), lines, is_input=layer.n_inputs == 0)
        cluster.boxes.append(box)
        box_of[id(layer)] = box.id

    for node in graph.nodes:
        shared = len(graph.nodes_of(node.layer)) > 1
        for i, tensor in enumerate(node.inputs):
            label = f"node {graph.node_index(node)}: {tensor.name}" if shared else tensor.name
            edges.append(Edge(source(tensor), target(node.layer, i), label))
    return source


def _nested_graph(layer):
    """The graph of a nested model (also through TimeDistributed), or None."""
    return getattr(layer, "graph", None) or getattr(getattr(layer, "layer", None), "graph", None)


def _type_name(layer) -> str:
    """``Dense``; ``Sequential`` / ``Functional`` for a nested model, as ``kconf summary``."""
    return getattr(layer, "kind", None) or type(layer).__name__


def _shape_lines(nodes) -> list[str]:
    """The output shape(s): one line, or one per node when the calls' shapes differ."""
    shapes = []
    for index, node in enumerate(nodes):
        text = ", ".join(format_shape(s) for s in node.output_shapes)
        dtypes = {t.dtype for t in node.outputs} - {"float32"}
        if node.layer.n_inputs == 0 and dtypes:
            text += " " + ", ".join(sorted(dtypes))
        shapes.append((index, text))
    if len({text for _, text in shapes}) <= 1:
        return [text for _, text in shapes[:1]]
    return [f"node {index}: {text}" for index, text in shapes]


class _Ids:
    """Unique node ids that both DOT and Mermaid accept: letters, digits and ``_``."""

    def __init__(self):
        self.used: set[str] = set()

    def new(self, name: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "n"
        if base[0].isdigit():
            base = "n_" + base
        if base.lower() in _MERMAID_KEYWORDS:
            base += "_"
        candidate, n = base, 1
        while candidate in self.used:
            n += 1
            candidate = f"{base}_{n}"
        self.used.add(candidate)
        return candidate


# --- DOT --------------------------------------------------------------------------------
def to_dot(view: GraphView) -> str:
    """The graph as Graphviz DOT text (``dot -Tsvg model.dot -o model.svg`` draws it).

    Args:
        view: what ``graph_view`` collected.

    Returns:
        The text of a ``digraph``, ending with a newline.
    """
    out = [f"// {view.title}: written by kconf graph",
           f"digraph {_dot_str(view.name)} {{",
           f'  graph [rankdir=TB, labelloc=t, fontname="Helvetica", fontsize=14, '
           f"label={_dot_str(view.title)}];",
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
           '  edge [fontname="Helvetica", fontsize=9, color="#64748b"];']
    _dot_cluster_body(view.root, out, "  ")
    for edge in view.edges:
        out.append(f"  {_dot_str(edge.source)} -> {_dot_str(edge.target)} "
                   f"[label={_dot_str(f'  {edge.label}  ')}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_cluster_body(cluster: Cluster, out: list[str], indent: str) -> None:
    """The boxes of a cluster, then its sub-clusters as ``subgraph cluster_…`` blocks."""
    for box in cluster.boxes:
        fill, line = _COLORS[box.role]
        extra = ", peripheries=2" if box.role == "output" else ""
        out.append(f"{indent}{_dot_str(box.id)} [label={_dot_str(chr(10).join(box.lines))}, "
                   f'fillcolor="{fill}", color="{line}"{extra}];')
    for sub in cluster.clusters:
        out.append(f"{indent}subgraph {_dot_str(sub.id)} {{")
        out.append(f"{indent}  label={_dot_str(chr(10).join(sub.lines))};")
        out.append(f'{indent}  style="dashed,rounded"; color="#64748b"; fontname="Helvetica";')
        _dot_cluster_body(sub, out, indent + "  ")
        out.append(f"{indent}}}")


def _dot_str(text: str) -> str:
    """A DOT double-quoted string; newlines become DOT's centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# --- Mermaid ----------------------------------------------------------------------------
_MERMAID_SHAPES = {"layer": ('["', '"]'), "input": ('(["', '"])'), "output": ('[["', '"]]')}


def to_mermaid(view: GraphView) -> str:
    """The graph as a Mermaid flowchart (GitHub and many editors render it in Markdown).

    Args:
        view: what ``graph_view`` collected.

    Returns:
        The text of a ``flowchart TB``, ending with a newline.
    """
    out = [f"%% {_mermaid_comment(view.title)}: written by kconf graph", "flowchart TB"]
    _mermaid_cluster_body(view.root, out, "  ")
    for edge in view.edges:
        out.append(f'  {edge.source} -->|"{_mermaid_text(edge.label)}"| {edge.target}')
    for role in ("input", "output"):
        fill, line = _COLORS[role]
        width = ",stroke-width:3px" if role == "output" else ""
        out.append(f"  classDef {role} fill:{fill},stroke:{line}{width}")
        members = [box.id for box in view.boxes() if box.role == role]
        if members:
            out.append(f"  class {','.join(members)} {role}")
    return "\n".join(out) + "\n"


def _mermaid_cluster_body(cluster: Cluster, out: list[str], indent: str) -> None:
    """The boxes of a cluster, then its sub-clusters as ``subgraph … end`` blocks."""
    for box in cluster.boxes:
        opening, closing = _MERMAID_SHAPES[box.role]
        label = "<br/>".join(_mermaid_text(line) for line in box.lines)
        out.append(f"{indent}{box.id}{opening}{label}{closing}")
    for sub in cluster.clusters:
        label = "<br/>".join(_mermaid_text(line) for line in sub.lines)
        out.append(f'{indent}subgraph {sub.id} ["{label}"]')
        out.append(f"{indent}  direction TB")
        _mermaid_cluster_body(sub, out, indent + "  ")
        out.append(f"{indent}end")


def _mermaid_text(text: str) -> str:
    """Text for a quoted Mermaid label: quotes and markup characters as entity codes."""
    return (text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;")
            .replace(">", "#gt;"))


def _mermaid_comment(text: str) -> str:
    return text.replace("\n", " ")


# --- files ------------------------------------------------------------------------------
def graph_stem(config_file: Path | str, output: Path | str | None = None) -> Path:
    """Where ``kconf graph`` writes: ``<stem>.dot``, ``<stem>.mmd``, ``<stem>.svg``.

    Args:
        config_file: the config drawn; its name (without ``.yaml``) is the default stem.
        output: ``-o``: a path stem (a ``.dot``, ``.mmd``, ``.svg`` or ``.png`` suffix is
            dropped), or an existing folder to write ``<config name>.*`` into. None: the
            current directory, as Keras's ``plot_model`` writes ``model.png`` there.

    Returns:
        The path without suffix.
    """
    name = Path(config_file).stem
    if output is None:
        return Path.cwd() / name
    output = Path(output)
    if output.is_dir():
        return output / name
    if output.suffix.lower() in {".dot", ".gv", ".mmd", ".svg", ".png"}:
        return output.with_suffix("")
    return output


def write_graph(view: GraphView, stem: Path | str, formats: str = "both",
                render: str | None = None) -> list[Path]:
    """Write the DOT and/or Mermaid text of a graph.

    Args:
        view: what ``graph_view`` collected.
        stem: the path without suffix (``graph_stem``); missing folders are created.
        formats: ``dot``, ``mermaid`` or ``both``.
        render: ``svg`` or ``png`` when a rendering follows: the DOT file is written then
            even if ``formats`` is ``mermaid``, since ``dot`` reads it.

    Returns:
        The files written, ``.dot`` first.
    """
    if formats not in (*FORMATS, "both"):
        raise ValueError(f"formats must be 'dot', 'mermaid' or 'both', got {formats!r}")
    wanted = FORMATS if formats == "both" else (formats,)
    if render is not None and "dot" not in wanted:
        wanted = ("dot", *wanted)
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in FORMATS:
        if fmt in wanted:
            path = stem.with_name(stem.name + SUFFIXES[fmt])
            path.write_text(to_dot(view) if fmt == "dot" else to_mermaid(view), encoding="utf-8")
            written.append(path)
    return written


def dot_command(program: str, dot_file: Path, fmt: str, out_file: Path) -> list[str]:
    """``dot -Tsvg model.dot -o model.svg`` as an argument list.

    Args:
        program: the ``dot`` executable.
        dot_file: the DOT text to read.
        fmt: ``svg`` or ``png``.
        out_file: the picture to write.

    Returns:
        The command, ready for ``subprocess.run``.
    """
    return [program, f"-T{fmt}", str(dot_file), "-o", str(out_file)]


def render_dot(dot_file: Path | str, fmt: str = "svg", program: str = "dot",
               timeout: float = 120.0) -> Path:
    """Render a DOT file with Graphviz's ``dot`` program, found on PATH.

    Args:
        dot_file: the ``.dot`` file ``write_graph`` wrote.
        fmt: ``svg`` or ``png``.
        program: the Graphviz program to run.
        timeout: seconds before giving up on it.

    Returns:
        The rendered file: ``dot_file`` with the suffix ``.svg`` or ``.png``.

    Raises:
        RenderError: ``dot`` is not on PATH, fails, or takes too long; the message says what
            to do, and the text files stay written.
    """
    if fmt not in RENDER_FORMATS:
        raise ValueError(f"fmt must be one of {RENDER_FORMATS}, got {fmt!r}")
    dot_file = Path(dot_file)
    executable = shutil.which(program)
    if executable is None:
        raise RenderError(
            f"rendering to {fmt.upper()} needs Graphviz's `{program}` program, which is not on "
            f"PATH: install Graphviz ({GRAPHVIZ_URL}), or render {dot_file} elsewhere (e.g. "
            f"paste the .mmd file into a Mermaid viewer)")
    out_file = dot_file.with_suffix(f".{fmt}")
    try:
        result = subprocess.run(dot_command(executable, dot_file, fmt, out_file),
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RenderError(f"`{program}` did not finish within {timeout:g}s rendering "
                          f"{dot_file}") from None
    except OSError as exc:
        raise RenderError(f"could not run `{executable}`: {exc}") from None
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise RenderError(f"`{program}` failed (exit status {result.returncode}) on "
                          f"{dot_file}" + (f": {detail}" if detail else ""))
    return out_file
