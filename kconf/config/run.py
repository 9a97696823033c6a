"""The whole config file: ``RunConfig`` and its ``model``, ``models`` and ``fit`` sections;
JSON Schema."""

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Mapping

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PlainValidator,
    WithJsonSchema,
    model_validator,
)

from kconf.config.callbacks import CallbackSpec
from kconf.config.compile import CompileConfig
from kconf.config.data import DataConfig
from kconf.args.fields import (
    Bool,
    ConfigModel,
    Fraction,
    Name,
    NonNegativeInt,
    PositiveInt,
    Str,
    config_error,
    is_import_path,
)
from kconf.args.unions import args_of
from kconf.config.functional import FunctionalConfig
from kconf.config.layers import LayerSpec
from kconf.config.source import Source
from kconf.config.version import CONFIG_VERSION
from kconf.errors import ConfigPath
from kconf.text import show

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


def _check_name(value: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise config_error("run_name", "must be a simple name (letters, digits, '_', '-', '.') "
                                       f"because it names the run folder, got {show(value)}")
    return value


RunName = Annotated[Str, AfterValidator(_check_name),
                    WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})]


class ModelConfig(ConfigModel):
    """The model: ``sequential`` (a list of layers) or ``functional`` (a graph); exactly one."""

    #: The keys of which exactly one is given.
    kinds: ClassVar[tuple[str, ...]] = ("sequential", "functional")

    sequential: Annotated[list[LayerSpec], Field(min_length=1)] | None = Field(
        None, description="the layers, one {ClassName: {args}} mapping per item",
    )
    functional: FunctionalConfig | None = Field(
        None, description="inputs, layers, graph (one call per line) and outputs",
    )

    @model_validator(mode="after")
    def _exactly_one_kind(self):
        given = [k for k in self.kinds if getattr(self, k) is not None]
        if not given:
            raise config_error("model_kind", _KIND_TEXT[len(self.kinds)])
        if len(given) > 1:
            raise config_error("model_kind", f"give {given[0]} or {given[1]}, not both",
                               at=given[1])
        return self

    @property
    def kind(self) -> str:
        """``"sequential"`` or ``"functional"`` (``"file"`` for a model in another file)."""
        return next(k for k in self.kinds if getattr(self, k) is not None)


_KIND_TEXT = {
    2: "give sequential (a list of layers) or functional (inputs, layers, graph, outputs)",
    3: "give sequential (a list of layers), functional (inputs, layers, graph, outputs) or "
       "file (another config, whose model section is this model)",
}


class ModelEntry(ModelConfig):
    """A model of the ``models`` section: written here, or the ``model`` of another file."""

    kinds: ClassVar[tuple[str, ...]] = ("sequential", "functional", "file")

    file: Annotated[Str, Field(min_length=1)] | None = Field(
        None, description="a config file (relative to this one) whose model section is this "
                          "model",
    )


@dataclass(frozen=True, eq=False)
class NamedModel:
    """A model of the ``models`` section, resolved (a ``file`` entry loaded).

    Attributes:
        name: its name in the ``models`` section.
        config: the model (``sequential`` or ``functional``).
        source: the positions of the file it is written in (the other file for ``file``).
        path: the config path of ``config`` in ``source``: ``("models", name)`` here,
            ``("model",)`` in another file.
        models: the models its graph lines and TimeDistributed may name (for a model from
            another file, that file's ``models`` section).
    """

    name: str
    config: ModelConfig
    source: Source
    path: ConfigPath
    models: Mapping[str, "NamedModel"] = field(repr=False)


def _class_weight(value: Any) -> dict:
    """``{class: weight}``, or ``{output: {class: weight}}``: classes are integers >= 0,
    weights numbers >= 0."""
    def by_class(mapping: Any, at: str) -> dict[int, float]:
        if not isinstance(mapping, dict) or not mapping:
            raise config_error("class_weight", "expected a mapping class -> weight, like "
                               "{0: 1.0, 1: 5.0}" + (f", got {show(mapping)}"
                                                     if mapping != {} else ""),
                               at=at or None)
        out = {}
        for cls, weight in mapping.items():
            where = f"{at}.{cls}" if at else str(cls)
            cls = _class_index(cls)
            if cls is None or cls < 0:
                raise config_error("class_weight", f"a class is an integer >= 0, got "
                                   f"{show(cls)}", at=where)
            if (isinstance(weight, bool) or not isinstance(weight, (int, float))
                    or not math.isfinite(weight) or weight < 0):
                raise config_error("class_weight", f"a class weight is a number >= 0, got "
                                   f"{show(weight)}", at=where)
            out[cls] = float(weight)
        return out

    if isinstance(value, dict) and value and any(_class_index(k) is None for k in value):
        return {output: by_class(inner, output) for output, inner in value.items()}
    return by_class(value, "")


def _class_index(key: Any) -> int | None:
    """A class given as a mapping key (YAML's keys arrive as text): the integer, or None."""
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, str) and re.fullmatch(r"-?\d+", key.strip()):
        return int(key)
    return None


#: ``fit.class_weight``: class -> weight, or output -> {class: weight}.
ClassWeight = Annotated[dict, PlainValidator(_class_weight), WithJsonSchema({
    "type": "object", "description": "class -> weight, or output -> {class: weight}",
    "additionalProperties": {"anyOf": [{"type": "number", "minimum": 0},
                                       {"type": "object",
                                        "additionalProperties": {"type": "number",
                                                                 "minimum": 0}}]}})]


