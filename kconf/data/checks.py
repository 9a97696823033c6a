"""What a config's data holds, checked before any training: no split without samples, only
numbers, no NaN or infinity (unless ``data.allow_nan``), sparse labels inside the classes.

``check_shapes`` (kconf.data.sources) calls ``content_problems`` once the shapes fit, so that
``kconf validate``, ``kconf train`` (new and resumed), ``kconf evaluate`` and a sweep's
trials all refuse the same data with the same message, naming the file and the array.
"""
from __future__ import annotations

import math

import numpy as np

from kconf.data.split import Split
from kconf.data.stream import is_stream
from kconf.engine import loss_classes
from kconf.errors import Problem

#: dtype kinds that hold numbers a model can take (bool, signed, unsigned, float).
NUMERIC = "biuf"


def content_problems(splits: dict[str, Split], graph, cfg, losses: list[str]) -> list[Problem]:
    """Every problem of the splits' values, each located at its data source.

    Args:
        splits: the loaded splits by name (``"train"`` is the one ``fit`` trains on).
        graph: the model's graph (its inputs and outputs, in order).
        cfg: the loaded config (``data``, ``fit.validation_split``, positions).
        losses: the loss name of each output, in order.

    Returns:
        One problem per empty split, non-numeric array, array with NaN/inf values, or
        sparse label outside ``[0, classes)``; empty when the data is fine.
    """
    allow_nan = bool(getattr(cfg.data, "allow_nan", False))
    problems: list[Problem] = []
    for name, split in splits.items():
        where = (split.path, cfg.source.locate(split.path)) if split.path else ((), None)

        def add(message: str) -> None:
            problems.append(Problem(message, *where))

        samples = len(split.x[0]) if split.x else 0
        if samples == 0:
            add(f"the {name} data has no samples")
            continue
        if name == "train" and cfg.fit.validation_split:
            left = int(math.floor(samples * (1.0 - cfg.fit.validation_split)))
            if left < 1:
                add(f"fit.validation_split {cfg.fit.validation_split:g} of {samples} samples "
                    "leaves none to train on; lower it or give more data")
        for label, array in _named_arrays(split, graph, cfg):
            if array.dtype.kind not in NUMERIC:
                add(f"{label} holds {_dtype_words(array)}, not numbers")
            elif array.dtype.kind == "f" and not allow_nan:
                count, first = _nonfinite(array)
                if count:
                    add(f"{label} has {count:,} NaN or infinite values (the first in "
                        f"sample {first}); clean the data, or set data.allow_nan: true")
        for i, (t, y, loss) in enumerate(zip(graph.outputs, split.y, losses)):
            name, args = loss_classes.split(loss)
            if (name == "SparseCategoricalCrossentropy" and args.get("ignore_class") is None
                    and y.dtype.kind in NUMERIC and y.size):
                classes = t.shape[-1]
                label = _array_label(split, cfg, "y", i, t, graph.outputs)
                problem = _sparse_problem(y, classes)
                if problem:
                    add(f"{label} {problem}")
    return problems


def _nonfinite(array) -> tuple[int, int | None]:
    """How many values are NaN or infinite, and the first sample with one (a stream is
    scanned a few MiB at a time)."""
    if is_stream(array):
        return array.nonfinite()
    bad = ~np.isfinite(array)
    if not bad.any():
        return 0, None
    return int(bad.sum()), int(np.argmax(bad.reshape(len(array), -1).any(axis=1)))


def _sparse_problem(y: np.ndarray, classes: int | None) -> str | None:
    """Why ``y`` cannot be integer labels of ``classes`` classes (None when it can)."""
    values = y.astype(np.float64, copy=False)
    if not np.isfinite(values).all():
        return "holds NaN or infinite labels; a sparse loss needs integer class labels"
    fractional = values != np.round(values)
    if fractional.any():
        return (f"has label {values[fractional].flat[0]:g}; a sparse loss needs integer class "
                "labels")
    outside = (values < 0) | (values >= classes) if classes is not None else values < 0
    if outside.any():
        limit = f"[0, {classes})" if classes is not None else "[0, ...)"
        return (f"has label {values[outside].flat[0]:g} ({int(outside.sum()):,} labels in all) "
                f"outside the model's classes {limit}")
    return None


def _named_arrays(split: Split, graph, cfg):
    """``(label, array)`` of each input and target of a split."""
    for i, (t, x) in enumerate(zip(graph.inputs, split.x)):
        yield _array_label(split, cfg, "x", i, t, graph.inputs), x
    for i, (t, y) in enumerate(zip(graph.outputs, split.y)):
        yield _array_label(split, cfg, "y", i, t, graph.outputs), y


def _array_label(split: Split, cfg, key: str, i: int, tensor, tensors) -> str:
    """How a message names one array: its file and its name in the file where it has
    them (``data/train.npz: array 'x'``), else ``x`` (with the tensor for several)."""
    own = f"{key} ({tensor.name})" if len(tensors) > 1 else key
    path = split.path
    if len(path) < 3 or path[0] != "data":
        return own
    spec = getattr(cfg.data, path[1], None)
    args = getattr(spec, "args", None)
    try:
        if path[2] == "npz":
            names = args.x_for(cfg.input_names()) if key == "x" else \
                args.y_for(cfg.output_names(), cfg.output_aliases())
            named = f"array {names[i]!r}"
            return f"{args.path}: {named}" + ("" if names[i] == own else f" ({own})")
        if path[2] == "npy":
            files = args.x_for(cfg.input_names()) if key == "x" else \
                args.y_for(cfg.output_names(), cfg.output_aliases())
            return f"{files[i]} ({own})"
        if path[2] in ("csv", "parquet"):
            return f"{args.path}: {own}"
    except (AttributeError, IndexError, KeyError, TypeError):
        pass  # a name that cannot be told: the array's role says enough
    return own


def _dtype_words(array: np.ndarray) -> str:
    """A dtype as a user reads it: ``strings (<U3)``, ``Python objects``."""
    kind = array.dtype.kind
    if kind in "US":
        return f"strings ({array.dtype.str})"
    if kind == "O":
        return "Python objects"
    if kind == "c":
        return "complex numbers"
    return f"values of dtype {array.dtype}"
