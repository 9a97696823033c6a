"""The ``fit.callbacks`` list: Keras callbacks by name, ``{EarlyStopping: {patience: 3}}``.

The argument models are deferred and each wrapper is built when a config first names its
callback, so that start-up does not build them all.
"""

from typing import Annotated, Any, Mapping

from pydantic import Field, PlainValidator, WithJsonSchema

from kconf.args.fields import (
    Bool,
    DeferredModel,
    NonNegativeFloat,
    NonNegativeInt,
    Number,
    Str,
    bounded,
    choice,
    config_error,
)
from kconf.args.unions import SingleKey, TaggedSpec, Wrappers, lazy_union, wrapper_lookup

Mode = choice("mode", ("auto", "min", "max"))


class EarlyStoppingArgs(DeferredModel):
    monitor: Str = "val_loss"
    min_delta: NonNegativeFloat = 0.0
    patience: NonNegativeInt = 0
    mode: Mode = "auto"
    baseline: Number | None = None
    restore_best_weights: Bool = False
    start_from_epoch: NonNegativeInt = 0


class ReduceLROnPlateauArgs(DeferredModel):
    monitor: Str = "val_loss"
    factor: bounded(float, gt=0, lt=1) = 0.1
    patience: NonNegativeInt = 10
    mode: Mode = "auto"
    min_delta: NonNegativeFloat = 1e-4
    cooldown: NonNegativeInt = 0
    min_lr: NonNegativeFloat = 0.0


class ModelCheckpointArgs(DeferredModel):
    """kconf picks the paths: ``checkpoints/best.npz`` when ``monitor`` improves, and with
    ``save_best_only: false`` also ``checkpoints/epoch-NNN.npz`` every epoch
    (``checkpoints/last.npz`` is always written: it is what ``--resume`` reads)."""

    monitor: Str = "val_loss"
    mode: Mode = "auto"
    save_best_only: Bool = True


class CSVLoggerArgs(DeferredModel):
    filename: Str = Field("log.csv", description="file in the run folder")
    separator: Str = ","
    append: Bool = False


def _update_freq(value: Any) -> str | int:
    """Keras's ``update_freq``: ``'epoch'``, ``'batch'`` or a positive number of batches."""
    if value in ("epoch", "batch"):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise config_error("update_freq", "must be 'epoch', 'batch' or a positive integer (every "
                                      f"N batches), got {value!r}")


UpdateFreq = Annotated[str | int, PlainValidator(_update_freq), WithJsonSchema(
    {"anyOf": [{"type": "string", "enum": ["epoch", "batch"]},
               {"type": "integer", "exclusiveMinimum": 0}]})]


class TensorBoardArgs(DeferredModel):
    """Keras's TensorBoard: event files TensorBoard reads (needs the ``tensorboard`` extra)."""

    log_dir: Str = Field("logs", description="folder of the event files (train/ and "
                                             "validation/); a relative one is in the run folder")
    histogram_freq: NonNegativeInt = Field(
        0, description="every N epochs, histograms of the weights and their gradients (0: none)")
    write_graph: Bool = Field(True, description="the model graph (TensorBoard's Graphs tab)")
    write_steps_per_second: Bool = False
    update_freq: UpdateFreq = Field(
        "epoch", description="'epoch', 'batch' or every N batches: when batch scalars are "
                             "written (epoch scalars always are)")


class MLflowArgs(DeferredModel):
    """Logs the run to MLflow (needs the ``mlflow`` extra): params, metrics, artifacts."""

    tracking_uri: Str | None = Field(
        None, description="where runs go (a file: URI, http://host:5000 ...); default "
                          "MLFLOW_TRACKING_URI or MLflow's own default")
    experiment_name: Str | None = Field(None, description="default: the config's name")
    run_name: Str | None = Field(None, description="default: <name>/<time> of the run folder")


class CallbackSpecBase(TaggedSpec):
    """A callback as ``{Name: {args}}``."""

    @property
    def class_name(self) -> str:
        return self.tag

    def kwargs(self) -> dict[str, Any]:
        return self.args.model_dump()


#: Callback name -> its argument model.
CALLBACK_ARGS: dict[str, type[DeferredModel]] = {
    "EarlyStopping": EarlyStoppingArgs, "ReduceLROnPlateau": ReduceLROnPlateauArgs,
    "ModelCheckpoint": ModelCheckpointArgs, "CSVLogger": CSVLoggerArgs,
    "TensorBoard": TensorBoardArgs, "MLflow": MLflowArgs,
}

#: Callback name -> its wrapper ``{Name: {args}}`` (``EarlyStoppingSpec``, a name of this module
#: too), built when a config first names it.
CALLBACK_SPECS: Mapping[str, type[CallbackSpecBase]] = Wrappers(
    CallbackSpecBase, __name__, CALLBACK_ARGS, CALLBACK_ARGS.__getitem__)
__getattr__ = wrapper_lookup(__name__, CALLBACK_SPECS)

CallbackSpec = lazy_union(SingleKey("callback", CALLBACK_SPECS, "{EarlyStopping: {patience: 3}}"),
                          CALLBACK_SPECS)
