"""Keras's ``compile_config`` <-> kconf's ``compile`` section: optimizer (and learning-rate
schedule), loss(es), loss weights and metrics.

Keras 3 stores ``compile_config`` next to the model's config; Keras 2's ``to_json()`` holds
none. Every optimizer of Keras 3 and its options (weight decay, clipping, EMA, accumulation,
loss scaling) convert both ways; options that change training and that kconf does not
implement (label smoothing, logits, weighted metrics...) are reported, never dropped.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from kconf.config.compile import OPTIMIZER_SPECS, SCHEDULE_SPECS
from kconf.args.names import LOSS_NAMES, METRIC_NAMES, OPTIMIZER_ALIASES
from kconf.errors import ConfigPath
from kconf.keras_io.findings import Findings

Report = Callable[[ConfigPath, str], None]

#: compile_config keys that change no number.
_COMPILE_IGNORED = {"run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss"}

#: Optimizer arguments that change no number.
_OPTIMIZER_IGNORED = {"name", "jit_compile", "is_legacy_optimizer"}
#: Keras's defaults of the common options that kconf's config leaves out (null) by default.
_OPTIMIZER_KERAS_DEFAULTS = {"use_ema": False, "ema_momentum": 0.99}
#: Keras 2 spellings of optimizer arguments.
_OPTIMIZER_ALIASES = {"lr": "learning_rate"}

_LOSS_FIXED = {  # option -> (values kconf computes, why the others are refused)
    "from_logits": ((False,), "kconf's losses take probabilities (from_logits=False)"),
    "label_smoothing": ((0, 0.0), "label smoothing is not implemented in kconf"),
    "axis": ((-1,), "kconf's losses reduce over the last axis"),
    "reduction": (("sum_over_batch_size", "auto", None),
                  "kconf averages over the batch (sum_over_batch_size)"),
    "ignore_class": ((None,), "ignore_class is not implemented in kconf"),
}
# Keras class -> (kconf name, the options that must keep one of the values kconf computes)
_LOSS_CLASSES = {
    "CategoricalCrossentropy": ("categorical_crossentropy", _LOSS_FIXED),
    "SparseCategoricalCrossentropy": ("sparse_categorical_crossentropy", _LOSS_FIXED),
    "BinaryCrossentropy": ("binary_crossentropy", _LOSS_FIXED),
    "MeanSquaredError": ("mean_squared_error", _LOSS_FIXED),
    "MeanAbsoluteError": ("mean_absolute_error", _LOSS_FIXED),
}
_METRIC_CLASSES = {
    "BinaryAccuracy": ("binary_accuracy",
                       {"threshold": ((0.5,), "kconf's binary accuracy thresholds at 0.5")}),
    "CategoricalAccuracy": ("categorical_accuracy", {}),
    "SparseCategoricalAccuracy": ("sparse_categorical_accuracy", {}),
    "MeanSquaredError": ("mse", {}),
    "MeanAbsoluteError": ("mae", {}),
}
_FUNCTION_IGNORED = {"name", "dtype"}  # a loss's or metric's options that change no number


# --- Keras -> kconf --------------------------------------------------------------------------


def compile_section(config: Mapping[str, Any], outputs: Mapping[str, str], path: ConfigPath,
                    findings: Findings) -> dict[str, Any]:
    """A Keras ``compile_config`` as kconf's ``compile`` section.

    Args:
        config: the ``compile_config``.
        outputs: Keras's output names (its output layers) -> kconf's output names, in order.
        path: where ``config`` sits in the file.
        findings: where problems go.

    Returns:
        ``{optimizer, loss[, loss_weights][, metrics]}`` (what could be converted).
    """
    def report(at: ConfigPath, message: str) -> None:
        findings.add((*path, *at), message)

    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "optimizer":
            out["optimizer"] = optimizer(value, ("optimizer",), report)
        elif key == "loss":
            out["loss"] = _per_output(value, ("loss",), outputs, report, _loss)
        elif key == "loss_weights":
            if value is not None:
                out["loss_weights"] = _by_output(value, outputs)
        elif key == "metrics":
            metrics = _metrics(value, ("metrics",), outputs, report)
            if metrics:
                out["metrics"] = metrics
        elif key == "weighted_metrics":
            if value:
                report((key,), "weighted metrics are not supported by kconf")
        elif key not in _COMPILE_IGNORED:
            report((key,), f"compile argument {key!r} is not supported by kconf")
    if config.get("loss") is None:
        report(("loss",), "the model is compiled without a loss; kconf needs one")
    return {k: out[k] for k in ("optimizer", "loss", "loss_weights", "metrics") if k in out}


def optimizer(value: Any, at: ConfigPath, report: Report) -> Any:
    """An optimizer (a name, or a serialised one) as kconf writes it: ``rmsprop`` or
    ``{SGD: {non-default args}}``."""
    if isinstance(value, str):
        name = OPTIMIZER_ALIASES.get(value.lower())
        if name is None:
            report(at, f"optimizer {value!r} is not supported by kconf (kconf has "
                       f"{', '.join(OPTIMIZER_SPECS)})")
        return value.lower()
    cls = value.get("class_name") if isinstance(value, dict) else None
    if cls not in OPTIMIZER_SPECS:
        report(at, f"optimizer {cls or value!r} is not supported by kconf (kconf has "
                   f"{', '.join(OPTIMIZER_SPECS)})")
        return None
    args_type = OPTIMIZER_SPECS[cls].model_fields[cls].annotation
    args = {}
    for key, given in (value.get("config") or {}).items():
        key = _OPTIMIZER_ALIASES.get(key, key)
        where = (*at, "config", key)
        if key == "learning_rate":
            args[key] = _learning_rate(given, where, report)
        elif key in args_type.model_fields and key != "lazy_sparse":
            args[key] = tidy(given)
        elif key not in _OPTIMIZER_IGNORED:
            report(where, f"{cls} argument {key!r} is not supported by kconf")
    missing = object()
    changed = {k: v for k, v in args.items()
               if v is not None and v != _OPTIMIZER_KERAS_DEFAULTS.get(k, missing)
               and v != args_type.model_fields[k].get_default(call_default_factory=True)}
    if not changed:
        return cls.lower()
    return {cls: changed}


def _learning_rate(value: Any, at: ConfigPath, report: Report) -> Any:
    """A learning rate, or a schedule ``{InverseTimeDecay: {args}}``."""
    if not isinstance(value, dict):
        return tidy(value)
    cls = value.get("class_name")
    if cls not in SCHEDULE_SPECS:
        report(at, f"learning-rate schedule {cls!r} is not supported by kconf (kconf has "
                   f"{', '.join(SCHEDULE_SPECS)})")
        return None
    args_type = SCHEDULE_SPECS[cls].model_fields[cls].annotation
    args = {}
    for key, given in (value.get("config") or {}).items():
        if key in args_type.model_fields:
            field = args_type.model_fields[key]
            if field.is_required() or given != field.get_default(call_default_factory=True):
                args[key] = tidy(given)
        elif key != "name":
            report((*at, "config", key), f"{cls} argument {key!r} is not supported by kconf")
    return {cls: args}


def tidy(value: Any) -> Any:
    """A float32 value (Keras keeps learning rates as float32 variables: 0.0010000000474974513)
    as the shortest decimal that is the same float32 (0.001); anything else unchanged."""
    if not isinstance(value, float):
        return value
    import numpy as np

    single = np.float32(value)
    if float(single) != value:
        return value
    return float(str(single))


def _loss(value: Any, at: ConfigPath, report: Report) -> str | None:
    """One loss: a name, or a serialised loss object at its default options."""
    return _function("loss", value, at, report, LOSS_NAMES, _LOSS_CLASSES)


def _metric(value: Any, at: ConfigPath, report: Report) -> str | None:
    """One metric: a name, or a serialised metric object at its default options."""
    return _function("metric", value, at, report, METRIC_NAMES, _METRIC_CLASSES)


def _function(kind: str, value: Any, at: ConfigPath, report: Report, names,
              classes: Mapping[str, tuple[str, Mapping]]) -> str | None:
    """A loss or metric (``kind``): a kconf name from ``names``, or a serialised Keras object
    of ``classes`` whose options keep values kconf computes; None (reported) otherwise."""
    if isinstance(value, dict) and value.get("class_name") == "function":
        value = value.get("config")
    if isinstance(value, str):
        if value not in names:
            report(at, f"{kind} {value!r} is not supported by kconf (kconf has "
                       f"{', '.join(names)})")
            return None
        return value
    cls = value.get("class_name") if isinstance(value, dict) else None
    if cls not in classes:
        report(at, f"{kind} {cls or value!r} is not supported by kconf")
        return None
    name, fixed = classes[cls]
    for key, given in (value.get("config") or {}).items():
        where = (*at, "config", key)
        if key in fixed:
            allowed, why = fixed[key]
            if given not in allowed:
                report(where, f"{cls} {key}={given!r} is not supported by kconf ({why})")
        elif key not in _FUNCTION_IGNORED:
            report(where, f"{cls} argument {key!r} is not supported by kconf")
    return name


def _per_output(value: Any, at: ConfigPath, outputs: Mapping[str, str], report: Report,
                convert: Callable[[Any, ConfigPath, Report], Any]) -> Any:
    """One item for every output, a list in output order, or a mapping by output."""
    if isinstance(value, list):
        return [convert(v, (*at, i), report) for i, v in enumerate(value)]
    if isinstance(value, dict) and "class_name" not in value:
        return {outputs.get(k, k): convert(v, (*at, k), report) for k, v in value.items()}
    return convert(value, at, report)


def _by_output(value: Any, outputs: Mapping[str, str]) -> Any:
    """Loss weights: a list as is, a mapping with kconf's output names."""
    if isinstance(value, dict):
        return {outputs.get(k, k): tidy(v) for k, v in value.items()}
    return [tidy(v) for v in value] if isinstance(value, list) else value


