"""Config: YAML loading with positions, the pydantic schema, overrides, error conversion.

    from kconf.config import load_config
    cfg = load_config("configs/mlp_softmax.yaml", overrides={"fit.epochs": 1})
    cfg.config                                    # the RunConfig: frozen, plain data
    cfg.model.sequential[0].class_name            # "Dense" (fields read through)
    cfg.model.sequential[0].args.layer_kwargs()   # {"units": 64, "activation": "relu", ...}
    cfg.model.sequential[0].args.input_hint()     # (None, (20,)) or None
    cfg.compile.optimizer.class_name, cfg.compile.optimizer.kwargs()
    cfg.data.train.kind, cfg.data.train.args      # "random", RandomArgs(samples=..., ...)
    cfg.source.locate(("data", "train", "npz", "path"))   # SourcePos(file, line, col)

A functional model (``cfg.model.functional``) has ``inputs`` (name -> ``InputConfig``),
``layers`` (name -> layer spec), ``graph`` (``GraphCall``s: ``targets = callee(args)``) and
``outputs`` (tensor names). ``cfg.input_names()``, ``cfg.output_names()`` (None for a
sequential model) and ``cfg.output_aliases()`` name a model's inputs and outputs;
``cfg.compile.loss_for(outputs, cfg.output_aliases())``, ``.loss_weights_for(...)`` and
``.metrics_for(...)`` give one loss / weight / metric list per output;
``split.args.x_for(cfg.input_names())`` and ``.y_for(cfg.output_names())`` one array per
input / output. ``cfg.named_models()`` resolves
the ``models`` section (``file`` entries loaded); ``locate_graph_part(cfg, i, ("arg", 0))``
points inside a graph line.

Layout: ``source`` reads YAML safely with positions; the reusable field types are in
``kconf.args`` (shared with the engine's layer argument models); ``layers`` (derived from
the engine's layer registry), ``compile``, ``data`` and ``run`` are the schema;
``problems`` turns pydantic errors into ``Problem``s; ``overrides`` applies dotted-path
overrides; ``loader`` ties them together for any kind of file (configs, sweep files, model
files); ``checks`` checks across sections; ``load`` is ``load_config``, whose
``LoadedConfig`` holds the ``RunConfig`` beside its positions and named models (the
schema's models stay plain data). Before validation the loader merges ``include``d files
(``include``), checks the ``kconf:`` version key (``version``), applies overrides and
resolves ``${...}`` references (``interpolate``); ``upgrade`` rewrites older files.

Override paths are keys joined by dots; a list item is its index (``-1`` the last):
``fit.epochs``, ``compile.optimizer.SGD.lr``, ``model.sequential.0.Dense.units``. Missing
mappings on the way are created. ``parse_override("fit.epochs=3")`` reads a command-line
``path=value`` (the value as YAML). Values set by overrides are located at ``<override>``.
"""
from typing import TYPE_CHECKING

from kconf.args.lazy import lazy_names
from kconf.config.checks import check_config
from kconf.config.compile import OPTIMIZER_SPECS, CompileConfig, OptimizerSpecBase
from kconf.config.data import DATA_SOURCES, DataConfig, DataSourceBase, in_model_order
from kconf.config.functional import (
    FunctionalConfig,
    GraphCall,
    InputConfig,
    parse_graph_line,
)
from kconf.config.layers import LAYER_SPECS, LayerSpecBase
from kconf.args.layer import LayerArgs
from kconf.config.load import LoadedConfig, load_config, locate_graph_part
from kconf.config.loader import Loaded
from kconf.args.names import (
    ACTIVATION_NAMES,
    DTYPE_NAMES,
    INITIALIZER_NAMES,
    LOSS_NAMES,
    MERGE_HELPERS,
    METRIC_NAMES,
    OPTIMIZER_ALIASES,
    OPTIMIZER_NAMES,
)
from kconf.config.overrides import parse_override, parse_overrides
from kconf.config.run import (
    FitConfig,
    ModelConfig,
    ModelEntry,
    NamedModel,
    RunConfig,
    json_schema,
    write_json_schema,
)
from kconf.config.source import DICT_FILE, OVERRIDE_FILE, Source

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from kconf.config.arrays import NpyArgs, NpzArgs
    from kconf.config.optimizers import AdamArgs, RMSpropArgs, SGDArgs
    from kconf.config.random_data import ArraySpec, RandomArgs, TargetSpec

#: Argument models of the families whose members are built when a config names them: their
#: modules are imported on first access of the name here (``kconf.config.AdamArgs``).
_LAZY = {
    "AdamArgs": "kconf.config.optimizers",
    "RMSpropArgs": "kconf.config.optimizers",
    "SGDArgs": "kconf.config.optimizers",
    "ArraySpec": "kconf.config.random_data",
    "RandomArgs": "kconf.config.random_data",
    "TargetSpec": "kconf.config.random_data",
    "NpyArgs": "kconf.config.arrays",
    "NpzArgs": "kconf.config.arrays",
}
__getattr__, __dir__ = lazy_names(globals(), _LAZY)

__all__ = [
    "ACTIVATION_NAMES", "DATA_SOURCES", "DICT_FILE", "DTYPE_NAMES", "INITIALIZER_NAMES",
    "LAYER_SPECS", "LOSS_NAMES", "MERGE_HELPERS", "METRIC_NAMES", "OPTIMIZER_ALIASES",
    "OPTIMIZER_NAMES", "OPTIMIZER_SPECS", "OVERRIDE_FILE", "AdamArgs", "ArraySpec",
    "CompileConfig", "DataConfig", "DataSourceBase", "FitConfig", "FunctionalConfig",
    "GraphCall", "InputConfig", "LayerArgs", "LayerSpecBase", "ModelConfig", "ModelEntry",
    "NamedModel", "NpyArgs", "NpzArgs", "OptimizerSpecBase", "RMSpropArgs", "RandomArgs",
    "RunConfig", "SGDArgs", "Source", "TargetSpec", "check_config", "in_model_order",
    "json_schema", "load_config", "locate_graph_part", "parse_graph_line", "parse_override",
    "parse_overrides", "write_json_schema",
    "Loaded", "LoadedConfig",
]
