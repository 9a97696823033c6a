"""The ``data.preprocess`` steps: fitted on the training split, applied to every split.

Each step kind is a fitter and an applier. ``fit(args, setting, train, path)`` looks at the
training array (``scale`` and ``standardize`` take their statistics from it; ``reshape`` and
``one_hot`` need none) and returns the step's parameters as plain JSON; ``apply(params,
array, split, path)`` transforms that array of any split with them. So a test sample is
scaled with the training split's minimum and maximum, never its own, and a run saves the
parameters (``preprocess.json``: ``Preprocessing``) to do the same to new data later: the
arithmetic is the same code on the same float64 values, so the result is the same to the bit.
A table source's encoding (``kconf.data.tables``: vocabularies, fills) is the first step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from kconf.data.problem import DataProblem
from kconf.data.split import Split
from kconf.data.tables import Warn, apply_table, fit_table, is_table
from kconf.engine.backend import floatx
from kconf.errors import ConfigPath
from kconf.shapes import format_shape

#: The version of ``preprocess.json``'s layout.
FORMAT = 1


def to_categorical(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Keras's ``to_categorical``: integer labels (N,) or (N, 1) -> one-hot (N, num_classes).

    Args:
        labels: integer class labels in [0, num_classes).
        num_classes: the number of classes.

    Returns:
        float32 one-hot rows; labels of shape (N, ..., 1) lose their last axis first.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim > 1 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    out = np.zeros((*labels.shape, num_classes), dtype=floatx)
    np.put_along_axis(out, labels[..., None], 1.0, axis=-1)
    return out


@dataclass
class FittedStep:
    """One step fitted for one array: its kind, which array (``key`` ``"x"``/``"y"`` and the
    index in model order), and its parameters as JSON.

    Attributes:
        kind: ``"table"``, ``"scale"``, ``"standardize"``, ``"reshape"`` or ``"one_hot"``.
        key: ``"x"`` (an input) or ``"y"`` (an output's targets).
        index: the input's (output's) position in model order.
        params: what the fit found (lists of float64 statistics, a vocabulary...).
        path: where the step is in the config (for errors; not saved).
    """

    kind: str
    key: str
    index: int
    params: dict[str, Any]
    path: ConfigPath = ()
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def apply(self, array: np.ndarray, split: str = "new", warn: Warn | None = None
              ) -> np.ndarray:
        """The step applied to one array of any split (or of new data).

        Raises:
            DataProblem: data the step cannot take (a label outside the classes, a shape
                that does not reshape, a category under ``unknown: error``).
        """
        if self.kind == "table":
            return apply_table(self.params, self.key, array, split, self.path, warn)
        return APPLIERS[self.kind](self, array, split)

    def stat(self, name: str) -> np.ndarray:
        """A parameter as a float64 array (converted once)."""
        if name not in self._cache:
            self._cache[name] = np.asarray(self.params[name], dtype=np.float64)
        return self._cache[name]

    def to_json(self) -> dict[str, Any]:
        """The step as ``preprocess.json`` holds it."""
        return {"step": self.kind, "array": self.key, "index": self.index, **self.params}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FittedStep:
        """A step from what ``to_json`` wrote."""
        data = dict(data)
        return cls(data.pop("step"), data.pop("array"), int(data.pop("index")), data)


@dataclass
class Preprocessing:
    """The fitted preprocessing of a config's data, in order: what a run saves as
    ``preprocess.json`` and applies to new inputs (``kconf predict``) and data
    (``kconf evaluate --data``).

    Attributes:
        steps: the fitted steps in the order they apply.
        inputs: the model's input names (in order), for readers of the file.
        outputs: the model's output names.
        x_shapes: the sample shape of each input's numbers before the steps after a table
            encoding (what ``kconf predict --input`` takes: the raw data).
        y_shapes: the same for each output's targets.
    """

    steps: list[FittedStep] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    x_shapes: list[list[int]] = field(default_factory=list)
    y_shapes: list[list[int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.steps)

    def tables(self, key: str = "x") -> dict[int, FittedStep]:
        """The table encodings of inputs (``"x"``) or outputs (``"y"``), by array index."""
        return {s.index: s for s in self.steps if s.kind == "table" and s.key == key}

    def apply(self, xs: Sequence[np.ndarray], ys: Sequence[np.ndarray] | None = None,
              split: str = "new", tables: bool = True, warn: Warn | None = None
              ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Raw inputs (and targets) as the model was trained on them.

        Args:
            xs: one array per model input, in order.
            ys: one per output, or None (inputs only: prediction).
            split: the data's name in messages.
            tables: also apply the table encodings (the arrays are a table's raw columns);
                False: they are numbers already, only the steps after the encoding apply.
            warn: called with each warning (an unknown category).

        Returns:
            ``(xs, ys)``, new lists.
        """
        arrays = {"x": list(xs), "y": None if ys is None else list(ys)}
        for step in self.steps:
            if arrays[step.key] is None or (step.kind == "table" and not tables):
                continue
            arrays[step.key][step.index] = step.apply(arrays[step.key][step.index], split, warn)
        return arrays["x"], arrays["y"]

    def to_json(self) -> dict[str, Any]:
        """What ``preprocess.json`` holds."""
        return {"format": FORMAT, "inputs": list(self.inputs), "outputs": list(self.outputs),
                "x_shapes": self.x_shapes, "y_shapes": self.y_shapes,
                "steps": [s.to_json() for s in self.steps]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Preprocessing:
        """The preprocessing ``to_json`` wrote.

        Raises:
            ValueError: a layout this kconf does not know.
        """
        if data.get("format") != FORMAT:
            raise ValueError(f"preprocessing format {data.get('format')!r}; this kconf reads "
                             f"format {FORMAT}")
        return cls([FittedStep.from_json(s) for s in data["steps"]], list(data["inputs"]),
                   list(data["outputs"]), [list(s) for s in data["x_shapes"]],
                   [list(s) for s in data["y_shapes"]])


def fit_tables(splits: dict[str, Split], args, path: ConfigPath,
               fit_samples: int | None = None, warn: Warn | None = None) -> list[FittedStep]:
    """Fit the encoding of each table array on the training split and apply it to every split.

    Args:
        splits: the loaded splits (raw structured arrays where a table source gave them);
            changed in place.
        args: the training data's table arguments.
        path: the training data's config path (``("data", "source", "csv")``).
        fit_samples: fit on the first this many training samples only.
        warn: called with each warning.

    Returns:
        The fitted ``"table"`` steps.
    """
    fitted = []
    train = splits["train"]
    for key in ("x", "y"):
        for k, array in enumerate(getattr(train, key)):
            if not is_table(array):
                continue
            step = FittedStep("table", key, k, fit_table(args, key, array[:fit_samples], path),
                              path)
            for name, split in splits.items():
                arrays = getattr(split, key)
                arrays[k] = step.apply(arrays[k], name, warn)
            fitted.append(step)
    return fitted


def apply_steps(splits: dict[str, Split], steps: Sequence[Any],
                inputs: Sequence[str] | None, outputs: Sequence[str] | None,
                aliases: Mapping[str, str] | None = None,
                fit_samples: int | None = None) -> list[FittedStep]:
    """Apply ``data.preprocess`` in order, each step fitted on the training split.

    Args:
        splits: the loaded splits, ``"train"`` among them; changed in place.
        steps: the config's ``PreprocessStepBase`` items.
        inputs: ``RunConfig.input_names()``.
        outputs: ``RunConfig.output_names()``.
        aliases: ``RunConfig.output_aliases()``.
        fit_samples: fit on the first this many training samples only (what
            ``fit.validation_split`` leaves for training); None: all of them.

    Returns:
        The fitted steps, in the order they were applied.

    Raises:
        DataProblem: a step that does not fit its data, at the step's setting in the config.
    """
    train = splits["train"]
    fitted = []
    for i, step in enumerate(steps):
        base = ("data", "preprocess", i, step.kind)
        fit = FITTERS[step.kind]
        for key, names in (("x", inputs), ("y", outputs)):
            value = getattr(step.args, key)
            settings = step.args.settings(key, names, aliases if key == "y" else None)
            for k, setting in enumerate(settings):
                if setting is None or setting is False:
                    continue
                path = _setting_path(base, key, value, names, k, aliases)
                data = getattr(train, key)[k]
                done = FittedStep(step.kind, key, k,
                                  fit(step.args, setting, data[:fit_samples], path), path)
                for name, split in splits.items():
                    arrays = getattr(split, key)
                    arrays[k] = done.apply(arrays[k], name)
                fitted.append(done)
    return fitted


def _setting_path(base: ConfigPath, key: str, value: Any, names: Sequence[str] | None,
                  k: int, aliases: Mapping[str, str] | None) -> ConfigPath:
    """The config path of the k-th array's setting: ``...x`` or ``...x.<name>``."""
    if not isinstance(value, dict):
        return (*base, key)
    if names is None:
        return (*base, key, next(iter(value)))
    aliases = aliases if key == "y" and aliases else {}
    for user_key in value:
        if user_key == names[k] or aliases.get(user_key) == names[k]:
            return (*base, key, user_key)
    return (*base, key)


def _numbers(array: np.ndarray, path: ConfigPath, step: str) -> np.ndarray:
    """The array as float64 for statistics; a problem for arrays that are not numbers."""
    if array.dtype.kind not in "biuf":
        raise DataProblem(f"{step} needs numbers; the array holds {array.dtype}", path)
    return array.astype(np.float64)


def _fit_scale(args, setting: str, train: np.ndarray, path: ConfigPath) -> dict[str, Any]:
    """``minmax``: the training split's [min, max] to ``range`` (a constant maps to low)."""
    values = _numbers(train, path, "scale")
    axis = 0 if args.per == "feature" else None
    low, high = values.min(axis=axis), values.max(axis=axis)
    span = np.where(high > low, high - low, 1.0)
    new_low, new_high = args.range
    factor = (new_high - new_low) / span
    return {"low": low.tolist(), "factor": factor.tolist(), "offset": float(new_low)}


def _scale(step: FittedStep, array: np.ndarray, split: str) -> np.ndarray:
    """``(x - low) * factor + offset``, in float64, to float32."""
    values = _numbers(array, step.path, "scale")
    return ((values - step.stat("low")) * step.stat("factor") + step.params["offset"]
            ).astype(floatx)


def _fit_standardize(args, setting: bool, train: np.ndarray,
                     path: ConfigPath) -> dict[str, Any]:
    """The training split's mean to 0 and standard deviation to 1 (a constant keeps scale)."""
    values = _numbers(train, path, "standardize")
    axis = 0 if args.per == "feature" else None
    mean, std = values.mean(axis=axis), values.std(axis=axis)
    std = np.where(std > 0, std, 1.0)
    return {"mean": mean.tolist(), "std": std.tolist()}


def _standardize(step: FittedStep, array: np.ndarray, split: str) -> np.ndarray:
    """``(x - mean) / std``, in float64, to float32."""
    values = _numbers(array, step.path, "standardize")
    return ((values - step.stat("mean")) / step.stat("std")).astype(floatx)


def _fit_reshape(args, setting: tuple[int, ...], train: np.ndarray,
                 path: ConfigPath) -> dict[str, Any]:
    """Each sample to the shape ``setting`` (one -1 inferred), as Keras's ``Reshape``."""
    return {"shape": list(setting)}


def _reshape(step: FittedStep, array: np.ndarray, split: str) -> np.ndarray:
    setting = tuple(step.params["shape"])
    sample = array.shape[1:]
    size = math.prod(sample)
    known = math.prod(d for d in setting if d != -1)
    shape = tuple(size // known if d == -1 else d for d in setting)
    if (size % known if -1 in setting else size != known):
        want = f"{known} values" if -1 not in setting else f"a multiple of {known} values"
        raise DataProblem(f"cannot reshape samples of shape {format_shape(sample)} into "
                          f"{format_shape(setting)}: they have {size} values, that shape "
                          f"takes {want}", step.path)
    return array.reshape((len(array), *shape))


def _fit_one_hot(args, setting: int, train: np.ndarray, path: ConfigPath) -> dict[str, Any]:
    """Integer labels in [0, setting) to one-hot rows (Keras's ``to_categorical``)."""
    return {"classes": int(setting)}


def _one_hot(step: FittedStep, array: np.ndarray, split: str) -> np.ndarray:
    setting, path = step.params["classes"], step.path
    if array.dtype.kind not in "biuf":
        raise DataProblem(f"one_hot needs integer class labels; the array holds "
                          f"{array.dtype}", path)
    if array.dtype.kind == "f":
        fractional = array != np.round(array)
        if fractional.any():
            raise DataProblem(f"one_hot needs integer class labels; the {split} split has "
                              f"{array[fractional].flat[0]:g}", path)
    outside = (array < 0) | (array >= setting)
    if outside.any():
        raise DataProblem(f"the {split} split has label {array[outside].flat[0]:g}, not a "
                          f"class of [0, {setting}): give the number of classes", path)
    return to_categorical(array, setting)


FITTERS: dict[str, Callable[[Any, Any, np.ndarray, ConfigPath], dict[str, Any]]] = {
    "scale": _fit_scale, "standardize": _fit_standardize, "reshape": _fit_reshape,
    "one_hot": _fit_one_hot,
}

APPLIERS: dict[str, Callable[[FittedStep, np.ndarray, str], np.ndarray]] = {
    "scale": _scale, "standardize": _standardize, "reshape": _reshape, "one_hot": _one_hot,
}
