"""A rank's part of a data-parallel run, around the ordinary run of ``kconf.train.run``.

Every rank resolves the config and the ranks compare their hashes of it (one clear line when
they disagree), and then whether each prepared its run: a mistake found at the start is
known to every rank (``Refused``), and each ends on its own (exit status 2). Rank 0 prepares the run as always (``prepare_run`` / ``resume_run``: the run
folder, the checkpoint), the others build the same model and load the same data without any
folder (``Follower``). Rank 0 then sends its whole state (weights, optimizer slots, random
stream, callbacks' state: a ``Checkpoint``) to the others, so every rank starts identical,
whether the run is new, resumed with another number of ranks, or starts from given weights.

Rank 0 alone writes the folder, prints progress and evaluates the test data; ``status.json``
records ``ranks``, ``hosts`` and ``pids`` (one of each per rank). A failure on any rank ends the run with
that rank's message (``Ranks.fail``): the failing rank tells the others, rank 0 records it
(``failed``) and then ends every rank (``MPI_Abort``). A rank killed outright (a signal) makes
``mpiexec`` kill the others, rank 0 included: rank 0's watchdog (``kconf.distributed.watchdog``)
then marks the run ``failed``.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kconf.distributed import MPI_EXTRA
from kconf.distributed.comm import DEFAULT_TIMEOUT, Collective, RankFailed
from kconf.distributed.data_parallel import DataParallel
from kconf.errors import ConfigError, KconfError, Problem, SourcePos, TrainingError

#: The exit status of a user's mistake (as the CLI's).
USER_ERROR = 2


class Refused(KconfError):
    """A mistake found at the start of a run that every rank knows of (they compared notes):
    each ends on its own, exit status 2; the message is rank 0's to print."""


