"""Start-up does not grow with the layer registry: importing ``kconf.config`` builds no layer's
argument model or wrapper, and a config builds only those of the layers it names.

Run in a fresh interpreter: the rest of the suite builds every layer (the JSON schema test).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json
import kconf.config
from kconf.config.layers import LAYER_SPECS
from kconf.engine.layers import REGISTRY

def complete():
    return sorted(n for n, e in REGISTRY.items()
                  if e.args is not None and e.args.__pydantic_complete__)

out = {"after_import": [complete(), sorted(LAYER_SPECS.made())]}
kconf.config.load_config("configs/vgg.yaml")
out["after_vgg"] = [complete(), sorted(LAYER_SPECS.made())]
print(json.dumps(out))
"""


def test_a_config_builds_only_the_layers_it_names():
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = json.loads(run.stdout)
    assert out["after_import"] == [[], []]
    complete, made = out["after_vgg"]
    assert made == ["Conv2D", "Dense", "Dropout", "Flatten", "MaxPooling2D"]
    assert "LSTM" not in complete and "MultiHeadAttention" not in complete
    assert set(complete) <= set(made)


def test_an_unbuilt_layer_still_pickles_and_names_its_wrapper():
    import pickle

    import kconf.config.layers as layers
    from kconf.config.layers import LAYER_SPECS

    spec = layers.GRUSpec  # the module's name for the wrapper builds it
    assert spec is LAYER_SPECS["GRU"] and spec.__name__ == "GRUSpec"
    value = spec.model_validate({"GRU": {"units": 3}})
    assert pickle.loads(pickle.dumps(value)) == value


FAMILIES = """
import json, sys
import kconf.config
from kconf.args.layer import INITIALIZER_SPECS
from kconf.args.weight_options import CONSTRAINT_SPECS, REGULARIZER_SPECS
from kconf.config.callbacks import CALLBACK_SPECS
from kconf.config.compile import OPTIMIZER_SPECS, SCHEDULE_SPECS
from kconf.config.data import DATA_SOURCES, PREPROCESS_STEPS
from kconf.config.objectives import LOSS_SPECS, METRIC_SPECS
from kconf.engine.layers import REGISTRY

FAMILIES = {"optimizers": OPTIMIZER_SPECS, "schedules": SCHEDULE_SPECS, "losses": LOSS_SPECS,
            "metrics": METRIC_SPECS, "sources": DATA_SOURCES, "steps": PREPROCESS_STEPS,
            "callbacks": CALLBACK_SPECS, "initializers": INITIALIZER_SPECS,
            "regularizers": REGULARIZER_SPECS, "constraints": CONSTRAINT_SPECS}

def state():
    out = {name: sorted(family.made()) for name, family in FAMILIES.items()}
    out["layer_modules"] = sorted(m for m in sys.modules if m.startswith("kconf.engine.layers."))
    out["config_modules"] = sorted(m for m in sys.modules if m.startswith("kconf.config."))
    return out

out = {"after_import": state()}
kconf.config.load_config("configs/%s")
out["after_config"] = state()
print(json.dumps(out))
"""


def _families(config: str) -> dict:
    run = subprocess.run([sys.executable, "-c", FAMILIES % config], cwd=ROOT,
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(run.stdout)


def test_optimizers_losses_metrics_and_layer_modules_are_built_when_named():
    """Importing kconf.config builds no optimizer, schedule, loss or metric wrapper and
    imports only the layer modules the config language itself needs (the wrappers that
    hold other layers); a config adds what it names."""
    out = _families("adamw_cosine_warmup.yaml")
    first = out["after_import"]
    assert first["optimizers"] == first["schedules"] == first["losses"] == first["metrics"] == []
    wrappers = {"kconf.engine.layers.base", "kconf.engine.layers.bidirectional",
                "kconf.engine.layers.recurrent", "kconf.engine.layers.time_distributed"}
    assert set(first["layer_modules"]) <= wrappers
    after = out["after_config"]
    assert after["optimizers"] == ["AdamW"] and after["schedules"] == ["CosineDecay"]
    assert "kconf.engine.layers.attention" not in after["layer_modules"]
    assert "kconf.engine.layers.dense" in after["layer_modules"]


#: The modules of argument models that a config's names import (``Wrappers``' ``imported``).
ARGUMENT_MODULES = {"kconf.config.arrays", "kconf.config.images", "kconf.config.optimizers",
                    "kconf.config.preprocess", "kconf.config.random_data",
                    "kconf.config.tables"}


def test_data_sources_callbacks_and_weight_options_are_built_when_named():
    """Importing kconf.config builds no data source, preprocessing step, callback,
    initializer, regularizer or constraint wrapper, nor imports the modules of the
    optimizers' and data sources' arguments; a config builds the ones it names."""
    out = _families("imbalanced_tabular.yaml")
    first = out["after_import"]
    for family in ("sources", "steps", "callbacks", "initializers", "regularizers",
                   "constraints"):
        assert first[family] == [], family
    assert not ARGUMENT_MODULES & set(first["config_modules"])
    after = out["after_config"]
    assert after["sources"] == ["csv"] and after["steps"] == []
    assert after["callbacks"] == ["EarlyStopping"]
    assert after["regularizers"] == ["L2"] and after["constraints"] == ["MaxNorm"]
    assert after["initializers"] == []
    assert ARGUMENT_MODULES & set(after["config_modules"]) == {
        "kconf.config.images", "kconf.config.optimizers", "kconf.config.tables"}


def test_unbuilt_wrappers_of_every_family_pickle():
    """A wrapper not built yet is found by its module and name, as pickle looks it up."""
    import pickle

    import kconf.args.layer
    import kconf.args.weight_options
    import kconf.config.callbacks
    import kconf.config.compile
    import kconf.config.data

    values = [kconf.config.data.NpzSource.model_validate({"npz": {"path": "a.npz"}}),
              kconf.config.data.OneHotStep.model_validate({"one_hot": {"y": 3}}),
              kconf.config.callbacks.CSVLoggerSpec.model_validate({"CSVLogger": None}),
              kconf.config.compile.LionSpec.model_validate({"Lion": {}}),
              kconf.args.layer.Initializer_orthogonal.model_validate({"orthogonal": {}}),
              kconf.args.weight_options.L1L2Spec.model_validate({"L1L2": {"l1": 0.1}})]
    for value in values:
        assert pickle.loads(pickle.dumps(value)) == value
