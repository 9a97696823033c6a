"""The ``data`` section: where the train / validation / test arrays come from, and how they
are preprocessed.

Two forms. Each split its own source::

    data:
      train: {npz: {path: train.npz}}
      test:  {npz: {path: test.npz}}

or one source split by fractions, with a seed (scikit-learn's ``train_test_split``)::

    data:
      source: {digits: {}}
      split: {validation: 0.1, test: 0.2, seed: 0, stratify: true}

A source is ``{kind: {args}}`` with kind ``random``, ``npz``, ``npy``, ``csv``, ``parquet``,
``digits`` or ``images`` (the table sources, ``csv`` and ``parquet``, are in
``kconf.config.tables``; a folder of images in ``kconf.config.images``); ``npy``, ``images``,
``csv`` and ``parquet`` can stream (``stream: true``: read batch by batch, for data larger
than memory).
Paths are kept as written; the data loader resolves them against ``cfg.source.base_dir``.

For a model with several inputs or outputs, ``x`` and ``y`` give one array per input/output:
by name (a mapping) or, for ``.npz``/``.npy`` files, by position (a list); a CSV list is the
columns of one array. ``x_for`` / ``y_for`` put them in the model's order; ``load_config``
checks the names against the model.

``preprocess`` lists steps applied in order to every split, each fitted on the training split
only (``scale``, ``standardize``), or stateless (``reshape``, ``one_hot``)::

    preprocess:
      - scale: {x: minmax}        # to [0, 1] by the training split's min and max
      - reshape: {x: [8, 8, 1]}
      - one_hot: {y: 10}          # Keras's to_categorical
"""
from __future__ import annotations

from typing import Annotated, Any, Mapping, Sequence

from pydantic import AfterValidator, Field, model_validator

from kconf.args.fields import (
    Bool,
    ConfigModel,
    FixedShape,
    Fraction,
    Name,
    NonNegativeInt,
    Number,
    PositiveInt,
    Str,
    bounded,
    choice,
    config_error,
)
from kconf.args.unions import SingleKey, TaggedSpec, args_of, by_kind, tagged_union
from kconf.config.tables import CsvArgs, ParquetArgs
from kconf.config.images import ImagesArgs, StreamArgs
from kconf.text import show
from kconf.args.names import DTYPE_NAMES, SCALING_NAMES, STATISTICS_SCOPES

Path = Annotated[Str, Field(min_length=1)]
DType = choice("dtype", DTYPE_NAMES)


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


def in_model_order(value: Any, names: Sequence[str] | None,
                   aliases: Mapping[str, str] | None = None) -> list[Any]:
    """The items of a single, list or by-name form, one per model input (or output).

    Args:
        value: one item, a list (by position) or a mapping name -> item.
        names: the model's input (or output) names in order; None for a sequential model.
        aliases: other names of outputs (layer name -> output name).

    Returns:
        The items in model order.

    Raises:
        ValueError: a mapping without an item for one of ``names`` (``load_config`` reports
            that to users first).
    """
    if isinstance(value, dict):
        if names is None:
            return list(value.values())
        aliases = aliases or {}
        keyed = {(k if k in names else aliases.get(k, k)): v for k, v in value.items()}
        missing = [n for n in names if n not in keyed]
        if missing:
            raise ValueError(f"nothing given for {', '.join(missing)}")
        return [keyed[n] for n in names]
    if isinstance(value, list):
        return list(value)
    return [value]


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


class DataSourceBase(TaggedSpec):
    """One data source: ``{random: {...}}``, ``{npz: {...}}``, ``{npy: {...}}``,
    ``{csv: {...}}``, ``{parquet: {...}}``, ``{digits: {}}`` or ``{images: {...}}``."""

    @property
    def kind(self) -> str:
        """``"random"``, ``"npz"``, ``"npy"``, ``"csv"``, ``"parquet"``, ``"digits"`` or
        ``"images"``."""
        return self.tag


class RandomSource(DataSourceBase):
    random: args_of(RandomArgs)


class NpzSource(DataSourceBase):
    npz: args_of(NpzArgs)


class NpySource(DataSourceBase):
    npy: args_of(NpyArgs)


class CsvSource(DataSourceBase):
    csv: args_of(CsvArgs)


class ParquetSource(DataSourceBase):
    parquet: args_of(ParquetArgs)


class DigitsSource(DataSourceBase):
    digits: args_of(DigitsArgs)


class ImagesSource(DataSourceBase):
    images: args_of(ImagesArgs)


