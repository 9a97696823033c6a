"""The ``fit.callbacks`` list: Keras callbacks by name, ``{EarlyStopping: {patience: 3}}``."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from kconf.args.fields import (
    Bool,
    ConfigModel,
    NonNegativeFloat,
    NonNegativeInt,
    Number,
    SingleKey,
    Str,
    TaggedSpec,
    args_of,
    bounded,
    choice,
    tagged_union,
)

Mode = choice("mode", ("auto", "min", "max"))


class EarlyStoppingArgs(ConfigModel):
    monitor: Str = "val_loss"
    min_delta: NonNegativeFloat = 0.0
    patience: NonNegativeInt = 0
    mode: Mode = "auto"
    baseline: Number | None = None
    restore_best_weights: Bool = False
    start_from_epoch: NonNegativeInt = 0


class ReduceLROnPlateauArgs(ConfigModel):
    monitor: Str = "val_loss"
    factor: bounded(float, gt=0, lt=1) = 0.1
    patience: NonNegativeInt = 10
    mode: Mode = "auto"
    min_delta: NonNegativeFloat = 1e-4
    cooldown: NonNegativeInt = 0
    min_lr: NonNegativeFloat = 0.0


class ModelCheckpointArgs(ConfigModel):
    """kconf picks the paths: ``checkpoints/best.npz`` when ``monitor`` improves, and with
    ``save_best_only: false`` also ``checkpoints/epoch-NNN.npz`` every epoch
    (``checkpoints/last.npz`` is always written: it is what ``--resume`` reads)."""

    monitor: Str = "val_loss"
    mode: Mode = "auto"
    save_best_only: Bool = True


class CSVLoggerArgs(ConfigModel):
    filename: Str = Field("log.csv", description="file in the run folder")
    separator: Str = ","
    append: Bool = False


class CallbackSpecBase(TaggedSpec):
    """A callback as ``{Name: {args}}``."""

    @property
    def class_name(self) -> str:
        return self.tag

    def kwargs(self) -> dict[str, Any]:
        return self.args.model_dump()


class EarlyStoppingSpec(CallbackSpecBase):
    EarlyStopping: args_of(EarlyStoppingArgs)


class ReduceLROnPlateauSpec(CallbackSpecBase):
    ReduceLROnPlateau: args_of(ReduceLROnPlateauArgs)


class ModelCheckpointSpec(CallbackSpecBase):
    ModelCheckpoint: args_of(ModelCheckpointArgs)


class CSVLoggerSpec(CallbackSpecBase):
    CSVLogger: args_of(CSVLoggerArgs)


CALLBACK_SPECS: dict[str, type[CallbackSpecBase]] = {
    "EarlyStopping": EarlyStoppingSpec, "ReduceLROnPlateau": ReduceLROnPlateauSpec,
    "ModelCheckpoint": ModelCheckpointSpec, "CSVLogger": CSVLoggerSpec,
}

CallbackSpec = tagged_union(SingleKey("callback", CALLBACK_SPECS, "{EarlyStopping: {patience: 3}}"),
                            CALLBACK_SPECS)
