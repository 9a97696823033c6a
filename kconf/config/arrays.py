"""The array sources of ``data``: ``.npz`` and ``.npy`` files (``x`` and ``y`` one array, a
list in input/output order or a mapping by name), and scikit-learn's ``digits``.
"""

from typing import Annotated, Any, Mapping, Sequence

from pydantic import Field

from kconf.args.fields import ConfigModel, Name, Str
from kconf.args.unions import by_kind
from kconf.config.data import Path, in_model_order
from kconf.config.images import StreamArgs


class _ByName:
    """``x_for`` / ``y_for`` of the file sources."""

    def x_for(self, inputs: Sequence[str] | None) -> list[str]:
        """The array (name or path) of each model input, in order.

        Args:
            inputs: ``RunConfig.input_names()`` (None for a sequential model).
        """
        return in_model_order(self.x, inputs)

    def y_for(self, outputs: Sequence[str] | None,
              aliases: Mapping[str, str] | None = None) -> list[str]:
        """The array (name or path) of each model output, in order.

        Args:
            outputs: ``RunConfig.output_names()`` (None for a sequential model).
            aliases: ``RunConfig.output_aliases()``.
        """
        return in_model_order(self.y, outputs, aliases)


def _arrays(item: Any, noun: str) -> Any:
    """One array, a list of them (by position) or a mapping by input/output name."""
    return by_kind(scalar=item, list=Annotated[list[item], Field(min_length=1)],
                   mapping=Annotated[dict[Name, item], Field(min_length=1)],
                   expected=f"{noun}, a list of them or a mapping by name")


class NpzArgs(_ByName, ConfigModel):
    """Arrays of one ``.npz`` file: ``x`` and ``y`` name them inside the archive (one name, a
    list in input/output order, or a mapping by input/output name)."""

    path: Path
    x: _arrays(Str, "an array name") = "x"
    y: _arrays(Str, "an array name") = "y"
    sample_weight: Str | None = Field(
        None, description="the array of per-sample weights (Keras's sample_weight), or none")


class NpyArgs(_ByName, StreamArgs):
    """``.npy`` files: ``x`` and ``y`` are one path, a list of paths (in input/output order) or
    a mapping by input/output name. With ``stream: true`` the inputs stay on disk
    (memory-mapped) and are read batch by batch."""

    x: _arrays(Path, "a path")
    y: _arrays(Path, "a path")
    sample_weight: Path | None = Field(
        None, description="a .npy file of per-sample weights (Keras's sample_weight), or none")


class DigitsArgs(ConfigModel):
    """scikit-learn's handwritten digits (``load_digits``): 1,797 images of 8x8 pixels as 64
    features with values 0-16, and labels 0-9 of shape ``(N, 1)``. Shipped inside
    scikit-learn, so nothing is downloaded; needs the ``digits`` extra."""
