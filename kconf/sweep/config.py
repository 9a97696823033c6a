"""The sweep file: which config to start from, what to vary, how to search and rank.

    name: mlp_lr
    base: mlp_softmax.yaml                        # relative to this file
    parameters:                                   # dotted paths, as `kconf train` overrides
      compile.optimizer.SGD.lr: [0.1, 0.01]       # a list: every value (grid_search)
      fit.batch_size: {choice: [32, 64]}          # a search space, as Ray Tune names them
      fit.epochs: 3                               # a scalar: the same in every trial
    search: {random: {trials: 8, seed: 0}}        # or: grid (the default)
    metric: val_accuracy
    mode: max
    scheduler: {asha: {grace_period: 1, reduction_factor: 2}}
    resources: {cpus: 1}

Validated like a model config: read with positions, a frozen pydantic schema, every problem
at ``file:line:col`` with its path (``parameters.fit.batch_size``) and what would be valid.
"""
from __future__ import annotations

import math
import os
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    WithJsonSchema,
    model_validator,
)

from kconf.args.fields import (
    ConfigModel,
    NonNegativeInt,
    PositiveInt,
    Str,
    bounded,
    choice,
    config_error,
)
from kconf.args.unions import SingleKey, TaggedSpec, args_of, by_kind, tagged_union
from kconf.text import show, unknown_name_message
from kconf.config.run import RunName, model_schema, write_schema

# --- search spaces (the names of Ray Tune's tune.grid_search, tune.choice, ...) ---------------

#: A value a parameter may take: any YAML value.
Value = Annotated[Any, WithJsonSchema({})]
Values = Annotated[list[Value], Field(min_length=1)]
#: One fixed value: a YAML scalar.
Scalar = Annotated[Any, WithJsonSchema({"type": ["string", "number", "boolean", "null"]})]


def _range(kind: type, *, positive: bool = False) -> Any:
    """``[low, high]``: two numbers (integers for ``kind=int``), low < high."""
    noun = "integers" if kind is int else "positive numbers" if positive else "numbers"

    def check(value: Any) -> tuple:
        def ok(v):
            if isinstance(v, bool) or not isinstance(v, (int, float) if kind is float else int):
                return False
            return math.isfinite(v) and (v > 0 or not positive)

        if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(map(ok, value))):
            raise config_error("range", f"expected [low, high], two {noun}, got {show(value)}")
        low, high = value
        if not low < high:
            raise config_error("range", f"low must be less than high, got {show(list(value))}")
        return (low, high)

    item = {"type": "integer" if kind is int else "number"}
    if positive:
        item["exclusiveMinimum"] = 0
    return Annotated[tuple, BeforeValidator(check),
                     WithJsonSchema({"type": "array", "items": item, "minItems": 2,
                                     "maxItems": 2})]


class SpaceSpecBase(TaggedSpec):
    """A search space ``{kind: args}``."""

    #: Whether values are drawn at random (only ``search: random`` may draw).
    random: ClassVar[bool] = True

    def grid_values(self) -> list[Any] | None:
        """The values a grid goes through; None for a space that draws at random."""
        return None


class GridSearchSpec(SpaceSpecBase):
    """``{grid_search: [values]}``: every value, in every combination (a plain list says the
    same)."""

    random: ClassVar[bool] = False
    grid_search: Values

    def grid_values(self) -> list[Any]:
        return list(self.grid_search)


class ChoiceSpec(SpaceSpecBase):
    """``{choice: [values]}``: one of the values, drawn uniformly."""

    choice: Values


class UniformSpec(SpaceSpecBase):
    """``{uniform: [low, high]}``: a float drawn uniformly from [low, high)."""

    uniform: _range(float)


class LogUniformSpec(SpaceSpecBase):
    """``{loguniform: [low, high]}``: a float whose logarithm is uniform (0 < low < high)."""

    loguniform: _range(float, positive=True)


