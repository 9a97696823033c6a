"""A layer's regularizers and constraints, and what a training step does with them.

``attach`` gives an engine layer the options its config set (``LayerArgs.weight_options``):

- ``layer.weight_options``: Keras argument -> engine object (what export writes back);
- ``layer.weight_regularizers`` / ``layer.weight_constraints``: the option's weight prefix
  (``kernel``, ``recurrent``, ``depthwise`` ...) -> the object; which of the layer's weights
  a prefix names is worked out by ``option_for`` (``recurrent`` -> ``recurrent_kernel``,
  ``kernel`` -> MultiHeadAttention's ``query/kernel`` ..., or the layer's own
  ``weight_option_names``: DepthwiseConv's ``kernel`` is its ``depthwise`` weight);
- an ``activity_regularizer``: the layer's ``forward`` is wrapped on this instance only, to
  add the penalty of each output divided by its batch size (``kconf.engine.added_losses``)
  and its gradient to the output's gradient, as Keras 3's ``Layer.__call__``.

``WeightTerms`` holds, for a model, the trainable weights with a regularizer or a constraint
(each weight once, frozen ones left out, as Keras's ``trainable_weights``). The loop asks a
model for it only when one is set (``Model.weight_terms`` is None otherwise), so the steps of
a model without options do no extra work: the penalties are added to the loss of training
and evaluation batches (Keras's ``model.losses``, summed into the total loss), their
gradients to the weights' before the optimizer step, and the constraints applied after it.
"""
from __future__ import annotations

import types
from typing import Any

from kconf.engine import constraints, regularizers
from kconf.engine.added_losses import add_loss
from kconf.engine.backend import xp
from kconf.engine.optimizers.rows import RowGrad

_REGULARIZER, _CONSTRAINT = "_regularizer", "_constraint"


def attach(layer, options: dict[str, tuple[str, dict[str, Any]]]) -> None:
    """Give ``layer`` the regularizers and constraints of its config.

    Args:
        layer: an engine layer, just constructed.
        options: Keras argument (``kernel_regularizer``) -> ``(Keras class, arguments)``.
    """
    if not options:
        return
    made = {}
    for field, spec in options.items():
        made[field] = (constraints if field.endswith(_CONSTRAINT) else regularizers).get(spec)
    layer.weight_options = made
    layer.weight_regularizers = {f[:-len(_REGULARIZER)]: obj for f, obj in made.items()
                                 if f.endswith(_REGULARIZER) and f != "activity_regularizer"}
    layer.weight_constraints = {f[:-len(_CONSTRAINT)]: obj for f, obj in made.items()
                                if f.endswith(_CONSTRAINT)}
    if "activity_regularizer" in made:
        # bound to this instance (a deep copy, Bidirectional's backward layer, rebinds it)
        layer.forward = types.MethodType(_regularized_forward, layer)
        layer.adds_loss = True  # each call's penalty is its own: calls are never stacked


def _regularized_forward(layer, x, *args, **kwargs):
    """The layer class's ``forward``, adding ``activity_regularizer(y) / batch`` of each
    output ``y`` to the loss, and its gradient to ``y``'s."""
    regularizer = layer.weight_options["activity_regularizer"]
    y, backward = type(layer).forward(layer, x, *args, **kwargs)
    outs = y if isinstance(y, list) else [y]
    for out in outs:
        add_loss(regularizer(out) / out.shape[0])

    def regularized_backward(dy, *bargs, **bkwargs):
        dys = dy if isinstance(y, list) else [dy]
        penalties = [regularizer.gradient(out) / out.dtype.type(out.shape[0]) for out in outs]
        dys = [p if d is None else d + p for d, p in zip(dys, penalties)]  # None: no other
        return backward(dys if isinstance(y, list) else dys[0], *bargs, **bkwargs)

    return y, regularized_backward


def option_for(owner, weight: str, table: dict[str, Any]):
    """The object of ``table`` (prefix -> object) that applies to ``owner``'s ``weight``."""
    if not table:
        return None
    base = weight.rsplit("/", 1)[-1]  # MultiHeadAttention's query/kernel: kernel
    for prefix in (getattr(owner, "weight_option_names", {}).get(base), base,
                   base[:-len("_kernel")] if base.endswith("_kernel") else None):
        if prefix in table:
            return table[prefix]
    return None


class WeightTerms:
    """The regularized and the constrained trainable weights of a model.

    Args:
        entries: ``(owner, spec name, weight array, gradient)`` of each trainable weight, once.
    """

    def __init__(self, entries):
        self.penalties = []  # (regularizer, weight, gradient)
        self.constrained = []  # (constraint, weight)
        for owner, name, w, g in entries:
            reg = option_for(owner, name, owner.weight_regularizers)
            if reg is not None:
                reg(w)  # a regularizer that does not fit the weight says so now
                self.penalties.append((reg, w, g))
            con = option_for(owner, name, owner.weight_constraints)
            if con is not None:
                self.constrained.append((con, w))

    def __bool__(self) -> bool:
        return bool(self.penalties or self.constrained)

    def penalty(self) -> float:
        """The sum of the weights' penalties (added to the loss)."""
        return sum(reg(w) for reg, w, _ in self.penalties)

    def add_gradients(self) -> None:
        """Add each penalty's gradient to its weight's."""
        for reg, w, g in self.penalties:
            d = reg.gradient(w)
            if isinstance(g, RowGrad):  # an embeddings table: the penalty touches every row
                g.add(xp.arange(g.shape[0]), d)
            else:
                g += d

    def constrain(self) -> None:
        """Apply the constraints, in place (after the optimizer's update)."""
        for con, w in self.constrained:
            con(w)
