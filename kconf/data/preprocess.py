"""The ``data.preprocess`` steps: fitted on the training split, applied to every split.

Each step kind is one fitter: ``fit(args, setting, train, path)`` looks at the training
array (``scale`` and ``standardize`` take their statistics from it; ``reshape`` and
``one_hot`` need none) and returns the transform applied to that array in every split. So a
test sample is scaled with the training split's minimum and maximum, never its own.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from kconf.data.problem import DataProblem
from kconf.data.split import Split
from kconf.engine.backend import floatx
from kconf.errors import ConfigPath
from kconf.shapes import format_shape

#: A fitted step for one array: (array of a split, the split's name) -> new array.
Transform = Callable[[np.ndarray, str], np.ndarray]


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


def apply_steps(splits: dict[str, Split], steps: Sequence[Any],
                inputs: Sequence[str] | None, outputs: Sequence[str] | None,
                aliases: Mapping[str, str] | None = None,
                fit_samples: int | None = None) -> dict[str, Split]:
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
        ``splits``, transformed.

    Raises:
        DataProblem: a step that does not fit its data, at the step's setting in the config.
    """
    train = splits["train"]
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
                transform = fit(step.args, setting, data[:fit_samples], path)
                for name, split in splits.items():
                    arrays = getattr(split, key)
                    arrays[k] = transform(arrays[k], name)
    return splits


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


def _fit_scale(args, setting: str, train: np.ndarray, path: ConfigPath) -> Transform:
    """``minmax``: the training split's [min, max] to ``range`` (a constant maps to low)."""
    values = _numbers(train, path, "scale")
    axis = 0 if args.per == "feature" else None
    low, high = values.min(axis=axis), values.max(axis=axis)
    span = np.where(high > low, high - low, 1.0)
    new_low, new_high = args.range
    factor = (new_high - new_low) / span

    def transform(array: np.ndarray, split: str) -> np.ndarray:
        return ((_numbers(array, path, "scale") - low) * factor + new_low).astype(floatx)

    return transform


def _fit_standardize(args, setting: bool, train: np.ndarray, path: ConfigPath) -> Transform:
    """The training split's mean to 0 and standard deviation to 1 (a constant keeps scale)."""
    values = _numbers(train, path, "standardize")
    axis = 0 if args.per == "feature" else None
    mean, std = values.mean(axis=axis), values.std(axis=axis)
    std = np.where(std > 0, std, 1.0)

    def transform(array: np.ndarray, split: str) -> np.ndarray:
        return ((_numbers(array, path, "standardize") - mean) / std).astype(floatx)

    return transform


def _fit_reshape(args, setting: tuple[int, ...], train: np.ndarray,
                 path: ConfigPath) -> Transform:
    """Each sample to the shape ``setting`` (one -1 inferred), as Keras's ``Reshape``."""
    def transform(array: np.ndarray, split: str) -> np.ndarray:
        sample = array.shape[1:]
        size = math.prod(sample)
        known = math.prod(d for d in setting if d != -1)
        shape = tuple(size // known if d == -1 else d for d in setting)
        if (size % known if -1 in setting else size != known):
            want = (f"{known} values" if -1 not in setting
                    else f"a multiple of {known} values")
            raise DataProblem(f"cannot reshape samples of shape {format_shape(sample)} into "
                              f"{format_shape(setting)}: they have {size} values, that shape "
                              f"takes {want}", path)
        return array.reshape((len(array), *shape))

    return transform


def _fit_one_hot(args, setting: int, train: np.ndarray, path: ConfigPath) -> Transform:
    """Integer labels in [0, setting) to one-hot rows (Keras's ``to_categorical``)."""
    def transform(array: np.ndarray, split: str) -> np.ndarray:
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

    return transform


FITTERS: dict[str, Callable[[Any, Any, np.ndarray, ConfigPath], Transform]] = {
    "scale": _fit_scale, "standardize": _fit_standardize, "reshape": _fit_reshape,
    "one_hot": _fit_one_hot,
}