class RandIntSpec(SpaceSpecBase):
    """``{randint: [low, high]}``: an integer drawn uniformly, low included, high excluded
    (Ray Tune's ``tune.randint``)."""

    randint: _range(int)


SPACE_SPECS: dict[str, type[SpaceSpecBase]] = {
    "grid_search": GridSearchSpec, "choice": ChoiceSpec, "uniform": UniformSpec,
    "loguniform": LogUniformSpec, "randint": RandIntSpec,
}
SpaceSpec = tagged_union(SingleKey("search space", SPACE_SPECS, "{loguniform: [0.0001, 0.1]}"),
                         SPACE_SPECS)

#: A scalar is one value for every trial, a list the values to go through, a mapping a space.
Parameter = by_kind(
    "a list of values, a search space like {loguniform: [0.0001, 0.1]}, or one fixed value",
    scalar=Scalar, list=Values, mapping=SpaceSpec)

PATH_TEXT = "a dotted path like the overrides of kconf train: compile.optimizer.SGD.lr"


def _check_path(value: str) -> str:
    parts = value.split(".")
    if not value or any(not p or p != p.strip() or "=" in p for p in parts):
        raise config_error("parameter_path", f"expected {PATH_TEXT}, got {show(value)}")
    return value


ParameterPath = Annotated[Str, AfterValidator(_check_path),
                          WithJsonSchema({"type": "string", "pattern": r"^[^.=\s]+(\.[^.=\s]+)*$"})]

# --- search -----------------------------------------------------------------------------------


class GridArgs(ConfigModel):
    """Grid search takes no arguments."""


class RandomArgs(ConfigModel):
    trials: PositiveInt = Field(description="how many times the space is sampled (Ray Tune's "
                                            "num_samples); a grid_search multiplies them")
    seed: NonNegativeInt = Field(0, description="seed of the draws: the same seed, the same "
                                                "trials")


class SearchSpecBase(TaggedSpec):
    """A search as ``{grid: {}}`` or ``{random: {trials, seed}}``; ``grid`` alone is the grid."""


class GridSpec(SearchSpecBase):
    grid: args_of(GridArgs)


class RandomSpec(SearchSpecBase):
    random: RandomArgs


SEARCH_SPECS = {"grid": GridSpec, "random": RandomSpec}
RANDOM_EXAMPLE = "{random: {trials: 10, seed: 0}}"


def _search_from_string(value: Any) -> Any:
    """``grid`` -> ``{grid: {}}``; ``random`` needs its trial count."""
    if value == "grid":
        return {"grid": {}}
    if value == "random":
        raise config_error("search", f"random search needs a number of trials: {RANDOM_EXAMPLE}")
    if isinstance(value, str):
        raise config_error("search", unknown_name_message("search", value, SEARCH_SPECS))
    return value


Search = Annotated[
    tagged_union(SingleKey("search", SEARCH_SPECS, RANDOM_EXAMPLE), SEARCH_SPECS),
    BeforeValidator(_search_from_string,
                    json_schema_input_type=Union[Literal["grid"], GridSpec, RandomSpec]),
]

# --- early stopping of poor trials ------------------------------------------------------------


class AshaArgs(ConfigModel):
    """Asynchronous successive halving (Ray Tune's ASHAScheduler), on per-epoch reports."""

    grace_period: PositiveInt = Field(1, description="epochs every trial runs; the first rung")
    reduction_factor: bounded(float, gt=1) = Field(
        4, description="rungs at grace_period * reduction_factor**k epochs; at each, a trial "
                       "continues only when in the best 1/reduction_factor so far")
    max_t: PositiveInt | None = Field(
        None, description="the most epochs a trial runs (default: its fit.epochs)")

    @model_validator(mode="after")
    def _max_t_after_grace(self):
        if self.max_t is not None and self.max_t < self.grace_period:
            raise config_error("asha", f"max_t ({self.max_t}) must be at least grace_period "
                                       f"({self.grace_period})", at="max_t")
        return self


