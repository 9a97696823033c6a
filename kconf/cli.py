"""The ``kconf`` command: parse arguments, call the library, render. No logic lives here."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from kconf.errors import ConfigError, TrainingError, format_path

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Train Keras-style models described in YAML, on a NumPy engine.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

USER_ERROR = 2


def _fail(exc: ConfigError) -> None:
    err.print(exc.format(), markup=False)
    raise typer.Exit(USER_ERROR)


@app.command()
def validate(files: list[Path] = typer.Argument(..., help="Config files to check.")) -> None:
    """Load, validate and build each config (shapes and data included) without training."""
    from kconf.api import as_config, model_from_config
    from kconf.data.sources import check_shapes, load_splits

    failed = 0
    for file in files:
        try:
            cfg = as_config(file)
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


@app.command()
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
        _fail(exc)
    out.print(summary_renderables(model, str(file), cfg.import_paths(), expand))


@app.command()
def train(
    file: Path = typer.Argument(..., help="Config file."),
    epochs: Optional[int] = typer.Option(None, help="Override fit.epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Override fit.batch_size."),
    seed: Optional[int] = typer.Option(None, help="Override seed."),
    output_dir: Path = typer.Option(Path("runs"), help="Where run folders go."),
) -> None:
    """Train the model, show progress, evaluate on the test data, write runs/<name>/<time>/."""
    from kconf.api import load_config
    from kconf.report.progress import ProgressBar, format_logs
    from kconf.train.run import prepare_run

    overrides = {k: v for k, v in
                 {"fit.epochs": epochs, "fit.batch_size": batch_size, "seed": seed}.items()
                 if v is not None}
    try:
        cfg = load_config(file, overrides=overrides)
        run = prepare_run(cfg, output_dir)
    except ConfigError as exc:
        _fail(exc)
    out.print(f"Training {cfg.name!r} ({run.model.count_params():,} params) -> {run.run_dir}")
    try:
        run.fit(callbacks=[ProgressBar(out)])
    except TrainingError as exc:
        err.print(f"training stopped: {exc}", markup=False)
        err.print(f"what was written so far is in {run.run_dir}", markup=False)
        raise typer.Exit(1)
    evaluation = run.evaluate()
    if evaluation is not None:
        out.print(f"Test: {format_logs(evaluation)}")
    out.print(f"Run folder: {run.run_dir}")


@app.command()
def schema(output: Path = typer.Option(Path("schemas/kconf.schema.json"), "-o", "--output",
                                       help="Where to write the JSON Schema.")) -> None:
    """Export the config's JSON Schema (for editor completion and validation)."""
    from kconf.config import write_json_schema

    write_json_schema(output)
    out.print(f"wrote {output}")


if __name__ == "__main__":
    app()
