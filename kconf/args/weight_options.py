"""Regularizers and constraints of a layer's weights (Keras's ``kernel_regularizer``,
``bias_constraint``, ``activity_regularizer`` ...), generated onto each layer's argument model.

One description says which weights a layer has: its ``X_initializer`` fields (the trained
weights; BatchNormalization's moving statistics are state and take none). For each such
``X``, ``with_weight_options`` adds ``X_regularizer`` and ``X_constraint`` (default null),
and ``activity_regularizer`` where Keras's constructor names it (layers with a kernel,
depthwise kernel or embeddings table; ``keras_activity_regularizer`` overrides). No layer
file declares them: the registry applies ``with_weight_options`` when it loads a layer's
argument model (``kconf.engine.layers.Place.load``).

Values, as Keras takes them:

- a regularizer: a name (``l1``, ``l2`` with Keras's default factor 0.01; ``l1_l2`` is Keras
  2's, 0.01 each; ``l1l2``/``L1L2`` Keras 3's, 0 each; ``orthogonal_regularizer``), or a
  mapping ``{L2: {l2: 0.001}}``, ``{L1L2: {l1: 0.01, l2: 0.01}}``,
  ``{OrthogonalRegularizer: {factor: 0.01, mode: rows}}``;
- a constraint: a name (``max_norm``, ``min_max_norm``, ``non_neg``, ``unit_norm``) or a
  mapping ``{MaxNorm: {max_value: 2, axis: 0}}`` (Keras's axis defaults: 0).

The fields are not constructor arguments of the engine layer: ``LayerArgs.weight_options()``
gives them, as engine objects' specs, to ``kconf.engine.weight_options.attach``.
"""

from typing import Annotated, Any, Literal, Union

from pydantic import Strict, create_model

from kconf.args.fields import ConfigModel, DeferredModel, KerasForm, NonNegativeFloat, choice
from kconf.args.unions import SingleKey, TaggedSpec, Wrappers, lazy_union, or_name, wrapper_lookup

# --- regularizers ------------------------------------------------------------------------------


class L1Args(DeferredModel):
    l1: NonNegativeFloat = 0.01


class L2Args(DeferredModel):
    l2: NonNegativeFloat = 0.01


class L1L2Args(DeferredModel):
    l1: NonNegativeFloat = 0.0
    l2: NonNegativeFloat = 0.0


class OrthogonalRegularizerArgs(DeferredModel):
    factor: NonNegativeFloat = 0.01
    mode: Literal["rows", "columns"] = "rows"


REGULARIZER_ARGS: dict[str, type[ConfigModel]] = {
    "L1": L1Args, "L2": L2Args, "L1L2": L1L2Args,
    "OrthogonalRegularizer": OrthogonalRegularizerArgs,
}
#: Name -> (class, arguments): Keras 3's names of the classes, Keras 2's ``l1_l2``.
REGULARIZER_NAMES: dict[str, tuple[str, dict[str, float]]] = {
    "l1": ("L1", {}), "l2": ("L2", {}), "l1_l2": ("L1L2", {"l1": 0.01, "l2": 0.01}),
    "l1l2": ("L1L2", {}), "orthogonal_regularizer": ("OrthogonalRegularizer", {}),
    **{name: (name, {}) for name in REGULARIZER_ARGS},
}

# --- constraints -------------------------------------------------------------------------------

#: A weight axis (0 counts too: a weight has no batch axis), or several.
WeightAxis = Union[Annotated[int, Strict()], tuple[Annotated[int, Strict()], ...]]


class MaxNormArgs(DeferredModel):
    max_value: NonNegativeFloat = 2.0
    axis: WeightAxis = 0


class MinMaxNormArgs(DeferredModel):
    min_value: NonNegativeFloat = 0.0
    max_value: NonNegativeFloat = 1.0
    rate: NonNegativeFloat = 1.0
    axis: WeightAxis = 0


class NonNegArgs(DeferredModel):
    """``NonNeg()``: no arguments."""


class UnitNormArgs(DeferredModel):
    axis: WeightAxis = 0


