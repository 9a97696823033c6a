"""The ``kconf`` commands over runs and sweeps: ``runs`` (list and compare), ``sweep``,
``sweeps``, ``bench`` and ``plot``. Each imports the library when it runs (``kconf.cli``
registers them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from kconf.cli_common import (
    INTERRUPTED,
    THREADS_HELP,
    USER_ERROR,
    created,
    err,
    fail,
    limit_threads,
    out,
    outputs,
    print_table,
)
from kconf.errors import ConfigError, TrainingError


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
        fail(exc)
    if as_json:
        import json

        typer.echo(json.dumps(comparison.to_json(), indent=2))
    else:
        print_table(comparison_table(comparison))


def _print_listing(found: list, as_json: bool, nothing: str, table) -> None:
    """What a listing command prints: one JSON array of ``found`` (each ``to_json()``), a
    line saying there is ``nothing``, or the rich table that ``table()`` builds."""
    if as_json:
        import json

        typer.echo(json.dumps([item.to_json() for item in found], indent=2))
    elif not found:
        out.print(nothing, markup=False)
    else:
        print_table(table())


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
    outputs((output_dir, "folder"), create=False)
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
        fail(exc)
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
        print_table(leaderboard_table(rows, plan.varying,
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
        fail(exc)
    sweep = plan.sweep
    print_table(plan_table(plan, f"Sweep {sweep.name!r} ({file}): {len(plan.trials)} trials, "
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
    limit_threads(threads)
    from kconf.bench import bench as run_bench
    from kconf.bench import results_table, to_json

    try:
        result = run_bench(file, epochs=epochs, samples=samples, warmup=warmup,
                           threads=threads, batch_size=batch_size, peak_size=peak_size)
    except ConfigError as exc:
        fail(exc)
    except TrainingError as exc:
        err.print(f"training stopped: {exc}", markup=False)
        raise typer.Exit(1)
    if as_json:
        typer.echo(to_json(result))
    else:
        out.print(results_table(result))


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

    missing = outputs((output, "folder"), create=False)  # made once matplotlib is there
    try:
        if len(run_dirs) > 1:
            written = [plot_runs(run_dirs, output)]
        else:
            written = plot_run(run_dirs[0], output)
    except PlotError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(USER_ERROR)
    created(missing)
    for path in written:
        out.print(f"wrote {path}", markup=False)
