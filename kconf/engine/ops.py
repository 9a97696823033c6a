"""Ops: the engine's performance machinery behind one object — worker threads, BLAS's thread
count, and the matrix products that use them.

Why workers. A convolution works through its batch a block of images at a time (conv2d.py).
Each block is a copy, some matrix products and some elementwise passes; NumPy runs the
elementwise passes on one core, and a multi-threaded BLAS splits each medium-sized product
over its threads and waits for the slowest part. ``Ops.parallel`` runs whole blocks side by
side instead, on ``workers`` threads (the calling thread and pool threads), each calling BLAS
single-threaded: every core works on blocks of its own, copies and elementwise passes
included, and takes the next free block when it is done, so a worker slowed by another
process takes fewer. While workers run, OpenBLAS's thread count (one number for the whole
process) is 1; it is set back afterwards.

Steps. A training step of a model with layers that use workers runs inside ``ops.step()``:
BLAS stays single-threaded for the whole step, since OpenBLAS's idle threads spin for a
while after a multi-threaded product and would compete with the workers; ``matmul`` and
``add_matmul`` share the large products of the layers in between (a convnet's Dense) out to
the workers instead. (Measurements: bench/README.md.)

Results do not depend on the number of workers, nor on which worker ran a block: the blocks
depend on the shapes only (one worker runs the same blocks in turn), every block writes only
its own slice of the outputs, and what blocks share (a kernel gradient) is written per block
and summed by the caller in block order. So a model whose steps are parallel computes the
same bits with ``--threads 1`` and ``--threads 8``. (Outside parallel steps BLAS splits its
products over its own threads, and their last bits depend on how many it has: OpenBLAS
rounds a row of a product differently by where its share of the rows begins.)

Deferred work. Inside a parallel step, ``defer`` hands blocks of work that nothing needs
until later (a convolution's kernel gradient in backward) to the pool threads, and the
caller goes on (with the input gradient, through the layers that run on one thread);
``finish_deferred`` (at the end of a graph's backward pass, and of the step) does the blocks
no thread has taken and finishes each piece in the order deferred. A ``parallel`` call does
not wait for a pool thread busy with deferred work: its caller takes every block.

Workers are used only with an OpenBLAS whose thread count can be read and set (NumPy's
wheels bundle one; see ``kconf.engine.threads``), more than one BLAS thread (``--threads 1``
turns them off), and more than one block; or where ``Ops(workers=n)`` asks for them.
Otherwise ``parallel`` calls the work on the calling thread, and BLAS keeps its own threading.

How a layer reaches its ops: ``current_ops()``. A ``Model`` owns an ``Ops`` (``model.ops``,
by default the current one when the model is made) and runs each step inside
``model.ops.step()``, which makes it the current ops for the step's layers and optimizer. A
layer used on its own, outside any step, gets the default ``Ops()`` of its thread's context,
made on first use; ``with use_ops(Ops(workers=3)):`` chooses another for a stretch of code.
The current ops is a context variable (as Thinc's ``get_current_ops``), not a module-level
global: every piece of state (the pool, the step's worker count) belongs to one ``Ops``
instance, and layer constructors and ``forward`` signatures stay as they are.
"""
from __future__ import annotations

import contextvars
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Sequence

from kconf.engine import products
from kconf.engine.backend import xp
from kconf.engine.deferred import DeferredWork
from kconf.engine.threads import BlasThreads, openblas

__all__ = ["Ops", "current_ops", "use_ops"]

# Arrays of at least this many numbers are zeroed a part per worker.
_ZERO_PARALLEL = 1 << 20
#: The most bytes that deferred work may keep alive at once (``can_defer``): a convolution's
#: deferred kernel gradient keeps its blocks' matrices (resnet_small's 16-channel layers: 19
#: MB each) until a pool thread has used them.
DEFER_BYTES = 24 << 20


