"""Thread counts: how many threads BLAS may use, set before NumPy loads or changed while it runs.

Two ways to control BLAS's threads, for two moments:

* before NumPy is imported, through the environment: ``limit_threads`` sets the variables
  that BLAS builds read once, when they load (``THREAD_VARIABLES``); ``blas_threads`` says
  what count they will use. The CLI's ``--threads`` and the sweep workers use these.
* while NumPy runs, through OpenBLAS's own functions: ``openblas`` finds NumPy's OpenBLAS
  and returns a ``BlasThreads`` that reads and sets its thread count (one number for the
  whole process). ``kconf.engine.ops.Ops`` uses it to hold BLAS at one thread while its
  workers run.

This module imports nothing that loads NumPy (``openblas`` imports it when called), so that
``limit_threads`` can run first.
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os
import sys
from contextlib import contextmanager
from typing import Iterator

__all__ = ["THREAD_VARIABLES", "BlasThreads", "available_cpus", "blas_threads",
           "limit_threads", "openblas", "product_threads"]

# The variables BLAS builds read their thread count from (OpenBLAS, MKL, BLIS, Accelerate,
# and OpenMP in general).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def limit_threads(threads: int | None) -> bool:
    """Limit the BLAS thread count by setting ``THREAD_VARIABLES`` in the environment.

    BLAS reads them once, when NumPy is first imported; so call this before that (the CLI
    does, in its ``--threads`` option). Without a limit nothing is set and BLAS uses every
    core (or what the environment already says).

    Args:
        threads: the number of threads, or None for no limit.

    Returns:
        True when the limit takes effect (NumPy not imported yet, or no limit asked for);
        False when NumPy was already imported, so its thread count is unchanged.

    Raises:
        ValueError: ``threads`` is not a positive integer.
    """
    if threads is None:
        return True
    if threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads}")
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    return "numpy" not in sys.modules


def available_cpus() -> int:
    """The number of CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def blas_threads() -> int:
    """The thread count BLAS will use: what the environment says, else every available CPU."""
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return available_cpus()


def product_threads() -> int:
    """The number of threads BLAS's products run on now: OpenBLAS's own count where it can be
    read, else what ``blas_threads`` says. A product's last bits can depend on it (OpenBLAS
    rounds a row by where its thread's share begins), so a checkpoint records it."""
    blas = openblas()
    return blas.get() if blas is not None else blas_threads()


class BlasThreads:
    """The thread count of a loaded OpenBLAS: ``get()``, ``set(n)``, ``single_threaded()``.

    Args:
        set_threads, get_threads: OpenBLAS's ``openblas_set_num_threads`` and
            ``openblas_get_num_threads`` (under its build's names), as ctypes functions.
        path: the library's file, where known.
    """

    def __init__(self, set_threads, get_threads, path: str | None = None):
        set_threads.argtypes, set_threads.restype = [ctypes.c_int], None
        get_threads.argtypes, get_threads.restype = [], ctypes.c_int
        self._set, self._get = set_threads, get_threads
        self.path = path

    def get(self) -> int:
        """The number of threads BLAS's products run on now."""
        return int(self._get())

    def set(self, threads: int) -> None:
        """Run BLAS's products on ``threads`` threads from now on (the whole process)."""
        self._set(threads)

    @contextmanager
    def single_threaded(self) -> Iterator[None]:
        """BLAS on one thread within; its thread count restored after."""
        threads = self.get()
        self.set(1)
        try:
            yield
        finally:
            self.set(threads)


# OpenBLAS's thread-count functions, under the names of its builds: plain, 64-bit-integer
# (NumPy 1.x wheels) and scipy-openblas (NumPy 2.x wheels).
_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads")
_GETTERS = ("openblas_get_num_threads", "openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads")


@functools.cache  # the library NumPy loaded does not change while the process runs
def openblas() -> BlasThreads | None:
    """The thread control of the OpenBLAS NumPy uses, or None where there is none (another
    BLAS, or an OpenBLAS without those functions).

    Returns:
        A ``BlasThreads``, the same one on every call.
    """
    for path in _openblas_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        found = [next((getattr(lib, name) for name in names if hasattr(lib, name)), None)
                 for names in (_SETTERS, _GETTERS)]
        if None not in found:
            return BlasThreads(*found, path=path)
    return None


def _openblas_paths() -> list[str]:
    """Candidate paths of the OpenBLAS library NumPy loaded, NumPy's own first.

    A process may hold several OpenBLAS libraries: SciPy's wheel bundles its own (imported
    by scikit-learn, say), and ``/proc/self/maps`` may list it before NumPy's. Setting that
    one's thread count would leave NumPy's products multi-threaded inside ``Ops.step``. So
    the order is: the OpenBLAS of NumPy's wheel (``numpy.libs``, ``numpy/.dylibs``); then
    the mapped ones outside another wheel's folder of libraries (a system OpenBLAS that
    NumPy links); then the rest.
    """
    import numpy  # loads NumPy's BLAS, so that it is mapped below

    root = os.path.dirname(os.path.dirname(numpy.__file__))
    own = []
    for folder in ("numpy.libs", os.path.join("numpy", ".dylibs")):
        own += sorted(glob.glob(os.path.join(root, folder, "*openblas*")))
    mapped = _mapped_openblas()
    elsewhere = [path for path in mapped if _bundled(path) and path not in own]
    ordered = own + [path for path in mapped if path not in elsewhere] + elsewhere
    return list(dict.fromkeys(ordered))


def _bundled(path: str) -> bool:
    """Whether a library lies in a wheel's folder of bundled libraries (``scipy.libs``,
    ``numpy/.dylibs``)."""
    return os.path.basename(os.path.dirname(path)).endswith((".libs", ".dylibs"))


def _mapped_openblas() -> list[str]:
    """The OpenBLAS libraries mapped into this process, in ``/proc/self/maps``'s order (empty
    where there is no such file)."""
    paths = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if line.strip() else ""
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:  # not Linux
        pass
    return paths
