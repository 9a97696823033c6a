"""``kconf runs --compare RUN RUN...``: how runs differ in their config and how they ended.

Each run folder's ``resolved.yaml`` (every default filled in) is flattened to dotted keys
(``compile.optimizer.Adam.learning_rate``); the keys whose values are not the same in every
run are its differences. The final metrics are each run's last epoch in ``metrics.jsonl``
and its test results (``evaluation.json``, as ``test_<name>``). Plain Python: no NumPy.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from kconf.errors import ConfigError, Problem, SourcePos
from kconf.train.listing import _read_json as _json
from kconf.train.listing import _read_rows
from kconf.train.tracking.common import flatten

#: The value of a key that a run's config does not have.
ABSENT = "-"


@dataclass
class RunComparison:
    """Runs side by side.

    Attributes:
        runs: the run folders, in the order given.
        labels: one short name per run (``<name>/<time>``, the folder when those repeat).
        status: each run's ``status.json`` status (``unknown`` without one).
        epochs: epochs each run completed.
        differences: dotted config key -> one value per run, for the keys that differ
            (``ABSENT`` where a run's config does not have the key).
        metrics: metric name -> one final value per run (None where a run did not log it).
    """

    runs: list[Path]
    labels: list[str]
    status: list[str] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    differences: dict[str, list[Any]] = field(default_factory=dict)
    metrics: dict[str, list[float | None]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"runs": [str(r) for r in self.runs], "labels": self.labels,
                "status": self.status, "epochs": self.epochs,
                "differences": self.differences, "metrics": self.metrics}


def compare_runs(paths: Sequence[str | Path]) -> RunComparison:
    """Compare two or more run folders.

    Raises:
        ConfigError: fewer than two folders, or a folder that is not a run (it has no
            readable ``resolved.yaml``): one line per folder, saying what a run folder is.
    """
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ConfigError([Problem("--compare needs two run folders or more, e.g. kconf runs "
                                   "--compare runs/mlp/20250101-120000 runs/mlp/20250102-090000")])
    configs, problems = [], []
    for path in paths:
        try:
            configs.append(_read_config(path))
        except ValueError as exc:
            problems.append(Problem(str(exc), (), SourcePos(str(path))))
    if problems:
        raise ConfigError(problems)
    flat = [flatten(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    result = RunComparison(paths, _labels(paths))
    for key in keys:
        values = [f.get(key, ABSENT) for f in flat]
        if any(v != values[0] for v in values[1:]):
            result.differences[key] = values
    finals = []
    for path in paths:
        rows = _rows(path)
        status = _json(path / "status.json").get("status", "unknown")
        result.status.append(str(status))
        result.epochs.append(len(rows))
        final = {k: v for k, v in (rows[-1] if rows else {}).items() if k != "epoch"}
        final.update({f"test_{k}": v for k, v in _json(path / "evaluation.json").items()})
        finals.append(final)
    for name in dict.fromkeys(k for f in finals for k in f):
        result.metrics[name] = [_number(f.get(name)) for f in finals]
    return result


def _read_config(path: Path) -> dict:
    where = "a run folder holds resolved.yaml, e.g. runs/<name>/<time>/"
    if not path.is_dir():
        raise ValueError(f"not a folder: {where}")
    try:
        data = yaml.safe_load((path / "resolved.yaml").read_text())
    except OSError:
        raise ValueError(f"not a run folder (it has no resolved.yaml): {where}") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"resolved.yaml cannot be read: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValueError("resolved.yaml does not hold a config")
    return data


def _labels(paths: list[Path]) -> list[str]:
    labels = [f"{p.resolve().parent.name}/{p.resolve().name}" for p in paths]
    return labels if len(set(labels)) == len(labels) else [str(p) for p in paths]


def _rows(path: Path) -> list[dict]:
    """Complete rows of ``metrics.jsonl``, the last one logged for each epoch (a resumed run
    may have logged an epoch twice)."""
    by_epoch = {r["epoch"]: r for r in _read_rows(path / "metrics.jsonl")
                if isinstance(r.get("epoch"), int)}
    return [by_epoch[e] for e in sorted(by_epoch)]


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def comparison_table(comparison: RunComparison):
    """A rich table: one column per run; rows for status and epochs, then each config key
    that differs, then each final metric."""
    from rich.table import Table

    table = Table(title=f"{len(comparison.runs)} runs compared", title_justify="left")
    table.add_column("")
    for label in comparison.labels:
        table.add_column(label, justify="right")
    table.add_row("status", *comparison.status)
    table.add_row("epochs", *[str(e) for e in comparison.epochs])
    table.add_section()
    if not comparison.differences:
        table.add_row("(configs are the same)", *[""] * len(comparison.runs))
    for key, values in comparison.differences.items():
        table.add_row(key, *[_show(v) for v in values])
    table.add_section()
    for name, values in comparison.metrics.items():
        table.add_row(name, *["-" if v is None else f"{v:.4f}" for v in values])
    return table


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (dict, list, bool)) or value is None \
        else str(value)
