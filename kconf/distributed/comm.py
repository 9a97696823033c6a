"""The collective calls of a data-parallel run, each with a timeout, and the notices by which a
failing rank tells the others why.

MPI's blocking collectives wait forever for a rank that never comes. Every collective here is
started non-blocking (``Iallreduce``, ``Ibcast``, ``Iallgather``) and then polled until it
completes, while the rank also looks for a *notice*: the one message a rank sends every other
rank when it fails (``Collective.notify``). So a rank that fails ends the others' waits with
its own message (``RankFailed``), and a rank that hangs or vanished ends them after
``timeout`` seconds (``CollectiveTimeout``); neither leaves a run hanging.
"""
from __future__ import annotations

import pickle
import socket
import time

import numpy as np

from kconf.errors import StoppedElsewhere

#: The tag of the notice a failing rank sends (collectives use none).
NOTICE_TAG = 7301
#: The default seconds a collective waits for the other ranks (``--mpi-timeout``).
DEFAULT_TIMEOUT = 300.0


class RankFailed(StoppedElsewhere):
    """Another rank failed and said why (``kind``: ``"config"`` for a user's mistake, found at
    start, ``"failed"`` for anything else)."""

    def __init__(self, rank: int, host: str, kind: str, message: str):
        super().__init__(f"rank {rank} on {host}: {message}")
        self.rank, self.host, self.kind, self.message = rank, host, kind, message


class CollectiveTimeout(StoppedElsewhere):
    """The other ranks did not join a collective call within the timeout."""


class Collective:
    """A communicator's collective calls with a timeout (see the module's docstring).

    Args:
        comm: an mpi4py communicator (``MPI.COMM_WORLD``).
        timeout: seconds a call waits for the other ranks.
    """

    def __init__(self, comm, timeout: float = DEFAULT_TIMEOUT):
        from mpi4py import MPI

        self.mpi = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.host = socket.gethostname()
        self.timeout = float(timeout)
        self._sent: list = []

    def wait(self, request, what: str) -> None:
        """Wait for a non-blocking call: a notice raises ``RankFailed``, the timeout
        ``CollectiveTimeout``. Polls at once, then sleeps a little longer each time (up to a
        millisecond), so a waiting rank leaves the cores to the ranks still computing."""
        if request.Test():
            return
        deadline = time.monotonic() + self.timeout
        pause, polls = 0.0, 0
        while not request.Test():
            polls += 1
            if polls % 64 == 0:
                self.check_notices()
                if time.monotonic() > deadline:
                    raise CollectiveTimeout(
                        f"rank {self.rank} on {self.host}: the other ranks did not join "
                        f"{what} within {self.timeout:g} s (a rank hangs or was lost)")
            time.sleep(pause)
            pause = min(1e-3, pause + 2e-5)

    def check_notices(self) -> None:
        """Raise ``RankFailed`` if another rank has said it failed."""
        status = self.mpi.Status()
        if self.comm.Iprobe(source=self.mpi.ANY_SOURCE, tag=NOTICE_TAG, status=status):
            rank, host, kind, message = self.comm.recv(source=status.Get_source(),
                                                       tag=NOTICE_TAG)
            raise RankFailed(rank, host, kind, message)

    def allreduce(self, buf: np.ndarray, what: str = "the gradients' sum") -> np.ndarray:
        """Sum ``buf`` over the ranks, in place."""
        self.wait(self.comm.Iallreduce(self.mpi.IN_PLACE, buf, op=self.mpi.SUM), what)
        return buf

    def bcast(self, obj, root: int = 0, what: str = "the start"):
        """``obj`` of ``root`` on every rank (pickled)."""
        data = pickle.dumps(obj) if self.rank == root else b""
        size = np.array([len(data)], dtype=np.int64)
        self.wait(self.comm.Ibcast(size, root=root), what)
        buf = np.frombuffer(data, dtype=np.uint8).copy() if self.rank == root else \
            np.empty(int(size[0]), dtype=np.uint8)
        self.wait(self.comm.Ibcast(buf, root=root), what)
        return obj if self.rank == root else pickle.loads(buf.tobytes())

    def allgather(self, obj, what: str = "the start") -> list:
        """Every rank's ``obj``, in rank order (pickled)."""
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
        sizes = np.empty(self.size, dtype=np.int64)
        self.wait(self.comm.Iallgather(np.array([data.size], dtype=np.int64), sizes), what)
        out = np.empty(int(sizes.sum()), dtype=np.uint8)
        self.wait(self.comm.Iallgatherv(data, [out, sizes]), what)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        return [pickle.loads(out[a:b].tobytes()) for a, b in zip(starts[:-1], starts[1:])]

    def notify(self, kind: str, message: str) -> None:
        """Tell every other rank that this one failed, and why (non-blocking sends)."""
        notice = (self.rank, self.host, kind, message)
        for dest in range(self.size):
            if dest != self.rank:
                self._sent.append(self.comm.isend(notice, dest=dest, tag=NOTICE_TAG))

    def linger(self, seconds: float) -> None:
        """Keep this (failed) rank's process alive while rank 0 records the failure: rank 0
        ends every rank when it is done (``abort``); an ending rank would have mpiexec kill
        rank 0 first."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for request in self._sent:
                request.Test()
            time.sleep(0.01)

    def abort(self, code: int) -> None:
        """End every rank of the run (``MPI_Abort``): what rank 0 does once a failure is
        recorded, so that no rank waits for a partner that will not come."""
        self.comm.Abort(code)
