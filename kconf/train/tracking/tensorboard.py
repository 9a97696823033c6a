"""Keras's TensorBoard callback, written with tensorboardX (the ``tensorboard`` extra).

As Keras 3 lays them out: ``LOG_DIR/train/`` and ``LOG_DIR/validation/`` each hold event
files; every epoch writes ``epoch_<name>`` scalars at step ``epoch`` (from 0) — the training
logs and ``epoch_learning_rate`` to ``train/``, the ``val_`` logs (prefix dropped) to
``validation/`` — and with ``update_freq`` ``batch`` or N, ``batch_<name>`` scalars (the
epoch's running averages, as Keras logs them) every N training steps. With
``histogram_freq`` N, every N epochs the histograms of each weight
(``layer/weight/histogram``, Keras 3's tag) and of its gradient of the epoch's last step
(``layer/weight/gradient``; Keras 3 no longer writes gradients). ``write_graph`` writes the
layer graph (one node per layer, edges from the layers' calls, each node's output shape) for
TensorBoard's Graphs tab, and the resolved config is written as text (``config``). Files are
flushed every epoch, so an interrupted run keeps what it logged.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import yaml

from kconf.train.callbacks import Callback
from kconf.train.tracking.common import import_extra

VAL_PREFIX = "val_"


class TensorBoard(Callback):
    """Write a run's scalars, histograms, graph and config as TensorBoard event files.

    Args:
        log_dir: the folder of ``train/`` and ``validation/``.
        histogram_freq: every N epochs, weight and gradient histograms (0: never).
        write_graph: write the model graph once, at the start.
        write_steps_per_second: also log ``epoch_steps_per_second``.
        update_freq: ``"epoch"``, ``"batch"`` or N: when ``batch_`` scalars are written.
        cfg: the resolved config, written as text (optional).
    """

    def __init__(self, log_dir, histogram_freq: int = 0, write_graph: bool = True,
                 write_steps_per_second: bool = False, update_freq: str | int = "epoch",
                 cfg=None):
        super().__init__()
        self.tbx = import_extra("TensorBoard")
        self.log_dir = Path(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.cfg = cfg
        self._writers: dict[str, object] = {}
        self._step = 0
        self._epoch_start = self._batch_start = 0.0

    def writer(self, name: str):
        """The ``train`` or ``validation`` writer, opened on first use."""
        if name not in self._writers:
            # the file is named by the second it is opened in: a suffix keeps a resume in
            # the same second from writing over the first file
            self._writers[name] = self.tbx.SummaryWriter(
                str(self.log_dir / name), filename_suffix=f".{time.time_ns()}")
        return self._writers[name]

    def on_train_begin(self, logs=None):
        self._step = self.params.get("initial_epoch", 0) * self.params.get("steps", 0)
        written = any((self.log_dir / "train").glob("events.out.tfevents.*"))
        train = self.writer("train")
        if written:  # a resumed run: its config and graph are there (TensorBoard keeps one)
            return
        if self.cfg is not None:  # four spaces: TensorBoard's markdown shows it verbatim
            text = yaml.safe_dump(self.cfg.to_data(), sort_keys=False)
            train.add_text("config", "".join(f"    {line}\n" for line in text.splitlines()), 0)
        if self.write_graph and self.model is not None:
            train._get_file_writer().add_onnx_graph(graph_def(self.model))
        train.flush()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self.update_freq == "epoch" or self._step % self.update_freq:
            return
        train = self.writer("train")
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._batch_start
            train.add_scalar("batch_steps_per_second", 1.0 / max(seconds, 1e-12), self._step)
        for key, value in (logs or {}).items():
            train.add_scalar(f"batch_{key}", float(value), self._step)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        train_logs = {k: v for k, v in logs.items() if not k.startswith(VAL_PREFIX)}
        val_logs = {k[len(VAL_PREFIX):]: v for k, v in logs.items() if k.startswith(VAL_PREFIX)}
        optimizer = getattr(self.model, "optimizer", None)
        if "learning_rate" not in train_logs and hasattr(optimizer, "current_learning_rate"):
            train_logs["learning_rate"] = optimizer.current_learning_rate()
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._epoch_start
            train_logs["steps_per_second"] = self.params.get("steps", 0) / max(seconds, 1e-12)
        for name, values in (("train", train_logs), ("validation", val_logs)):
            if values:
                writer = self.writer(name)
                for key, value in values.items():
                    writer.add_scalar(f"epoch_{key}", float(value), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._histograms(epoch)
        for writer in self._writers.values():
            writer.flush()

    def _histograms(self, epoch: int) -> None:
        train = self.writer("train")
        seen: set[int] = set()
        for name, w in self.model.named_weights().items():
            if id(w) not in seen:  # a shared array once
                seen.add(id(w))
                train.add_histogram(f"{name}/histogram", np.asarray(w), epoch)
        for name, g in zip(self.model.trainable_names(), self.model._grads):
            if isinstance(g, np.ndarray):  # an embedding's sparse rows have no dense form
                train.add_histogram(f"{name}/gradient", g, epoch)

    def on_train_end(self, logs=None):
        self.close()

    def on_run_end(self, run, status: str) -> None:
        self.close()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def graph_def(model):
    """The layer graph as a TensorBoard ``GraphDef``: one node per layer (its op the layer's
    class, its inputs the layers it is called on, its output shape as an attribute)."""
    from tensorboardX.proto import attr_value_pb2, graph_pb2, node_def_pb2, versions_pb2

    from kconf.shapes import format_shape

    graph = model.graph
    nodes = []
    for layer in graph.layers:
        calls = graph.nodes_of(layer)
        inputs = list(dict.fromkeys(t.node.layer.name for call in calls for t in call.inputs))
        shapes = "; ".join(", ".join(format_shape(s) for s in call.output_shapes)
                           for call in calls)
        attr = {"output_shape": attr_value_pb2.AttrValue(s=shapes.encode())}
        nodes.append(node_def_pb2.NodeDef(name=layer.name, op=type(layer).__name__,
                                          input=inputs, attr=attr))
    return graph_pb2.GraphDef(node=nodes, versions=versions_pb2.VersionDef(producer=22))
