"""Write ``digits_images/`` for ``configs/digits_images.yaml``: scikit-learn's 1,797 handwritten
digits as 8x8 grayscale PNG files, one folder per digit (``digits_images/3/0042.png``), the
layout Keras's ``image_dataset_from_directory`` reads. Pixel values 0-16 become 0-255 (16 per
step, 16 itself 255). Needs scikit-learn and Pillow (the ``digits`` and ``images`` extras).
The tests write it too (tests/conftest.py); the folder is not committed.

    python configs/data/make_digits_images.py
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

FOLDER = Path(__file__).with_name("digits_images")


def main(folder: Path = FOLDER) -> Path:
    """Write the folder (atomically: a half-written folder is never left under its name)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.minimum(digits.images * 16, 255).astype(np.uint8)
    tmp = Path(tempfile.mkdtemp(prefix=".digits_images-", dir=folder.parent))
    for i, (image, label) in enumerate(zip(pixels, digits.target)):
        (tmp / str(label)).mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp / str(label) / f"{i:04d}.png")
    try:
        os.rename(tmp, folder)
    except OSError:  # written meanwhile by another process: keep that one
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


if __name__ == "__main__":
    print(f"wrote {main()}")
