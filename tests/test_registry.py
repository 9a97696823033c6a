"""The schema's closed vocabularies equal the engine's registries: a name validates exactly
when the engine can build it."""
from kconf.config import names
from kconf.config.layers import LAYER_SPECS
from kconf.engine import activations, initializers, losses, metrics, optimizers
from kconf.engine.layers import LAYERS


def test_layers():
    assert set(LAYER_SPECS) == set(LAYERS) - {"InputLayer"}


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
