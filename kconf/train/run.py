"""One training run from a config: build, load data, fit, evaluate, record in a run folder."""
from __future__ import annotations

import json
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from kconf.api import build_model
from kconf.data.preprocess import Preprocessing
from kconf.data.sources import Split, check_shapes, load_prepared
from kconf.data.stream import changed_since, split_fingerprints
from kconf.engine.backend import retain_freed_memory
from kconf.engine.threads import product_threads
from kconf.errors import ConfigError, Problem, RunWarning, TrainingError
from kconf.files import write_atomic
from kconf.model import Model
from kconf.report.summary import render_text, summary_renderables
from kconf.train.adapt import adapt_preprocessing
from kconf.train.callbacks import CSVLogger, EarlyStopping, History, ReduceLROnPlateau
from kconf.train.checkpoint import Checkpointer
from kconf.train.lock import RunLock, RunLocked
from kconf.train.preprocessing import save_preprocessing
from kconf.train.resolve import overrides_yaml
from kconf.train.tracking import EXTRAS, check_extras, make_tracking
from kconf.train.runs import (
    SOURCE_FILE,
    RunRecorder,
    claim_run_dir,
    create_run_dir,
    save_weights,
    source_info,
    versions,
)

CALLBACKS = {"EarlyStopping": EarlyStopping, "ReduceLROnPlateau": ReduceLROnPlateau}


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
    callbacks: list = field(default_factory=list)
    checkpointer: Checkpointer | None = None
    initial_epoch: int = 0
    #: The folder's lock, held from preparation until ``close``; its ``note`` tells of a
    #: stale lock taken over.
    lock: RunLock | None = None
    #: What was fitted on the training split (saved as ``preprocess.json``).
    preprocessing: Preprocessing | None = None

    def close(self) -> None:
        """Give the run folder's lock back (a finished, failed or interrupted run)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def fail(self, exc: BaseException) -> str:
        """Record an unexpected failure: ``status.json`` says ``failed`` with the reason, and
        ``error.txt`` holds the traceback.

        Args:
            exc: the exception that ended the run (being handled).

        Returns:
            The reason recorded (``"<type>: <message>"``).
        """
        reason = f"{type(exc).__name__}: {exc}"
        try:
            write_atomic(self.run_dir / "error.txt", traceback.format_exc())
            self.recorder.write_status("failed", error=reason)
        except OSError:
            pass  # a full or vanished disk: the reason still reaches the caller
        return reason

    def fit(self, callbacks=()) -> History:
        """Train as the config's ``fit`` section says; the run folder follows every epoch:
        metrics, then ``checkpoints/last.npz`` (what ``--resume`` continues from).

        Args:
            callbacks: extra callbacks (progress display), called after the run's own.

        Raises:
            TrainingError: training stopped (e.g. NaN loss); status.json says 'failed'.
        """
        try:
            self.history = fit_model(
                self.cfg, self.model, self.splits, self.initial_epoch,
                [*self.callbacks, self.recorder, self.checkpointer, *callbacks])
        except (TrainingError, ConfigError) as exc:  # ConfigError: data changed or unreadable
            self.recorder.write_status("failed", error=str(exc))
            self.ended("failed")
            raise
        except KeyboardInterrupt:
            self.recorder.write_status("interrupted")
            save_weights(self.run_dir / "weights.npz", self.model.named_weights())
            self.ended("interrupted")
            raise
        except Exception as exc:  # any other cause: the folder says so, then the caller
            self.fail(exc)
            self.ended("failed")
            raise
        return self.history

    def ended(self, status: str) -> None:
        """Tell the callbacks that follow the whole run (tracking: MLflow logs the finished
        folder) that it ended with ``status``."""
        for cb in self.callbacks:
            on_run_end = getattr(cb, "on_run_end", None)
            if on_run_end is not None:
                on_run_end(self, status)

    def evaluate(self, status: str = "finished", **info) -> dict | None:
        """The docs' ``model.evaluate`` on the test split, if the config has one; then
        ``status.json`` says ``status`` (a sweep's ``stopped``), with ``info`` added."""
        test = self.splits.get("test")
        if test is not None:
            try:
                self.evaluation = self.model.evaluate(test.x, test.y,
                                                      batch_size=self.cfg.fit.batch_size,
                                                      return_dict=True,
                                                      sample_weight=test.sample_weight)
            except KeyboardInterrupt:
                self.recorder.write_status("interrupted")
                self.ended("interrupted")
                raise
            except Exception as exc:
                self.fail(exc)
                self.ended("failed")
                raise
            write_atomic(self.run_dir / "evaluation.json",
                         json.dumps(self.evaluation, indent=2) + "\n")
        self.recorder.write_status(status, **info)
        self.ended(status)
        return self.evaluation


def fit_model(cfg, model, splits, initial_epoch: int, callbacks: list) -> History:
    """``model.fit`` as the config's ``fit`` section says, from ``initial_epoch``."""
    fit = cfg.fit
    train = splits["train"]
    val = splits.get("validation")
    model.terminate_on_nan = fit.terminate_on_nan
    return model.fit(train.x, train.y, batch_size=fit.batch_size, epochs=fit.epochs,
                     shuffle=fit.shuffle, validation_split=fit.validation_split,
                     validation_data=(val.x, val.y, val.sample_weight) if val else None,
                     initial_epoch=initial_epoch, callbacks=callbacks,
                     sample_weight=train.sample_weight,
                     class_weight=class_weights(cfg, model))


def prepare_run(cfg, output_dir: Path | str = "runs",
                overrides: Mapping[str, Any] | None = None,
                run_dir: Path | str | None = None, check=None) -> Run:
    """Build the model and load the data (so config mistakes surface before any folder is
    made), then create the run folder with the config as written, resolved, the overrides,
    the package versions, where the config came from (``source.json``) and the summary.

    Args:
        cfg: the validated config (overrides already applied).
        output_dir: where ``<name>/<timestamp>/`` folders go.
        overrides: the dotted overrides that were applied, recorded in ``overrides.yaml``.
        run_dir: this folder instead of a new ``<output_dir>/<name>/<timestamp>/`` (a
            sweep's trial folder); created if missing, refused if it already holds a run.
        check: called as ``check(cfg, splits)`` before the folder is made (a data-parallel
            run's check of its batches); raises ``ConfigError``.

    Returns:
        The prepared ``Run``.

    Raises:
        ConfigError: anything wrong in the config or its data, located in the YAML.
    """
    retain_freed_memory()  # a training process: reuse each step's large temporaries
    model = build_model(cfg)
    prepared = load_prepared(cfg)
    splits = prepared.splits
    check_shapes(splits, model.graph, cfg)
    check_monitors(cfg, model, splits)
    check_extras(cfg)
    if check is not None:
        check(cfg, splits)
    adapt_preprocessing(model, splits["train"].x)  # Keras's layer.adapt(x_train) before fit
    if run_dir is None:
        run_dir = create_run_dir(Path(output_dir), cfg.name)
    else:
        run_dir = claim_run_dir(Path(run_dir))
    lock = _lock(run_dir)
    try:
        run = _start_folder(cfg, model, splits, run_dir, overrides, lock)
        run.preprocessing = prepared.preprocessing
        prepared.preprocessing.inputs = list(model.input_names)
        prepared.preprocessing.outputs = list(model.output_names)
        save_preprocessing(run_dir, prepared.preprocessing)
        return run
    except BaseException:
        lock.release()
        raise


def _lock(run_dir: Path) -> RunLock:
    """The lock of a run folder, a refusal as a one-line ``ConfigError``."""
    from kconf.errors import SourcePos

    try:
        return RunLock.acquire(run_dir)
    except RunLocked as exc:
        raise ConfigError([Problem(str(exc), (), SourcePos(str(run_dir)))]) from None


def _start_folder(cfg, model, splits, run_dir: Path, overrides, lock: RunLock) -> Run:
    """Write a new run folder's records; the prepared ``Run``."""
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
    callbacks, checkpointer = make_callbacks(cfg, run_dir)
    checkpointer.streams = split_fingerprints(splits)
    return Run(cfg, model, splits, run_dir, RunRecorder(run_dir), callbacks=callbacks,
               checkpointer=checkpointer, lock=lock)


def class_weights(cfg, model) -> list | None:
    """``fit.class_weight`` as one ``{class: weight}`` (or None) per output, in the model's
    order; None without one (``load_config`` and ``model_from_config`` checked it)."""
    given = cfg.fit.class_weight
    if not given:
        return None
    if all(isinstance(k, int) for k in given):
        return [given]
    outputs = [t.name for t in model.graph.outputs]
    by_output = cfg.compile._by_output(given, outputs, cfg.output_aliases())
    return [by_output.get(name) for name in outputs]


def logged_names(model, validation: bool) -> list[str]:
    """The names a run logs each epoch: ``loss``, ``<output>_loss``, the metrics, and their
    ``val_`` twins when there is validation data."""
    names = ["loss"]
    if len(model.output_names) > 1:
        names += [f"{n}_loss" for n in model.output_names]
    names += [m.name for ms in model.metrics for m in ms]
    names += [m.name for ms in model.weighted_metrics for m in ms]
    if validation:
        names += [f"val_{n}" for n in names]
    return names


def make_callbacks(cfg, run_dir: Path) -> tuple[list, Checkpointer]:
    """The config's callbacks (in its order) and the checkpoint writer that follows them."""
    made, checkpoint_args = [], {}
    for spec in cfg.fit.callbacks:
        kwargs = spec.kwargs()
        if spec.class_name == "ModelCheckpoint":
            checkpoint_args = kwargs
        elif spec.class_name == "CSVLogger":
            made.append(CSVLogger(run_dir / kwargs.pop("filename"), **kwargs))
        elif spec.class_name in EXTRAS:
            made.append(make_tracking(spec.class_name, kwargs, cfg, run_dir))
        else:
            made.append(CALLBACKS[spec.class_name](**kwargs))
    stateful = [cb for cb in made if hasattr(cb, "get_state")]
    return made, Checkpointer(run_dir, stateful, **checkpoint_args)


def check_monitors(cfg, model, splits) -> None:
    """Every monitored quantity is one the run logs.

    Raises:
        ConfigError: located at the callback's ``monitor``, listing what is logged.
    """
    logged = logged_names(model, "validation" in splits or bool(cfg.fit.validation_split))
    problems = []
    for i, spec in enumerate(cfg.fit.callbacks):
        monitor = spec.kwargs().get("monitor")
        if monitor is not None and monitor not in logged:
            path = ("fit", "callbacks", i, spec.class_name, "monitor")
            problems.append(Problem(f"{monitor!r} is not logged by this run; logged: "
                                    f"{', '.join(logged)}", path, cfg.source.locate(path)))
    if problems:
        raise ConfigError(problems, cfg.source.file)


#: The overrides that ``--resume`` accepts: more epochs (Keras's ``fit(initial_epoch=...)``).
#: Everything else would make the run folder's config lie about how its first epochs were
#: trained; such a change is a new run (``--init-weights RUN/weights.npz``).
RESUME_OVERRIDES = ("fit.epochs",)


def resume_run(run_dir: Path | str, overrides: Mapping[str, Any] | None = None,
               check=None) -> Run:
    """Continue a run from its folder alone: its resolved config, and the last checkpoint.

    The metrics of epochs after the checkpoint (a run killed between writing an epoch's
    metrics and its checkpoint) are dropped, so the resumed run rewrites them identically.
    The folder's lock is taken first: a run still being written is refused. A finished run
    continues only when given more epochs (``{"fit.epochs": 10}``), which the folder's
    ``resolved.yaml`` and ``overrides.yaml`` then record.

    Args:
        run_dir: the run folder.
        overrides: dotted path -> value; only ``RESUME_OVERRIDES`` are accepted.
        check: as for ``prepare_run``, called once the data is loaded.

    Raises:
        ConfigError: not a run folder, a folder another process writes, a finished run and
            no more epochs, an override that cannot change on resume, no readable
            checkpoint (a truncated or corrupted one is named, never loaded), or a config
            that no longer builds.
    """
    from kconf.errors import SourcePos

    run_dir = Path(run_dir)
    where = SourcePos(str(run_dir))
    overrides = dict(overrides or {})
    refused = [k for k in overrides if k not in RESUME_OVERRIDES]
    if refused:
        raise ConfigError([Problem(
            f"override {k!r} cannot change when a run is resumed (only "
            f"{', '.join(RESUME_OVERRIDES)} can: train further); start a new run from its "
            f"weights instead: kconf train CONFIG {k}=... --init-weights "
            f"{run_dir / 'weights.npz'}", (), where) for k in refused])
    if not (run_dir / "resolved.yaml").is_file():
        raise ConfigError([Problem("not a run folder (it has no resolved.yaml)", (), where)])
    lock = _lock(run_dir)
    try:
        return _resume(run_dir, overrides, lock, check)
    except BaseException:
        lock.release()
        raise


def resumed_config(run_dir: Path, overrides: Mapping[str, Any] | None = None):
    """The config a run folder resumes with: its ``resolved.yaml``, relative paths from
    where the config first was, and the overrides."""
    from kconf.config import load_config
    from kconf.train.runs import read_source_info

    base = read_source_info(run_dir).get("base_dir")
    return load_config(Path(run_dir) / "resolved.yaml", overrides=dict(overrides or {}),
                       base_dir=base if base and Path(base).is_dir() else None)


def _resume(run_dir: Path, overrides: dict[str, Any], lock: RunLock, check=None) -> Run:
    """``resume_run`` once the folder's lock is held."""
    from kconf.errors import SourcePos
    from kconf.train.checkpoint import CheckpointError, load_checkpoint, restore
    from kconf.train.resolve import resolved_yaml
    from kconf.train.runs import read_metrics_rows, read_status

    where = SourcePos(str(run_dir))
    cfg = resumed_config(run_dir, overrides)
    retain_freed_memory()  # as prepare_run
    model = build_model(cfg)
    prepared = load_prepared(cfg)
    splits = prepared.splits
    check_shapes(splits, model.graph, cfg)
    if check is not None:
        check(cfg, splits)
    callbacks, checkpointer = make_callbacks(cfg, run_dir)
    try:
        ckpt = load_checkpoint(run_dir / "checkpoints" / "last.npz")
        restore(model, ckpt, checkpointer.stateful)
    except CheckpointError as exc:
        raise ConfigError([Problem(str(exc), (), where)]) from None
    _warn_other_threads(run_dir, model, ckpt.meta.get("threads"))
    checkpointer.streams = split_fingerprints(splits)
    changed = changed_since(ckpt.meta.get("stream", {}).get("files", {}),
                            checkpointer.streams)
    if changed:
        raise ConfigError([Problem(f"{c} since the checkpoint of epoch {ckpt.epoch}: the run "
                                   "cannot continue on other data", (), where)
                           for c in changed])
    status = read_status(run_dir)
    wanted = overrides.get("fit.epochs")
    if wanted is not None and cfg.fit.epochs <= ckpt.epoch:
        raise ConfigError([Problem(
            f"fit.epochs={cfg.fit.epochs} asks for no more epochs: the run has trained "
            f"{ckpt.epoch}; give more to continue", (), where)])
    if wanted is None and (status.get("status") == "finished" or ckpt.epoch >= cfg.fit.epochs):
        raise ConfigError([Problem(
            f"this run is finished ({ckpt.epoch} epochs); to train further, give more epochs: "
            f"kconf train --resume {run_dir} fit.epochs={ckpt.epoch + max(ckpt.epoch, 1)}",
            (), where)])
    if overrides:  # the folder's records follow the run: a later resume continues from here
        write_atomic(run_dir / "resolved.yaml", resolved_yaml(cfg))
        recorded = _read_overrides(run_dir)
        recorded.update(overrides)
        write_atomic(run_dir / "overrides.yaml", overrides_yaml(recorded))
    checkpointer.history = {k: list(v) for k, v in ckpt.history.items()}
    checkpointer.best = ckpt.meta.get("best")
    model.resumed = True
    recorder = RunRecorder(run_dir)
    if isinstance(status.get("started"), (int, float)):
        recorder.started = status["started"]  # the run began then; resuming does not move it
    recorder.restore_rows([r for r in read_metrics_rows(run_dir) if r["epoch"] <= ckpt.epoch])
    return Run(cfg, model, splits, run_dir, recorder, callbacks=callbacks,
               checkpointer=checkpointer, initial_epoch=ckpt.epoch, lock=lock,
               preprocessing=prepared.preprocessing)


def _warn_other_threads(run_dir: Path, model: Model, trained: int | None) -> None:
    """Warn (``RunWarning``) when a run resumes on another BLAS thread count than its
    checkpoint was made with, for a model whose numbers depend on it: one without layers
    that use workers, whose products BLAS splits over its own threads (a model with them runs
    its steps on single-threaded BLAS in blocks fixed by the shapes: the same bits on any
    count)."""
    now = product_threads()
    if trained is None or trained == now or model.uses_workers:
        return
    def threads(count):
        return f"{count} BLAS thread{'' if count == 1 else 's'}"

    warnings.warn(RunWarning(
        f"{run_dir}: the run trained with {threads(trained)} and resumes with {threads(now)}; "
        "BLAS rounds the last bits of its products by its thread count, so the weights will "
        f"not be bit-identical to an uninterrupted run's (resume with --threads {trained} "
        "for that)"), stacklevel=2)


def _read_overrides(run_dir: Path) -> dict[str, Any]:
    """A run folder's ``overrides.yaml`` as a dict (empty when absent or unreadable)."""
    try:
        data = yaml.safe_load((run_dir / "overrides.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: not UTF-8
        return {}
    return dict(data) if isinstance(data, dict) else {}
