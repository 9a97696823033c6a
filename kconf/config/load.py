"""``load_config``: read, override, validate, check; every problem at once, sorted by
position. The result is data: the ``RunConfig``, its positions and its named models.

    cfg = load_config("configs/mlp_softmax.yaml")
    cfg.config                     # the RunConfig: frozen, plain data
    cfg.source.locate(path)        # where a value is written
    cfg.named_models()             # the models section, file entries loaded
    cfg.model, cfg.fit.epochs      # the RunConfig's fields and methods, read through
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from kconf.config.checks import check_config, check_sections
from kconf.config.functional import graph_part_position
from kconf.config.loader import FileKind, Loaded, load_yaml, located_error, read_yaml
from kconf.config.run import NamedModel, RunConfig
from kconf.errors import SourcePos

#: A config file: a ``RunConfig``; when it is refused, the sections that are valid on their
#: own are still checked against each other.
CONFIG_FILE = FileKind(
    RunConfig,
    empty="the config is empty; it needs the sections model, compile and data",
    not_mapping="a config must be a mapping of sections (model, compile, data)",
    when_invalid=check_sections,
)


@dataclass(frozen=True, eq=False)
class LoadedConfig(Loaded[RunConfig]):
    """A loaded config: the ``RunConfig``, where each value is written, its named models.

    ``cfg.model``, ``cfg.fit``, ``cfg.to_data()``... read through to ``cfg.config``.

    Attributes:
        config: the validated, frozen ``RunConfig``.
        source: ``.file``, ``.text``, ``.base_dir``, ``.locate(path)``.
        named: the ``models`` section resolved (``file`` entries loaded), in its order.
    """

    named: Mapping[str, NamedModel] = field(default_factory=dict)

    def named_models(self) -> dict[str, NamedModel]:
        """The ``models`` section resolved, ``file`` entries loaded.

        Returns:
            name -> ``NamedModel``, in the order of the section.
        """
        return dict(self.named)


def load_config(source: str | os.PathLike | Mapping[str, Any] | RunConfig,
                overrides: Mapping[str, Any] | None = None, *,
                base_dir: str | os.PathLike | None = None) -> LoadedConfig:
    """Load, validate and check a config.

    Args:
        source: a YAML file's path, the config as a dict, or a ``RunConfig`` (checked as
            its ``to_data()``).
        overrides: dotted path -> value, applied before validation (``{"fit.epochs": 1}``;
            list items by index: ``"model.sequential.0.Dense.units"``).
        base_dir: directory for relative data paths; default: the file's directory
            (the working directory for a dict).

    Returns:
        The ``LoadedConfig``: ``.config`` (the frozen ``RunConfig``, whose fields also read
        through), ``.source`` (positions), ``.named_models()``.

    Raises:
        ConfigError: listing every problem found, sorted by position.
    """
    if isinstance(source, RunConfig):
        source = source.to_data()
    validated = load_yaml(source, CONFIG_FILE, overrides, base_dir=base_dir)
    config, src = validated.config, validated.source
    problems = list(validated.problems)
    named: dict[str, NamedModel] = {}
    if config is not None:
        checked = check_config(config, src)
        problems += checked.problems
        named = checked.named
    if problems or config is None:
        raise located_error(problems, src)
    return LoadedConfig(config, src, named)


def locate_graph_part(cfg: LoadedConfig, index: int, part: Any = "line",
                      model: str | NamedModel | None = None) -> SourcePos:
    """Where a name of a functional model's graph line is written.

    Args:
        cfg: a config from ``load_config``.
        index: the line's index in ``graph``.
        part: ``"callee"``, ``("arg", k)`` (the k-th tensor argument), ``("target", k)`` (the
            k-th result name), or ``"line"`` for the line's start.
        model: None for ``cfg.model``; a name of the ``models`` section (or its
            ``NamedModel``) for a named model, which may sit in another file.

    Returns:
        file:line:col of that name; the line's start where the name cannot be placed exactly
        (a block scalar, an escape before it, an override, a dict config).
    """
    if model is None:
        config, source, prefix = cfg.config.model, cfg.source, ("model",)
    else:
        named = cfg.named[model] if isinstance(model, str) else model
        config, source, prefix = named.config, named.source, named.path
    if config.functional is None:
        raise ValueError("locate_graph_part needs a functional model")
    call = config.functional.graph[index]
    return graph_part_position(source, (*prefix, "functional", "graph", index), call, part)


def is_sweep_file(path: str | os.PathLike) -> bool:
    """Whether a YAML file is a sweep (a mapping with ``parameters`` and no ``model``) rather
    than a config; a file that cannot be read is not (loading it reports why). Here, not in
    ``kconf.sweep``, so that telling them apart loads none of the sweep machinery."""
    data = read_yaml(path).data
    return isinstance(data, dict) and "parameters" in data and "model" not in data
