"""scikit-learn's handwritten digits, imported only when a config asks for them."""
from __future__ import annotations

import numpy as np

from kconf.data.problem import DataProblem
from kconf.engine.backend import floatx
from kconf.errors import ConfigPath

MISSING_SKLEARN = "the digits data set needs scikit-learn: pip install -e '.[digits]'"


def load_digits(path: ConfigPath) -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits of ``sklearn.datasets.load_digits`` (read from scikit-learn's own
    package data; nothing is downloaded).

    Args:
        path: the config path of the source (for the error when scikit-learn is missing).

    Returns:
        ``(x, y)``: float32 pixels of shape (1797, 64) with values 0-16, row by row of each
        8x8 image; int64 labels 0-9 of shape (1797, 1).

    Raises:
        DataProblem: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise DataProblem(MISSING_SKLEARN, path) from None
    digits = sklearn_digits()
    return (np.asarray(digits.data, dtype=floatx),
            np.asarray(digits.target, dtype=np.int64).reshape(-1, 1))
