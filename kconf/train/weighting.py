"""Per-sample weights of the losses and weighted metrics: Keras's ``sample_weight`` and
``class_weight``, normalised as Keras 3 normalises them.

- A loss with weights ``w`` (Keras's ``sum_over_batch_size`` reduction) is ``Σ wᵢ·lᵢ``
  divided by the number of loss values (the batch size), not by ``Σ w``; the epoch's
  ``loss`` averages the batches by their sizes, as without weights.
- ``class_weight`` (class -> weight) gives each training sample the weight of its class: the
  label itself (integer labels, or a one-unit output's 0/1 rounded), or the argmax of a
  one-hot row; a class the mapping leaves out weighs 1. It weighs training only; validation
  and ``evaluate`` use the sample weights they are given.
- The metrics of ``compile.metrics`` are unweighted; those of ``weighted_metrics`` take the
  weights (``Σ w·v / Σ w``), named ``weighted_<name>`` when ``metrics`` has the same name.

``kconf.train.loop`` carries the weights as one array per output (``sws``), or None when no
weighting is given: the steps of an unweighted model do nothing more.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from kconf.engine.backend import floatx, xp


def class_sample_weights(y, class_weight: Mapping[int, float]) -> np.ndarray:
    """Keras's ``class_weight_to_sample_weights``: one weight per sample of targets ``y``.

    Args:
        y: an output's targets: integer labels ``(N,)``/``(N, 1)``, 0/1 targets of a
            one-unit output, or one-hot rows ``(N, C)``.
        class_weight: class index -> weight.

    Returns:
        ``(N,)`` float32 weights, 1 for a class not in ``class_weight``.
    """
    y = np.asarray(y)
    if y.ndim > 1:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y[..., 0]
    labels = np.round(y.reshape(len(y), -1)[:, 0]).astype(np.int64)
    top = max(int(labels.max(initial=0)), max(class_weight, default=0)) + 1
    table = np.ones(max(top, 1), dtype=floatx)
    for cls, weight in class_weight.items():
        if cls >= 0:
            table[cls] = weight
    return table[np.clip(labels, 0, None)]


def output_weights(names: list[str], ys: list, sample_weight=None,
                   class_weight: Mapping[Any, Any] | None = None) -> list | None:
    """One weight array per output, or None without weighting.

    Args:
        names: the model's output names.
        ys: the targets, one array per output.
        sample_weight: ``(N,)`` weights for every output, or None.
        class_weight: class -> weight (one output), output name -> {class: weight}, or a
            list with one ``{class: weight}`` (or None) per output.

    Returns:
        A ``(N,)`` float32 array per output (ones where an output has no weights), or None.

    Raises:
        ValueError: both ``sample_weight`` and ``class_weight`` (Keras refuses that too),
            a flat ``class_weight`` for several outputs, or an unknown output name.
    """
    if sample_weight is None and not class_weight:
        return None
    if sample_weight is not None and class_weight:
        raise ValueError("give sample_weight or class_weight, not both (as Keras)")
    n = len(ys[0])
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=floatx).reshape(-1)
        if len(w) != n:
            raise ValueError(f"sample_weight has {len(w)} values for {n} samples")
        return [w] * len(names)
    if isinstance(class_weight, (list, tuple)):  # one mapping (or None) per output
        class_weight = {name: cw for name, cw in zip(names, class_weight, strict=True) if cw}
    elif all(isinstance(k, (int, np.integer)) for k in class_weight):
        if len(names) != 1:
            raise ValueError(f"class_weight by class is for one output; the model has "
                             f"{len(names)} ({names}): give a mapping by output name")
        class_weight = {names[0]: class_weight}
    unknown = [k for k in class_weight if k not in names]
    if unknown:
        raise ValueError(f"class_weight: unknown outputs {unknown}; outputs are {names}")
    return [class_sample_weights(y, class_weight[name]) if name in class_weight
            else np.ones(n, dtype=floatx) for name, y in zip(names, ys)]


def weighted_loss(fn, y_true, y_pred, w):
    """``fn``'s loss with per-sample weights ``w`` (Keras's ``sum_over_batch_size``).

    Returns:
        ``(value, backward(scale))`` as ``fn(y_true, y_pred)`` returns them.
    """
    values, values_backward = fn.samplewise(y_true, y_pred)
    dtype = values.dtype
    w = xp.asarray(w, dtype=dtype)
    if values.ndim == 0:  # a batch-level loss (Dice without axis): every sample's value
        factor = w.sum(dtype=dtype) / dtype.type(len(w))

        def scalar_backward(scale=1.0):
            return values_backward(xp.asarray(scale * factor, dtype=dtype))

        return values * factor, scalar_backward
    wb = w.reshape(w.shape + (1,) * (values.ndim - 1))
    size = dtype.type(max(values.size, 1))
    value = (values * wb).sum(dtype=dtype) / size

    def backward(scale=1.0):
        d = wb * dtype.type(scale / size)
        if d.shape != values.shape:  # (N, 1, ...) weights of sequence values
            d = xp.broadcast_to(d, values.shape).copy()
        return values_backward(d)

    return value, backward
