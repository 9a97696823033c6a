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
``digits`` or ``images``; each kind's arguments are in a module of their own, imported when a
config first names the kind (``random_data``; ``arrays``: npz, npy and digits; ``tables``: csv
and parquet; ``images``), and so are the ``preprocess`` steps' (``preprocess``). ``npy``,
``images``, ``csv`` and ``parquet`` can stream (``stream: true``: read batch by batch, for
data larger than memory). Paths are kept as written; the data loader resolves them against ``cfg.source.base_dir``.

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

from typing import Annotated, Any, Mapping, Sequence

from pydantic import Field, model_validator

from kconf.args.fields import (
    Bool,
    ConfigModel,
    Fraction,
    NonNegativeInt,
    Str,
    choice,
    config_error,
)
from kconf.args.unions import (
    SingleKey,
    TaggedSpec,
    Wrappers,
    imported,
    lazy_union,
    wrapper_lookup,
)
from kconf.text import show
from kconf.args.names import DTYPE_NAMES

#: A path as written (resolved against the config's folder by the data loader).
Path = Annotated[Str, Field(min_length=1)]
DType = choice("dtype", DTYPE_NAMES)


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


class DataSourceBase(TaggedSpec):
    """One data source: ``{random: {...}}``, ``{npz: {...}}``, ``{npy: {...}}``,
    ``{csv: {...}}``, ``{parquet: {...}}``, ``{digits: {}}`` or ``{images: {...}}``."""

    @property
    def kind(self) -> str:
        """``"random"``, ``"npz"``, ``"npy"``, ``"csv"``, ``"parquet"``, ``"digits"`` or
        ``"images"``."""
        return self.tag


def _title(tag: str) -> str:
    """``one_hot`` -> ``OneHot``: the start of a wrapper's class name."""
    return tag.title().replace("_", "")


#: Kind -> its source model ``{kind: {args}}`` (``RandomSource``), built (and the module of its
#: arguments imported) when a config first names it.
DATA_SOURCES: Mapping[str, type[DataSourceBase]] = Wrappers(
    DataSourceBase, __name__, ("random", "npz", "npy", "csv", "parquet", "digits", "images"),
    imported({"random": "kconf.config.random_data:RandomArgs",
              "npz": "kconf.config.arrays:NpzArgs", "npy": "kconf.config.arrays:NpyArgs",
              "csv": "kconf.config.tables:CsvArgs", "parquet": "kconf.config.tables:ParquetArgs",
              "digits": "kconf.config.arrays:DigitsArgs",
              "images": "kconf.config.images:ImagesArgs"}),
    name=lambda kind: f"{_title(kind)}Source")

DataSource = lazy_union(SingleKey("data source", DATA_SOURCES, "{npz: {path: train.npz}}"),
                        DATA_SOURCES)


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


class PreprocessStepBase(TaggedSpec):
    """One preprocessing step: ``{scale: {...}}``, ``{standardize: {...}}``,
    ``{reshape: {...}}`` or ``{one_hot: {...}}``."""

    @property
    def kind(self) -> str:
        """``"scale"``, ``"standardize"``, ``"reshape"`` or ``"one_hot"``."""
        return self.tag


#: Kind -> its step model ``{kind: {args}}`` (``ScaleStep``; the arguments, in
#: ``kconf.config.preprocess``, may not be null), built when a config first names it.
PREPROCESS_STEPS: Mapping[str, type[PreprocessStepBase]] = Wrappers(
    PreprocessStepBase, __name__, ("scale", "standardize", "reshape", "one_hot"),
    imported({kind: f"kconf.config.preprocess:{_title(kind)}Args"
              for kind in ("scale", "standardize", "reshape", "one_hot")}),
    name=lambda kind: f"{_title(kind)}Step", null_is_empty=False)

PreprocessStep = lazy_union(
    SingleKey("preprocessing step", PREPROCESS_STEPS, "{scale: {x: minmax}}"),
    PREPROCESS_STEPS,
)

#: The wrappers are names of this module too (``RandomSource``).
__getattr__ = wrapper_lookup(__name__, DATA_SOURCES, PREPROCESS_STEPS)


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
