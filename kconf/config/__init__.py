"""Config: YAML loading with positions, the pydantic schema, overrides, error conversion.

    from kconf.config import load_config
    cfg = load_config("configs/mlp_softmax.yaml", overrides={"fit.epochs": 1})
    cfg.model.sequential[0].class_name            # "Dense"
    cfg.model.sequential[0].args.layer_kwargs()   # {"units": 64, "activation": "relu", ...}
    cfg.model.sequential[0].args.input_hint()     # (None, (20,)) or None
    cfg.compile.optimizer.class_name, cfg.compile.optimizer.kwargs()
    cfg.data.train.kind, cfg.data.train.args      # "random", RandomArgs(samples=..., ...)
    cfg.source.locate(("data", "train", "npz", "path"))   # SourcePos(file, line, col)

Layout: ``source`` reads YAML safely with positions; ``fields`` holds the reusable field
types; ``layers``, ``compile``, ``data`` and ``run`` are the schema; ``problems`` turns
pydantic errors into ``Problem``s; ``overrides`` applies dotted-path overrides; ``load``
ties them together.

Override paths are keys joined by dots; a list item is its index (``-1`` the last):
``fit.epochs``, ``compile.optimizer.SGD.lr``, ``model.sequential.0.Dense.units``. Missing
mappings on the way are created. ``parse_override("fit.epochs=3")`` reads a command-line
``path=value`` (the value as YAML). Values set by overrides are located at ``<override>``.
"""
from kconf.config.compile import (
    OPTIMIZER_SPECS,
    AdamArgs,
    CompileConfig,
    OptimizerSpecBase,
    RMSpropArgs,
    SGDArgs,
)
from kconf.config.data import (
    DATA_SOURCES,
    DataConfig,
    DataSourceBase,
    NpyArgs,
    NpzArgs,
    RandomArgs,
)
from kconf.config.layers import LAYER_SPECS, LayerArgs, LayerSpecBase
from kconf.config.load import load_config
from kconf.config.names import (
    ACTIVATION_NAMES,
    INITIALIZER_NAMES,
    LOSS_NAMES,
    METRIC_NAMES,
    OPTIMIZER_ALIASES,
    OPTIMIZER_NAMES,
)
from kconf.config.overrides import parse_override, parse_overrides
from kconf.config.run import FitConfig, ModelConfig, RunConfig, json_schema, write_json_schema
from kconf.config.source import DICT_FILE, OVERRIDE_FILE, Source

__all__ = [
    "ACTIVATION_NAMES", "DATA_SOURCES", "DICT_FILE", "INITIALIZER_NAMES", "LAYER_SPECS",
    "LOSS_NAMES", "METRIC_NAMES", "OPTIMIZER_ALIASES", "OPTIMIZER_NAMES", "OPTIMIZER_SPECS",
    "OVERRIDE_FILE", "AdamArgs", "CompileConfig", "DataConfig", "DataSourceBase", "FitConfig",
    "LayerArgs", "LayerSpecBase", "ModelConfig", "NpyArgs", "NpzArgs", "OptimizerSpecBase",
    "RMSpropArgs", "RandomArgs", "RunConfig", "SGDArgs", "Source", "json_schema",
    "load_config", "parse_override", "parse_overrides", "write_json_schema",
]