class Ops:
    """Worker threads, BLAS's thread count, and the products and fills that use them.

    Args:
        workers: how many threads ``parallel`` uses (the calling thread is one of them);
            None: one per BLAS thread, read when needed — 1 where BLAS's thread count cannot
            be set, since workers would then oversubscribe the cores next to BLAS's own
            threads. Tests give a number to compare one worker with several.
        blas: the BLAS thread control; None finds NumPy's OpenBLAS (``threads.openblas``).

    Raises:
        ValueError: ``workers`` is not a positive integer.
    """

    xp = xp  # the array module (kconf.engine.backend)

    def __init__(self, workers: int | None = None, blas: BlasThreads | None = None):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers}")
        self._workers = workers
        self._blas = blas
        self._blas_found = blas is not None
        self._step_workers = 0  # inside step(): the worker count fixed for the step; else 0
        self._parallel_step = False  # inside a parallel step(), whatever the worker count
        self._busy = False  # True while parallel() runs: a nested call runs on its caller
        self._deferred = DeferredWork()  # what defer() handed to the pool threads
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._pool_pid = 0  # the process that made the pool: a forked child makes its own
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Ops(workers={self._workers})"

    def __getstate__(self) -> dict:
        """What a copy or pickle (of a model, say) keeps: the settings; a copy makes its own
        pool and finds BLAS again."""
        return {"workers": self._workers}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["workers"])

    @property
    def blas(self) -> BlasThreads | None:
        """The BLAS thread control, or None where BLAS's thread count cannot be set."""
        if not self._blas_found:
            self._blas, self._blas_found = openblas(), True
        return self._blas

    @property
    def workers(self) -> int:
        """How many threads ``parallel`` uses: inside a step the count fixed when it began;
        else the one asked for, or BLAS's thread count (1 where that cannot be set)."""
        if self._step_workers:
            return self._step_workers
        if self._workers is not None:
            return self._workers
        blas = self.blas
        return max(1, blas.get()) if blas is not None else 1

    def step(self, parallel: bool = True) -> _Step:
        """A context for one stretch of work (a training step): this ops is the current one
        within (``current_ops``), and with ``parallel`` (the model has layers that use
        workers) and more than one worker, BLAS is single-threaded throughout and
        ``matmul``/``add_matmul`` share large products out to the workers.

        After a multi-threaded product, OpenBLAS's own threads spin for a while waiting for
        the next one (about 0.1 s by default); workers started then share the cores with
        them, and a convnet's step, which alternates workers with other layers' products,
        loses what workers gain. Inside a step no product is multi-threaded, so nothing
        spins; the products outside ``parallel`` (a convnet's Dense layers) go to the workers
        through ``matmul``. Steps nest: an inner one changes nothing.

        Args:
            parallel: whether the step runs layers that use workers; False only makes this
                ops the current one (no BLAS calls: the cost of a small model's step).

        Returns:
            A context manager.
        """
        return _Step(self, parallel)

    def parallel(self, work: Callable[[int, Iterable], None], blocks: Sequence) -> None:
        """Call ``work(worker, its_blocks)`` for every worker, in parallel; the calling thread
        is worker 0, pool threads the others.

        ``its_blocks`` is an iterator: each worker takes the next block not yet taken, so a
        worker that is slowed down (by another process, say) takes fewer. ``work`` must touch
        only its blocks' outputs and its worker's scratch (``worker`` indexes per-worker
        buffers); then which worker ran a block changes nothing. With one worker, or one
        block, ``work(0, blocks)`` runs on the calling thread alone; called from inside
        another ``parallel`` of this ops (whose pool threads may all be busy with it),
        ``work(worker, blocks)`` runs on the calling worker's thread, with its number. An
        exception in any worker stops the others taking blocks and is raised here once every
        worker has stopped.

        Args:
            work: the function each worker runs.
            blocks: the blocks of work (slices, numbered slices, ...).
        """
        if self._busy:
            work(_worker.get(), blocks)
            return
        workers = min(self.workers, len(blocks))
        if workers <= 1:
            work(0, blocks)
            return
        taken = itertools.count()  # next() on it is atomic under the GIL
        stop: list[bool] = []

        def its_blocks() -> Iterator:
            while not stop:
                index = next(taken)
                if index >= len(blocks):
                    return
                yield blocks[index]

        def worker_work(worker: int) -> None:
            token = _worker.set(worker)  # for parallel calls nested in this work
            try:
                work(worker, its_blocks())
            except BaseException:
                stop.append(True)
                raise
            finally:
                _worker.reset(token)

        pool = self._executor(workers - 1)
        blas = None if self._step_workers else self.blas  # a step holds BLAS at 1 already
        threads = 0
        if blas is not None:
            threads = blas.get()
            blas.set(1)
        self._busy = True
        try:
            # each pool worker runs in a copy of the caller's context: the same current ops
            futures = [pool.submit(contextvars.copy_context().run, worker_work, worker)
                       for worker in range(1, workers)]
            try:
                worker_work(0)
            finally:
                # wait for every started worker before raising anything; one not started
                # (its thread busy with deferred work) would find no block left
                futures = [future for future in futures if not future.cancel()]
                for future in futures:
                    future.exception()
        finally:
            self._busy = False
            if blas is not None:
                blas.set(threads)
        for future in futures:
            future.result()

    @property
    def deferring(self) -> bool:
        """Whether ``defer`` hands work to a pool thread now (inside a parallel step with
        more than one worker)."""
        return self._step_workers > 1

    def can_defer(self, nbytes: int) -> bool:
        """Whether work that keeps ``nbytes`` alive until done should be deferred: where
        ``deferring``, and with the deferred work not yet done it keeps at most 24 MB (a
        pool thread slowed by other processes then bounds the memory, not the step; on
        resnet_small, one 16-channel layer's matrices at a time, and the smaller ones).

        Args:
            nbytes: what the work would keep alive.

        Returns:
            Whether to ``defer`` it.
        """
        return self.deferring and nbytes + self._deferred.nbytes <= DEFER_BYTES

    def defer(self, work: Callable[[object], None], blocks: Sequence,
              finish: Callable[[], None], nbytes: int = 0) -> bool:
        """Hand work that nothing needs until later to the pool threads
        (``kconf.engine.deferred``): ``work(block)`` for every block, taken one at a time by
        a pool thread (or by the caller of ``finish_deferred``, for the blocks no thread has
        taken by then); then ``finish()``, in ``finish_deferred``, in the order deferred.
        Only where ``deferring``; elsewhere this returns False and the caller does the work
        itself.

        Args:
            work: called with each block; it must read only what nobody writes before
                ``finish_deferred``, and write only its block's outputs.
            blocks: the blocks of work.
            finish: called once every block is done, by ``finish_deferred``.
            nbytes: what the blocks keep alive until done, in all (``can_defer``).

        Returns:
            Whether the work was deferred.
        """
        if not self.deferring:
            return False
        self._deferred.add(self._executor(self._step_workers - 1), work, blocks, finish,
                           nbytes)
        return True

    def finish_deferred(self) -> None:
        """Finish every piece of deferred work (``defer``), in the order deferred; an
        exception is raised once every piece has stopped (``DeferredWork.finish``)."""
        self._deferred.finish()

    def chunks(self, n: int) -> list[slice]:
        """``range(n)`` cut into one contiguous slice per worker (fewer when ``n`` is small):
        blocks for elementwise work to hand to ``parallel``.

        Args:
            n: the length to cut.

        Returns:
            Consecutive slices covering ``range(n)``, their lengths differing by at most 1.
        """
        return products.even_slices(n, max(1, min(self.workers, n)))

    @property
    def parallel_step(self) -> bool:
        """Whether a parallel ``step()`` runs now (whatever its worker count): where the
        large products are cut into blocks (``kconf.engine.products``)."""
        return self._parallel_step

    def matmul(self, a, b):
        """``a @ b``, a large product cut into blocks inside a parallel step
        (``kconf.engine.products.matmul``)."""
        return products.matmul(self, a, b)

    def add_matmul(self, out, a, b) -> None:
        """``out += a @ b``, a large product added block by block inside a parallel step
        (``kconf.engine.products.add_matmul``)."""
        products.add_matmul(self, out, a, b)

    def sum_rows(self, a):
        """``a.sum(axis=0)`` of a 2-D array (a bias gradient) as one matrix-vector product:
        several times faster than NumPy's reduction over the first axis, and a running float32
        sum like it (``kernels.column_sums`` rounds about as once, for BatchNormalization's
        sums over many rows).

        Args:
            a: an (m, n) array.

        Returns:
            The (n,) sums, a new array.
        """
        return xp.ones(a.shape[0], dtype=a.dtype) @ a

    def zero(self, array) -> None:
        """Fill ``array`` with zeros; a large contiguous one a part per worker.

        Args:
            array: the array to clear, in place.
        """
        if array.size < _ZERO_PARALLEL or not array.flags.c_contiguous:
            array.fill(0)
            return
        flat = array.reshape(-1)

        def work(worker, parts):
            for part in parts:
                flat[part].fill(0)

        self.parallel(work, self.chunks(flat.size))

    def _executor(self, size: int) -> ThreadPoolExecutor:
        """The pool, with at least ``size`` threads (made again when too small, or after a
        fork: the child has none of the parent's pool threads)."""
        pid = os.getpid()
        if self._pool_pid != pid:  # a fork's child: the parent's lock may be held
            self._lock = threading.Lock()
            self._pool, self._pool_size, self._pool_pid = None, 0, pid
        with self._lock:
            if self._pool is None or self._pool_size < size:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool = ThreadPoolExecutor(size, thread_name_prefix="kconf-worker")
                self._pool_size = size
            return self._pool


