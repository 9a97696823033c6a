"""Lanes: a layer's independent blocks of work run on several threads at once.

A convolution works through its batch a block of images at a time (see conv2d.py). Each block
is a copy, some matrix products and some elementwise passes; NumPy runs the elementwise
passes on one core, and a multi-threaded BLAS splits each medium-sized product over its
threads and waits for the slowest part. Lanes run whole blocks side by side instead, one
lane per BLAS thread (the calling thread and pool threads), each calling BLAS
single-threaded: every core works on blocks of its own, copies and elementwise passes
included, and takes the next free block when it is done, so a lane slowed by another process
takes fewer. While lanes run, OpenBLAS's thread count (one number for the whole process) is
1; it is set back afterwards.

A training step of a model with layers that use lanes runs in a ``session``: BLAS stays
single-threaded for the whole step, since OpenBLAS's idle threads spin for a while after a
multi-threaded product and would compete with the lanes; ``matmul`` and ``add_matmul`` share
the large products of the layers in between (a convnet's Dense) out to the lanes instead.
On the vgg workload a step takes about a quarter less time than with two-thread BLAS
(bench/README.md).

Results do not depend on the number of lanes, nor on which lane ran a block: every block
writes only its own slice of the outputs, and what blocks share (a kernel gradient) is
written per block and summed by the caller in block order.

Lanes are used only with an OpenBLAS whose thread count can be read and set (NumPy's wheels
bundle one), more than one BLAS thread (``--threads 1`` turns them off), and more than one
block. Otherwise ``run`` calls the work on the calling thread, and BLAS keeps its own
threading.
"""
from __future__ import annotations

import ctypes
import glob
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Sequence

__all__ = ["add_matmul", "chunks", "lane_count", "matmul", "run", "session", "set_lanes"]

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_override: int | None = None  # set_lanes(n); None: one lane per BLAS thread
_blas: tuple | None = None  # (set_threads, get_threads), or () where unavailable
_session_lanes = 0  # inside session(): the lane count; 0 outside


def _openblas_paths() -> list[str]:
    """Candidate paths of the OpenBLAS library NumPy loaded (already mapped, or in its wheel)."""
    paths = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if line.strip() else ""
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:  # not Linux
        pass
    import numpy

    root = os.path.dirname(os.path.dirname(numpy.__file__))
    for folder in ("numpy.libs", os.path.join("numpy", ".dylibs")):
        paths += sorted(glob.glob(os.path.join(root, folder, "*openblas*")))
    return paths


# OpenBLAS's thread-count functions, under the names of its builds: plain, 64-bit-integer
# (NumPy 1.x wheels) and scipy-openblas (NumPy 2.x wheels).
_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads")
_GETTERS = ("openblas_get_num_threads", "openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads")


def _load_blas() -> tuple:
    """``(set_num_threads, get_num_threads)`` of NumPy's OpenBLAS, or () if there is none."""
    global _blas
    if _blas is None:
        _blas = ()
        for path in _openblas_paths():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            found = [next((getattr(lib, name) for name in names if hasattr(lib, name)), None)
                     for names in (_SETTERS, _GETTERS)]
            if None not in found:
                set_threads, get_threads = found
                set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
                get_threads.argtypes, get_threads.restype = [], ctypes.c_int
                _blas = (set_threads, get_threads)
                break
    return _blas


def lane_count() -> int:
    """How many lanes ``run`` uses: ``set_lanes``'s value if set, else BLAS's thread count;
    1 where BLAS's thread count cannot be set (then lanes would oversubscribe the cores)."""
    if _override is not None:
        return _override
    blas = _load_blas()
    return max(1, int(blas[1]())) if blas else 1


def set_lanes(lanes: int | None) -> None:
    """Force the lane count, also where BLAS's thread count cannot be set (tests compare one
    lane with several); None restores the default."""
    global _override
    if lanes is not None and lanes < 1:
        raise ValueError(f"lanes must be a positive integer, got {lanes}")
    _override = lanes


