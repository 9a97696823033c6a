"""The whole config file: ``RunConfig`` and its ``model`` and ``fit`` sections; JSON Schema."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar

import yaml
from pydantic import AfterValidator, Field, PrivateAttr, WithJsonSchema, model_validator

from kconf.config.compile import CompileConfig
from kconf.config.data import DataConfig
from kconf.config.fields import (
    Bool,
    ConfigModel,
    Fraction,
    NonNegativeInt,
    PositiveInt,
    Str,
    args_of,
    config_error,
    is_import_path,
    show,
)
from kconf.config.layers import LayerSpec
from kconf.config.source import Source

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


def _check_name(value: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise config_error("run_name", "must be a simple name (letters, digits, '_', '-', '.') "
                                       f"because it names the run folder, got {show(value)}")
    return value


RunName = Annotated[Str, AfterValidator(_check_name),
                    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})]


class ModelConfig(ConfigModel):
    """The model. Only ``sequential`` exists for now; ``functional`` will be its sibling."""

    #: Messages for keys that are known but not accepted (yet).
    key_hints: ClassVar[dict[str, str]] = {
        "functional": "functional models are not supported yet; use model.sequential",
    }

    sequential: list[LayerSpec] = Field(
        min_length=1, description="the layers, one {ClassName: {args}} mapping per item",
    )


class FitConfig(ConfigModel):
    """``model.fit(epochs, batch_size, shuffle, validation_split)``."""

    epochs: PositiveInt = 1
    batch_size: PositiveInt = 32
    shuffle: Bool = True
    validation_split: Fraction = Field(
        0.0, description="fraction of the training data held out for validation",
    )


class RunConfig(ConfigModel):
    """A whole config file, validated and frozen.

    ``cfg.source`` tells where each value came from (``cfg.source.locate(path)``).
    """

    name: RunName = Field("model", description="names the run folder; default: the file's stem")
    seed: NonNegativeInt = 0
    model: ModelConfig
    compile: CompileConfig
    data: DataConfig
    fit: args_of(FitConfig) = Field(default_factory=FitConfig)

    _source: Source = PrivateAttr(default_factory=Source)

    @model_validator(mode="after")
    def _one_validation_set(self):
        if self.data.validation is not None and self.fit.validation_split > 0:
            raise config_error(
                "validation_twice", "give data.validation or fit.validation_split, not both",
                at="fit.validation_split",
            )
        return self

    def __eq__(self, other: object) -> bool:
        """Equal when the configs are: where each came from does not matter."""
        if not isinstance(other, RunConfig):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]  (lists inside; not hashable)

    @property
    def source(self) -> Source:
        """Where the config came from: ``.file``, ``.text``, ``.base_dir``, ``.locate(path)``."""
        return self._source

    def import_paths(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every ``package.module:attr`` the config names, without importing anything.

        Returns:
            ``(config path, import path)`` pairs, in file order.
        """
        return [(("compile", "metrics", i), m) for i, m in enumerate(self.compile.metrics)
                if is_import_path(m)]

    def to_data(self) -> dict[str, Any]:
        """The resolved config as plain data (defaults filled, ``null``s left out).

        Returns:
            A dict of str, int, float, bool, list and dict that ``load_config`` accepts again.
        """
        return self.model_dump(mode="json", exclude_none=True)

    def to_yaml(self) -> str:
        """``to_data()`` as YAML text, keys in schema order."""
        return yaml.safe_dump(self.to_data(), sort_keys=False, default_flow_style=None)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a config file (for editors' completion and checks).

    Returns:
        The schema of ``RunConfig`` (validation mode) as a dict.
    """
    schema = RunConfig.model_json_schema(mode="validation")
    schema["title"] = "kconf config"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def write_json_schema(path: str | os.PathLike) -> None:
    """Write ``json_schema()`` to ``path``: 2-space indented JSON with a trailing newline.

    Args:
        path: the file to write (``schemas/kconf.schema.json`` in the repository).
    """
    text = json.dumps(json_schema(), indent=2) + "\n"
    Path(path).write_text(text, encoding="utf-8")
