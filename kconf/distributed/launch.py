"""``kconf train CONFIG --ranks N``: the same command again, under ``mpiexec -n N``."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from kconf.distributed import MPI_EXTRA
from kconf.errors import ConfigError, Problem, SourcePos


def find_mpiexec() -> str | None:
    """The ``mpiexec`` beside this Python (the MPICH wheel's), else the one on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.is_file() else shutil.which("mpiexec")


def without_ranks(argv: list[str]) -> list[str]:
    """The command's arguments without ``--ranks N`` / ``--ranks=N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--ranks":
            skip = True
        elif not arg.startswith("--ranks="):
            out.append(arg)
    return out


def mpiexec_command(ranks: int, argv: list[str]) -> list[str]:
    """``mpiexec -n RANKS python -m kconf.cli ARGS`` (``argv`` without ``--ranks``).

    Raises:
        ConfigError: mpi4py or mpiexec is missing (the extra to install is named).
    """
    where = SourcePos("--ranks")
    if importlib.util.find_spec("mpi4py") is None:
        raise ConfigError([Problem(f"--ranks {ranks} needs mpi4py: {MPI_EXTRA}", (), where)])
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise ConfigError([Problem(f"--ranks {ranks} needs mpiexec (an MPI library): "
                                   f"{MPI_EXTRA}", (), where)])
    return [mpiexec, "-n", str(ranks), sys.executable, "-m", "kconf.cli",
            *without_ranks(argv)]
