"""The array module behind the engine. Everything numeric goes through ``xp`` so that another
library with the NumPy API (CuPy) could replace it in one place."""
import ctypes
import sys

import numpy as xp

floatx = xp.float32

__all__ = ["xp", "floatx", "retain_freed_memory"]

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def retain_freed_memory() -> bool:
    """Let freed array memory be reused by the next allocation instead of going back to the
    operating system (glibc only; a no-op elsewhere).

    By default glibc serves every allocation above 128 KB-32 MB with its own ``mmap`` and
    unmaps it on free, so each training step's large temporaries (a convnet's feature maps:
    tens of MB each) arrive as fresh pages that the kernel must fault in and zero, step
    after step (bench/README.md has what that cost on vgg).
    With ``mmap`` off and a 2 GB trim threshold, freed blocks stay in the heap and the next
    step's arrays of the same sizes reuse them. Peak memory is the same (the peak is what the
    process holds either way); memory is returned to the system only when the process ends,
    which is why the training commands call this and the library leaves it to its caller.

    Returns:
        True when both settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
