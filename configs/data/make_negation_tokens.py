"""Write ``negation_tokens.npz`` for ``configs/text_bilstm.yaml``.

Each sample is a "sentence" of 12 word indices from a 20-word vocabulary: 0 is padding (the
first steps of some sentences), 1 means *good*, 2 means *bad*, 3 means *not*, 4-19 are
neutral words. A sentence holds one *good* or *bad*; half of the time *not* stands right
before it, and half of the sentences hold another *not* elsewhere, which negates nothing.
The label is 1 for a positive sentence: *good*, or *not bad*. The words alone tell it only
three times in four (most sentences of either label hold a *not*); where *not* stands tells
it always, so the model has to read the sequence.

    python configs/data/make_negation_tokens.py
"""
from pathlib import Path

import numpy as np

SAMPLES, STEPS, VOCABULARY = 800, 12, 20
GOOD, BAD, NOT = 1, 2, 3


def main() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(4, VOCABULARY, (SAMPLES, STEPS))
    padding = rng.integers(0, 4, SAMPLES)  # 0-3 padding steps at the start
    tokens[np.arange(STEPS)[None, :] < padding[:, None]] = 0
    word = rng.choice([GOOD, BAD], SAMPLES)
    negated = rng.random(SAMPLES) < 0.5
    label = np.zeros(SAMPLES, dtype="float32")
    for i in range(SAMPLES):
        place = rng.integers(padding[i] + 2, STEPS)  # room for a `not` before it
        tokens[i, place] = word[i]
        if negated[i]:
            tokens[i, place - 1] = NOT
        elif rng.random() < 0.5:  # a `not` that negates nothing: not right before the word
            free = [s for s in range(padding[i], STEPS) if s not in (place - 1, place)]
            tokens[i, rng.choice(free)] = NOT
        if negated[i] and rng.random() < 0.5:  # ... and one more in negated sentences
            free = [s for s in range(padding[i], STEPS) if s not in (place - 1, place)]
            tokens[i, rng.choice(free)] = NOT
        label[i] = float((word[i] == GOOD) != negated[i])
    np.savez_compressed(Path(__file__).with_name("negation_tokens.npz"),
                        tokens=tokens.astype("int32"), label=label[:, None])


if __name__ == "__main__":
    main()