def _metrics(value: Any, at: ConfigPath, outputs: Mapping[str, str], report: Report) -> Any:
    """Metrics: a list for every output; a list of lists (one per output) or a mapping by
    output become a mapping by output."""
    if not value:
        return None
    if isinstance(value, dict):
        by_output = {outputs.get(k, k): _metric_list(v, (*at, k), report)
                     for k, v in value.items()}
        return {k: v for k, v in by_output.items() if v}
    if isinstance(value, list) and any(isinstance(v, (list, tuple)) or v is None for v in value):
        names = list(outputs.values())
        return {names[i]: _metric_list(v, (*at, i), report)
                for i, v in enumerate(value) if v and i < len(names)}
    return _metric_list(value, at, report)


def _metric_list(value: Any, at: ConfigPath, report: Report) -> list[str]:
    """The metrics of one output (a name, an object or a list of them) as names."""
    items = value if isinstance(value, (list, tuple)) else [value]
    at_items = [(*at, i) for i in range(len(items))] if isinstance(value, (list, tuple)) else [at]
    return [m for m in (_metric(v, a, report) for v, a in zip(items, at_items)) if m]


def default_compile(loss_for: Sequence[str]) -> dict[str, Any]:
    """What a model saved without a compile config gets: Keras's default optimizer
    (``compile(optimizer="rmsprop")``) and one loss per output (``loss_for``)."""
    loss = loss_for[0] if len(set(loss_for)) == 1 else list(loss_for)
    return {"optimizer": "rmsprop", "loss": loss}


