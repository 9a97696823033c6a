"""Asynchronous successive halving (ASHA, Li et al. 2018) on per-epoch reports: kconf's own,
for the local backend, with the rules of Ray Tune's ``ASHAScheduler`` (one bracket).

Rungs sit at ``grace_period * reduction_factor**k`` epochs (k = 0, 1, ...) below ``max_t``.
The first time a trial reports an epoch at or past a rung it has not been ranked at, its
metric is compared with the values other trials reported at that rung *before* it: when it
is below the ``(1 - 1/reduction_factor)`` quantile of those (linear interpolation; "below"
means worse, whatever the mode), the trial is stopped; either way its value joins the rung.
The first trial at a rung always continues, so the outcome depends on the order in which
trials arrive (that is the "asynchronous": no trial ever waits for others). A trial that
reaches ``max_t`` epochs stops there. Each report is ranked at one rung at most.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np


class Asha:
    """ASHA's rungs and decisions.

    Args:
        metric: the reported quantity ranked (``val_accuracy``).
        mode: ``"max"`` or ``"min"``.
        max_t: the most epochs a trial runs.
        grace_period: the first rung, in epochs.
        reduction_factor: the ratio between rungs; the best 1/reduction_factor continue.
    """

    def __init__(self, metric: str, mode: str, max_t: int, grace_period: int = 1,
                 reduction_factor: float = 4):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.metric = metric
        self.sign = 1.0 if mode == "max" else -1.0
        self.max_t = max_t
        self.reduction_factor = reduction_factor
        self.milestones: list[int] = []
        k = 0
        while (m := int(round(grace_period * reduction_factor ** k))) < max_t:
            if not self.milestones or m > self.milestones[-1]:
                self.milestones.append(m)
            k += 1
        #: milestone -> trial -> the signed value it was ranked with there.
        self.rungs: dict[int, dict[str, float]] = {m: {} for m in self.milestones}

    def cutoff(self, milestone: int) -> float | None:
        """The signed value a trial must reach at a rung (None while the rung is empty)."""
        values = [v for v in self.rungs[milestone].values() if not math.isnan(v)]
        if not values:
            return None
        return float(np.percentile(values, (1 - 1 / self.reduction_factor) * 100))

    def on_result(self, trial_id: str, epoch: int, value: float | None) -> str | None:
        """Rank one report.

        Args:
            trial_id: the trial.
            epoch: epochs completed.
            value: the metric after that epoch (None or NaN: not ranked).

        Returns:
            None to continue, or the reason the trial stops now.
        """
        if epoch >= self.max_t:
            return f"ASHA: reached max_t={self.max_t} epochs"
        if value is None or math.isnan(value):
            return None
        signed = self.sign * float(value)
        for milestone in reversed(self.milestones):
            if epoch < milestone or trial_id in self.rungs[milestone]:
                continue
            cutoff = self.cutoff(milestone)
            self.rungs[milestone][trial_id] = signed
            if cutoff is not None and signed < cutoff:
                return (f"ASHA: {self.metric} {value:.4g} at epoch {epoch} is not in the best "
                        f"1/{self.reduction_factor:g} at the {milestone}-epoch rung (needs "
                        f"{'>=' if self.sign > 0 else '<='} {self.sign * cutoff:.4g})")
            return None
        return None

    def restore(self, trial_id: str, history: Iterable[dict]) -> None:
        """Put back the rungs a trial was ranked at before (a resumed sweep): its value at
        each milestone epoch it completed."""
        for row in history:
            epoch, value = row.get("epoch"), row.get(self.metric)
            if epoch in self.rungs and isinstance(value, (int, float)):
                self.rungs[epoch].setdefault(trial_id, self.sign * float(value))
