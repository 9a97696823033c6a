"""One data set divided into train / validation / test by seeded fractions."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The splits ``split_indices`` makes, in the order of its codes.
PARTS = ("train", "validation", "test")


def split_indices(n: int, validation: float, test: float, rng: np.random.Generator,
                  labels: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Sample indices of each split, as scikit-learn's ``train_test_split`` (applied twice).

    The samples are shuffled by ``rng``; ``ceil(test * n)`` go to the test split,
    ``ceil(validation * n)`` to the validation split, the rest to the training split. With
    ``labels`` (stratified), every class is divided in the same proportions (to within one
    sample), and the totals are the same as without.

    Args:
        n: the number of samples.
        validation: the fraction for validation, in [0, 1).
        test: the fraction for the test split, in [0, 1).
        rng: the stream the shuffle draws from.
        labels: one integer class per sample, to stratify by; None for a plain shuffle.

    Returns:
        ``{"train": ..., "validation": ..., "test": ...}``: disjoint index arrays in shuffled
        order that together hold every sample; a split with fraction 0 is left out.

    Raises:
        ValueError: no sample would be left for training.
    """
    n_test, n_val = math.ceil(test * n), math.ceil(validation * n)
    if n - n_test - n_val < 1:
        raise ValueError(f"{n} samples leave none for training after {n_val} for validation "
                         f"and {n_test} for test")
    perm = rng.permutation(n)
    codes = np.zeros(n, dtype=np.int8)  # by position in `order`: 0 train, 1 validation, 2 test
    if labels is None:
        order = perm
        codes[:n_test] = 2
        codes[n_test:n_test + n_val] = 1
    else:
        order = perm[np.argsort(np.asarray(labels)[perm], kind="stable")]
        test_mask = _spread(n, n_test)
        codes[test_mask] = 2
        rest = np.flatnonzero(~test_mask)
        codes[rest[_spread(len(rest), n_val)]] = 1
    which = np.empty(n, dtype=np.int8)
    which[order] = codes
    in_perm = which[perm]
    return {part: perm[in_perm == code] for code, part in enumerate(PARTS)
            if code == 0 or (n_val if code == 1 else n_test) > 0}


def _spread(n: int, k: int) -> np.ndarray:
    """A mask of exactly ``k`` of ``n`` positions, evenly spaced (so each run of consecutive
    positions, one class, gets its share to within one)."""
    j = np.arange(n, dtype=np.int64)
    return (j + 1) * k // n > j * k // n


@dataclass
class Split:
    """Arrays of one split — one per model input and output, in model order — with the config
    path they came from (for error messages)."""

    x: list[np.ndarray]
    y: list[np.ndarray]
    path: tuple
    #: one weight per sample (the source's ``sample_weight``), or None
    sample_weight: np.ndarray | None = None

    def take(self, indices: np.ndarray) -> Split:
        """Some of the samples, as a new split from the same source.

        Args:
            indices: sample indices, in the order wanted.

        Returns:
            A ``Split`` with the same config path.
        """
        w = self.sample_weight
        return Split([a[indices] for a in self.x], [a[indices] for a in self.y], self.path,
                     None if w is None else w[indices])
