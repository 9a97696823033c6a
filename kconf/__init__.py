"""kconf: Keras-style models from YAML, trained on a NumPy engine.

    import kconf
    model = kconf.build_model("configs/mlp_softmax.yaml")
    model.fit(x, y, epochs=2)
"""
from kconf.api import build_model, load_config, model_from_config
from kconf.errors import ConfigError, KconfError, TrainingError
from kconf.model import Model

__all__ = ["build_model", "load_config", "model_from_config", "Model", "ConfigError",
           "KconfError", "TrainingError"]
__version__ = "0.1.0"
