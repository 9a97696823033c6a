"""Sweeps: many variants of one config, trained in parallel, ranked by a metric.

    from kconf.sweep import run_sweep
    rows = run_sweep("configs/sweep_mlp.yaml", workers=2)     # leaderboard rows, best first

Layout: ``config`` is the sweep file's schema and ``load`` reads it; ``space`` expands the
trials (grid, random); ``plan`` validates every trial; ``driver`` finds or makes the sweep
folder and runs what is left on a backend (``backends``: ``local`` worker processes, ``ray``
Ray Tune trials); ``trial`` is what a worker runs; ``asha`` stops poor trials;
``leaderboard`` ranks; ``folders`` is the sweep folder's files; ``listing`` is ``kconf
sweeps``; ``tables`` renders.
"""
from kconf.sweep.config import SweepConfig, sweep_json_schema, write_sweep_json_schema
from kconf.sweep.driver import SweepRun, open_sweep, run_sweep
from kconf.sweep.leaderboard import LeaderboardRow, TrialRecord, leaderboard
from kconf.sweep.listing import SweepInfo, list_sweeps
from kconf.sweep.load import LoadedSweep, load_sweep
from kconf.sweep.plan import PlannedTrial, SweepPlan, plan_sweep
from kconf.sweep.space import Trial, expand
from kconf.sweep.trial import TrialResult, TrialSpec, run_trial

__all__ = [
    "LeaderboardRow", "LoadedSweep", "PlannedTrial", "SweepConfig", "SweepInfo", "SweepPlan",
    "SweepRun", "Trial", "TrialRecord", "TrialResult", "TrialSpec", "expand", "leaderboard",
    "list_sweeps", "load_sweep", "open_sweep", "plan_sweep", "run_sweep", "run_trial",
    "sweep_json_schema", "write_sweep_json_schema",
]
