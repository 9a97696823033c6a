"""The ``preprocess`` steps of ``data``, applied in order to every split: ``scale`` and
``standardize`` (fitted on the training split only), ``reshape`` and ``one_hot``.
"""

from typing import Annotated, Any, Mapping, Sequence

from pydantic import AfterValidator, Field, model_validator

from kconf.args.fields import Bool, ConfigModel, Name, Number, bounded, choice, config_error
from kconf.args.unions import by_kind
from kconf.args.names import SCALING_NAMES, STATISTICS_SCOPES
from kconf.text import show


def _per_array(item: Any, noun: str, example: str, kind: str = "scalar") -> Any:
    """A step's setting (written as a YAML ``kind``: scalar or list) for every input (or
    output), or a mapping name -> setting."""
    return by_kind(**{kind: item}, mapping=Annotated[dict[Name, item], Field(min_length=1)],
                   expected=f"{example} or a mapping {noun} -> setting")


class StepArgs(ConfigModel):
    """``x`` and/or ``y``: the arrays a step changes. A single setting applies to every model
    input (``x``) or output (``y``); a mapping by input/output name to the named ones."""

    @model_validator(mode="after")
    def _x_or_y(self):
        if self.x is None and self.y is None:
            raise config_error("preprocess", "give x (inputs) and/or y (targets): the arrays "
                                             "this step changes")
        return self

    def settings(self, key: str, names: Sequence[str] | None,
                 aliases: Mapping[str, str] | None = None) -> list[Any]:
        """The setting of each model input (``key="x"``) or output (``"y"``), in order.

        Args:
            key: ``"x"`` or ``"y"``.
            names: the model's input (or output) names; None for a sequential model.
            aliases: ``RunConfig.output_aliases()`` for outputs.

        Returns:
            One setting per array (None where the step leaves the array alone); for
            ``names=None`` a one-item list.
        """
        value = getattr(self, key)
        count = 1 if names is None else len(names)
        if not isinstance(value, dict):
            return [value] * count
        if names is None:
            return list(value.values())[:1]
        aliases = aliases or {}
        keyed = {(k if k in names else aliases.get(k, k)): v for k, v in value.items()}
        return [keyed.get(n) for n in names]


Scaling = choice("scaling", SCALING_NAMES)
Scope = choice("statistics scope", STATISTICS_SCOPES)


class ScaleArgs(StepArgs):
    """Scale to ``range`` (default [0, 1]) by the training split's minimum and maximum, as
    scikit-learn's ``MinMaxScaler``: ``{x: minmax}``."""

    x: _per_array(Scaling, "input", "minmax") | None = None
    y: _per_array(Scaling, "output", "minmax") | None = None
    range: Annotated[tuple[Number, Number], Field(
        description="the [low, high] that the training split's minimum and maximum map to")
    ] = (0.0, 1.0)
    per: Scope = Field("feature", description="statistics per feature (each value of a "
                                              "sample) or over all values")

    @model_validator(mode="after")
    def _increasing(self):
        low, high = self.range
        if not high > low:
            raise config_error("scale_range", f"range must be [low, high] with high > low, "
                                              f"got [{show(low)}, {show(high)}]", at="range")
        return self


class StandardizeArgs(StepArgs):
    """Subtract the training split's mean and divide by its standard deviation, as
    scikit-learn's ``StandardScaler``: ``{x: true}``."""

    x: _per_array(Bool, "input", "true") | None = None
    y: _per_array(Bool, "output", "true") | None = None
    per: Scope = Field("feature", description="statistics per feature (each value of a "
                                              "sample) or over all values")


def _check_target_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    for i, d in enumerate(shape):
        if d == 0 or d < -1:
            raise config_error("shape", f"a dimension is a positive integer or -1 (inferred), "
                                        f"got {d}", at=str(i))
    if shape.count(-1) > 1:
        raise config_error("shape", "only one dimension can be -1 (inferred)")
    return shape


#: The shape of one sample after ``reshape`` (Keras's ``Reshape``: one dimension may be -1).
TargetShape = Annotated[tuple[bounded(int, ge=-1), ...], Field(min_length=1),
                        AfterValidator(_check_target_shape)]


class ReshapeArgs(StepArgs):
    """Give each sample a new shape, as Keras's ``Reshape``: ``{x: [8, 8, 1]}`` turns 64
    features into an 8x8 image with one channel."""

    x: _per_array(TargetShape, "input", "a shape", kind="list") | None = None
    y: _per_array(TargetShape, "output", "a shape", kind="list") | None = None


NumClasses = bounded(int, ge=2)


class OneHotArgs(StepArgs):
    """Integer class labels to one-hot rows, as Keras's ``to_categorical``: ``{y: 10}`` gives
    the number of classes."""

    x: _per_array(NumClasses, "input", "the number of classes") | None = None
    y: _per_array(NumClasses, "output", "the number of classes") | None = None
