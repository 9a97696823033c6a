"""The ``kconf`` command: parse arguments, call the library, render. No logic lives here.

Start-up stays light: only typer, rich and ``kconf.errors`` are imported here; each command
imports what it needs, so ``kconf --help`` is fast and ``--threads`` can set the BLAS thread
count before NumPy is first imported.
"""
from __future__ import annotations

import atexit
import functools
import gc
from enum import Enum
from pathlib import Path
from typing import NamedTuple, Optional

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


def _outputs(*items: tuple[Optional[Path], str], create: bool = True) -> list[Path]:
    """Check a command's output paths before any work (``kconf.outputs``); create the
    missing folders (``create``) and say so on stderr.

    Returns:
        The missing folders, when ``create`` is False (the command makes them itself and
        says so with ``_created``).
    """
    from kconf.outputs import check_outputs, make_folders

    try:
        folders = check_outputs(items)
        if not create:
            return folders
        for folder in make_folders(folders):
            err.print(f"created folder {folder}", markup=False)
    except ConfigError as exc:
        _fail(exc)
    return []


def _created(folders: list[Path]) -> None:
    """Say which of the folders ``_outputs(create=False)`` found missing a command made."""
    made = [f for f in folders if f.is_dir()]
    for folder in made:
        if not any(folder in g.parents for g in made):
            err.print(f"created folder {folder}", markup=False)


def _print_table(renderable) -> None:
    """Print tables to fit a terminal; into a file or a pipe at their natural width, since
    wrapping them at an assumed 80 columns only garbles their rows."""
    if out.is_terminal:
        out.print(renderable)
        return
    natural = Measurement.get(out, out.options.update(max_width=10_000), renderable).maximum
    wide = Console(file=out.file, width=max(natural, out.width), highlight=False, soft_wrap=True)
    wide.print(renderable)


THREADS_HELP = ("BLAS threads, and worker threads for convnets (default: every core); set "
                "before NumPy loads.")


def _limit_threads(threads: Optional[int]) -> None:
    """Apply a ``--threads`` option (before the command imports NumPy)."""
    if threads is not None:
        from kconf.engine.threads import limit_threads

        limit_threads(threads)


def _show_data_warnings() -> None:
    """Print the data's warnings (``DataWarning``: located, ``FILE:LINE:COL: path: ...``) as
    one line each on stderr, without Python's source-line decoration."""
    import warnings

    from kconf.data.problem import DataWarning

    shown = warnings.showwarning
    if getattr(shown, "kconf", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataWarning):
            err.print(f"warning: {message}", markup=False)
        else:
            shown(message, category, filename, lineno, file, line)

    show.kconf = True
    warnings.showwarning = show


