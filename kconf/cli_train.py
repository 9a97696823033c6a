"""The ``kconf`` commands that run a model: ``train`` (also on several ranks), ``evaluate``
and ``predict``. Each imports the library when it runs (``kconf.cli`` registers them).
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import NamedTuple, Optional

import typer

from kconf.cli_common import (
    INTERRUPTED,
    OVERRIDES_HELP,
    THREADS_HELP,
    USER_ERROR,
    err,
    fail,
    limit_threads,
    out,
    outputs,
    print_table,
)
from kconf.errors import ConfigError, TrainingError


class LogFormat(str, Enum):
    text = "text"
    json = "json"


def train(
    file: Optional[Path] = typer.Argument(None, help="Config file (not with --resume)."),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP,
                                                    show_default=False),
    epochs: Optional[int] = typer.Option(None, help="Override fit.epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Override fit.batch_size."),
    seed: Optional[int] = typer.Option(None, help="Override seed."),
    output_dir: Path = typer.Option(Path("runs"), help="Where run folders go."),
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="No progress: only the final lines."),
    log_format: LogFormat = typer.Option(
        LogFormat.text, "--log-format",
        help="text: a live bar on a terminal, one line per epoch elsewhere; json: one JSON "
             "object per epoch on stdout, everything else on stderr."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help=THREADS_HELP),
    resume: Optional[Path] = typer.Option(
        None, "--resume", help="Continue this run folder from its last checkpoint (no config "
                               "file; the one override allowed is more epochs: "
                               "fit.epochs=N or --epochs N)."),
    init_weights: Optional[Path] = typer.Option(
        None, "--init-weights", help="Start from these weights (fine-tuning): a weights.npz "
                                     "(kconf train, kconf import-keras) or a checkpoint."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Write TensorBoard event "
                                     "files into RUN/tensorboard/ (the tensorboard extra)."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Log the run to MLflow at "
                                "MLFLOW_TRACKING_URI (the mlflow extra)."),
    ranks: Optional[int] = typer.Option(
        None, "--ranks", min=1, help="Train data-parallel on this many MPI ranks on this "
                                     "machine: starts mpiexec (the mpi extra). Under "
                                     "mpiexec -n N, every rank is one part of the run."),
    mpi_timeout: float = typer.Option(
        300.0, "--mpi-timeout", min=1, help="Seconds a rank waits for the others in a "
                                           "collective call before the run fails."),
) -> None:
    """Train the model, show progress, evaluate on the test data, write runs/<name>/<time>/."""
    from kconf.distributed import default_threads, launched_ranks

    if ranks is not None:
        _launch_ranks(ranks)
    limit_threads(threads if threads is not None else default_threads())
    options = {key: (value, f"{flag} {value}") for key, flag, value in
               (("fit.epochs", "--epochs", epochs), ("fit.batch_size", "--batch-size", batch_size),
                ("seed", "--seed", seed)) if value is not None}
    if resume is not None and file is not None and "=" in str(file):
        overrides, file = [str(file), *(overrides or [])], None  # `--resume RUN fit.epochs=10`
    if (resume is None) == (file is None) or (resume is not None and init_weights):
        err.print("give a config file (with optional overrides and --init-weights), or "
                  "--resume RUN_DIR alone (with fit.epochs=N to train a finished run further)",
                  markup=False)
        raise typer.Exit(USER_ERROR)
    outputs((None if resume is not None else output_dir, "folder"), create=False)
    args = _TrainArgs(file, overrides or [], options, resume, init_weights, output_dir,
                      tensorboard, mlflow)
    if launched_ranks()[0] > 1:
        _train_rank(args, quiet, log_format, mpi_timeout)
        return
    try:
        run = _prepare(args)
    except ConfigError as exc:
        fail(exc)
    try:
        _train_prepared(run, run.cfg, quiet, log_format, init_weights)
    finally:
        run.close()  # the run folder's lock


class _TrainArgs(NamedTuple):
    """What ``kconf train`` prepares a run from."""

    file: Optional[Path]
    overrides: list[str]
    options: dict
    resume: Optional[Path]
    init_weights: Optional[Path]
    output_dir: Path
    tensorboard: bool
    mlflow: bool

    def resume_overrides(self) -> dict:
        from kconf.train.resolve import parse_override_texts

        more = {o.key: o.value for o in parse_override_texts(self.overrides)}
        more.update({key: value for key, (value, _) in self.options.items()})
        return more


def _prepare(args: _TrainArgs, cfg=None, applied=None, check=None):
    """The prepared run of ``kconf train`` (a new one, or the one resumed); ``cfg`` and
    ``applied``: the config already resolved; ``check``: as ``prepare_run``'s."""
    from kconf.train.resolve import resolve_config
    from kconf.train.run import prepare_run, resume_run

    if args.resume is not None:
        run = resume_run(args.resume, args.resume_overrides(), check=check)
        _track(run, args.tensorboard, args.mlflow)
        return run
    if cfg is None:
        cfg, applied = resolve_config(args.file, args.overrides, args.options)
    initial = None
    if args.init_weights is not None:
        from kconf.train.trained import read_initial_weights, start_from_weights

        initial = read_initial_weights(args.init_weights, cfg)
    _track(None, args.tensorboard, args.mlflow, cfg)
    run = prepare_run(cfg, args.output_dir, applied, check=check)
    _track(run, args.tensorboard, args.mlflow)
    if initial is not None:
        start_from_weights(run, initial, args.init_weights)
    return run


