"""What the training loop does differently on one rank of a data-parallel run.

``Model.distributed`` is None in an ordinary run, and the loop then runs as it always did; in a
data-parallel run it is a ``DataParallel``, and the loop calls it at four points:

- ``shard``: every rank draws the same global batch (the same shuffle: the same seed and
  random stream on every rank) and keeps its own contiguous slice of it, ``weight`` =
  its share of the batch's samples (uneven shards, as the last batch of an epoch may give,
  are weighted by their size: the sum is the global batch's mean);
- ``reduce_gradients``: after backward, the flat gradient buffer (``Model._pack``) is scaled
  by ``weight`` and summed over the ranks with one ``Allreduce``; every rank then applies the
  same optimizer update to the same weights;
- ``step_rng``: the random stream of a step's layers (Dropout), one per rank and step, drawn
  from the seed, the epoch, the step and the rank, so that the shared training stream (the
  shuffle) stays the same on every rank and a resumed run draws what it would have drawn;
- ``epoch_logs`` / ``reduce_logs``: the epoch's logs (sums and counts, a streamed metric's
  statistics) and the state that is not trained (BatchNormalization's moving statistics,
  averaged, as Keras's per-replica statistics are on read) summed in one ``Allreduce``.
"""
from __future__ import annotations

import numpy as np

from kconf.data.stream import rows_of
from kconf.engine.optimizers.rows import RowGrad
from kconf.train.loop import Accumulated, Mean


def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """The rows ``[lo, hi)`` of ``n`` that ``rank`` of ``size`` takes (sizes differ by one at
    most, the larger ones first)."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


class DataParallel:
    """One rank's part of a data-parallel run (see the module's docstring).

    Args:
        collective: the ``kconf.distributed.comm.Collective`` of the run.
        seed: the run's seed (the layers' random streams derive from it).
    """

    def __init__(self, collective, seed: int = 0):
        self.collective = collective
        self.rank, self.size = collective.rank, collective.size
        self.seed = seed
        self.weight = 1.0
        self.epoch = self.step = 0

    def attach(self, model) -> None:
        """Make ``model`` train as this rank: the loop's hooks, and the synchronized
        BatchNormalization layers' sums over the ranks."""
        model.distributed = self
        for layer in model.graph.call_order:
            if getattr(layer, "synchronized", False):
                layer.sync = self

    # --- the loop's hooks ---------------------------------------------------------------
    def shard(self, arrays: list, epoch: int = 0, step: int = 0) -> list:
        """This rank's slice of a global batch (one array per entry); sets ``weight``."""
        n = len(arrays[0])
        lo, hi = shard_bounds(n, self.rank, self.size)
        self.weight = (hi - lo) / n
        self.epoch, self.step = epoch, step
        return [a[lo:hi] for a in arrays]

    def step_rng(self) -> np.random.Generator:
        """The random stream of this rank's layers in the current step."""
        return np.random.default_rng([self.seed, self.epoch, self.step, self.rank])

    def reduce_gradients(self, model) -> None:
        """Sum the ranks' weighted gradients: one ``Allreduce`` of the flat buffer (a model
        whose weights are not packed into one has its arrays joined for it), and the row
        gradients (Embedding) gathered from every rank."""
        dense = model._dense_grads
        if len(dense) == 1:
            dense[0] *= dense[0].dtype.type(self.weight)
            self.collective.allreduce(dense[0])
        elif dense:
            joined = np.concatenate([g.ravel() for g in dense])
            joined *= joined.dtype.type(self.weight)
            self.collective.allreduce(joined)
            start = 0
            for g in dense:
                g[...] = joined[start:start + g.size].reshape(g.shape)
                start += g.size
        if model._row_grads:
            self._gather_rows(model._row_grads)

    def _gather_rows(self, row_grads: list[RowGrad]) -> None:
        """Every rank's rows of each row gradient, added to each rank's own."""
        parts = [(g.indices, g.values * g.dtype.type(self.weight)) for g in row_grads]
        every = self.collective.allgather(parts, "the row gradients")
        for i, g in enumerate(row_grads):
            g.clear()
            for rank_parts in every:
                indices, values = rank_parts[i]
                if len(indices):
                    g.add(indices, values)

    def sum(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The sums over the ranks of a few small arrays (float64), in one ``Allreduce``:
        the statistics of a synchronized BatchNormalization."""
        flat = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
        self.collective.allreduce(flat, "a synchronized BatchNormalization's sums")
        out, start = [], 0
        for a in arrays:
            out.append(flat[start:start + np.size(a)].reshape(np.shape(a)))
            start += np.size(a)
        return out

    def epoch_logs(self, model, trackers: dict) -> dict[str, float]:
        """The epoch's logs over every rank; the model's state averaged over the ranks."""
        state = _state_arrays(model)
        return self.reduce_logs(trackers, state)

    def reduce_logs(self, trackers: dict, state: list | None = None) -> dict[str, float]:
        """The logs of ``trackers`` summed over the ranks (one ``Allreduce``, float64); the
        arrays of ``state``, if given, replaced by their mean over the ranks."""
        parts: list[np.ndarray] = []
        for tracker in trackers.values():
            if isinstance(tracker, Mean):
                parts.append(np.array([tracker.total, tracker.count], dtype=np.float64))
            else:
                parts.append(np.asarray(tracker.total, dtype=np.float64).ravel())
        parts += [np.asarray(a, dtype=np.float64).ravel() for a in state or ()]
        flat = np.concatenate(parts) if parts else np.zeros(0)
        self.collective.allreduce(flat, "the epoch's logs")
        start, logs = 0, {}
        for key, tracker in trackers.items():
            if isinstance(tracker, Mean):
                total, count = flat[start:start + 2]
                logs[key] = total / count if count else 0.0
                start += 2
            else:
                shape = np.shape(tracker.total)
                size = int(np.prod(shape))
                summed = Accumulated(tracker.metric)
                summed.add(flat[start:start + size].reshape(shape))
                logs[key] = summed.result()
                start += size
        for a in state or ():
            a[...] = flat[start:start + a.size].reshape(a.shape) / self.size
            start += a.size
        return logs

    def shard_rows(self, arrays: list) -> list:
        """This rank's contiguous block of every array (validation data); all of it when
        there are fewer rows than ranks."""
        n = len(arrays[0])
        if n < self.size:
            return arrays
        lo, hi = shard_bounds(n, self.rank, self.size)
        return [rows_of(a, slice(lo, hi)) for a in arrays]


def _state_arrays(model) -> list[np.ndarray]:
    """The model's state (weights that are not trained: moving statistics), each once."""
    seen, arrays = set(), []
    for owner, spec, _ in model.weight_entries():
        if spec.trainable:
            continue
        array = owner.weights[spec.name]
        if id(array) not in seen and array.dtype.kind == "f":
            seen.add(id(array))
            arrays.append(array)
    return arrays