def config_hash(cfg) -> str:
    """The hash of a resolved config (what every rank must agree on)."""
    text = yaml.safe_dump(cfg.to_data(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Follower:
    """A rank other than 0: the model and data of the run, and the callbacks that decide
    things (EarlyStopping, ReduceLROnPlateau), without a run folder."""

    cfg: object
    model: object
    splits: dict
    callbacks: list = field(default_factory=list)
    initial_epoch: int = 0

    def fit(self):
        from kconf.train.run import fit_model

        return fit_model(self.cfg, self.model, self.splits, self.initial_epoch, self.callbacks)


class Ranks:
    """This process's place among the ranks of a data-parallel run.

    Args:
        timeout: seconds a collective call waits for the other ranks.

    Raises:
        ConfigError: mpi4py is not installed (the extra to install is named).
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT):
        try:
            from mpi4py import MPI
        except ImportError:
            raise ConfigError([Problem(
                f"this process was started by mpiexec, but mpi4py is not installed: "
                f"{MPI_EXTRA}", (), SourcePos("kconf train"))]) from None
        self.collective = Collective(MPI.COMM_WORLD, timeout)
        self.rank, self.size = self.collective.rank, self.collective.size
        self.hosts: list[str] = [self.collective.host]
        self.pids: list[int] = [os.getpid()]
        self._watchdog = None

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def check_config(self, cfg, error: ConfigError | None = None) -> None:
        """Every rank resolved the same config; gathers the ranks' hosts and pids.

        Args:
            cfg: this rank's resolved config (None when it has a mistake).
            error: the mistake that stopped this rank from resolving it.

        Raises:
            Refused: on every rank alike: a rank's mistake (rank 0's first), or a config that
                differs from rank 0's.
        """
        every = self.collective.allgather(
            (None if cfg is None else config_hash(cfg), self.collective.host, os.getpid(),
             None if error is None else error.format()), "the comparison of the configs")
        self.hosts = [host for _, host, _, _ in every]
        self.pids = [pid for _, _, pid, _ in every]
        self._refuse_any([text for _, _, _, text in every])
        differ = [r for r, (h, _, _, _) in enumerate(every) if h != every[0][0]]
        if differ:
            r = differ[0]
            raise Refused(
                f"{cfg.source.file or 'config'}: the ranks disagree on the config: rank {r} on "
                f"{every[r][1]} resolved it to hash {every[r][0][:12]}, rank 0 on "
                f"{every[0][1]} to {every[0][0][:12]} (every rank must read the same config, "
                f"data paths and overrides)")

    def check_ready(self, error: ConfigError | None) -> None:
        """Every rank prepared its run (built the model, loaded and checked the data).

        Raises:
            Refused: on every rank alike, with the first rank's mistake.
        """
        self._refuse_any(self.collective.allgather(
            None if error is None else error.format(), "the preparation of the run"))

    def _refuse_any(self, texts: list) -> None:
        """Raise ``Refused`` with the first rank's mistake of ``texts`` (one per rank)."""
        for r, text in enumerate(texts):
            if text is not None:
                raise Refused(text if r == 0 else f"rank {r} on {self.hosts[r]}: {text}")

    def check_batches(self, cfg, splits) -> None:
        """Every batch gives each rank at least one sample (uneven shards are weighted by
        their size, so ``batch_size`` need not divide by the ranks).

        Raises:
            ConfigError: located at ``fit.batch_size``: a batch smaller than the ranks.
        """
        fit = cfg.fit
        n = len(splits["train"].x[0])
        if fit.validation_split and "validation" not in splits:
            n = int(n * (1.0 - fit.validation_split))
        batch = min(fit.batch_size, n)
        last = n % batch or batch
        path = ("fit", "batch_size")
        message = None
        if batch < self.size:
            message = (f"{self.size} ranks need a sample each of every batch, and a batch has "
                       f"{batch}; use at most {batch} ranks, or batch_size {self.size} or more")
        elif last < self.size:
            fits = [b for b in range(self.size, n + 1) if n % b == 0 or n % b >= self.size]
            near = sorted(fits, key=lambda b: (abs(b - fit.batch_size), b))[:2]
            message = (f"the last batch of each epoch has {last} of the {n} training samples, "
                       f"fewer than the {self.size} ranks (each needs one); nearest batch "
                       f"sizes that work: {', '.join(map(str, sorted(near)))}")
        if message:
            raise ConfigError([Problem(message, path, cfg.source.locate(path))],
                              cfg.source.file)

    def follow(self, cfg, resumed: bool) -> Follower:
        """The run on a rank other than 0 (same model, data and deciding callbacks)."""
        from kconf.api import build_model
        from kconf.data.sources import check_shapes, load_splits
        from kconf.train.adapt import adapt_preprocessing
        from kconf.train.run import CALLBACKS

        model = build_model(cfg)
        splits = load_splits(cfg)
        check_shapes(splits, model.graph, cfg)
        if not resumed:
            adapt_preprocessing(model, splits["train"].x)
        callbacks = [CALLBACKS[spec.class_name](**spec.kwargs()) for spec in cfg.fit.callbacks
                     if spec.class_name in CALLBACKS]
        model.resumed = resumed
        return Follower(cfg, model, splits, callbacks)

    def start(self, run) -> None:
        """Make every rank's run identical to rank 0's and attach the data-parallel hooks;
        on rank 0, record the ranks and hosts and start the watchdog."""
        from kconf.train.checkpoint import restore, snapshot

        if self.is_root:
            stateful = run.checkpointer.stateful
            state = (run.initial_epoch, snapshot(run.model, run.initial_epoch, {}, stateful),
                     [type(cb).__name__ for cb in stateful])
        else:
            stateful = [cb for cb in run.callbacks if hasattr(cb, "get_state")]
            state = None
        epoch, ckpt, names = self.collective.bcast(state, what="rank 0's state")
        if not self.is_root:
            run.initial_epoch = epoch
            states = [s for name, s in zip(names, ckpt.callbacks)
                      if name in {type(cb).__name__ for cb in stateful}]
            ckpt.callbacks = states
            restore(run.model, ckpt, stateful)
        DataParallel(self.collective, seed=int(getattr(run.cfg, "seed", 0) or 0)).attach(
            run.model)
        if self.is_root:
            run.recorder.info.update(ranks=self.size, hosts=self.hosts, pids=self.pids)
            self._watchdog = start_watchdog(run.run_dir)

    def fail(self, exc: BaseException) -> None:
        """Tell the other ranks that this one failed (unless it is another rank's failure
        being passed on)."""
        if isinstance(exc, RankFailed):
            return
        kind = "config" if isinstance(exc, ConfigError) else "failed"
        if isinstance(exc, ConfigError):
            text = exc.format()
        elif isinstance(exc, TrainingError):  # a message for the user as it is
            text = str(exc)
        else:
            text = f"{type(exc).__name__}: {exc}"
        self.collective.notify(kind, text)

    def end_failed(self, code: int) -> None:
        """After a failure: rank 0 ends every rank; another rank waits for that (rank 0 may
        still be recording the failure), then ends itself."""
        sys.stdout.flush()
        sys.stderr.flush()
        if self.is_root:
            time.sleep(0.3)  # mpiexec forwards what was printed before it ends the ranks
            self.collective.abort(code)
        self.collective.linger(self.collective.timeout)


def exit_code(exc: BaseException) -> int:
    """The exit status of a rank's failure: 2 for a user's mistake (a rank's included)."""
    if isinstance(exc, ConfigError) or (isinstance(exc, RankFailed) and exc.kind == "config"):
        return USER_ERROR
    return 1


def start_watchdog(run_dir: Path):
    """Start the process that marks the run ``failed`` if this one dies while it runs: its
    own session (``mpiexec`` kills the ranks, not it), its standard input a pipe from this
    process, which closes when this process ends however it ends."""
    return subprocess.Popen([sys.executable, "-m", "kconf.distributed.watchdog", str(run_dir)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