class _Step:
    """What ``Ops.step`` returns: a context manager (a class, not a generator: a small
    model's step pays for entering it on every batch)."""

    __slots__ = ("ops", "parallel", "token", "marked", "began", "threads")

    def __init__(self, ops: Ops, parallel: bool):
        self.ops, self.parallel = ops, parallel
        self.token = None
        self.marked = False  # whether this step made the ops' steps parallel (not an outer one)
        self.began = False  # whether this step fixed the worker count (an outer one did not)
        self.threads = None  # BLAS's thread count before the step, when this step set it

    def __enter__(self) -> Ops:
        ops = self.ops
        self.token = _current.set(ops)
        if self.parallel and not ops._parallel_step:
            ops._parallel_step = self.marked = True
        if self.parallel and not ops._step_workers:
            workers = ops.workers
            if workers > 1:
                blas = ops.blas
                if blas is not None:
                    self.threads = blas.get()
                    blas.set(1)
                ops._step_workers = workers
                self.began = True
        return ops

    def __exit__(self, *exc) -> None:
        try:
            if self.began:
                self.ops.finish_deferred()  # nothing deferred outlives its step
        finally:
            if self.began:
                self.ops._step_workers = 0
                self.began = False
                if self.threads is not None:
                    self.ops.blas.set(self.threads)
                    self.threads = None
            if self.marked:
                self.ops._parallel_step = self.marked = False
            _current.reset(self.token)


# The ops that layers use (see the module docstring); None until a context first asks.
_current: contextvars.ContextVar[Ops | None] = contextvars.ContextVar("kconf_ops",
                                                                      default=None)
# The number of the worker running in this context, inside ``Ops.parallel``.
_worker: contextvars.ContextVar[int] = contextvars.ContextVar("kconf_worker", default=0)


def current_ops() -> Ops:
    """The ops layers use now: the one of the step being run (``Ops.step``) or of
    ``use_ops``; else this context's default ``Ops()``, made on first use.

    Returns:
        An ``Ops``.
    """
    ops = _current.get()
    if ops is None:
        ops = Ops()
        _current.set(ops)
    return ops


@contextmanager
def use_ops(ops: Ops) -> Iterator[Ops]:
    """Make ``ops`` the current ops within (for layers used outside a model's step).

    Args:
        ops: the ops to use.

    Returns:
        A context manager yielding ``ops``.
    """
    token = _current.set(ops)
    try:
        yield ops
    finally:
        _current.reset(token)
