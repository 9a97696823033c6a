"""One training run from a config: build, load data, fit, evaluate, record in a run folder."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from kconf.api import build_model
from kconf.data.sources import Split, check_shapes, load_splits
from kconf.errors import TrainingError
from kconf.model import Model
from kconf.report.summary import render_text, summary_renderables
from kconf.train.callbacks import History
from kconf.train.resolve import overrides_yaml
from kconf.train.runs import (
    SOURCE_FILE,
    RunRecorder,
    create_run_dir,
    save_weights,
    source_info,
    versions,
    write_atomic,
)


@dataclass
class Run:
    """A prepared run: the compiled model, its data, and the folder it writes to."""

    cfg: object
    model: Model
    splits: dict[str, Split]
    run_dir: Path
    recorder: RunRecorder
    history: History | None = None
    evaluation: dict | None = None
    extras: dict = field(default_factory=dict)

    def fit(self, callbacks=()) -> History:
        """Train as the config's ``fit`` section says; the run folder follows every epoch.

        Raises:
            TrainingError: training stopped (e.g. NaN loss); status.json says 'failed'.
        """
        fit = self.cfg.fit
        train = self.splits["train"]
        val = self.splits.get("validation")
        try:
            self.history = self.model.fit(
                train.x, train.y, batch_size=fit.batch_size, epochs=fit.epochs,
                shuffle=fit.shuffle, validation_split=fit.validation_split,
                validation_data=(val.x, val.y) if val else None,
                callbacks=[self.recorder, *callbacks])
        except TrainingError as exc:
            self.recorder.write_status("failed", error=str(exc))
            raise
        except KeyboardInterrupt:
            self.recorder.write_status("interrupted")
            save_weights(self.run_dir / "weights.npz", self.model.named_weights())
            raise
        return self.history

    def evaluate(self) -> dict | None:
        """The docs' ``model.evaluate`` on the test split, if the config has one."""
        test = self.splits.get("test")
        if test is not None:
            try:
                self.evaluation = self.model.evaluate(test.x, test.y,
                                                      batch_size=self.cfg.fit.batch_size,
                                                      return_dict=True)
            except KeyboardInterrupt:
                self.recorder.write_status("interrupted")
                raise
            write_atomic(self.run_dir / "evaluation.json",
                         json.dumps(self.evaluation, indent=2) + "\n")
        self.recorder.write_status("finished")
        return self.evaluation


def prepare_run(cfg, output_dir: Path | str = "runs",
                overrides: Mapping[str, Any] | None = None) -> Run:
    """Build the model and load the data (so config mistakes surface before any folder is
    made), then create the run folder with the config as written, resolved, the overrides,
    the package versions, where the config came from (``source.json``) and the summary.

    Args:
        cfg: the validated config (overrides already applied).
        output_dir: where ``<name>/<timestamp>/`` folders go.
        overrides: the dotted overrides that were applied, recorded in ``overrides.yaml``.

    Returns:
        The prepared ``Run``.

    Raises:
        ConfigError: anything wrong in the config or its data, located in the YAML.
    """
    model = build_model(cfg)
    splits = load_splits(cfg)
    check_shapes(splits, model.graph, cfg)
    run_dir = create_run_dir(Path(output_dir), cfg.name)
    source = cfg.source.text
    if source is None:
        source = yaml.safe_dump(cfg.to_data(), sort_keys=False)
    write_atomic(run_dir / "config.yaml", source)
    write_atomic(run_dir / "resolved.yaml", yaml.safe_dump(cfg.to_data(), sort_keys=False))
    write_atomic(run_dir / "overrides.yaml", overrides_yaml(overrides or {}))
    write_atomic(run_dir / "versions.json", json.dumps(versions(), indent=2) + "\n")
    write_atomic(run_dir / SOURCE_FILE, json.dumps(source_info(cfg), indent=2) + "\n")
    write_atomic(run_dir / "summary.txt", render_text(
        summary_renderables(model, cfg.source.file, cfg.import_paths())))
    return Run(cfg, model, splits, run_dir, RunRecorder(run_dir))