# --- kconf -> Keras --------------------------------------------------------------------------


def keras_compile_config(model, report: Callable[[str], None]) -> dict[str, Any]:
    """A compiled kconf model's optimizer, losses and metrics as Keras's ``compile_config``.

    Args:
        model: a compiled ``kconf.model.Model``.
        report: called with a message for each setting Keras cannot express.

    Returns:
        The ``compile_config`` Keras 3 writes and ``load_model`` compiles from.
    """
    names = model.output_names
    losses = list(model.loss_names)
    weights = list(model.loss_weights)
    metrics = [[_keras_metric(m.spec) for m in ms] for ms in model.metrics]
    several = len(names) > 1
    return {
        "optimizer": keras_optimizer(model.optimizer, report),
        "loss": dict(zip(names, losses)) if several else losses[0],
        "loss_weights": (None if all(w == 1.0 for w in weights)
                         else dict(zip(names, weights)) if several else weights),
        "metrics": ({n: ms for n, ms in zip(names, metrics) if ms} if several
                    else metrics[0]) or None,
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def keras_optimizer(opt, report: Callable[[str], None]) -> dict[str, Any]:
    """An engine optimizer as Keras 3 serialises it; Keras-2 ``decay`` becomes the
    ``InverseTimeDecay(lr, 1, decay)`` schedule that computes the same rates."""
    cls = type(opt).__name__
    config = dict(opt.get_config())
    lr, decay = config.pop("learning_rate"), config.pop("decay", 0.0)
    if config.pop("lazy_sparse", False):
        report(f"{cls} lazy_sparse: Keras has no lazy sparse updates; remove it to export")
    if callable(lr):
        if decay:
            report(f"{cls}: decay together with a learning-rate schedule has no Keras 3 "
                   "equivalent; fold the decay into the schedule")
        lr = {"module": "keras.optimizers.schedules", "class_name": type(lr).__name__,
              "config": dict(lr.get_config()), "registered_name": None}
    elif decay:
        lr = {"module": "keras.optimizers.schedules", "class_name": "InverseTimeDecay",
              "config": {"initial_learning_rate": lr, "decay_steps": 1, "decay_rate": decay,
                         "staircase": False}, "registered_name": None}
    return {"module": "keras.optimizers", "class_name": cls,
            "config": {"name": cls.lower(), "learning_rate": lr, **config},
            "registered_name": None}


def _keras_metric(spec: Any) -> Any:
    """A metric name as is; a custom metric function as Keras serialises functions."""
    if isinstance(spec, str):
        return spec
    return {"module": spec.__module__, "class_name": "function", "config": spec.__name__,
            "registered_name": "function"}
