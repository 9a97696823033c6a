"""Validating every trial of a sweep before anything runs, with problems located in the
sweep file.

A trial is the base config with the trial's values as overrides; it is checked as
``kconf validate`` checks a config (schema, graph and shapes, data, callbacks' monitors) and
its ``metric`` must be one the run logs. A problem a value causes is placed at that value in
the sweep file (``sweep.yaml:5:24: parameters.fit.batch_size[1]: must be a positive integer,
got -1 (trial_001)``); a problem of a parameter's path at the parameter's key. A problem that
every trial has is a problem of the sweep, reported once.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from kconf.config import OVERRIDE_FILE, LoadedConfig, load_config
from kconf.errors import OVERRIDE_PATH, UNKNOWN_KEY, ConfigError, Problem, format_path
from kconf.sweep.load import LoadedSweep, describe, load_sweep
from kconf.sweep.space import Trial, expand, varying


@dataclass
class PlannedTrial:
    """A trial and what checking it found.

    Attributes:
        trial: the trial (id, parameter values, where they are written).
        config: its validated config, or None when it has problems.
        problems: its own problems (those every trial shares are the plan's), each with a
            note naming the trial.
        causes: the same problems without the trial's note: what trials that fail alike
            have in common.
    """

    trial: Trial
    config: LoadedConfig | None = None
    problems: list[Problem] = field(default_factory=list)
    causes: list[Problem] = field(default_factory=list, repr=False)

    @property
    def trial_id(self) -> str:
        return self.trial.trial_id

    @property
    def epochs(self) -> int | None:
        """``fit.epochs`` of the trial's config (None when it is invalid)."""
        return None if self.config is None else self.config.fit.epochs


@dataclass
class SweepPlan:
    """A validated sweep file and its checked trials.

    Attributes:
        sweep: the sweep.
        trials: every trial, in order.
        problems: the problems of the sweep itself (every trial has them); none when the
            plan could be made.
        key: a digest of the sweep's definition and its trials' resolved configs; a sweep
            folder with the same key is the same sweep (see ``kconf.sweep.folders``).
    """

    sweep: LoadedSweep
    trials: list[PlannedTrial]
    key: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def varying(self) -> list[str]:
        """The parameters that take more than one value: the columns of tables."""
        return varying(self.sweep.config)

    def valid(self) -> list[PlannedTrial]:
        """The trials without problems."""
        return [t for t in self.trials if not t.problems]

    def all_problems(self) -> list[Problem]:
        """The sweep's problems, then each trial's, in order."""
        return [*self.problems, *(p for t in self.trials for p in t.problems)]


def plan_sweep(path: str | Path) -> SweepPlan:
    """Load a sweep file, expand its trials and check every one.

    Args:
        path: the sweep's YAML file.

    Returns:
        The plan; trials with problems carry them (``plan.all_problems()``).

    Raises:
        ConfigError: problems of the sweep file itself, or problems every trial has (a
            parameter path the config does not have, a broken base config, a metric that no
            trial logs), each located.
    """
    sweep = load_sweep(path)
    checker = _Checker(sweep)
    planned = [checker.check(trial) for trial in expand(sweep.config)]
    shared = _shared_problems(planned)
    if shared:
        raise ConfigError(shared, sweep.source.file)
    return SweepPlan(sweep, planned, plan_key(sweep, planned))


def plan_key(sweep: LoadedSweep, trials: list[PlannedTrial]) -> str:
    """The digest that identifies a sweep: its validated definition (``resources`` left out:
    they do not change results) and each trial's resolved config (its values when invalid).
    Comments and formatting do not count; an edit of the base config does."""
    definition = {k: v for k, v in sweep.to_data().items() if k != "resources"}
    configs = [t.config.to_data() if t.config is not None else {"invalid": t.trial.params}
               for t in trials]
    text = json.dumps({"sweep": definition, "trials": configs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _LastOne:
    """Remembers the last value computed, by key (trials next to each other share most)."""

    def __init__(self):
        self.key: str | None = None
        self.value: Any = None

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        text = json.dumps(key, sort_keys=True, default=str)
        if text != self.key:
            self.key, self.value = None, compute()
            self.key = text
        return self.value


class _Checker:
    """Checks trials one by one, sharing built models and loaded data between them."""

    def __init__(self, sweep: LoadedSweep):
        self.sweep = sweep
        self.models = _LastOne()
        self.data = _LastOne()

    def check(self, trial: Trial) -> PlannedTrial:
        from kconf.api import build_model
        from kconf.data.sources import check_shapes, load_splits
        from kconf.train.run import check_monitors, logged_names
        from kconf.train.tracking import check_extras

        sweep = self.sweep
        try:
            cfg = load_config(sweep.base_path, overrides=trial.params)
            data = cfg.to_data()
            model = self.models.get(
                [data["model"], data.get("models"),
                 {k: v for k, v in data["compile"].items() if k != "optimizer"},
                 str(cfg.source.base_dir)],
                lambda: build_model(cfg))
            splits = self.data.get([data["data"], cfg.seed, str(cfg.source.base_dir)],
                                   lambda: load_splits(cfg))
            check_shapes(splits, model.graph, cfg)
            check_monitors(cfg, model, splits)
            check_extras(cfg)
        except ConfigError as exc:
            return _failed(trial, [_relocate(p, trial, sweep) for p in exc.problems])
        logged = logged_names(model, "validation" in splits or bool(cfg.fit.validation_split))
        if sweep.metric not in logged:
            return _failed(trial, [(Problem(
                f"{sweep.metric!r} is not logged; logged: {', '.join(logged)}", ("metric",),
                sweep.source.locate(("metric",))), trial.trial_id)])
        return PlannedTrial(trial, cfg)


def _failed(trial: Trial, relocated: list[tuple[Problem, str]]) -> PlannedTrial:
    """A trial with problems, from each problem and the note that names the trial in it."""
    noted = [replace(p, message=f"{p.message} ({note})") if note else p for p, note in relocated]
    return PlannedTrial(trial, None, noted, [p for p, _ in relocated])


def _relocate(problem: Problem, trial: Trial, sweep: LoadedSweep) -> tuple[Problem, str]:
    """A trial's problem, placed in the sweep file when an override (a value) caused it.

    Returns:
        The problem and the note that names the trial in its message ("" for none).
    """
    values = ", ".join(f"{k}={describe(trial.params[k])}" for k in varying(sweep.config))
    if problem.pos is None or problem.pos.file != OVERRIDE_FILE:  # in the base config itself
        return problem, f"{trial.trial_id}: {values}" if values else ""
    key, about_path = _culprit(problem, trial)
    if key is None:
        return replace(problem, pos=sweep.source.locate(("parameters",))), trial.trial_id
    where = trial.origins[key]
    config_path = format_path(problem.path)
    note = trial.trial_id if config_path in ("", key) else f"{trial.trial_id}, at {config_path}"
    if problem.kind == OVERRIDE_PATH:  # at the parameter, which its message need not name
        problem = replace(problem, message=problem.message.removeprefix(f"override {key!r}: "))
    if about_path:
        return replace(problem, path=("parameters", key),
                       pos=sweep.source.locate_key(("parameters", key))), ""
    return replace(problem, path=where, pos=sweep.source.locate(where)), note


def _culprit(problem: Problem, trial: Trial) -> tuple[str | None, bool]:
    """The parameter that set the value a problem is about, and whether the problem is
    about its path (a key the config does not have, an index out of range) rather than its
    value."""
    if problem.kind == OVERRIDE_PATH and problem.key in trial.params:
        return problem.key, True
    parts = [str(p) for p in problem.path]
    unknown = problem.kind == UNKNOWN_KEY
    if unknown:  # reported at the mapping that holds it; the parameter named the key itself
        parts.append(str(problem.key))
    best, best_len = None, 0
    for key in trial.params:
        keys = key.split(".")
        n = 0
        for p, k in zip(parts, keys):
            if p != k and not (k.startswith("-") and k[1:].isdigit() and p.isdigit()):
                break
            n += 1
        if n and n >= best_len and (n == len(parts) or n == len(keys)):
            best, best_len = key, n
    if best is None and len(trial.params) == 1:
        best = next(iter(trial.params))
    return best, unknown


def _shared_problems(planned: list[PlannedTrial]) -> list[Problem]:
    """Problems every trial has (their causes, without the trials' notes), once each; empty
    when some trial is valid or trials differ in their problems."""
    if not planned or any(not t.problems for t in planned):
        return []
    common = list(planned[0].causes)
    for t in planned[1:]:
        causes = set(t.causes)
        common = [c for c in common if c in causes]
    if not common:
        return []
    if len(planned) == 1:
        return list(planned[0].problems)
    return list(dict.fromkeys(common))
