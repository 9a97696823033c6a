"""Write ``imbalanced.csv`` for ``configs/imbalanced_tabular.yaml``.

600 rows of 6 numeric features and a 0/1 ``label`` with about 10% positives: the label is
drawn from a logistic model of the features (so AUC has something to find), with the bias
set low. Deterministic (seeded); two decimals a cell keep the file small.

    python configs/data/make_imbalanced.py
"""
from pathlib import Path

import numpy as np

ROWS, FEATURES = 600, 6


def main() -> None:
    rng = np.random.default_rng(14)
    x = rng.standard_normal((ROWS, FEATURES))
    coef = np.array([1.5, -1.0, 0.8, 0.0, 0.5, -0.3])
    p = 1.0 / (1.0 + np.exp(-(x @ coef - 3.0)))
    label = (rng.random(ROWS) < p).astype(int)
    names = [f"f{i}" for i in range(FEATURES)]
    lines = [",".join([*names, "label"])]
    lines += [",".join([*(f"{v:.2f}" for v in row), str(y)]) for row, y in zip(x, label)]
    Path(__file__).with_name("imbalanced.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
