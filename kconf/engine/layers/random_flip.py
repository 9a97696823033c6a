"""RandomFlip: in training, each image flipped with probability 1/2 (Keras 3's ``RandomFlip``:
one draw per image; ``horizontal_and_vertical`` flips both axes of the drawn images);
identity in inference."""
from __future__ import annotations

from typing import ClassVar

from kconf.args.fields import choice
from kconf.args.layer import LayerArgs
from kconf.engine.backend import xp
from kconf.engine.layers.image_layer import RandomImageLayer

#: Keras's modes: which axes a drawn image is flipped along.
MODES = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}


class RandomFlipArgs(LayerArgs):
    keras_channels_last: ClassVar[bool] = True
    keras_ignored: ClassVar[frozenset[str]] = frozenset({"seed"})  # kconf draws from the run's rng

    mode: choice("mode", tuple(MODES)) = "horizontal_and_vertical"


class RandomFlip(RandomImageLayer):
    """Flip images at random while training (Keras ``RandomFlip``, channels_last).

    Each image is flipped where a uniform draw from the ``rng`` given to ``forward`` is at
    most 0.5, as Keras draws; the gradient is flipped back the same way.

    Args:
        mode: ``horizontal`` (left-right), ``vertical`` (up-down) or
            ``horizontal_and_vertical`` (both, for the same images).
    """

    def __init__(self, mode: str = "horizontal_and_vertical", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"RandomFlip mode must be one of {tuple(MODES)}, got {mode!r}")
        self.mode = mode

    def augment(self, x, rng):
        flips = (rng.random(x.shape[0]) <= 0.5)[:, None, None, None]
        axes = MODES[self.mode]

        def flip(a):
            return xp.where(flips, xp.flip(a, axis=axes), a)

        return flip(x), flip  # a flip is its own inverse, and linear