def _launch_ranks(ranks: int) -> None:
    """``--ranks N``: run this command again under ``mpiexec -n N``; exit with its status."""
    import subprocess
    import sys

    from kconf.distributed.launch import mpiexec_command

    try:
        command = mpiexec_command(ranks, sys.argv[1:])
    except ConfigError as exc:
        fail(exc)
    raise typer.Exit(subprocess.call(command))


def _train_rank(args: _TrainArgs, quiet: bool, log_format: LogFormat, timeout: float) -> None:
    """``kconf train`` on one rank of a data-parallel run (``kconf.distributed.run``): rank 0
    prepares, trains, reports; the others train silently; a failure anywhere ends them all
    with the failing rank's message."""
    from kconf.distributed.run import Ranks, Refused, exit_code
    from kconf.train.resolve import resolve_config
    from kconf.train.run import resumed_config

    try:
        ranks = Ranks(timeout)
    except ConfigError as exc:
        fail(exc)
    run, code = None, 0
    try:
        cfg = applied = error = None
        try:
            if args.resume is not None:
                cfg = resumed_config(args.resume, args.resume_overrides())
            else:
                cfg, applied = resolve_config(args.file, args.overrides, args.options)
        except ConfigError as exc:
            error = exc
        ranks.check_config(cfg, error)
        try:
            if ranks.is_root:
                run = _prepare(args, cfg, applied, check=ranks.check_batches)
            else:
                run = ranks.follow(cfg, resumed=args.resume is not None)
                ranks.check_batches(cfg, run.splits)
        except ConfigError as exc:
            error = exc
        ranks.check_ready(error)
        ranks.start(run)
        if not ranks.is_root:
            run.fit()
            return
        try:
            _train_prepared(run, cfg, quiet, log_format, args.init_weights)
        except typer.Exit as exc:
            code = exc.exit_code
    except Refused as exc:  # every rank knows: each ends on its own
        if ranks.is_root:
            err.print(str(exc), markup=False)
            if run is not None:
                run.recorder.write_status("failed", error=str(exc))
        raise typer.Exit(USER_ERROR)
    except BaseException as exc:  # a failure at start here, or another rank's (RankFailed)
        ranks.fail(exc)
        code = exit_code(exc)
        if ranks.is_root:
            err.print(str(exc), markup=False)
            if run is not None:
                run.recorder.write_status("failed", error=str(exc))
    finally:
        if ranks.is_root and run is not None:
            run.close()
    if code:
        ranks.end_failed(code)
        raise typer.Exit(code)


def _track(run, tensorboard: bool, mlflow: bool, cfg=None) -> None:
    """``--tensorboard`` / ``--mlflow``: check their extras (``cfg``), or add them to ``run``."""
    if tensorboard or mlflow:
        from kconf.train import tracking

        if run is None:
            tracking.check_extras(cfg, tensorboard, mlflow)
            return
        try:
            tracking.attach(run, tensorboard, mlflow)
        except ConfigError:
            run.close()
            raise


