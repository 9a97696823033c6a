"""What every ``kconf`` command shares: the consoles, the exit status of a user's mistake,
printing a located error, checking output paths, tables at their natural width, the
``--threads`` option and the data's warnings.
"""
from __future__ import annotations

import atexit
import functools
import gc
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.measure import Measurement

from kconf.errors import ConfigError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

USER_ERROR = 2
OVERRIDES_HELP = ("Overrides key.path=value, typed by the schema: fit.epochs=3 "
                  "compile.optimizer.SGD.lr=0.001 model.sequential.0.Dense.units=32")
INTERRUPTED = 130  # the shell's status for Ctrl-C (128 + SIGINT)


def fail(exc: ConfigError) -> None:
    err.print(exc.format(), markup=False)
    raise typer.Exit(USER_ERROR)


def outputs(*items: tuple[Optional[Path], str], create: bool = True) -> list[Path]:
    """Check a command's output paths before any work (``kconf.outputs``); create the
    missing folders (``create``) and say so on stderr.

    Returns:
        The missing folders, when ``create`` is False (the command makes them itself and
        says so with ``created``).
    """
    from kconf.outputs import check_outputs, make_folders

    try:
        folders = check_outputs(items)
        if not create:
            return folders
        for folder in make_folders(folders):
            err.print(f"created folder {folder}", markup=False)
    except ConfigError as exc:
        fail(exc)
    return []


def created(folders: list[Path]) -> None:
    """Say which of the folders ``outputs(create=False)`` found missing a command made."""
    made = [f for f in folders if f.is_dir()]
    for folder in made:
        if not any(folder in g.parents for g in made):
            err.print(f"created folder {folder}", markup=False)


def print_table(renderable) -> None:
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


def limit_threads(threads: Optional[int]) -> None:
    """Apply a ``--threads`` option (before the command imports NumPy)."""
    if threads is not None:
        from kconf.engine.threads import limit_threads

        limit_threads(threads)


def show_data_warnings() -> None:
    """Print the data's warnings (``DataWarning``: located, ``FILE:LINE:COL: path: ...``) and
    the runs' (``RunWarning``: naming the run folder) as one line each on stderr, without
    Python's source-line decoration."""
    import warnings

    from kconf.data.problem import DataWarning
    from kconf.errors import RunWarning

    shown = warnings.showwarning
    if getattr(shown, "kconf", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, (DataWarning, RunWarning)):
            err.print(f"warning: {message}", markup=False)
        else:
            shown(message, category, filename, lineno, file, line)

    show.kconf = True
    warnings.showwarning = show


def without_gc(command):
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
