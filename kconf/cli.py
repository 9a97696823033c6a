"""The ``kconf`` command: parse arguments, call the library, render. No logic lives here.

Start-up stays light: only typer, rich and ``kconf.errors`` are imported here; each command
imports what it needs, so ``kconf --help`` is fast and ``--threads`` can set the BLAS thread
count before NumPy is first imported.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.measure import Measurement

from kconf.errors import ConfigError, TrainingError, format_path

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Train Keras-style models described in YAML, on a NumPy engine.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

USER_ERROR = 2


def _fail(exc: ConfigError) -> None:
    err.print(exc.format(), markup=False)
    raise typer.Exit(USER_ERROR)


def _print_table(renderable) -> None:
    """Print tables to fit a terminal; into a file or a pipe at their natural width, since
    wrapping them at an assumed 80 columns only garbles their rows."""
    if out.is_terminal:
        out.print(renderable)
        return
    natural = Measurement.get(out, out.options.update(max_width=10_000), renderable).maximum
    wide = Console(file=out.file, width=max(natural, out.width), highlight=False, soft_wrap=True)
    wide.print(renderable)


THREADS_HELP = "BLAS threads (default: every core); set before NumPy loads."


def _limit_threads(threads: Optional[int]) -> None:
    """Apply a ``--threads`` option (before the command imports NumPy)."""
    if threads is not None:
        from kconf.bench import limit_threads

        limit_threads(threads)


@app.callback()
def main(ctx: typer.Context,
         threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                               help=THREADS_HELP)) -> None:
    """Train Keras-style models described in YAML, on a NumPy engine."""
    _limit_threads(threads)
    ctx.obj = {"threads": threads}


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
    _print_table(summary_renderables(model, str(file), cfg.import_paths(), expand))


@app.command()
def train(
    file: Path = typer.Argument(..., help="Config file."),
    epochs: Optional[int] = typer.Option(None, help="Override fit.epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Override fit.batch_size."),
    seed: Optional[int] = typer.Option(None, help="Override seed."),
    output_dir: Path = typer.Option(Path("runs"), help="Where run folders go."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
) -> None:
    """Train the model, show progress, evaluate on the test data, write runs/<name>/<time>/."""
    _limit_threads(threads)
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
def bench(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Config file."),
    epochs: int = typer.Option(3, min=1, help="Epochs to train (overrides fit.epochs)."),
    samples: Optional[int] = typer.Option(
        None, min=1, help="Training samples (overrides data.train.random.samples)."),
    warmup: int = typer.Option(1, min=0, help="Leading epochs left out of the median."),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Override fit.batch_size."),
    peak_size: int = typer.Option(2048, min=0, help="Matrix size of the NumPy float32 "
                                                     "matmul peak measurement (0: skip)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, nothing else."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
) -> None:
    """Time training at a chosen size: s/epoch, samples/s, peak memory, GFLOP/s."""
    if threads is None:
        threads = (ctx.obj or {}).get("threads")  # `kconf --threads N bench ...`
    _limit_threads(threads)
    from kconf.bench import bench as run_bench
    from kconf.bench import results_table, to_json

    try:
        result = run_bench(file, epochs=epochs, samples=samples, warmup=warmup,
                           threads=threads, batch_size=batch_size, peak_size=peak_size)
    except ConfigError as exc:
        _fail(exc)
    except TrainingError as exc:
        err.print(f"training stopped: {exc}", markup=False)
        raise typer.Exit(1)
    if as_json:
        typer.echo(to_json(result))
    else:
        out.print(results_table(result))


@app.command()
def schema(output: Path = typer.Option(Path("schemas/kconf.schema.json"), "-o", "--output",
                                       help="Where to write the JSON Schema.")) -> None:
    """Export the config's JSON Schema (for editor completion and validation)."""
    from kconf.config import write_json_schema

    write_json_schema(output)
    out.print(f"wrote {output}")


if __name__ == "__main__":
    app()