class SchedulerSpecBase(TaggedSpec):
    """A trial scheduler as ``{asha: {args}}`` (``asha`` alone takes the defaults)."""


class AshaSpec(SchedulerSpecBase):
    asha: args_of(AshaArgs)


SCHEDULER_SPECS = {"asha": AshaSpec}


def _scheduler_from_string(value: Any) -> Any:
    """``asha`` -> ``{asha: {}}``; an unknown scheduler's name is named."""
    if isinstance(value, str):
        if value in SCHEDULER_SPECS:
            return {value: {}}
        raise config_error("scheduler", unknown_name_message("scheduler", value, SCHEDULER_SPECS))
    if isinstance(value, dict) and len(value) == 1:
        (key,) = value
        if key not in SCHEDULER_SPECS:
            raise config_error("scheduler", unknown_name_message("scheduler", key,
                                                                 SCHEDULER_SPECS), at=str(key))
    return value


#: One scheduler for now; a second one makes this a tagged union like ``Search``.
Scheduler = Annotated[
    AshaSpec,
    BeforeValidator(_scheduler_from_string,
                    json_schema_input_type=Union[Literal["asha"], AshaSpec]),
]


class Resources(ConfigModel):
    """What one trial may use."""

    cpus: PositiveInt = Field(1, description="CPU cores (BLAS threads) per trial; the local "
                                             "backend runs cores // cpus trials at once")


# --- the file ---------------------------------------------------------------------------------


class SweepConfig(ConfigModel):
    """A sweep file, validated and frozen; ``sweep.source`` locates each value in it."""

    # The docstring above is the JSON Schema's description. This model is plain data:
    # ``load_sweep`` returns it as ``LoadedSweep.config``, beside its positions (``.source``).

    name: RunName = Field("sweep", description="names the sweep folder runs/<name>/<time>/; "
                                               "default: the file's stem")
    base: Annotated[Str, Field(min_length=1)] = Field(
        description="the config every trial starts from, relative to this file")
    parameters: Annotated[dict[ParameterPath, Parameter], Field(min_length=1)] = Field(
        description="dotted path (as kconf train overrides) -> a list of values, a search "
                    "space ({grid_search | choice: [...]}, {uniform | loguniform | randint: "
                    "[low, high]}) or one fixed value")
    search: Search = Field(default_factory=lambda: GridSpec(grid=GridArgs()),
                           description=f"grid (every combination) or {RANDOM_EXAMPLE}")
    metric: Annotated[Str, Field(min_length=1)] = Field(
        description="a logged quantity to rank trials by: val_accuracy, val_loss, loss, ...")
    mode: choice("mode", ("max", "min")) = Field(description="max or min: which way is better")
    scope: choice("scope", ("last", "all")) = Field(
        "last", description="rank by the metric's last value (last) or its best over all "
                            "epochs (all), as Ray Tune's get_best_result")
    scheduler: Scheduler | None = Field(None, description="early stopping of poor trials")
    resources: Resources = Field(default_factory=Resources)

    @property
    def asha(self) -> AshaArgs | None:
        """The ASHA scheduler's arguments, or None without a scheduler."""
        return None if self.scheduler is None else self.scheduler.args

    def to_data(self) -> dict[str, Any]:
        """The validated sweep as plain data (defaults filled in)."""
        return self.model_dump(mode="json")


def sweep_json_schema() -> dict[str, Any]:
    """The JSON Schema of a sweep file (``SweepConfig``) as a dict."""
    return model_schema(SweepConfig, "kconf sweep")


def write_sweep_json_schema(path: str | os.PathLike) -> None:
    """Write ``sweep_json_schema()`` to ``path`` (``schemas/kconf-sweep.schema.json`` in the
    repository)."""
    write_schema(sweep_json_schema(), path)
