"""The ``random`` data source: the docs' dummy arrays, seeded (``{random: {samples: 100,
x: [20], classes: 10}}``): uniform floats, or integers in a range, for each input; labels or
regression targets for each output.
"""

from typing import Annotated, Any, Mapping, Sequence

from pydantic import Field, model_validator

from kconf.args.fields import (
    Bool,
    ConfigModel,
    FixedShape,
    Name,
    Number,
    PositiveInt,
    bounded,
    config_error,
)
from kconf.args.unions import by_kind
from kconf.config.data import DType, in_model_order
from kconf.text import show


def _check_range(spec: Any, prefix: str = "") -> None:
    """Integer data needs ``high``; bounds of integer data are integers; ``high > low``."""
    low, high = spec.low, spec.high
    if spec.dtype != "float32":
        if high is None:
            raise config_error("random_range", f"{spec.dtype} data needs high: integers are "
                                               "drawn from [low, high)", at=prefix + "dtype")
        for key, value in (("low", low), ("high", high)):
            if not float(value).is_integer():
                raise config_error("random_range", f"{key} must be an integer for "
                                                   f"{spec.dtype} data, got {show(value)}",
                                   at=prefix + key)
    if high is not None and not high > low:
        raise config_error("random_range", f"high must be greater than low, got "
                                           f"{show(high)} <= {show(low)}", at=prefix + "high")


def _bounds(spec: Any) -> tuple[float, float] | tuple[int, int]:
    if spec.dtype == "float32":
        return float(spec.low), float(1.0 if spec.high is None else spec.high)
    return int(spec.low), int(spec.high)


class ArraySpec(ConfigModel):
    """Random values for one input: uniform floats in [low, high) (default [0, 1)), or, for
    ``int32``/``int64``, integers in [low, high) (``high`` required: a vocabulary size)."""

    shape: FixedShape = Field(description="shape of one sample, without the batch axis")
    dtype: DType = "float32"
    low: Number = 0
    high: Number | None = Field(None, description="exclusive upper bound; default 1.0 for "
                                                  "floats, required for integers")

    @model_validator(mode="after")
    def _range(self):
        _check_range(self)
        return self

    def bounds(self) -> tuple[float, float] | tuple[int, int]:
        """``(low, high)`` with the default filled: ints for integer data."""
        return _bounds(self)


class TargetSpec(ConfigModel):
    """Random targets for one output: uniform floats of ``shape``, or labels of ``classes``."""

    shape: FixedShape | None = Field(None, description="shape of one regression target")
    classes: bounded(int, ge=2) | None = Field(None, description="integer class labels")
    one_hot: Bool = Field(False, description="one-hot labels (needs classes)")

    @model_validator(mode="after")
    def _one_kind(self):
        if self.classes is None and self.shape is None:
            raise config_error("random_target", "give classes (labels) or shape (of "
                                                "regression targets)")
        if self.classes is not None and self.shape is not None:
            raise config_error("random_target", "give classes or shape, not both", at="shape")
        if self.one_hot and self.classes is None:
            raise config_error("random_target", "one_hot needs classes", at="one_hot")
        return self


#: One input's random values: a shape (uniform floats in [0, 1)) or an ``ArraySpec``.
InputArray = by_kind(list=FixedShape, mapping=ArraySpec)
#: One output's random targets: a shape (uniform floats) or a ``TargetSpec``.
TargetArray = by_kind(list=FixedShape, mapping=TargetSpec)


class RandomArgs(ConfigModel):
    """Synthetic data, the docs' dummy arrays.

    ``x`` is the shape of one sample (uniform floats in [0, 1), or per ``dtype``/``low``/
    ``high``), or a mapping input name -> shape or ``{shape, dtype, low, high}``. Targets are
    labels from ``classes`` (one output), or ``y``: the shape of one regression target, or a
    mapping output name -> shape or ``{shape}`` / ``{classes, one_hot}``.
    """

    samples: PositiveInt
    x: by_kind(list=FixedShape, mapping=Annotated[dict[Name, InputArray], Field(min_length=1)],
               expected="a shape or a mapping input -> shape") = Field(
        description="shape of one sample, without the batch axis; or input name -> shape or "
                    "{shape, dtype, low, high}")
    dtype: DType = Field("float32", description="element type of a single x")
    low: Number = Field(0, description="lower bound of a single x's values")
    high: Number | None = Field(None, description="exclusive upper bound of a single x's "
                                                  "values (required for integer data)")
    classes: bounded(int, ge=2) | None = Field(None, description="integer class labels")
    one_hot: Bool = Field(False, description="one-hot labels (needs classes)")
    y: by_kind(list=FixedShape, mapping=Annotated[dict[Name, TargetArray],
                                                  Field(min_length=1)],
               expected="a shape or a mapping output -> target") | None = Field(
        None, description="shape of one regression target; or output name -> shape or "
                          "{shape} / {classes, one_hot}")

    @model_validator(mode="after")
    def _one_target(self):
        if self.classes is None and self.y is None:
            raise config_error("random_target", "give classes (labels) or y (the shape of "
                                                "regression targets)")
        if self.classes is not None and self.y is not None:
            raise config_error("random_target", "give classes or y, not both", at="y")
        if self.one_hot and self.classes is None:
            raise config_error("random_target", "one_hot needs classes", at="one_hot")
        return self

    @model_validator(mode="after")
    def _single_x_range(self):
        if isinstance(self.x, dict):
            for key, default in (("dtype", "float32"), ("low", 0), ("high", None)):
                if getattr(self, key) != default:
                    raise config_error("random_range", f"{key} describes a single x; give it "
                                                       "in each input's spec", at=key)
        else:
            _check_range(self)
        return self

    def x_for(self, inputs: Sequence[str] | None) -> list[ArraySpec]:
        """The random values of each model input.

        Args:
            inputs: ``RunConfig.input_names()`` (None for a sequential model).

        Returns:
            One ``ArraySpec`` per input, in order.
        """
        if not isinstance(self.x, dict):
            return [ArraySpec(shape=self.x, dtype=self.dtype, low=self.low, high=self.high)]
        return [a if isinstance(a, ArraySpec) else ArraySpec(shape=a)
                for a in in_model_order(self.x, inputs)]

    def y_for(self, outputs: Sequence[str] | None,
              aliases: Mapping[str, str] | None = None) -> list[TargetSpec]:
        """The random targets of each model output.

        Args:
            outputs: ``RunConfig.output_names()`` (None for a sequential model).
            aliases: ``RunConfig.output_aliases()``.

        Returns:
            One ``TargetSpec`` per output, in order.
        """
        if self.y is None:
            return [TargetSpec(classes=self.classes, one_hot=self.one_hot)]
        if not isinstance(self.y, dict):
            return [TargetSpec(shape=self.y)]
        return [t if isinstance(t, TargetSpec) else TargetSpec(shape=t)
                for t in in_model_order(self.y, outputs, aliases)]
