"""The public Python API: config in, compiled model out."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kconf.config import RunConfig, load_config
from kconf.engine import optimizers
from kconf.errors import ConfigError, Problem
from kconf.graph.construct import build_graph
from kconf.imports import import_object
from kconf.model import Model


def init_rng(seed: int) -> np.random.Generator:
    """The stream weights are initialised from."""
    return np.random.default_rng([seed, 0])


def train_rng(seed: int) -> np.random.Generator:
    """The stream shuffling and dropout draw from."""
    return np.random.default_rng([seed, 1])


def build_model(config: RunConfig | str | Path | dict) -> Model:
    """Build, initialise and compile the model a config describes.

    Args:
        config: a validated ``RunConfig``, a path to a YAML file, or a dict.

    Returns:
        A compiled ``Model`` whose weights are initialised from the config's seed.

    Raises:
        ConfigError: anything wrong in the config, located in the YAML.
    """
    cfg = as_config(config)
    model = model_from_config(cfg)
    model.build(init_rng(cfg.seed))
    model.train_rng = train_rng(cfg.seed)
    comp = cfg.compile
    opt = optimizers.get(comp.optimizer.class_name, **comp.optimizer.kwargs())
    model.compile(optimizer=opt, loss=comp.loss, metrics=resolve_metrics(cfg))
    return model


def as_config(config: RunConfig | str | Path | dict) -> RunConfig:
    """A validated config from a config, a YAML path or a dict."""
    return config if isinstance(config, RunConfig) else load_config(config)


def model_from_config(config: RunConfig | str | Path | dict) -> Model:
    """The model's graph with every shape inferred, but no weights: instant, for validate and
    summary.

    Raises:
        ConfigError: a layer that cannot take its input shape, a missing input shape, ...
    """
    cfg = as_config(config)
    return Model(build_graph(cfg), name=cfg.name, sequential=True)


def resolve_metrics(cfg: RunConfig) -> list:
    """Metric names as given, with each import path replaced by the function it names."""
    out, problems = [], []
    search = (cfg.source.base_dir, Path.cwd())
    imports = dict(cfg.import_paths())
    for i, metric in enumerate(cfg.compile.metrics):
        path = ("compile", "metrics", i)
        if path not in imports:
            out.append(metric)
            continue
        try:
            out.append(import_object(metric, search))
        except ImportError as exc:
            problems.append(Problem(str(exc), path, cfg.source.locate(path)))
    if problems:
        raise ConfigError(problems, cfg.source.file)
    return out
