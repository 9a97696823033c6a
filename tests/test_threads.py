"""kconf.engine.threads: which OpenBLAS kconf controls, and what that means for results.

A process can hold two OpenBLAS libraries (NumPy's and SciPy's, whose wheel bundles its own:
scikit-learn's data imports it). Setting the thread count of SciPy's one left NumPy's products
multi-threaded inside a convnet's steps, next to the workers, and their last bits then depended
on ``--threads``. The tests: NumPy's library is the one found first, whatever the order of the
process's memory map; and a convnet trained on scikit-learn's digits gives the same weights,
bit for bit, with ``--threads 1`` and ``--threads 2``.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from kconf.engine import threads

NUMPY_ROOT = os.path.dirname(os.path.dirname(np.__file__))


def test_numpys_own_openblas_comes_before_one_mapped_earlier(monkeypatch):
    scipys = "/site/scipy.libs/libscipy_openblas-1.so"
    numpys = os.path.join(NUMPY_ROOT, "numpy.libs", "libscipy_openblas64_-2.so")
    monkeypatch.setattr(threads, "_mapped_openblas", lambda: [scipys, numpys])
    monkeypatch.setattr(threads.glob, "glob", lambda pattern: [numpys] if "numpy.libs" in pattern
                        else [])
    assert threads._openblas_paths() == [numpys, scipys]


def test_a_system_openblas_comes_before_another_wheels_bundled_one(monkeypatch):
    """A NumPy built against the system's OpenBLAS (no numpy.libs) next to SciPy's wheel."""
    scipys = "/site/scipy.libs/libscipy_openblas-1.so"
    system = "/usr/lib/x86_64-linux-gnu/libopenblas.so.0"
    monkeypatch.setattr(threads, "_mapped_openblas", lambda: [scipys, system])
    monkeypatch.setattr(threads.glob, "glob", lambda pattern: [])
    assert threads._openblas_paths() == [system, scipys]


@pytest.mark.usefixtures("numpy_openblas")
def test_openblas_found_after_scipy_is_numpys():
    pytest.importorskip("scipy.linalg")
    code = ("import scipy.linalg, numpy\n"
            "from kconf.engine.threads import openblas, _mapped_openblas\n"
            "blas = openblas()\n"
            "print(blas.path if blas else '')\n"
            "print('\\n'.join(_mapped_openblas()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    chosen, mapped = out[0], out[1:]
    assert chosen, "NumPy's OpenBLAS is no longer found once SciPy's is loaded"
    assert chosen in mapped
    assert "scipy" not in os.path.basename(os.path.dirname(chosen))


def _train_digits_cnn(tmp_path, count: int) -> dict:
    out = tmp_path / f"threads{count}"
    subprocess.run([sys.executable, "-m", "kconf.cli", "--threads", str(count), "train",
                    "configs/digits_cnn.yaml", "--output-dir", str(out), "-q", "fit.epochs=1"],
                   check=True, capture_output=True, cwd=os.path.dirname(os.path.dirname(
                       os.path.abspath(__file__))))
    (weights,) = out.glob("*/*/weights.npz")
    with np.load(weights) as data:
        return {name: data[name] for name in data.files}


def test_a_convnet_on_scikit_learns_digits_trains_the_same_bits_on_one_thread_and_two(tmp_path):
    pytest.importorskip("sklearn")
    one, two = _train_digits_cnn(tmp_path, 1), _train_digits_cnn(tmp_path, 2)
    assert one.keys() == two.keys()
    for name in one:
        np.testing.assert_array_equal(two[name], one[name], err_msg=name)
