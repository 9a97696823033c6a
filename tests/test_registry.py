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


def test_every_registered_layer_goes_through_a_table_of_numeric_checks():
    """Each layer class appears in one of the table-driven suites (shape, gradients, sharing);
    Embedding's integer input has its own gradient tests in test_embedding.py."""
    from tests import test_layers, test_merge, test_recurrent, test_time_distributed

    covered = set()
    for module in (test_layers, test_merge, test_recurrent, test_time_distributed):
        covered |= {type(case.make()) for case in module.CASES}
    covered.add(LAYERS["Embedding"])
    assert covered == set(LAYERS.values())