def _executor(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < size:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(size, thread_name_prefix="kconf-lane")
            _pool_size = size
        return _pool


def _forget_pool() -> None:
    """After fork: the child has none of the parent's pool threads."""
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """BLAS on one thread within, its thread count restored after (where it can be set)."""
    blas = _load_blas()
    if not blas:
        yield
        return
    set_threads, get_threads = blas
    threads = get_threads()
    set_threads(1)
    try:
        yield
    finally:
        set_threads(threads)


@contextmanager
def session(active: bool = True) -> Iterator[None]:
    """Run a stretch of work (a training step) with BLAS single-threaded throughout, and
    ``run`` on one lane per BLAS thread.

    After a multi-threaded product, OpenBLAS's own threads spin for a while waiting for the
    next one (about 0.1 s by default); lanes started then share the cores with them, and a
    convnet's step, which alternates lanes with other layers' products, loses what lanes
    gain. Inside a session no product is multi-threaded, so nothing spins; the products
    outside lanes (a convnet's Dense layers) run on one core. The model uses a session for
    graphs with layers that run lanes (``uses_lanes``). Sessions do not nest: an inner one
    does nothing.
    """
    global _session_lanes
    lanes = lane_count() if active and not _session_lanes else 1
    if lanes <= 1:
        yield
        return
    with _single_threaded_blas():
        _session_lanes = lanes
        try:
            yield
        finally:
            _session_lanes = 0


def run(work: Callable[[int, Iterable], None], blocks: Sequence) -> None:
    """Call ``work(lane, its_blocks)`` for every lane, in parallel; the calling thread is
    lane 0, pool threads the others.

    ``its_blocks`` is an iterator: each lane takes the next block not yet taken, so a lane
    that is slowed down (by another process, say) takes fewer. ``work`` must touch only its
    blocks' outputs and its lane's scratch (``lane`` indexes per-lane buffers); then which
    lane ran a block changes nothing. With one lane, or one block, ``work(0, blocks)`` runs
    on the calling thread alone. An exception in any lane stops the others taking blocks
    and is raised here once every lane has stopped.
    """
    lanes = min(_session_lanes or lane_count(), len(blocks))
    if lanes <= 1:
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

    def lane_work(lane: int) -> None:
        try:
            work(lane, its_blocks())
        except BaseException:
            stop.append(True)
            raise

    pool = _executor(lanes - 1)
    with _single_threaded_blas():  # already so inside a session
        futures = [pool.submit(lane_work, lane) for lane in range(1, lanes)]
        try:
            lane_work(0)
        finally:
            for future in futures:
                future.exception()  # wait for every lane before raising anything
    for future in futures:
        future.result()


def chunks(n: int) -> list[slice]:
    """``range(n)`` cut into one contiguous slice per lane (fewer when ``n`` is small): the
    blocks for elementwise work that ``run`` hands out."""
    lanes = max(1, min(_session_lanes or lane_count(), n))
    bounds = [n * i // lanes for i in range(lanes + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


# Products below this many FLOPs are not worth a hand-off to the lanes.
_MATMUL_FLOPS = 2 * 10**7


def matmul(a, b):
    """``a @ b``; inside a session, a large product of 2-D arrays is cut across the lanes
    along the longer of its output's axes (each lane's share is one single-threaded product
    of whole rows or columns: the sums along the shared axis are not split, so every entry
    is what one product gives)."""
    if _session_lanes <= 1 or a.ndim != 2 or b.ndim != 2:  # the cheap test comes first
        return a @ b
    m, k = a.shape
    n = b.shape[1]
    if 2 * m * k * n < _MATMUL_FLOPS:
        return a @ b
    import numpy

    out = numpy.empty((m, n), dtype=numpy.result_type(a, b))
    if m >= n:
        def work(lane, mine):
            for rows in mine:
                numpy.matmul(a[rows], b, out=out[rows])
        run(work, chunks(m))
    else:
        def work(lane, mine):
            for cols in mine:
                numpy.matmul(a, b[:, cols], out=out[:, cols])
        run(work, chunks(n))
    return out


# add_matmul's blocks of rows: about this many entries, so a lane's product is still in its
# cache when it is added.
_ADD_BLOCK = 2**16


def add_matmul(out, a, b) -> None:
    """``out += a @ b`` for 2-D arrays. Inside a session a large product with more rows than
    columns (a weight gradient ``x.T @ dz``) goes in blocks of rows, shared out to the lanes,
    each block's product added while it is in the cache: no product the size of ``out`` is
    made and read again. Every entry is what ``out += a @ b`` gives."""
    if _session_lanes <= 1:
        out += a @ b
        return
    m, k = a.shape
    n = b.shape[1]
    if 2 * m * k * n < _MATMUL_FLOPS or m < n:
        out += matmul(a, b)
        return
    import numpy

    per_block = max(1, _ADD_BLOCK // n)
    blocks = [slice(start, min(start + per_block, m)) for start in range(0, m, per_block)]

    def work(lane, mine):
        product = numpy.empty((per_block, n), dtype=out.dtype)
        for rows in mine:
            part = product[:rows.stop - rows.start]
            numpy.matmul(a[rows], b, out=part)
            out[rows] += part

    run(work, blocks)