class FitConfig(ConfigModel):
    """``model.fit(epochs, batch_size, shuffle, validation_split, callbacks,
    class_weight)``."""

    epochs: PositiveInt = 1
    batch_size: PositiveInt = 32
    shuffle: Bool = True
    validation_split: Fraction = Field(
        0.0, description="fraction of the training data held out for validation",
    )
    callbacks: list[CallbackSpec] = Field(
        default_factory=list, description="Keras callbacks: EarlyStopping, ReduceLROnPlateau, "
                                          "ModelCheckpoint, CSVLogger, TensorBoard; and MLflow")
    terminate_on_nan: Bool = Field(
        True, description="stop with an error when the loss becomes NaN or infinite "
                          "(Keras's TerminateOnNaN; on by default)")
    class_weight: ClassWeight | None = Field(
        None, description="class -> weight of the training samples of that class "
                          "(Keras's class_weight); output -> {class: weight} for several "
                          "outputs")


class RunConfig(ConfigModel):
    """A whole config file, validated and frozen.

    ``cfg.source`` tells where each value came from (``cfg.source.locate(path)``).
    """

    # The docstring above is the JSON Schema's description. This model is plain data:
    # ``load_config`` returns it as ``LoadedConfig.config``, beside its positions
    # (``.source``) and its resolved ``models`` section (``.named_models()``).

    kconf: Annotated[int, Field(ge=0, le=CONFIG_VERSION)] = Field(
        CONFIG_VERSION, description="the version of the config language (default: the "
                                    "current one); kconf upgrade rewrites older files")
    name: RunName = Field("model", description="names the run folder; default: the file's stem")
    seed: NonNegativeInt = 0
    model: ModelConfig
    models: dict[Name, ModelEntry] = Field(
        default_factory=dict,
        description="named models that graph lines may call and TimeDistributed may wrap",
    )
    compile: CompileConfig
    data: DataConfig
    fit: args_of(FitConfig) = Field(default_factory=FitConfig)

    @model_validator(mode="after")
    def _one_validation_set(self):
        if self.data.validation is not None and self.fit.validation_split > 0:
            raise config_error(
                "validation_twice", "give data.validation or fit.validation_split, not both",
                at="fit.validation_split",
            )
        return self

    def __eq__(self, other: object) -> bool:
        """Equal when the configs' data are."""
        if not isinstance(other, RunConfig):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]  (lists inside; not hashable)

    def import_paths(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every ``package.module:attr`` the config names, without importing anything.

        Returns:
            ``(config path, import path)`` pairs, in file order: ``("compile", "metrics", i)``
            for a list, ``("compile", "metrics", output, i)`` (or ``(..., output)`` for a
            single name) for a mapping by output.
        """
        return [(path, m) for path, m in self.compile.metric_items()
                if isinstance(m, str) and is_import_path(m)]

    def input_names(self) -> list[str] | None:
        """The model's input names in order; None for a sequential model (one unnamed input)."""
        functional = self.model.functional
        return None if functional is None else functional.input_names()

    def output_names(self) -> list[str] | None:
        """The model's output names in order: the tensor names of ``outputs``.

        Returns:
            The names, or None for a sequential model: it has one output, which the graph
            names after its last layer (and losses, metrics and data may name it only when
            that layer has a ``name``).
        """
        functional = self.model.functional
        return None if functional is None else list(functional.outputs)

    def output_aliases(self) -> dict[str, str]:
        """Other names that losses, metrics and data may give an output, Keras-style.

        Returns:
            layer (or model) name -> output tensor name, for each layer whose call computed
            exactly one of the outputs; empty for a sequential model.
        """
        functional = self.model.functional
        return {} if functional is None else functional.output_aliases()

    def to_data(self) -> dict[str, Any]:
        """The resolved config as plain data (defaults filled, ``null``s left out).

        Returns:
            A dict of str, int, float, bool, list and dict that ``load_config`` accepts again
            (an empty ``models`` section is left out).
        """
        data = self.model_dump(mode="json", exclude_none=True)
        if not data.get("models"):
            data.pop("models", None)
        return data

    def to_yaml(self) -> str:
        """``to_data()`` as YAML text, keys in schema order."""
        return yaml.safe_dump(self.to_data(), sort_keys=False, default_flow_style=None)


def model_schema(model: type[BaseModel], title: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a file validated by ``model``, for editors'
    completion and checks: the model's validation-mode schema, titled."""
    schema = model.model_json_schema(mode="validation")
    schema["title"] = title
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def write_schema(schema: dict[str, Any], path: str | os.PathLike) -> None:
    """Write a schema to ``path``: 2-space indented JSON with a trailing newline."""
    Path(path).write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a config file (``RunConfig``) as a dict, with the ``include`` key
    that the loader merges away before validation (``kconf.config.include``)."""
    schema = model_schema(RunConfig, "kconf config")
    schema["properties"]["include"] = {
        "description": "files merged under this one, in order (relative to this file)",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    return schema


def write_json_schema(path: str | os.PathLike) -> None:
    """Write ``json_schema()`` to ``path`` (``schemas/kconf.schema.json`` in the
    repository)."""
    write_schema(json_schema(), path)
