"""Every registered layer through the standard layer test (``tests/layer_test.py``), one test
per check and case, with the cases of ``tests/layer_cases.py``."""
from __future__ import annotations

import pytest

from kconf.engine.layers import REGISTRY
from tests.layer_cases import CASES
from tests.layer_test import CHECKS, CONFIG_CHECKS, make_layer

ALL = [(name, case) for name in REGISTRY for case in CASES.get(name, [])]
WRITABLE = [(name, case) for name, case in ALL if REGISTRY[name].args is not None]


def test_every_registered_layer_has_cases():
    assert [name for name in REGISTRY if not CASES.get(name)] == []
    assert set(CASES) <= set(REGISTRY)
    ids = [case.id for _, case in ALL]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("name, case", ALL, ids=[case.id for _, case in ALL])
def test_layer(name, case, check):
    CHECKS[check](lambda: make_layer(name, case.args), case)


@pytest.mark.parametrize("check", list(CONFIG_CHECKS))
@pytest.mark.parametrize("name, case", WRITABLE, ids=[case.id for _, case in WRITABLE])
def test_layer_arguments(name, case, check):
    CONFIG_CHECKS[check](name, case)
