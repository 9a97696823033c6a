"""Write ``shapes.npz`` for ``configs/conv_autoencoder.yaml``.

Each sample is a 16x16 one-channel image of one or two filled rectangles (pixels 1.0 on 0.0),
of random sizes and places: a small picture set with structure for a convolutional
autoencoder to learn. ``images`` is both the input and the target.

    python configs/data/make_shapes.py
"""
from pathlib import Path

import numpy as np

SAMPLES, SIDE = 256, 16


def main() -> None:
    rng = np.random.default_rng(0)
    images = np.zeros((SAMPLES, SIDE, SIDE, 1), dtype=np.uint8)
    rows = np.arange(SIDE)
    for _ in range(2):
        # corners of one rectangle per image: top-left and a size of 3 to 8 pixels a side
        top, left = rng.integers(0, SIDE - 3, (2, SAMPLES))
        height, width = rng.integers(3, 9, (2, SAMPLES))
        inside_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])
        inside_cols = (rows >= left[:, None]) & (rows < (left + width)[:, None])
        shown = rng.random(SAMPLES) < 0.7  # a second rectangle in about 70% of the images
        images[..., 0] |= (inside_rows[:, :, None] & inside_cols[:, None, :]
                           & (shown[:, None, None] | (_ == 0))).astype(np.uint8)
    np.savez_compressed(Path(__file__).with_name("shapes.npz"),
                        images=images.astype("float32"))


if __name__ == "__main__":
    main()
