"""Data-parallel training on MPI: one run, its global batches split over ranks on one or many
machines, the gradients summed every step.

- ``mpiexec -n N kconf train CONFIG`` runs N ranks of one run (a hostfile or the scheduler
  places them, as MPI does); ``kconf train CONFIG --ranks N`` starts ``mpiexec`` for the user
  (``launch``).
- ``kconf.distributed.data_parallel``: what the training loop does on a rank (its shard of
  each batch, one ``Allreduce`` of the flat gradient buffer per step, the epoch's logs).
- ``kconf.distributed.comm``: the collective calls, each with a timeout, and the notice by
  which a failing rank ends the others' waits with its message.
- ``kconf.distributed.run``: a rank's run: the config hash checked at start, rank 0's state
  sent to the others, rank 0 alone writing the run folder (``status.json`` records the ranks
  and hosts), failures recorded; ``kconf.distributed.watchdog`` marks the run ``failed`` when
  rank 0 is killed (as ``mpiexec`` does to every rank when one is killed).

This module reads the launcher's environment only: it imports neither NumPy nor mpi4py, so
the CLI can set each rank's thread count before NumPy loads.
"""
from __future__ import annotations

import os

#: The environment variables that MPI launchers set: (world size, rank, local size), and a
#: variable that must be set too (None: none).
_LAUNCHERS = (
    ("PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS", None),  # MPICH's Hydra, Intel MPI, PMI-2
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", None),
    # srun --mpi=pmix: a job step's tasks (a batch script's own SLURM_NTASKS is no launch)
    ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "SLURM_STEP_TASKS_PER_NODE", "PMIX_RANK"),
)

#: What to install for MPI (the message of a missing mpi4py).
MPI_EXTRA = "pip install 'kconf[mpi]' (mpi4py and MPICH)"


def launched_ranks() -> tuple[int, int, int]:
    """(ranks, this rank, ranks on this machine) as the launcher's environment says;
    ``(1, 0, 1)`` outside ``mpiexec``."""
    for size_var, rank_var, local_var, also in _LAUNCHERS:
        size = os.environ.get(size_var)
        if size and size.isdigit() and (also is None or also in os.environ):
            rank = os.environ.get(rank_var, "0")
            local = os.environ.get(local_var, "").split("(")[0]
            return (int(size), int(rank) if rank.isdigit() else 0,
                    int(local) if local.isdigit() and int(local) > 0 else 1)
    return 1, 0, 1


def default_threads() -> int | None:
    """A rank's BLAS threads when ``--threads`` is not given: the cores divided by the ranks
    on this machine; None outside a run of several ranks (every core, as before)."""
    size, _, local = launched_ranks()
    if size <= 1:
        return None
    from kconf.engine.threads import available_cpus

    return max(1, available_cpus() // local)
