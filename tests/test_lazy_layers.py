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
from kconf.config.compile import OPTIMIZER_SPECS, SCHEDULE_SPECS
from kconf.config.objectives import LOSS_SPECS, METRIC_SPECS
from kconf.engine.layers import REGISTRY

def state():
    return {"optimizers": sorted(OPTIMIZER_SPECS.made()), "schedules": sorted(SCHEDULE_SPECS.made()),
            "losses": sorted(LOSS_SPECS.made()), "metrics": sorted(METRIC_SPECS.made()),
            "layer_modules": sorted(m for m in sys.modules if m.startswith("kconf.engine.layers."))}

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
