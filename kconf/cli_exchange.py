"""The ``kconf`` commands that read or write other files of a config or a model: ``config``
and ``data`` (what a config resolves to), ``upgrade``, ``import-keras``, ``export-keras``,
``export-onnx``, ``schema``, ``docs`` and ``graph``. Each imports the library when it runs
(``kconf.cli`` registers them).
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from kconf.cli_common import (
    OVERRIDES_HELP,
    USER_ERROR,
    err,
    fail,
    out,
    outputs,
    print_table,
)
from kconf.errors import ConfigError


def config_command(
    file: Path = typer.Argument(..., help="Config file."),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP,
                                                    show_default=False),
) -> None:
    """Print the resolved config as YAML: overrides applied, every default filled in."""
    from kconf.api import model_from_config
    from kconf.train.resolve import resolve_config, resolved_yaml

    try:
        cfg, _ = resolve_config(file, overrides or [])
        model_from_config(cfg)  # graph and shape errors too, as validate reports them
    except ConfigError as exc:
        fail(exc)
    typer.echo(resolved_yaml(cfg), nl=False)


def data_command(
    file: Path = typer.Argument(..., help="Config file."),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP,
                                                    show_default=False),
    rows: int = typer.Option(3, "--rows", min=0, help="First rows shown of each split."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, nothing else."),
) -> None:
    """Show each split as the model will see it: sizes, shapes, dtypes, class balance, rows."""
    import json

    from kconf.api import model_from_config
    from kconf.data.sources import check_shapes, load_prepared
    from kconf.report.data_view import data_renderables, data_summary
    from kconf.train.resolve import resolve_config

    try:
        cfg, _ = resolve_config(file, overrides or [])
        model = model_from_config(cfg)
        prepared = load_prepared(cfg)
        check_shapes(prepared.splits, model.graph, cfg)
    except ConfigError as exc:
        fail(exc)
    summary = data_summary(prepared, cfg.input_names(), cfg.output_names(), rows)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for renderable in data_renderables(summary, f"Data of {cfg.name} ({file})"):
        print_table(renderable)


def upgrade(file: Path = typer.Argument(..., help="A config file (or one that others include)."),
            write: bool = typer.Option(False, "--write", help="Replace the file by the "
                                                              "upgraded text.")) -> None:
    """Rewrite a config in the current config language (kconf: 1): print the change as a
    unified diff; --write replaces the file (comments kept where the edits allow)."""
    from kconf.config.upgrade import upgrade_file

    try:
        result = upgrade_file(file)
    except ConfigError as exc:
        fail(exc)
    typer.echo(result.diff(), nl=False)
    for note in result.notes:
        err.print(f"{file}: {note}", markup=False)
    if not result.changed:
        err.print(f"{file} is up to date (kconf: {result.version})", markup=False)
    elif write:
        result.write()
        err.print(f"upgraded {file} from version {result.version}", markup=False)


def import_keras(
    model: Path = typer.Argument(..., help="Keras model: model.to_json()'s JSON (Keras 3 or "
                                           "2), a .keras archive, or a Keras 2 .h5 model."),
    output: Path = typer.Option(..., "-o", "--output", help="The kconf config to write."),
    weights: Optional[Path] = typer.Option(
        None, "--weights", help="Keras weights (.weights.h5, .keras, Keras 2 .h5); default: "
                                "the model file's own, if it has any."),
    weights_output: Optional[Path] = typer.Option(
        None, "--weights-output", help="The kconf weights.npz to write (default: OUTPUT with "
                                       ".weights.npz)."),
) -> None:
    """Convert a Keras model into a kconf config (and its weights into a weights.npz)."""
    from kconf.keras_io import import_keras as run_import

    outputs((output, "file"), (weights_output, "file"))
    try:
        result = run_import(model, output, weights, weights_output)
    except ConfigError as exc:
        fail(exc)
    out.print(f"wrote {result.config_file}: {result.description}, {result.params:,} params",
              markup=False)
    if result.weights_file is not None:
        out.print(f"wrote {result.weights_file}: {result.arrays} weight arrays; use them with "
                  f"kconf evaluate/predict {result.config_file} --weights {result.weights_file}"
                  f", or kconf train {result.config_file} --init-weights "
                  f"{result.weights_file}", markup=False)


WITHOUT_PREPROCESSING_HELP = ("Leave a run's saved preprocessing out: the exported model "
                              "takes preprocessed inputs (by default it takes raw ones, the "
                              "preprocessing in front as Rescaling/Normalization/Reshape).")


def export_keras(
    config: Path = typer.Argument(..., help="A config file, or a run folder (its "
                                            "resolved.yaml and weights.npz)."),
    output: Path = typer.Option(..., "-o", "--output", help="Path stem: writes OUT.json, and "
                                                            "OUT.keras with weights."),
    weights: Optional[Path] = typer.Option(
        None, "--weights", help="A run folder or a weights.npz / checkpoint; without it (and "
                                "for a config file) only OUT.json is written."),
    without_preprocessing: bool = typer.Option(
        False, "--without-preprocessing", help=WITHOUT_PREPROCESSING_HELP),
) -> None:
    """Write the model as Keras 3 JSON and, with weights, a .keras archive Keras loads."""
    from kconf.keras_io.export_run import export_model

    outputs((output, "stem"))
    try:
        written = export_model(config, output, weights, not without_preprocessing)
    except ConfigError as exc:
        fail(exc)
    for path in written:
        out.print(f"wrote {path}", markup=False)


def export_onnx(
    config: Path = typer.Argument(..., help="A config file (its seed's initial weights), or a "
                                            "run folder (its trained weights)."),
    output: Path = typer.Option(..., "-o", "--output", help="The .onnx file to write."),
    opset: Optional[int] = typer.Option(
        None, "--opset", help="The ONNX opset, 18 or newer (default 21)."),
    weights: Optional[Path] = typer.Option(
        None, "--weights", help="A run folder or a weights.npz / checkpoint to export."),
    without_preprocessing: bool = typer.Option(
        False, "--without-preprocessing", help=WITHOUT_PREPROCESSING_HELP),
) -> None:
    """Write the model as an ONNX file (inference mode, dynamic batch size); needs kconf[onnx]."""
    from kconf.onnx_io.run import export_model

    outputs((output, "file"))
    try:
        written = export_model(config, output, opset, weights,
                               with_preprocessing=not without_preprocessing)
    except ConfigError as exc:
        fail(exc)
    out.print(f"wrote {written}", markup=False)


def schema(output: Optional[Path] = typer.Option(
               None, "-o", "--output", help="Where to write the JSON Schema (default: "
                                            "schemas/kconf.schema.json, with --sweep "
                                            "schemas/kconf-sweep.schema.json)."),
           sweep: bool = typer.Option(False, "--sweep",
                                      help="The schema of sweep files instead.")) -> None:
    """Export the config's JSON Schema (for editor completion and validation)."""
    if sweep:
        from kconf.sweep.config import write_sweep_json_schema as write
    else:
        from kconf.config import write_json_schema as write

    if output is None:
        output = Path("schemas/kconf-sweep.schema.json" if sweep else "schemas/kconf.schema.json")
    _write_generated(output, write)


