"""Keras's loss classes with their arguments: a closed registry.

A config names a loss by its function name (``huber``, ``categorical_crossentropy``, or a
Keras alias such as ``mse``), or by its class with arguments (``{Huber: {delta: 0.5}}``,
``{CategoricalCrossentropy: {from_logits: true}}``). ``get`` turns either into the callable
a model compiles: ``fn(y_true, y_pred) -> (value, backward(scale))``, with ``fn.samplewise``
(the values before the reduction) and ``fn.per_sample`` (one value per sample). The five
original names keep their functions of ``kconf.engine.losses`` (identical numbers, no extra
call per step).

``LOSS_CLASSES`` maps each class name to its class; the class carries its argument model
(``cls.Args``, which the config schema and the Keras import use) and its function name.
"""
from __future__ import annotations

from typing import Any, Mapping

from kconf.engine import losses
from kconf.engine.loss_classes.base import KerasLoss, LossArgs
from kconf.engine.loss_classes.crossentropy import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    SparseCategoricalCrossentropy,
)
from kconf.engine.loss_classes.regression import (
    CategoricalHinge,
    CosineSimilarity,
    Dice,
    Hinge,
    Huber,
    KLDivergence,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    Poisson,
    SquaredHinge,
    Tversky,
)

LOSS_CLASSES: dict[str, type[KerasLoss]] = {cls.__name__: cls for cls in (
    CategoricalCrossentropy, SparseCategoricalCrossentropy, BinaryCrossentropy,
    BinaryFocalCrossentropy, CategoricalFocalCrossentropy,
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, CosineSimilarity, Huber, LogCosh, Hinge, SquaredHinge,
    CategoricalHinge, KLDivergence, Poisson, Dice, Tversky,
)}

#: Function names (Keras's ``keras.losses.<name>``) -> class name.
FUNCTIONS: dict[str, str] = {cls.function: name for name, cls in LOSS_CLASSES.items()}

#: Keras's other spellings of the function names.
ALIASES: dict[str, str] = {
    "mse": "mean_squared_error", "mae": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error", "msle": "mean_squared_logarithmic_error",
    "kld": "kl_divergence", "kullback_leibler_divergence": "kl_divergence",
    "logcosh": "log_cosh",
}

#: Every name a config may give as a plain string.
NAMES: tuple[str, ...] = (*FUNCTIONS, *ALIASES)


def class_name(name: str) -> str:
    """The class a loss function name (or alias) stands for.

    Raises:
        KeyError: an unknown name.
    """
    name = ALIASES.get(name, name)
    if name not in FUNCTIONS:
        raise KeyError(f"unknown loss {name!r}")
    return FUNCTIONS[name]


def get(spec: Any):
    """The loss a config entry names.

    Args:
        spec: a function name or alias (``"huber"``, ``"mse"``), a mapping ``{Huber:
            {delta: 0.5}}``, or a config spec object with ``tag`` and ``args`` (a validated
            ``{Class: args}`` wrapper).

    Returns:
        ``fn(y_true, y_pred) -> (value, backward(scale))`` with ``samplewise`` and
        ``per_sample``; the original five names give ``kconf.engine.losses``'s functions.

    Raises:
        KeyError: an unknown name or class.
    """
    if isinstance(spec, str):
        if ALIASES.get(spec, spec) in losses.LOSSES:
            fn = losses.get(spec)
            return fn
        return LOSS_CLASSES[class_name(spec)]()
    name, args = split(spec)
    if name not in LOSS_CLASSES:
        raise KeyError(f"unknown loss class {name!r}")
    return LOSS_CLASSES[name](**args)


def split(spec: Any) -> tuple[str, dict[str, Any]]:
    """``(class name, arguments)`` of a ``{Class: args}`` mapping or a validated spec, or of a
    name (its class, no arguments)."""
    if isinstance(spec, str):
        return class_name(spec), {}
    if isinstance(spec, Mapping):
        ((name, args),) = spec.items()
        return str(name), dict(args or {})
    args = spec.args
    return spec.tag, (args.model_dump() if hasattr(args, "model_dump") else dict(args))


def per_sample(spec: Any, y_true, y_pred):
    """The loss of each sample, shape ``(N,)``, for any spec ``get`` takes."""
    fn = get(spec)
    if isinstance(fn, KerasLoss):
        return fn.per_sample(y_true, y_pred)
    return losses.per_sample(spec, y_true, y_pred)


__all__ = ["ALIASES", "FUNCTIONS", "KerasLoss", "LOSS_CLASSES", "LossArgs", "NAMES", "get",
           "per_sample", "split", *LOSS_CLASSES]
