"""Losses that layers add to the model's loss (Keras's ``layer.add_loss``), such as
ActivityRegularization's penalty.

The mechanism is the smallest that keeps the ``forward -> (y, backward)`` contract:

- a layer's ``forward`` calls ``add_loss(value)`` with its penalty (a float), and its
  ``backward`` adds the penalty's gradient to the input gradient it returns itself, so the
  gradients need nothing more (the penalty enters the total loss with weight 1);
- ``kconf.train.loop`` runs the model's forward pass inside ``collecting()`` (training steps
  and ``evaluate``, as Keras adds ``model.losses`` in both) where a layer of the model adds a
  loss (``Model.adds_losses``), and adds the sum of what was collected to the batch's total
  loss, not to any output's own ``<name>_loss``, as Keras;
- outside ``collecting()`` (``predict``, shape checks) ``add_loss`` does nothing.

A layer that adds a loss sets ``adds_loss = True``: the graph runner then never stacks its
calls into one batch, since each call's penalty is normalized by its own batch size.
"""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Iterator

_collected: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "kconf_added_losses", default=None)


@contextmanager
def collecting() -> Iterator[list[float]]:
    """Collect the losses layers add while the block runs.

    Returns:
        (as the context value) the list the added losses are appended to.
    """
    losses: list[float] = []
    token = _collected.set(losses)
    try:
        yield losses
    finally:
        _collected.reset(token)


def add_loss(value: float) -> None:
    """Add ``value`` to the loss of the pass being collected (nothing when none is)."""
    losses = _collected.get()
    if losses is not None:
        losses.append(float(value))
