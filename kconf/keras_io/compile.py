"""Keras's ``compile_config`` <-> kconf's ``compile`` section: optimizer (and learning-rate
schedule), loss(es), loss weights and metrics.

Keras 3 stores ``compile_config`` next to the model's config; Keras 2's ``to_json()`` holds
none. Every optimizer of Keras 3 and its options (weight decay, clipping, EMA, accumulation,
loss scaling) convert both ways; options that change training and that kconf does not
implement are reported, never dropped.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import re

from pydantic import ValidationError

from kconf.config.compile import OPTIMIZER_SPECS, SCHEDULE_SPECS
from kconf.args.names import OPTIMIZER_ALIASES
from kconf.engine import loss_classes, metric_classes
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

#: Loss options kconf computes at these values only, and why (``name``, ``dtype`` change no
#: number; every other option is an argument of the class's model, or reported).
_LOSS_FIXED = {
    "reduction": (("sum_over_batch_size", "auto", None),
                  "kconf averages over the batch (sum_over_batch_size)"),
}
#: Metric options kconf computes at these values only: AUC's label weights, and
#: ``num_labels``, which only builds AUC's state early (any value computes the same).
_METRIC_FIXED = {
    "label_weights": ((None,), "label weights of AUC are not implemented in kconf"),
}
_METRIC_IGNORED = {"num_labels"}
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
        elif key in ("metrics", "weighted_metrics"):
            metrics = _metrics(value, (key,), outputs, report)
            if metrics:
                out[key] = metrics
        elif key not in _COMPILE_IGNORED:
            report((key,), f"compile argument {key!r} is not supported by kconf")
    if config.get("loss") is None:
        report(("loss",), "the model is compiled without a loss; kconf needs one")
    return {k: out[k] for k in ("optimizer", "loss", "loss_weights", "metrics",
                                "weighted_metrics") if k in out}


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


def _loss(value: Any, at: ConfigPath, report: Report) -> Any:
    """One loss: a name, or a serialised loss object (its name at default arguments, else
    ``{Class: args}``)."""
    return _function("loss", value, at, report, loss_classes.NAMES, loss_classes.LOSS_CLASSES,
                     _LOSS_FIXED, set())


def _metric(value: Any, at: ConfigPath, report: Report) -> Any:
    """One metric: a name, or a serialised metric object (its name at default arguments, else
    ``{Class: args}``)."""
    return _function("metric", value, at, report, metric_classes.NAMES,
                     metric_classes.METRIC_CLASSES, _METRIC_FIXED, _METRIC_IGNORED)


def _function(kind: str, value: Any, at: ConfigPath, report: Report, names,
              classes: Mapping[str, Any], fixed: Mapping[str, tuple], ignored: set) -> Any:
    """A loss or metric (``kind``): a kconf name from ``names``, or a serialised Keras object
    of ``classes`` (each with its argument model ``Args``) as ``{Class: args}`` (the name
    alone where every argument is at its default); None (reported) otherwise."""
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
    fields = classes[cls].Args.model_fields
    args: dict[str, Any] = {}
    for key, given in (value.get("config") or {}).items():
        where = (*at, "config", key)
        if key in fixed:
            allowed, why = fixed[key]
            if given not in allowed:
                report(where, f"{cls} {key}={given!r} is not supported by kconf ({why})")
        elif key == "name":
            default = getattr(classes[cls], "default_name", None)
            if "name" in fields and given and not re.fullmatch(
                    rf"{re.escape(default or '')}(_\d+)?", str(given)):
                args["name"] = given  # a metric's own log name
        elif key in fields:
            given = _one_threshold(given) if key == "thresholds" and cls in (
                "Precision", "Recall") else given
            given = tidy(given) if not isinstance(given, list) else [tidy(g) for g in given]
            if given != fields[key].get_default(call_default_factory=True):
                args[key] = given
        elif key not in _FUNCTION_IGNORED and key not in ignored:
            report(where, f"{cls} argument {key!r} is not supported by kconf")
    try:
        classes[cls].Args(**args)
    except ValidationError as exc:
        for error in exc.errors():
            report((*at, "config", *error["loc"]), f"{cls}: {error['msg']}")
        return None
    if not args:
        strings = [n for n in names if n.islower() and _class_of(kind, n) == cls]
        if strings:
            return strings[0]
    return {cls: args}


def _one_threshold(value: Any) -> Any:
    """Precision's and Recall's ``thresholds``: a one-element list is that threshold (kconf
    logs one value; a longer list stays, and is refused by the argument model)."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _class_of(kind: str, name: str) -> str | None:
    """The class a loss or metric string stands for (None for the shape-resolved ones)."""
    if kind == "loss":
        return loss_classes.class_name(name)
    obj = metric_classes.get(name)
    if isinstance(obj, str):  # a function metric: its class form, if it has one
        canonical = metric_classes.function_metrics.ALIASES.get(obj, obj)
        return next((n for n, c in metric_classes.METRIC_CLASSES.items()
                     if getattr(c, "function", None) == canonical
                     or (n == "BinaryAccuracy" and canonical == "binary_accuracy")), None)
    return type(obj).__name__


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
    losses = [_keras_loss(spec) for spec in model.loss_names]
    weights = list(model.loss_weights)
    metrics = [[_keras_metric(m.spec) for m in ms] for ms in model.metrics]
    weighted = [[_keras_metric(m.spec) for m in ms] for ms in model.weighted_metrics]
    several = len(names) > 1
    return {
        "optimizer": keras_optimizer(model.optimizer, report),
        "loss": dict(zip(names, losses)) if several else losses[0],
        "loss_weights": (None if all(w == 1.0 for w in weights)
                         else dict(zip(names, weights)) if several else weights),
        "metrics": ({n: ms for n, ms in zip(names, metrics) if ms} if several
                    else metrics[0]) or None,
        "weighted_metrics": ({n: ms for n, ms in zip(names, weighted) if ms} if several
                             else weighted[0]) or None,
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


#: Keras 2 spellings kconf reads that Keras 3's ``get`` does not: their Keras 3 names.
_KERAS2_LOSSES = {"kullback_leibler_divergence": "kl_divergence", "logcosh": "log_cosh"}
_KERAS2_METRICS = {"kld": "kl_divergence", "kullback_leibler_divergence": "kl_divergence"}


def _keras_loss(spec: Any) -> Any:
    """A compiled loss as Keras 3 serialises it: a name, or ``{module, class_name, config}``
    for a class with arguments (a ``{Class: args}`` mapping or config spec)."""
    if isinstance(spec, str):
        return _KERAS2_LOSSES.get(spec, spec)
    name, args = loss_classes.split(spec)
    return {"module": "keras.losses", "class_name": name,
            "config": loss_classes.get({name: args}).get_config(), "registered_name": None}


def _keras_metric(spec: Any) -> Any:
    """A metric name as is (Keras 2 spellings in Keras 3's); a metric class with its
    arguments as Keras serialises it; a custom metric function as Keras serialises
    functions."""
    if isinstance(spec, str):
        return _KERAS2_METRICS.get(spec, spec)
    if not callable(spec) and not isinstance(spec, metric_classes.KerasMetric):
        spec = metric_classes.get(spec)  # {AUC: {...}}: its Keras arguments
    if isinstance(spec, metric_classes.KerasMetric):
        return {"module": "keras.metrics", "class_name": type(spec).__name__,
                "config": spec.get_config(), "registered_name": None}
    return {"module": spec.__module__, "class_name": "function", "config": spec.__name__,
            "registered_name": "function"}
