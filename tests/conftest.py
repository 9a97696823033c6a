"""Test session setup: the data that example configs read but the repository does not hold."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session) -> None:
    """Write ``configs/data/digits_images/`` (configs/digits_images.yaml) when it is missing."""
    folder = ROOT / "configs" / "data" / "digits_images"
    if not folder.is_dir():
        sys.path.insert(0, str(folder.parent))
        try:
            from make_digits_images import main
        finally:
            sys.path.pop(0)
        main(folder)


@pytest.fixture
def numpy_openblas():
    """The thread control of NumPy's OpenBLAS (``kconf.engine.threads.openblas``). Skips only
    where NumPy's build names another BLAS; where it names OpenBLAS and none is found, the
    finding is what broke, and the test fails instead of skipping."""
    from kconf.engine.threads import openblas

    blas_name = np.__config__.CONFIG["Build Dependencies"]["blas"]["name"]
    blas = openblas()
    if "openblas" not in blas_name.lower():
        pytest.skip(f"NumPy's BLAS is {blas_name}, not an OpenBLAS whose threads can be set")
    assert blas is not None, f"NumPy is built with {blas_name}, but kconf found no OpenBLAS"
    return blas
