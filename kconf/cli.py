"""The ``kconf`` command: parse arguments, call the library, render. No logic lives here.

Start-up stays light: only typer, rich and ``kconf.errors`` are imported here; each command
imports what it needs, so ``kconf --help`` is fast and ``--threads`` can set the BLAS thread
count before NumPy is first imported. The commands that check configs are here; the others
are in ``cli_train`` (train, evaluate, predict), ``cli_exchange`` (config, data, upgrade,
Keras and ONNX files, schema, docs, graph) and ``cli_runs`` (runs, sweeps, bench, plot),
registered below in the order ``kconf --help`` lists them; ``cli_common`` is what they share.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kconf import cli_exchange, cli_runs, cli_train
from kconf.cli_common import (
    THREADS_HELP,
    USER_ERROR,
    err,
    fail,
    limit_threads,
    out,
    print_table,
    show_data_warnings,
    without_gc,
)
from kconf.errors import ConfigError, format_path

# Plain (click) help and usage errors: typer's rich help imports rich.markdown and
# markdown-it, about a third of `kconf --help` (issue 13: under 0.2 s). Output and
# kconf's own errors stay rich.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Train Keras-style models described in YAML, on a NumPy engine.")


@app.callback()
def main(ctx: typer.Context,
         threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                               help=THREADS_HELP)) -> None:
    """Train Keras-style models described in YAML, on a NumPy engine."""
    limit_threads(threads)
    show_data_warnings()
    ctx.obj = {"threads": threads}


@app.command()
@without_gc
def validate(files: list[Path] = typer.Argument(
        ..., help="Config files to check, then overrides key.path=value applied to each "
                  "(as for train).")) -> None:
    """Load, validate and build each config (shapes and data included) without training."""
    from kconf.api import model_from_config
    from kconf.data.sources import check_shapes, load_splits
    from kconf.config.load import is_sweep_file
    from kconf.train.resolve import resolve_config

    overrides = [str(f) for f in files if "=" in str(f) and not f.exists()]
    files = [f for f in files if str(f) not in overrides]
    if not files:
        err.print("give at least one config file (overrides follow the files)", markup=False)
        raise typer.Exit(USER_ERROR)
    failed = 0
    for file in files:
        if is_sweep_file(file):
            failed += not _validate_sweep(file)
            continue
        try:
            cfg, _ = resolve_config(file, overrides)
            model = model_from_config(cfg)
            check_shapes(load_splits(cfg), model.graph, cfg)
        except ConfigError as exc:
            failed += 1
            err.print(exc.format(), markup=False)
            continue
        out.print(f"{file}: OK ({model.count_params():,} params)", markup=False)
        for path, spec in cfg.import_paths():
            out.print(f"  runs Python code: {spec}  ({format_path(path)})", markup=False)
    if failed:
        raise typer.Exit(USER_ERROR)


def _validate_sweep(file: Path) -> bool:
    """``kconf validate`` of a sweep file: the file and every trial it makes."""
    from kconf.sweep.plan import plan_sweep

    try:
        plan = plan_sweep(file)
        if plan.all_problems():
            raise ConfigError(plan.all_problems(), str(file))
    except ConfigError as exc:
        err.print(exc.format(), markup=False)
        return False
    out.print(f"{file}: OK (sweep of {len(plan.trials)} trials of {plan.sweep.base_path})",
              markup=False)
    return True


@app.command()
@without_gc
def summary(file: Path = typer.Argument(..., help="Config file."),
            expand: bool = typer.Option(False, "--expand",
                                        help="Show the layers inside nested models.")) -> None:
    """Print the model's layer table (and the node table of shared layers)."""
    from kconf.api import as_config, model_from_config
    from kconf.report.summary import summary_renderables

    try:
        cfg = as_config(file)
        model = model_from_config(cfg)
    except ConfigError as exc:
        fail(exc)
    print_table(summary_renderables(model, str(file), cfg.import_paths(), expand))


# The other groups' commands, in the order ``kconf --help`` lists them.
app.command()(cli_train.train)
app.command("config")(cli_exchange.config_command)
app.command("data")(cli_exchange.data_command)
app.command()(cli_exchange.upgrade)
app.command()(cli_train.evaluate)
app.command()(cli_train.predict)
app.command("import-keras")(cli_exchange.import_keras)
app.command("export-keras")(cli_exchange.export_keras)
app.command("export-onnx")(cli_exchange.export_onnx)
app.command()(cli_runs.runs)
app.command()(cli_runs.sweep)
app.command()(cli_runs.sweeps)
app.command()(cli_runs.bench)
app.command()(cli_exchange.schema)
app.command()(cli_exchange.docs)
app.command()(cli_runs.plot)
app.command()(cli_exchange.graph)


if __name__ == "__main__":
    app()
