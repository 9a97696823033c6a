"""From a sweep's parameters to its trials: grid and random search, as Ray Tune expands them.

* ``search: grid``: every combination of the lists (``grid_search``), the first parameter
  varying slowest; scalars are the same in every trial.
* ``search: {random: {trials: N, seed: S}}``: N samples; each sample goes through every
  combination of the lists (so N x grid trials, as Ray Tune's ``num_samples`` repeats a
  grid) and draws each search space anew from one ``numpy.random.Generator`` seeded with S,
  parameters in file order: the same file gives the same trials, always.
"""
from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kconf.errors import ConfigPath
from kconf.sweep.config import SpaceSpecBase, SweepConfig


@dataclass(frozen=True)
class Trial:
    """One trial of a sweep.

    Attributes:
        trial_id: ``trial_000``, ``trial_001``...; names its run folder.
        index: its position in the sweep.
        params: dotted path -> value for every parameter, in file order (the overrides
            applied to the base config).
        origins: dotted path -> where that value is written in the sweep file (a config path
            such as ``("parameters", "fit.batch_size", 1)``).
    """

    trial_id: str
    index: int
    params: dict[str, Any]
    origins: dict[str, ConfigPath]


def trial_ids(count: int) -> list[str]:
    """``trial_000`` ... with as many digits as the count needs (at least three)."""
    width = max(3, len(str(count - 1)))
    return [f"trial_{i:0{width}d}" for i in range(count)]


def varying(sweep: SweepConfig) -> list[str]:
    """The parameters that take more than one value (the others are fixed scalars)."""
    return [path for path, spec in sweep.parameters.items()
            if isinstance(spec, (list, SpaceSpecBase))]


def _axes(sweep: SweepConfig) -> list[list[tuple[str, Any, ConfigPath]]]:
    """One axis per parameter: its grid values with their origins; random ones hold None."""
    axes = []
    for path, spec in sweep.parameters.items():
        where = ("parameters", path)
        if isinstance(spec, list):
            axes.append([(path, v, (*where, i)) for i, v in enumerate(spec)])
        elif isinstance(spec, SpaceSpecBase) and spec.grid_values() is not None:
            axes.append([(path, v, (*where, spec.tag, i))
                         for i, v in enumerate(spec.grid_values())])
        elif isinstance(spec, SpaceSpecBase):
            axes.append([(path, None, where)])
        else:
            axes.append([(path, spec, where)])
    return axes


def draw(spec: SpaceSpecBase, rng: np.random.Generator) -> tuple[Any, tuple]:
    """One value of a random search space, and where in the space it came from.

    Returns:
        ``(value, origin suffix)``: ``("choice", i)`` for a choice, ``(kind,)`` for a range.
    """
    if spec.tag == "choice":
        i = int(rng.integers(len(spec.choice)))
        return copy.deepcopy(spec.choice[i]), ("choice", i)
    if spec.tag == "uniform":
        low, high = spec.uniform
        return float(rng.uniform(low, high)), ("uniform",)
    if spec.tag == "loguniform":
        low, high = spec.loguniform
        return float(math.exp(rng.uniform(math.log(low), math.log(high)))), ("loguniform",)
    if spec.tag == "randint":
        low, high = spec.randint
        return int(rng.integers(low, high)), ("randint",)
    raise ValueError(f"{spec.tag} does not draw at random")


def expand(sweep: SweepConfig) -> list[Trial]:
    """The sweep's trials, in order (see the module's docstring for the rules).

    Args:
        sweep: a validated sweep.

    Returns:
        One ``Trial`` per combination (grid) or per sample and combination (random).
    """
    combos = list(itertools.product(*_axes(sweep)))
    random_search = sweep.search.tag == "random"
    samples = sweep.search.args.trials if random_search else 1
    rng = np.random.default_rng(sweep.search.args.seed if random_search else 0)
    chosen = []
    for _ in range(samples):
        for combo in combos:
            params, origins = {}, {}
            for path, value, where in combo:
                spec = sweep.parameters[path]
                if isinstance(spec, SpaceSpecBase) and spec.random:
                    value, suffix = draw(spec, rng)
                    where = (*where, *suffix)
                params[path] = copy.deepcopy(value)
                origins[path] = where
            chosen.append((params, origins))
    ids = trial_ids(len(chosen))
    return [Trial(tid, i, p, o) for i, (tid, (p, o)) in enumerate(zip(ids, chosen))]