def _without_gc(command):
    """Run ``command`` without the cyclic garbage collector, for the commands that only load
    and check configs: start-up allocates many objects that all live on (the modules, the
    schema's validators), which its passes walk again and again for nothing (a sixth of
    ``kconf validate configs/*.yaml``'s CPU time, and its memory is the same without); what
    the command leaves is collected when it returns. At exit Python would walk them all once
    more (a tenth of ``kconf validate``'s time): ``gc.freeze`` then spares it, as these
    commands leave no file open for a finalizer to close."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return command(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()
            atexit.unregister(gc.freeze)  # once, however often the command runs
            atexit.register(gc.freeze)
    return run


@app.callback()
def main(ctx: typer.Context,
         threads: Optional[int] = typer.Option(None, "--threads", min=1,
                                               help=THREADS_HELP)) -> None:
    """Train Keras-style models described in YAML, on a NumPy engine."""
    _limit_threads(threads)
    _show_data_warnings()
    ctx.obj = {"threads": threads}


@app.command()
@_without_gc
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
@_without_gc
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


class LogFormat(str, Enum):
    text = "text"
    json = "json"


OVERRIDES_HELP = ("Overrides key.path=value, typed by the schema: fit.epochs=3 "
                  "compile.optimizer.SGD.lr=0.001 model.sequential.0.Dense.units=32")
INTERRUPTED = 130  # the shell's status for Ctrl-C (128 + SIGINT)


@app.command()
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
    _limit_threads(threads if threads is not None else default_threads())
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
    _outputs((None if resume is not None else output_dir, "folder"), create=False)
    args = _TrainArgs(file, overrides or [], options, resume, init_weights, output_dir,
                      tensorboard, mlflow)
    if launched_ranks()[0] > 1:
        _train_rank(args, quiet, log_format, mpi_timeout)
        return
    try:
        run = _prepare(args)
    except ConfigError as exc:
        _fail(exc)
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
        _fail(exc)
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
        _fail(exc)
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
        _fail(exc)
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


@app.command("config")
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
        _fail(exc)
    typer.echo(resolved_yaml(cfg), nl=False)


@app.command("data")
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
        _fail(exc)
    summary = data_summary(prepared, cfg.input_names(), cfg.output_names(), rows)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for renderable in data_renderables(summary, f"Data of {cfg.name} ({file})"):
        _print_table(renderable)


@app.command()
def upgrade(file: Path = typer.Argument(..., help="A config file (or one that others include)."),
            write: bool = typer.Option(False, "--write", help="Replace the file by the "
                                                              "upgraded text.")) -> None:
    """Rewrite a config in the current config language (kconf: 1): print the change as a
    unified diff; --write replaces the file (comments kept where the edits allow)."""
    from kconf.config.upgrade import upgrade_file

    try:
        result = upgrade_file(file)
    except ConfigError as exc:
        _fail(exc)
    typer.echo(result.diff(), nl=False)
    for note in result.notes:
        err.print(f"{file}: {note}", markup=False)
    if not result.changed:
        err.print(f"{file} is up to date (kconf: {result.version})", markup=False)
    elif write:
        result.write()
        err.print(f"upgraded {file} from version {result.version}", markup=False)


TARGET_HELP = "A run folder (its resolved.yaml and weights.npz), or a config file with --weights."
WEIGHTS_HELP = "A weights.npz written by kconf (arrays named layer/weight)."


PREPARED_HELP = ("The data is preprocessed already: do not apply the run's saved "
                 "preprocessing (preprocess.json).")


@app.command()
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
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(result.logs))
        return
    title = (f"{result.trained.cfg.name}: {result.data} ({result.samples:,} samples, "
             f"weights {result.trained.weights})")
    _print_table(metrics_table(result.logs, title))


@app.command()
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

    _outputs((output, "file"))
    try:
        result = run_predict(target, input, output, weights, batch_size, overrides or [],
                             prepared)
    except ConfigError as exc:
        _fail(exc)
    shapes = ", ".join(f"{name} {shape}" for name, shape in result.shapes.items())
    out.print(f"wrote {result.samples:,} predictions to {result.output}: {shapes}", markup=False)


@app.command("import-keras")
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

    _outputs((output, "file"), (weights_output, "file"))
    try:
        result = run_import(model, output, weights, weights_output)
    except ConfigError as exc:
        _fail(exc)
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


@app.command("export-keras")
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

    _outputs((output, "stem"))
    try:
        written = export_model(config, output, weights, not without_preprocessing)
    except ConfigError as exc:
        _fail(exc)
    for path in written:
        out.print(f"wrote {path}", markup=False)


@app.command("export-onnx")
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

    _outputs((output, "file"))
    try:
        written = export_model(config, output, opset, weights,
                               with_preprocessing=not without_preprocessing)
    except ConfigError as exc:
        _fail(exc)
    out.print(f"wrote {written}", markup=False)


@app.command()
def runs(
    root: Path = typer.Argument(Path("runs"), help="A folder of run folders (with --compare: "
                                                   "the first run folder)."),
    others: Optional[list[Path]] = typer.Argument(None, help="With --compare: more run "
                                                             "folders.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array, nothing else."),
    compare: bool = typer.Option(False, "--compare", help="Compare run folders: the config "
                                 "keys that differ, and the final metrics."),
) -> None:
    """List run folders: time, status, epochs, best and final loss and accuracy."""
    from kconf.train.listing import list_runs

    if compare:
        return _compare_runs([root, *(others or [])], as_json)
    if others:
        err.print("give one folder to list, or --compare RUN RUN... to compare runs",
                  markup=False)
        raise typer.Exit(USER_ERROR)

    def table():
        from kconf.report.results import runs_table

        return runs_table(found, str(root))

    found = list_runs(root)
    _print_listing(found, as_json, f"no run folders in {root}", table)


def _compare_runs(paths: list[Path], as_json: bool) -> None:
    """``kconf runs --compare RUN RUN...``."""
    from kconf.train.tracking.compare import compare_runs, comparison_table

    try:
        comparison = compare_runs(paths)
    except ConfigError as exc:
        _fail(exc)
    if as_json:
        import json

        typer.echo(json.dumps(comparison.to_json(), indent=2))
    else:
        _print_table(comparison_table(comparison))


def _print_listing(found: list, as_json: bool, nothing: str, table) -> None:
    """What a listing command prints: one JSON array of ``found`` (each ``to_json()``), a
    line saying there is ``nothing``, or the rich table that ``table()`` builds."""
    if as_json:
        import json

        typer.echo(json.dumps([item.to_json() for item in found], indent=2))
    elif not found:
        out.print(nothing, markup=False)
    else:
        _print_table(table())


@app.command()
def sweep(
    file: Path = typer.Argument(..., help="Sweep file: base config, parameters, search, metric."),
    workers: Optional[int] = typer.Option(
        None, "--workers", "-w", min=1, help="Trials at once (default: CPU cores // "
                                             "resources.cpus)."),
    backend: str = typer.Option("local", "--backend",
                                help="Where trials run: local (processes on this machine) or "
                                     "ray (Ray Tune; needs the ray extra)."),
    address: Optional[str] = typer.Option(
        None, "--address", help="With --backend ray: HOST:PORT of a running Ray cluster's head "
                                "(default: a Ray instance on this machine for the sweep)."),
    output_dir: Path = typer.Option(Path("runs"), help="Where sweep folders go: "
                                                       "<output-dir>/<name>/<time>/."),
    dry_run: bool = typer.Option(False, "--dry-run",
                                 help="Validate every trial and list them; run nothing."),
    fresh: bool = typer.Option(False, "--fresh", help="Start a new sweep folder even if this "
                                                      "sweep ran before."),
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="No live table: only the final lines."),
    mlflow: bool = typer.Option(False, "--mlflow", help="Log the sweep to MLflow at "
                                "MLFLOW_TRACKING_URI: a parent run, a child run per trial."),
) -> None:
    """Train every trial of a sweep in parallel and rank them; run again to carry on."""
    from kconf.sweep.backends import BackendError, get_backend

    try:
        runner = get_backend(backend, **({} if address is None else {"address": address}))
    except BackendError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(USER_ERROR)
    _outputs((output_dir, "folder"), create=False)
    if dry_run:
        _sweep_dry_run(file, output_dir, workers)
        return
    from kconf.sweep.driver import open_sweep
    from kconf.sweep.load import describe
    from kconf.sweep.tables import leaderboard_table, progress_lines, trials_table

    from kconf.sweep.trial import DONE
    from kconf.train.tracking.mlflow import SweepTracker, open_client

    try:
        client = open_client(None) if mlflow else None  # before the sweep folder is opened
        run = open_sweep(file, output_dir, fresh)
    except ConfigError as exc:
        _fail(exc)
    tracker = None if client is None else SweepTracker(run, client, DONE)
    plan, name = run.plan, run.plan.sweep.name
    for planned in plan.trials:
        for problem in planned.problems:
            err.print(f"{planned.trial_id} will not run: {problem.format()}", markup=False)
    todo = len(run.remaining())
    verb = "carrying on with" if run.resumed else "running"
    if not quiet:
        out.print(f"Sweep {name!r}: {verb} {todo} of {len(plan.trials)} trials -> "
                  f"{run.folder}", markup=False)
    live, seen = None, {r.trial_id: r.status for r in run.records.values()}
    if quiet:
        on_update = None
    elif out.is_terminal:
        from rich.live import Live

        def table(records):
            return trials_table(records, plan.varying, plan.sweep.metric)

        live = Live(table(list(run.records.values())), console=out, refresh_per_second=4,
                    transient=True)
        live.start()

        def on_update(records):
            live.update(table(records))
    else:
        def on_update(records):
            for line in progress_lines(seen, records, plan.varying, plan.sweep.metric):
                out.print(line, markup=False)
    if tracker is not None:
        on_update = tracker.follow(on_update)
    try:
        rows = run.run(runner, workers, on_update)
        if tracker is not None:
            tracker.close("finished", run.records.values())
    except KeyboardInterrupt:
        if tracker is not None:
            tracker.close("interrupted", run.records.values())
        if live is not None:
            live.stop()
        err.print(f"interrupted: finished trials are kept and the others resume from their "
                  f"checkpoints; carry on with: kconf sweep {file}", markup=False)
        raise typer.Exit(INTERRUPTED)
    except BackendError as exc:
        if live is not None:
            live.stop()
        if tracker is not None:
            tracker.close("failed", run.records.values())
        err.print(str(exc), markup=False)
        raise typer.Exit(USER_ERROR)
    if live is not None:
        live.stop()
    if not quiet:
        _print_table(leaderboard_table(rows, plan.varying,
                                       f"{name}: {plan.sweep.metric} ({plan.sweep.mode})"))
    best = rows[0] if rows and rows[0].rank == 1 else None
    if best is not None:
        values = ", ".join(f"{k}={describe(best.params[k])}" for k in plan.varying)
        out.print(f"Best: {best.trial_id} {best.metric} {best.value:.4f}"
                  + (f" ({values})" if values else "") + f" -> {run.folder / best.run_dir}",
                  markup=False)
    out.print(f"Leaderboard: {run.folder / 'leaderboard.csv'}, "
              f"{run.folder / 'leaderboard.md'}", markup=False)
    if best is None:
        err.print("no trial finished: see the leaderboard's notes", markup=False)
        raise typer.Exit(1)


def _sweep_dry_run(file: Path, output_dir: Path, workers: Optional[int]) -> None:
    """``kconf sweep --dry-run``: validate every trial, list them, say where they would go."""
    from kconf.engine.threads import available_cpus
    from kconf.sweep.folders import find_sweep_folder
    from kconf.sweep.plan import plan_sweep
    from kconf.sweep.tables import plan_table

    try:
        plan = plan_sweep(file)
        problems = plan.all_problems()
        if problems:
            raise ConfigError(problems, str(file))
    except ConfigError as exc:
        _fail(exc)
    sweep = plan.sweep
    _print_table(plan_table(plan, f"Sweep {sweep.name!r} ({file}): {len(plan.trials)} trials, "
                                  f"base {sweep.base_path}"))
    at_once = min(workers or max(1, available_cpus() // sweep.resources.cpus), len(plan.trials))
    out.print(f"All {len(plan.trials)} trials are valid; {at_once} would run at once with "
              f"{sweep.resources.cpus} CPU each, ranked by {sweep.metric} ({sweep.mode}).",
              markup=False)
    folder = find_sweep_folder(output_dir, sweep.name, plan.key)
    if folder is not None:
        out.print(f"This sweep ran before: it would carry on in {folder}", markup=False)
    else:
        out.print(f"It would write {output_dir / sweep.name}/<time>/", markup=False)


@app.command()
def sweeps(
    root: Path = typer.Argument(Path("runs"), help="A folder of sweep folders."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON array, nothing else."),
) -> None:
    """List sweeps: time, status, trials by status, the best trial and its values."""
    from kconf.sweep.listing import list_sweeps

    def table():
        from kconf.sweep.tables import sweeps_table

        return sweeps_table(found, str(root))

    found = list_sweeps(root)
    _print_listing(found, as_json, f"no sweeps in {root}", table)


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
    _outputs((output, "file"))
    try:
        write(output)
    except OSError as exc:
        err.print(f"{output}: cannot write: {exc.strerror or exc}", markup=False)
        raise typer.Exit(USER_ERROR)
    out.print(f"wrote {output}", markup=False)


@app.command()
def docs(output: Path = typer.Option(Path("docs/config-reference.md"), "-o", "--output",
                                     help="Where to write the Markdown reference.")) -> None:
    """Write the config reference (every section, layer, optimizer, loss, metric, callback
    and data source, with arguments, types and defaults) from the registries and schema."""
    from kconf.docs import write_reference

    _write_generated(output, write_reference)


@app.command()
def plot(run_dirs: list[Path] = typer.Argument(..., help="A run folder (runs/<name>/<time>/)"
                                                        ", or several to overlay."),
         output: Optional[Path] = typer.Option(
             None, "-o", "--output", help="Folder for the PNG files (default: RUN_DIR/plots; "
                                          "for several runs the current folder).")
         ) -> None:
    """Write PNG learning curves of a run: one per quantity, train vs validation per epoch;
    of several runs: one runs.png, a panel per quantity, a curve per run."""
    from kconf.report.plot import PlotError, plot_run
    from kconf.report.plot_runs import plot_runs

    missing = _outputs((output, "folder"), create=False)  # made once matplotlib is there
    try:
        if len(run_dirs) > 1:
            written = [plot_runs(run_dirs, output)]
        else:
            written = plot_run(run_dirs[0], output)
    except PlotError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(USER_ERROR)
    _created(missing)
    for path in written:
        out.print(f"wrote {path}", markup=False)


class GraphFormat(str, Enum):
    dot = "dot"
    mermaid = "mermaid"
    both = "both"


class RenderFormat(str, Enum):
    svg = "svg"
    png = "png"


@app.command()
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

    _outputs((output, "stem"))
    try:
        model = model_from_config(as_config(file))
    except ConfigError as exc:
        _fail(exc)
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


if __name__ == "__main__":
    app()