def _write_generated(output: Path, write) -> None:
    """Write a generated file with ``write(output)``; a path that cannot be written is the
    user's mistake (exit 2)."""
    outputs((output, "file"))
    try:
        write(output)
    except OSError as exc:
        err.print(f"{output}: cannot write: {exc.strerror or exc}", markup=False)
        raise typer.Exit(USER_ERROR)
    out.print(f"wrote {output}", markup=False)


def docs(output: Path = typer.Option(Path("docs/config-reference.md"), "-o", "--output",
                                     help="Where to write the Markdown reference.")) -> None:
    """Write the config reference (every section, layer, optimizer, loss, metric, callback
    and data source, with arguments, types and defaults) from the registries and schema."""
    from kconf.docs import write_reference

    _write_generated(output, write_reference)


class GraphFormat(str, Enum):
    dot = "dot"
    mermaid = "mermaid"
    both = "both"


class RenderFormat(str, Enum):
    svg = "svg"
    png = "png"


def graph(
    file: Path = typer.Argument(..., help="Config file."),
    output: Optional[Path] = typer.Option(
        None, "-o", "--output", help="Path stem (OUT.dot, OUT.mmd) or an existing folder "
                                     "(default: ./<config name>)."),
    fmt: GraphFormat = typer.Option(GraphFormat.both, "--format", help="Text to write."),
    render: Optional[RenderFormat] = typer.Option(
        None, "--render", help="Also draw OUT.svg/OUT.png with Graphviz's `dot` (if installed)."),
    expand: bool = typer.Option(False, "--expand",
                                help="Draw nested models as clusters of their layers."),
) -> None:
    """Write the model graph as Graphviz DOT and Mermaid text (one box per layer, like Keras's
    plot_model; a shared layer is one box with an edge per call)."""
    from kconf.api import as_config, model_from_config
    from kconf.report.graph import RenderError, graph_stem, graph_view, render_dot, write_graph

    outputs((output, "stem"))
    try:
        model = model_from_config(as_config(file))
    except ConfigError as exc:
        fail(exc)
    stem = graph_stem(file, output)
    view = graph_view(model, expand=expand, source=str(file))
    written = write_graph(view, stem, fmt.value, render.value if render else None)
    for path in written:
        out.print(f"wrote {path}", markup=False)
    if render is not None:
        try:
            rendered = render_dot(written[0], render.value)
        except RenderError as exc:
            err.print(str(exc), markup=False)
            raise typer.Exit(USER_ERROR)
        out.print(f"wrote {rendered}", markup=False)