CONSTRAINT_ARGS: dict[str, type[ConfigModel]] = {
    "MaxNorm": MaxNormArgs, "MinMaxNorm": MinMaxNormArgs, "NonNeg": NonNegArgs,
    "UnitNorm": UnitNormArgs,
}
CONSTRAINT_NAMES: dict[str, tuple[str, dict[str, float]]] = {
    "max_norm": ("MaxNorm", {}), "min_max_norm": ("MinMaxNorm", {}),
    "non_neg": ("NonNeg", {}), "unit_norm": ("UnitNorm", {}),
    **{name: (name, {}) for name in CONSTRAINT_ARGS},
}

_NAME = "name"


def _family(noun: str, args: dict[str, type[ConfigModel]], names: dict, example: str,
            form: str) -> tuple[Wrappers, Any]:
    """The wrappers ``{Class: {args}}`` of a family (each built when a config first names it)
    and its field type: one of ``names`` as a string, or a wrapper."""
    specs = Wrappers(TaggedSpec, __name__, args, args.__getitem__)
    return specs, Annotated[
        lazy_union(SingleKey(noun, args, example, str_tag=_NAME),
                   or_name(_NAME, choice(noun, names), specs)),
        KerasForm(form),
    ]


#: A regularizer: a name (``l2``) or ``{L2: {l2: 0.01}}``.
REGULARIZER_SPECS, Regularizer = _family("regularizer", REGULARIZER_ARGS, REGULARIZER_NAMES,
                                         "{L2: {l2: 0.01}}", "regularizer")
#: A constraint: a name (``max_norm``) or ``{MaxNorm: {max_value: 2}}``.
CONSTRAINT_SPECS, Constraint = _family("constraint", CONSTRAINT_ARGS, CONSTRAINT_NAMES,
                                       "{MaxNorm: {max_value: 2}}", "constraint")
#: The wrappers are names of this module too (``L2Spec``).
__getattr__ = wrapper_lookup(__name__, REGULARIZER_SPECS, CONSTRAINT_SPECS)


def option_value(value: Any) -> tuple[str, dict[str, Any]] | None:
    """A validated regularizer or constraint as ``(Keras class, all its arguments)``."""
    if value is None:
        return None
    if isinstance(value, str):
        table = REGULARIZER_NAMES if value in REGULARIZER_NAMES else CONSTRAINT_NAMES
        cls, given = table[value]
        args = (REGULARIZER_ARGS if cls in REGULARIZER_ARGS else CONSTRAINT_ARGS)[cls](**given)
        return cls, args.model_dump()
    return value.tag, value.args.model_dump()


# --- generating the fields ----------------------------------------------------------------------

#: Weights whose initializer names state, which Keras gives no regularizer or constraint.
_STATE_WEIGHTS = frozenset({"moving_mean", "moving_variance"})
#: A layer with one of these weights takes ``activity_regularizer`` (unless it says not).
_ACTIVITY_WEIGHTS = frozenset({"kernel", "depthwise", "embeddings"})


def weights_of(args: type) -> list[str]:
    """The trained weights an argument model describes: ``X`` of each ``X_initializer``."""
    return [f[:-len("_initializer")] for f in args.model_fields
            if f.endswith("_initializer") and f[:-len("_initializer")] not in _STATE_WEIGHTS]


def with_weight_options(args: type) -> type:
    """``args`` with ``X_regularizer``/``X_constraint`` per weight and, where Keras has it,
    ``activity_regularizer`` (all null by default); ``args`` itself for a layer without
    weights or one that has them already.

    Args:
        args: a ``LayerArgs`` subclass.

    Returns:
        A subclass of the same name, with the fields listed in its ``weight_option_fields``.
    """
    if args.weight_option_fields or "weight_option_fields" in args.__dict__:
        return args
    weights = weights_of(args)
    activity = args.keras_activity_regularizer
    if activity is None:
        activity = bool(_ACTIVITY_WEIGHTS & set(weights))
    if not weights and not activity:
        return args
    fields: dict[str, Any] = {}
    for w in weights:  # in Keras's order: the regularizers, the activity's, the constraints
        fields[f"{w}_regularizer"] = (Union[Regularizer, None], None)
    if activity:
        fields["activity_regularizer"] = (Union[Regularizer, None], None)
    for w in weights:
        fields[f"{w}_constraint"] = (Union[Constraint, None], None)
    made = create_model(args.__name__, __base__=args, __module__=args.__module__, **fields)
    made.__qualname__ = args.__qualname__
    made.__doc__ = args.__doc__
    made.weight_option_fields = tuple(fields)
    return made

