"""The ``data`` section: where the train / validation / test arrays come from.

Each split is one source, ``{kind: {args}}`` with kind ``random``, ``npz`` or ``npy``. Paths
are kept as written; the data loader resolves them against ``cfg.source.base_dir``.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from kconf.config.fields import (
    Bool,
    ConfigModel,
    FixedShape,
    PositiveInt,
    SingleKey,
    Str,
    TaggedSpec,
    args_of,
    bounded,
    config_error,
    tagged_union,
)

Path = Annotated[Str, Field(min_length=1)]


class RandomArgs(ConfigModel):
    """Synthetic data: ``x`` uniform in [0, 1); labels from ``classes`` or targets of shape ``y``."""

    samples: PositiveInt
    x: FixedShape = Field(description="shape of one sample, without the batch axis")
    classes: bounded(int, ge=2) | None = Field(None, description="integer class labels")
    one_hot: Bool = Field(False, description="one-hot labels (needs classes)")
    y: FixedShape | None = Field(None, description="shape of one regression target")

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


class NpzArgs(ConfigModel):
    """Arrays ``x`` and ``y`` (their names inside the archive) of one ``.npz`` file."""

    path: Path
    x: Str = "x"
    y: Str = "y"


class NpyArgs(ConfigModel):
    """Two ``.npy`` files: inputs and targets."""

    x: Path
    y: Path


class DataSourceBase(TaggedSpec):
    """One data split: ``{random: {...}}``, ``{npz: {...}}`` or ``{npy: {...}}``."""

    @property
    def kind(self) -> str:
        """``"random"``, ``"npz"`` or ``"npy"``."""
        return self.tag


class RandomSource(DataSourceBase):
    random: args_of(RandomArgs)


class NpzSource(DataSourceBase):
    npz: args_of(NpzArgs)


class NpySource(DataSourceBase):
    npy: args_of(NpyArgs)


DATA_SOURCES: dict[str, type[DataSourceBase]] = {
    "random": RandomSource, "npz": NpzSource, "npy": NpySource,
}

DataSource = tagged_union(
    SingleKey("data source", DATA_SOURCES, "{npz: {path: train.npz}}"), DATA_SOURCES,
)


class DataConfig(ConfigModel):
    """The splits: ``train`` is required, ``validation`` and ``test`` are optional."""

    train: DataSource
    validation: DataSource | None = None
    test: DataSource | None = None

    def splits(self) -> dict[str, DataSourceBase]:
        """The splits that are given, by name (``train`` first)."""
        return {k: v for k, v in (("train", self.train), ("validation", self.validation),
                                  ("test", self.test)) if v is not None}
