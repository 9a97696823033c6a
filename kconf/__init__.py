"""kconf: Keras-style models from YAML, trained on a NumPy engine.

    import kconf
    model = kconf.build_model("configs/mlp_softmax.yaml")
    model.fit(x, y, epochs=2)
    splits = kconf.load_data("configs/digits_mlp.yaml")          # prepared as kconf train does
    run = kconf.load_run("runs/digits_mlp/20240101-120000")       # the model + its preprocessing
    run.predict(raw_x)

The public names are loaded on first use (PEP 562), so that ``import kconf`` and the CLI's
start-up stay fast and NumPy is not imported before ``--threads`` has set its thread count.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from kconf.args.lazy import lazy_names
from kconf.errors import ConfigError, KconfError, TrainingError
from kconf.version import __version__

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from kconf.api import build_model, load_config, load_data, model_from_config
    from kconf.keras_io import from_keras
    from kconf.model import Model
    from kconf.train.trained import load_run

# public name -> module that defines it, imported on first access
_LAZY = {
    "build_model": "kconf.api",
    "load_config": "kconf.api",
    "load_data": "kconf.api",
    "load_run": "kconf.train.trained",
    "model_from_config": "kconf.api",
    "Model": "kconf.model",
    "from_keras": "kconf.keras_io",
}

__all__ = ["build_model", "load_config", "load_data", "load_run", "model_from_config",
           "from_keras", "Model", "ConfigError", "KconfError", "TrainingError"]

__getattr__, __dir__ = lazy_names(globals(), _LAZY)
