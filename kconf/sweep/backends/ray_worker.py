"""The Ray backend's worker side: the Tune trainable that runs one trial on a node of the
cluster, and the small actor that carries ASHA's stop decisions to it.

A trial runs in a folder of its own on its node (the driver's run folder may not exist
there), with ``kconf.sweep.trial.run_trial``. Everything goes back to the driver as Tune
results (``tune.report``), one per event, each with a ``kconf`` entry the driver's callback
takes out before Tune records the result:

    {"event": "started", "node": {...}, "initial_epoch": k, "files": [...]}
    {"event": "epoch", "epoch": n, "metrics": {...}, "files": [...]}   (metrics also at the top
                                                                        level, for Tune)
    {"event": "result", "result": <TrialResult>, "files": [...]}       (the trainable's return)

``files`` are the run folder's files that changed since the previous report, as
``(relative path, bytes)`` pairs: the driver's copy of the run folder follows the trial's
after every report (configs, metrics, ``checkpoints/`` each epoch, then ``weights.npz`` and
``evaluation.json``), so an interrupted trial resumes from the driver's copy, whichever node
runs it next. Nothing assumes the driver's filesystem is reachable from the node; the base
config and the files it names must be at the same paths on every node.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray import tune

from kconf.sweep.node import NODE_IP_VARIABLE
from kconf.sweep.trial import TrialSpec, run_trial

#: The key of kconf's own entry in a Tune result.
KEY = "kconf"

#: ``(path relative to the run folder, contents)``.
Files = list[tuple[str, bytes]]


@ray.remote(num_cpus=0)
class Decisions:
    """Stop reasons for trials, set by the driver's scheduler and taken by the trials.

    The driver sets a reason before Tune lets the trial's ``tune.report`` return, so the
    trial finds it when it asks right after that report.
    """

    def __init__(self):
        self.reasons: dict[tuple[str, int], str] = {}

    def put(self, trial_id: str, epoch: int, reason: str) -> None:
        self.reasons[(trial_id, epoch)] = reason

    def take(self, trial_id: str, epoch: int) -> str | None:
        return self.reasons.pop((trial_id, epoch), None)


class FolderSync:
    """Tells which files of a folder changed since it last looked (by content)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.digests: dict[str, bytes] = {}

    def changed(self) -> Files:
        """The files that are new or changed since the last call, with their contents."""
        found = []
        if not self.folder.is_dir():
            return found
        for path in sorted(p for p in self.folder.rglob("*") if p.is_file()):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                continue  # a write in progress (``write_atomic``)
            rel = path.relative_to(self.folder).as_posix()
            data = path.read_bytes()
            digest = hashlib.blake2b(data, digest_size=16).digest()
            if self.digests.get(rel) != digest:
                self.digests[rel] = digest
                found.append((rel, data))
        return found


def write_files(folder: Path, files: Files) -> None:
    """Write ``(relative path, bytes)`` pairs under ``folder``; a path leading out of it is
    refused.

    Raises:
        ValueError: an absolute path or one with ``..``.
    """
    from kconf.files import write_atomic

    folder = Path(folder)
    for rel, data in files:
        parts = Path(rel).parts
        if Path(rel).is_absolute() or ".." in parts or not parts:
            raise ValueError(f"refusing to write {rel!r} outside {folder}")
        path = folder.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)


def train(config: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """Run one trial (the Tune function trainable; ``config["trial"]`` is its ``TrialSpec``).

    Args:
        config: Tune's config of the trial.
        job: what every trial shares: ``decisions`` (a ``Decisions`` handle, or None when
            the sweep has no scheduler) and ``resume`` (trial id -> the driver's run folder
            files, for the trials that continue from a checkpoint).

    Returns:
        The final Tune result: the ``TrialResult`` and the files written since the last
        report.
    """
    spec = TrialSpec.from_json(config["trial"])
    decisions = job.get("decisions")
    os.environ[NODE_IP_VARIABLE] = ray.util.get_node_ip_address()  # what the trial records
    with tempfile.TemporaryDirectory(prefix=f"kconf-{spec.trial_id}-") as tmp:
        run_dir = Path(tmp) / spec.trial_id
        sync = FolderSync(run_dir)
        if spec.resume:
            write_files(run_dir, job.get("resume", {}).get(spec.trial_id, []))
            sync.changed()  # the driver has these already

        def on_start(initial_epoch: int, node: dict[str, str]) -> None:
            tune.report({KEY: {"event": "started", "node": node,
                               "initial_epoch": initial_epoch, "files": sync.changed()}})

        def report(epoch: int, metrics: dict[str, float]) -> str | None:
            tune.report({**metrics, "epoch": epoch,
                         KEY: {"event": "epoch", "epoch": epoch, "metrics": metrics,
                               "files": sync.changed()}})
            if decisions is None:
                return None
            return ray.get(decisions.take.remote(spec.trial_id, epoch))

        result = run_trial(dataclasses.replace(spec, run_dir=str(run_dir)), report, on_start)
        if result.error:  # name the driver's copy of the run folder, not this node's
            result.error = result.error.replace(str(run_dir), spec.run_dir)
        return {KEY: {"event": "result", "result": result.to_json(), "files": sync.changed()}}