DATA_SOURCES: dict[str, type[DataSourceBase]] = {
    "random": RandomSource, "npz": NpzSource, "npy": NpySource, "csv": CsvSource,
    "parquet": ParquetSource, "digits": DigitsSource, "images": ImagesSource,
}

DataSource = tagged_union(
    SingleKey("data source", DATA_SOURCES, "{npz: {path: train.npz}}"), DATA_SOURCES,
)


# --- one source split by fractions ------------------------------------------------------------


class SplitConfig(ConfigModel):
    """How ``data.source`` is split: seeded fractions, as scikit-learn's ``train_test_split``.

    The samples are shuffled with ``seed`` (default: the config's ``seed``); the first
    ``ceil(test * N)`` go to the test split, the next ``ceil(validation * N)`` to the
    validation split, the rest to the training split. ``stratify`` keeps each class's share
    the same in every split (the one output's labels: integers, or one-hot rows).
    """

    validation: Fraction = Field(0.0, description="fraction of the samples for validation")
    test: Fraction = Field(0.0, description="fraction of the samples for the test split")
    seed: NonNegativeInt | None = Field(None, description="seed of the shuffle; default: the "
                                                          "config's seed")
    stratify: Bool = Field(False, description="the same share of each class in every split")

    @model_validator(mode="after")
    def _room_for_training(self):
        if self.validation + self.test >= 1:
            raise config_error("split", f"validation + test must leave samples for training, "
                                        f"got {show(self.validation)} + {show(self.test)}",
                               at="test")
        return self


# --- preprocessing steps ----------------------------------------------------------------------


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


class PreprocessStepBase(TaggedSpec):
    """One preprocessing step: ``{scale: {...}}``, ``{standardize: {...}}``,
    ``{reshape: {...}}`` or ``{one_hot: {...}}``."""

    @property
    def kind(self) -> str:
        """``"scale"``, ``"standardize"``, ``"reshape"`` or ``"one_hot"``."""
        return self.tag


class ScaleStep(PreprocessStepBase):
    scale: ScaleArgs


class StandardizeStep(PreprocessStepBase):
    standardize: StandardizeArgs


class ReshapeStep(PreprocessStepBase):
    reshape: ReshapeArgs


class OneHotStep(PreprocessStepBase):
    one_hot: OneHotArgs


PREPROCESS_STEPS: dict[str, type[PreprocessStepBase]] = {
    "scale": ScaleStep, "standardize": StandardizeStep, "reshape": ReshapeStep,
    "one_hot": OneHotStep,
}

PreprocessStep = tagged_union(
    SingleKey("preprocessing step", PREPROCESS_STEPS, "{scale: {x: minmax}}"),
    PREPROCESS_STEPS,
)


class DataConfig(ConfigModel):
    """The splits, and the preprocessing applied to them.

    Either ``train`` (required) with optional ``validation`` and ``test``, each its own
    source; or one ``source`` split by ``split``'s fractions.
    """

    train: DataSource | None = Field(None, description="the training data's source")
    validation: DataSource | None = None
    test: DataSource | None = None
    source: DataSource | None = Field(
        None, description="one source for every split, divided as split says")
    split: SplitConfig | None = Field(
        None, description="fractions of source for validation and test, and the seed")
    preprocess: list[PreprocessStep] = Field(
        default_factory=list, description="steps applied in order to every split; "
                                          "statistics come from the training split only")
    allow_nan: bool = Field(
        False, description="accept NaN and infinite values in the arrays (refused by default: "
                           "they make the loss NaN)")

    @model_validator(mode="after")
    def _one_form(self):
        if self.source is None:
            if self.train is None:
                raise config_error("data_form", "give train (and optionally validation and "
                                                "test), or one source with split")
            if self.split is not None:
                raise config_error("data_form", "split divides data.source; with train, give "
                                                "validation and test as sources", at="split")
            return self
        for key in ("train", "validation", "test"):
            if getattr(self, key) is not None:
                raise config_error("data_form", f"give source (split by split) or {key}, not "
                                                "both; with source, split: {validation: 0.1, "
                                                "test: 0.2} makes the other splits", at=key)
        return self

    def splits(self) -> dict[str, DataSourceBase]:
        """The splits given as sources of their own, by name (``train`` first); empty for
        the ``source`` form."""
        return {k: v for k, v in (("train", self.train), ("validation", self.validation),
                                  ("test", self.test)) if v is not None}

    def sources(self) -> dict[str, DataSourceBase]:
        """Every source of the section by its key: the splits, or ``{"source": ...}``."""
        return {"source": self.source} if self.source is not None else self.splits()
