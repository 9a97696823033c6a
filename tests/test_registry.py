"""The schema's closed vocabularies equal the engine's registries: a name validates exactly
when the engine can build it; each layer's constructor agrees with its argument model."""
import inspect

import pytest

from kconf.args import names
from kconf.args.layer import LayerArgs, initializer_value
from kconf.config.layers import LAYER_SPECS
from kconf.engine import activations, initializers, losses, metrics, optimizers
from kconf.engine.layers import LAYERS, REGISTRY, Layer, _registry, entry
from kconf.engine.layers.dense import Dense, DenseArgs

WITH_ARGS = [name for name, e in REGISTRY.items() if e.args is not None]


def test_layers():
    for name in REGISTRY:
        place = REGISTRY.place(name)
        assert (place.name, place.args) == (name, None if REGISTRY[name].args is None
                                            else REGISTRY[name].args.__name__)
    assert set(LAYER_SPECS) == set(LAYERS) - {"InputLayer"}
    assert list(LAYER_SPECS) == WITH_ARGS
    for name, e in REGISTRY.items():
        assert e.layer.__name__ == name and LAYERS[name] is e.layer
        if e.args is not None:
            assert LAYER_SPECS[name].model_fields[name].annotation is e.args


def test_a_layer_registered_twice_is_an_error():
    with pytest.raises(ValueError, match="Dense is registered twice"):
        _registry(entry("Dense", "dense"), entry("Dense", "dense"))


def _comparable(value):
    """A default in the engine's form: initializers as ``{name: {args}}``, pairs as tuples."""
    if hasattr(value, "tag") and hasattr(value, "args"):
        value = initializer_value(value)
    return tuple(value) if isinstance(value, list) else value


def _disagreements(layer: type[Layer], args: type[LayerArgs]) -> list[str]:
    """How the constructor's parameters and the argument model's fields differ."""
    fields = {args.engine_names.get(f, f): f for f in args.model_fields}  # engine -> field
    params = {k: p for k, p in inspect.signature(layer.__init__).parameters.items()
              if k not in ("self", "name", "trainable")
              and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    problems = [f"{f} is an argument the constructor does not take"
                for f in args.constructor_fields() if args.engine_names.get(f, f) not in params]
    problems += [f"constructor parameter {k} is not a field of {args.__name__}"
                 for k in params if k not in fields]
    for k, p in params.items():
        info = args.model_fields.get(fields.get(k, k))
        if info is None or info.is_required() or p.default is inspect.Parameter.empty:
            continue
        model_default = _comparable(info.get_default(call_default_factory=True))
        if model_default != _comparable(p.default):
            problems.append(f"{k} defaults to {p.default!r} in the constructor, "
                            f"{model_default!r} in {args.__name__}")
    return problems


@pytest.mark.parametrize("name", WITH_ARGS)
def test_constructor_parameters_match_the_argument_model(name):
    """Names, and defaults where both have one (``name``/``trainable`` are every layer's)."""
    assert _disagreements(REGISTRY[name].layer, REGISTRY[name].args) == []


def test_a_disagreeing_constructor_is_found():
    class Wrong(Layer):
        def __init__(self, units, use_bias=False, extra=1, **kwargs):
            super().__init__(**kwargs)

    assert _disagreements(Wrong, DenseArgs) == [
        "activation is an argument the constructor does not take",
        "kernel_initializer is an argument the constructor does not take",
        "bias_initializer is an argument the constructor does not take",
        "constructor parameter extra is not a field of DenseArgs",
        "use_bias defaults to False in the constructor, True in DenseArgs",
    ]


def test_activations():
    assert set(names.ACTIVATION_NAMES) == set(activations.ACTIVATIONS)


def test_initializers():
    assert set(names.INITIALIZER_NAMES) == set(initializers.INITIALIZERS)


def test_losses():
    assert set(names.LOSS_NAMES) == set(losses.LOSS_NAMES)
    for name in names.LOSS_NAMES:
        assert callable(losses.get(name))


def test_metrics():
    assert set(names.METRIC_NAMES) == set(metrics.METRIC_NAMES)


def test_optimizers():
    assert set(names.OPTIMIZER_NAMES) == set(optimizers.OPTIMIZERS)
    for alias, class_name in names.OPTIMIZER_ALIASES.items():
        assert type(optimizers.get(alias)) is optimizers.OPTIMIZERS[class_name]
