"""Write ``transformer_tokens.npz`` for ``configs/transformer_classifier.yaml``.

Each sample is 8 tokens of a 10-word vocabulary holding the tokens 1 and 2 once each, at
random positions, and tokens 3-9 elsewhere; the label is 1 when token 1 comes before token 2.
Telling that needs both what the tokens are and where they are: a task for attention over
token + position embeddings. ``positions`` is 0..7 in every sample (the position input).

    python configs/data/make_transformer_tokens.py
"""
from pathlib import Path

import numpy as np

SAMPLES, STEPS, VOCABULARY = 512, 8, 10


def main() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(3, VOCABULARY, (SAMPLES, STEPS))
    places = np.argsort(rng.random((SAMPLES, STEPS)), axis=1)[:, :2]  # two distinct positions
    rows = np.arange(SAMPLES)
    tokens[rows, places[:, 0]] = 1
    tokens[rows, places[:, 1]] = 2
    label = (places[:, 0] < places[:, 1]).astype("float32")[:, None]
    positions = np.broadcast_to(np.arange(STEPS), (SAMPLES, STEPS))
    np.savez_compressed(Path(__file__).with_name("transformer_tokens.npz"),
                        tokens=tokens.astype("int32"), positions=positions.astype("int32"),
                        label=label)


if __name__ == "__main__":
    main()