def _train_prepared(run, cfg, quiet: bool, log_format: LogFormat,
                    init_weights: Optional[Path]) -> None:
    """Fit, evaluate and report a prepared run (``kconf train``'s second half)."""
    import sys

    from kconf.report.progress import JsonLines, ProgressBar, format_logs

    json_logs = log_format is LogFormat.json
    say = err if json_logs else out  # with --log-format json, stdout holds only the epochs
    if run.lock is not None and run.lock.note:
        err.print(f"{run.run_dir}: {run.lock.note}", markup=False)
    progress = [] if quiet else [JsonLines(sys.stdout)] if json_logs else [ProgressBar(out)]
    if not quiet:
        start = f" from epoch {run.initial_epoch + 1}" if run.initial_epoch else ""
        if init_weights is not None:
            start = f" from the weights in {init_weights}"
        say.print(f"Training {cfg.name!r} ({run.model.count_params():,} params){start} -> "
                  f"{run.run_dir}", markup=False)
    try:
        run.fit(callbacks=progress)
        evaluation = run.evaluate()
    except TrainingError as exc:
        _close(progress)
        err.print(f"training stopped: {exc}", markup=False)
        err.print(f"what was written so far is in {run.run_dir}", markup=False)
        raise typer.Exit(1)
    except ConfigError as exc:  # the data changed or cannot be read mid-run: the user's to fix
        _close(progress)
        err.print(f"what was written so far is in {run.run_dir}", markup=False)
        fail(exc)
    except KeyboardInterrupt:
        _close(progress)
        err.print(f"interrupted: the run folder keeps everything written so far: "
                  f"{run.run_dir}; continue with: kconf train --resume {run.run_dir}",
                  markup=False)
        raise typer.Exit(INTERRUPTED)
    except Exception as exc:  # whatever else ended the run: status.json says failed
        _close(progress)
        err.print(f"training failed: {type(exc).__name__}: {exc}", markup=False)
        err.print(f"status.json says failed; the traceback is in {run.run_dir / 'error.txt'}",
                  markup=False)
        raise typer.Exit(1)
    if evaluation is not None:
        say.print(f"Test: {format_logs(evaluation)}")
        if json_logs:  # the test results for machines too: one object after the epochs'
            import json

            from kconf.report.progress import _json_number

            typer.echo(json.dumps({"test": {k: _json_number(v) for k, v in evaluation.items()}}))
    say.print(f"Run folder: {run.run_dir}", markup=False)
    if quiet:
        return
    from kconf.report.chart import run_loss_chart

    chart = run_loss_chart(run.run_dir, width=max(16, min(56, say.width - 12)))
    if chart is not None:  # two epochs or more
        say.print(chart)


def _close(callbacks) -> None:
    """Stop a live progress display that an exception left running."""
    for cb in callbacks:
        close = getattr(cb, "close", None)
        if close is not None:
            close()


TARGET_HELP = "A run folder (its resolved.yaml and weights.npz), or a config file with --weights."


WEIGHTS_HELP = "A weights.npz written by kconf (arrays named layer/weight)."


PREPARED_HELP = ("The data is preprocessed already: do not apply the run's saved "
                 "preprocessing (preprocess.json).")


def evaluate(
    target: Path = typer.Argument(..., help=TARGET_HELP),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP,
                                                    show_default=False),
    weights: Optional[Path] = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    data: Optional[list[Path]] = typer.Option(
        None, "--data", help="Raw data instead of the config's test split (a run's saved "
                             "preprocessing is applied): one .npz (arrays named like the "
                             "model's inputs and outputs; x and y for one of each), .npy "
                             "files, one per input then one per output, or a .csv/.parquet "
                             "table with the run's columns."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
                                             help="Samples per batch (default: fit.batch_size)."),
    prepared: bool = typer.Option(False, "--prepared", help=PREPARED_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, nothing else."),
) -> None:
    """Loss and metrics of a trained model on the test data (or on a file)."""
    import json

    from kconf.report.results import metrics_table
    from kconf.train.evaluate import evaluate as run_evaluate

    try:
        result = run_evaluate(target, weights, data or [], overrides or [], batch_size,
                              prepared)
    except ConfigError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(result.logs))
        return
    title = (f"{result.trained.cfg.name}: {result.data} ({result.samples:,} samples, "
             f"weights {result.trained.weights})")
    print_table(metrics_table(result.logs, title))


def predict(
    target: Path = typer.Argument(..., help=TARGET_HELP),
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP,
                                                    show_default=False),
    input: Path = typer.Option(..., "--input", "-i",
                               help="Raw inputs (a run's saved preprocessing is applied): "
                                    ".npz (arrays named like the inputs; x for one), .npy "
                                    "(one input) or .csv (one row per sample; for a run "
                                    "trained on a table, its columns by name)."),
    output: Path = typer.Option(..., "--output", "-o",
                                help=".npz (one array per output) or .csv (columns "
                                     "<output>_<i>)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help=WEIGHTS_HELP),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1,
                                             help="Samples per batch (default: fit.batch_size)."),
    prepared: bool = typer.Option(False, "--prepared", help=PREPARED_HELP),
) -> None:
    """Write a trained model's outputs for the inputs in a file, batch by batch."""
    from kconf.train.predict import predict as run_predict

    outputs((output, "file"))
    try:
        result = run_predict(target, input, output, weights, batch_size, overrides or [],
                             prepared)
    except ConfigError as exc:
        fail(exc)
    shapes = ", ".join(f"{name} {shape}" for name, shape in result.shapes.items())
    out.print(f"wrote {result.samples:,} predictions to {result.output}: {shapes}", markup=False)
