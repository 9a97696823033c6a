"""The machinery every optimizer shares (the rules are in the family modules beside this one).

``apply(params, grads)`` updates the parameter arrays in place and then counts the step. A
gradient is an array of its parameter's shape, or a ``RowGrad``: the row-sparse gradient of
a table of which a step reads a few rows (an Embedding's), kept as those rows' indices and
values instead of a mostly-zero (rows × dim) array.

Slots (momentum, velocity, ...) are zeros created on the first ``apply``, one per parameter.
The learning rate of step k (from 1) is ``lr / (1 + decay·(k − 1))`` (Keras-2 ``decay``,
evaluated before the step count increments). Coefficients stay Python floats, which NumPy 2
treats as weak, so float32 parameters and slots stay float32. Updates run in place; their
temporaries go to two small scratch buffers per dtype that every step reuses, and a large
weight is updated block by block, each block's operands staying in cache.
Parameters that lie back to back in one buffer, with gradients that do too (``Model`` packs
its weights so), are updated as one flat array: a step costs a handful of NumPy calls
whatever the number of weights, and the result is the same bit for bit, since every rule
is elementwise.

Each optimizer writes its rule twice, side by side:

* ``update(param, grad, lr, slots, tmp)``: Keras's step of one parameter;
* ``update_untouched(param, lr, slots, tmp)``: the same step with a zero gradient, bit for
  bit — what Keras's dense formula does to the rows a sparse gradient leaves out: slots
  decay, and momentum keeps moving the weights (plain SGD and RMSprop without momentum
  leave them where they are).

A ``RowGrad`` is applied with one of two semantics:

* **dense** (the default, ``lazy_sparse=False``; Keras's): bit for bit the step the dense
  gradient (zeros in untouched rows) would take. The touched rows of the parameter and its
  slots are gathered, ``update_untouched`` runs over the whole arrays, ``update`` runs on
  the gathered rows with their gradient, and they are written back. The only full passes
  are ``update_untouched``'s (SGD without momentum: none; RMSprop: one per slot, plus the
  weights' with momentum; Adam: one blocked pass over slots and weights — every row with
  m ≠ 0 moves), instead of a dense scatter, a zero fill and the dense formula's passes.
  Where a quarter of the rows or more were touched (a 20,000-word table's 6,400 tokens), the
  dense scatter, ``update`` over the whole arrays and a zero fill cost less than the
  gathers, the scatters and the rows' second update (transformer_text's Adam step: 4.5 to
  3.8 ms of CPU), and that is what runs: the same numbers (a zero gradient adds +0, which
  turns a slot's −0 into +0).
* **lazy** (``lazy_sparse=True``; TensorFlow's LazyAdam semantics): ``update`` runs on the
  touched rows only, so a step costs O(touched rows). Untouched rows keep their weights
  *and* slots: their momentum does not carry them on and their averages do not decay, so
  once a row has been left out of a step its trajectory differs from Keras's. Adam's bias
  correction still uses the global step count. Plain SGD is the same under both.

With one of Keras's options on (weight decay, clipping, EMA, gradient accumulation, loss
scaling: ``kconf.engine.optimizers.options``), ``apply`` takes ``_apply_with_options``, which
runs them around the same units in Keras's order; without, none of that costs a step
anything. A rule that is not elementwise (Lamb's: norms of whole parameters) sets
``elementwise = False``: its parameters are neither joined nor split into blocks, and a
row-sparse gradient is applied as the dense one.

``get_state()`` returns ``{"iterations": int, "<slot>.<i>": array, ...}`` (copies; also the
options' ``average.<i>`` / ``gradient_accumulator.<i>`` and scalar state such as Nadam's
``u_product``) and ``set_state`` restores it bit-exactly, so a checkpoint resumes as if never
interrupted.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from kconf.engine.backend import xp
from kconf.engine.ops import current_ops
from kconf.engine.optimizers import options as opt_options
from kconf.engine.optimizers.options import Options
from kconf.engine.optimizers.rows import RowGrad, coalesce_all, copy_rows
from kconf.engine.optimizers.state import SlotState

# Updates of contiguous arrays of at least twice this many elements run block by block (see
# ``Optimizer._blockwise``); 64K float32 elements: a block's operands stay in cache.
_BLOCK = 1 << 16
# A flat update of at least this many blocks runs on the current ops' workers
# (kconf.engine.ops).
_PARALLEL_BLOCKS = 2


# --- optimizers ----------------------------------------------------------------------------------

class _Scratch:
    """Two flat temporaries per dtype and worker, grown to the largest size asked for, reused."""

    def __init__(self):
        self._buffers: dict[Any, tuple[Any, Any]] = {}

    def reserve(self, size: int, dtype, worker: int = 0) -> None:
        """Make room for two temporaries of ``size`` elements of ``dtype`` (for ``worker``)."""
        key = (xp.dtype(dtype), worker)
        buffers = self._buffers.get(key)
        if buffers is None or buffers[0].size < size:
            self._buffers[key] = (xp.empty(size, dtype), xp.empty(size, dtype))

    def get(self, shape: tuple[int, ...], dtype, worker: int = 0) -> tuple[Any, Any]:
        """Two temporaries of ``shape`` (views of the worker's buffers: valid until the next
        update)."""
        size = math.prod(shape)
        self.reserve(size, dtype, worker)
        first, second = self._buffers[(xp.dtype(dtype), worker)]
        return first[:size].reshape(shape), second[:size].reshape(shape)


class Optimizer(SlotState):
    """Shared bookkeeping: learning rate and decay, step count, lazily created slots, state,
    the application of row-sparse gradients (see the module docstring) and Keras's options
    (``kconf.engine.optimizers.options``).

    Args:
        learning_rate: a float, or a schedule (a callable of the step count).
        decay: Keras 2's decay of the learning rate.
        lazy_sparse: see the module docstring.
        **options: Keras's ``weight_decay``, ``clipnorm``, ``clipvalue``, ``global_clipnorm``,
            ``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency``,
            ``loss_scale_factor``, ``gradient_accumulation_steps`` (``Options``).

    Raises:
        ValueError: options Keras refuses (``Options``), or lazy sparse updates together
            with gradient accumulation (the accumulated gradient is dense).
    """

    #: Whether the rule is elementwise (then parameters lying back to back update as one
    #: flat array, block by block); Lamb's is not: it takes norms of whole parameters.
    elementwise = True
    #: Names of float attributes that are state beside the slots (Nadam's ``u_product``).
    scalars: tuple[str, ...] = ()

    def __init__(self, learning_rate: float, decay: float = 0.0, lazy_sparse: bool = False,
                 **options):
        self.learning_rate = learning_rate
        self.decay = decay
        self.lazy_sparse = lazy_sparse
        self.options = Options(**options)
        if lazy_sparse and self.options.gradient_accumulation_steps:
            raise ValueError("lazy_sparse cannot be used with gradient_accumulation_steps "
                             "(the accumulated gradient is dense)")
        self._plain = self.options.plain  # the fast path of ``apply``
        self._accumulation = self.options.accumulation  # read by every update (update_count)
        # per-parameter arrays of the options (EMA average, gradient accumulator), by name:
        # views of one flat buffer in parameter order (see _plan)
        self._extra: dict[str, list[Any]] | None = None
        self._unit_extra: list[dict[str, Any]] = []
        self.iterations = 0
        self._slots: dict[str, list[Any]] | None = None
        self._scratch = _Scratch()
        # what a step updates: (index, param, grad, slots, temporaries or None), see _plan;
        # made for the (params, grads) lists in _planned
        self._units: list[tuple[int, Any, Any, dict[str, Any], Any]] = []
        self._planned: tuple[list, list] | None = None
        # by parameter index: its rows, slots' (and by ("dense", index): its dense gradient)
        self._row_buffers: dict[Any, Any] = {}

    # --- what each optimizer defines -----------------------------------------------------
    def slot_names(self) -> tuple[str, ...]:
        """Names of the per-parameter slots this configuration needs."""
        return ()

    def update(self, param, grad, lr: float, slots: dict[str, Any], tmp) -> None:
        """Update one parameter (and its slots) in place for the current step; ``tmp`` is two
        scratch arrays of the parameter's shape."""
        raise NotImplementedError

    def update_untouched(self, param, lr: float, slots: dict[str, Any], tmp) -> None:
        """``update`` with a zero gradient (bit for bit), in place. This default runs
        ``update`` on a zero array; SGD, RMSprop and Adam write the cheaper rule out."""
        self.update(param, xp.zeros_like(param), lr, slots, tmp)

    def slot_initial(self, name: str) -> float:
        """The value slot ``name`` starts at (Adagrad's accumulator: not 0)."""
        return 0.0

    #: None, or a method called once per update before the parameters' rules (Nadam's
    #: advances its ``u_product``); None costs the step nothing.
    before_update = None

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        raise NotImplementedError

    def options_config(self) -> dict[str, Any]:
        """Keras's common optimizer arguments, for ``get_config``."""
        return self.options.config()

    @property
    def loss_scale_factor(self) -> float | None:
        """Keras's ``loss_scale_factor`` (None: the loss is not scaled)."""
        return self.options.loss_scale_factor

    def scale_gradients(self, grads: Sequence[Any]) -> None:
        """Multiply gradients of the loss by ``loss_scale_factor`` in place, making them the
        gradients of the scaled loss ``apply`` expects (Keras's ``scale_loss``; the training
        loop scales the gradients rather than the loss, which is the same by linearity and
        covers every part of the loss: outputs' losses, added losses, regularization).

        Args:
            grads: the gradients (arrays or ``RowGrad``).
        """
        factor = self.options.loss_scale_factor
        if factor:
            for grad in grads:
                opt_options.scale(grad, factor)

    @property
    def update_count(self) -> int:
        """Updates made so far: ``iterations`` (calls of ``apply``) divided by
        ``gradient_accumulation_steps`` (Keras's ``optimizer.iterations``); bias corrections
        count the step as ``update_count + 1``."""
        return self.iterations // self._accumulation

    # --- shared ----------------------------------------------------------------------------
    def current_learning_rate(self) -> float:
        """The learning rate the next step will use: a schedule's value at the steps taken so
        far (``kconf.engine.schedules``), or ``lr / (1 + decay·iterations)``.

        Returns:
            A Python float.
        """
        lr = self.learning_rate
        if callable(lr):
            lr = lr(self.iterations)
        return lr / (1.0 + self.decay * self.iterations)

    def apply(self, params: Sequence[Any], grads: Sequence[Any]) -> None:
        """Take one step: update each parameter in place from its gradient, then count it.

        Args:
            params: the parameter arrays, in a fixed order from call to call.
            grads: their gradients, same order: arrays of the parameters' shapes, or
                ``RowGrad`` for row-sparse ones (applied as the module docstring says).
        """
        if len(params) != len(grads):
            raise ValueError(f"{len(params)} parameters but {len(grads)} gradients")
        planned = self._planned
        if (planned is None or len(planned[0]) != len(params)
                or not all(a is b for a, b in zip(planned[0], params))
                or not all(a is b for a, b in zip(planned[1], grads))):
            self._plan(params, grads)
        coalesce_all(grads)
        if not self._plain:
            self._apply_with_options(params, grads)
            return
        lr = self.current_learning_rate()
        if self.before_update is not None:
            self.before_update()
        for i, param, grad, slots, tmp in self._units:
            if isinstance(grad, RowGrad):
                self._apply_rows(i, param, grad, lr, slots)
            elif tmp is not None:  # small: its temporaries are ready
                self.update(param, grad, lr, slots, tmp)
            else:
                self._blockwise(param, grad, lr, slots)
        self.iterations += 1

    def _update_units(self, grads: Sequence[Any], lr: float) -> None:
        """Run the rule on every unit, unit k with gradient ``grads[k]`` (``apply``'s loop,
        for the gradients the options made)."""
        for (i, param, _, slots, tmp), grad in zip(self._units, grads):
            if isinstance(grad, RowGrad):
                self._apply_rows(i, param, grad, lr, slots)
            elif tmp is not None:  # small: its temporaries are ready
                self.update(param, grad, lr, slots, tmp)
            else:
                self._blockwise(param, grad, lr, slots)

    def _apply_with_options(self, params: Sequence[Any], grads: Sequence[Any]) -> None:
        """``apply`` with Keras's options, in Keras's order (``options`` module docstring).
        Gradients are unscaled and clipped in place."""
        options = self.options
        lr = self.current_learning_rate()
        if options.loss_scale_factor not in (None, 1, 1.0):
            for grad in grads:
                opt_options.unscale(grad, options.loss_scale_factor)
        steps = options.gradient_accumulation_steps
        updating = not steps or (self.iterations + 1) % steps == 0
        if steps:
            accumulators = self._extra["gradient_accumulator"]
            for accumulator, grad in zip(accumulators, grads):
                opt_options.accumulate(accumulator, grad)
            if updating:  # (g + accumulated) / n, held by the accumulators
                for extra in self._unit_extra:
                    extra["gradient_accumulator"] /= steps
                grads = accumulators
            unit_grads = [extra["gradient_accumulator"] for extra in self._unit_extra]
        else:
            unit_grads = [unit[2] for unit in self._units]
        if updating:
            if options.clip:
                opt_options.clip_all(grads, options)
            if options.weight_decay:
                for _, param, _, _, _ in self._units:
                    opt_options.decay_weights(param, options.weight_decay, lr,
                                              self._temporary(param))
            if self.before_update is not None:
                self.before_update()
            self._update_units(unit_grads, lr)
            if steps:
                for extra in self._unit_extra:
                    extra["gradient_accumulator"].fill(0)
        if options.use_ema:
            momentum = options.ema_momentum if self.update_count else 0.0
            for (_, param, _, _, _), extra in zip(self._units, self._unit_extra):
                opt_options.moving_average(extra["average"], param, momentum,
                                           self._temporary(param))
            frequency = options.ema_overwrite_frequency
            if frequency and (self.update_count + 1) % frequency == 0:
                for (_, param, _, _, _), extra in zip(self._units, self._unit_extra):
                    param[...] = extra["average"]
        self.iterations += 1

    def _temporary(self, param):
        """A scratch array of ``param``'s shape (valid until the next use)."""
        return self._scratch.get(param.shape, param.dtype)[0]

    def finalize(self, params: Sequence[Any]) -> None:
        """End of training (Keras's ``finalize_variable_values``): with ``use_ema``, set the
        parameters to their moving averages; otherwise nothing.

        Args:
            params: the parameters ``apply`` updated, in its order.
        """
        if self.options.use_ema and self._extra is not None:
            for param, average in zip(params, self._extra["average"]):
                param[...] = average

    def _plan(self, params: Sequence[Any], grads: Sequence[Any]) -> None:
        """Create the slots if needed and split the parameters into the units a step
        updates: runs of dense parameters whose arrays, and gradients, lie back to back in
        one buffer (as ``Model`` packs them) become one flat unit; the others stay alone.

        The rules are elementwise, so a joined run updates bit for bit as its parts would.
        A run's slots are moved into one buffer too; ``_slots`` keeps views of each
        parameter's, so ``get_state`` is unchanged.
        """
        if self._slots is None:
            self._slots = {name: [xp.full_like(p, self.slot_initial(name)) for p in params]
                           for name in self.slot_names()}
        per_param = self._slots_by_parameter(len(params))
        extra_names = self.options.extra_slots()
        if extra_names:
            self._pack_extra(params, extra_names)
        units, unit_extra, i = [], [], 0
        while i < len(params):
            j = i + 1
            if self.elementwise and not isinstance(grads[i], RowGrad):
                while (j < len(params) and not isinstance(grads[j], RowGrad)
                       and _joined(params[i:j + 1]) is not None
                       and _joined(grads[i:j + 1]) is not None):
                    j += 1
            if j - i == 1:
                param, grad, slots = params[i], grads[i], per_param[i]
            else:
                param, grad = _joined(params[i:j]), _joined(grads[i:j])
                slots = {}
                for name, arrays in self._slots.items():
                    flat = slots[name] = xp.concatenate([a.reshape(-1) for a in arrays[i:j]])
                    start = 0
                    for k in range(i, j):
                        arrays[k] = flat[start:start + params[k].size].reshape(params[k].shape)
                        start += params[k].size
            small = not isinstance(grad, RowGrad) and param.size < 2 * _BLOCK
            if small:
                self._scratch.reserve(2 * _BLOCK, param.dtype)
            tmp = self._scratch.get(param.shape, param.dtype) if small else None
            units.append((i, param, grad, slots, tmp))
            unit_extra.append({name: arrays[i] if j - i == 1 else _joined(arrays[i:j])
                               for name, arrays in (self._extra or {}).items()})
            i = j
        self._units = units
        self._unit_extra = unit_extra
        self._planned = (list(params), list(grads))

    def _pack_extra(self, params: Sequence[Any], names: Sequence[str]) -> None:
        """Put the options' per-parameter arrays (zeros at first; restored ones keep their
        values) into one flat buffer per name, in parameter order, so that a unit of
        parameters lying back to back has one flat view of each."""
        if self._extra is not None and any(len(a) != len(params) for a in self._extra.values()):
            raise ValueError(f"optimizer has option state for "
                             f"{len(next(iter(self._extra.values())))} parameters, "
                             f"got {len(params)}")
        dtypes = {p.dtype for p in params}
        extra = {}
        for name in names:
            old = (self._extra or {}).get(name) or [xp.zeros_like(p) for p in params]
            if len(dtypes) == 1:
                flat = xp.concatenate([a.reshape(-1) for a in old]) if old else xp.zeros(0)
                flat = flat.astype(params[0].dtype, copy=False) if params else flat
                arrays, start = [], 0
                for p in params:
                    arrays.append(flat[start:start + p.size].reshape(p.shape))
                    start += p.size
            else:  # mixed dtypes never join into one unit: separate arrays
                arrays = [xp.array(a, dtype=p.dtype) for a, p in zip(old, params)]
            extra[name] = arrays
        self._extra = extra

    def _apply_rows(self, i: int, param, grad: RowGrad, lr: float,
                    slots: dict[str, Any]) -> None:
        """One step of parameter ``i`` from a row-sparse gradient: dense semantics, or lazy
        (touched rows only)."""
        if not self.elementwise:  # the rule needs the whole gradient: Keras's dense one
            self._blockwise(param, grad.to_dense(), lr, slots)
            return
        indices, values = grad.coalesce()
        if not self.lazy_sparse and 4 * indices.size >= param.shape[0]:
            # a quarter of the rows or more: the rule once over the table, the gradient
            # scattered into zeros kept for the parameter, costs less than the untouched
            # rule over it and the touched rows again (gathered before, scattered after)
            dense = self._row_buffers.get(("dense", i))
            if dense is None or dense.shape != param.shape or dense.dtype != values.dtype:
                dense = self._row_buffers[("dense", i)] = xp.zeros(param.shape, values.dtype)
            copy_rows([dense], [values], indices, gather=False)
            try:
                self._blockwise(param, dense, lr, slots)
            finally:
                current_ops().zero(dense)
            return
        arrays = [param, *slots.values()]
        rows = self._gather_rows(i, arrays, indices)  # the touched rows, before the step
        if not self.lazy_sparse:
            self._blockwise(param, None, lr, slots)
        self._blockwise(rows[0], values, lr, dict(zip(slots, rows[1:])))
        copy_rows(arrays, rows, indices, gather=False)

    def _gather_rows(self, i: int, arrays: list, indices) -> list:
        """Rows ``indices`` (valid, as a RowGrad's are) of each of ``arrays``, copied into
        buffers parameter ``i`` keeps from step to step."""
        k = indices.size
        size = k * (arrays[0].size // max(arrays[0].shape[0], 1))
        buffers = self._row_buffers.get(i)
        if buffers is None or buffers[0].size < size or buffers[0].dtype != arrays[0].dtype:
            size_kept = min(arrays[0].size, size + size // 4)  # room for a few more rows
            buffers = self._row_buffers[i] = [xp.empty(size_kept, a.dtype) for a in arrays]
        rows = [buffer[:size].reshape(k, *array.shape[1:])
                for array, buffer in zip(arrays, buffers)]
        copy_rows(arrays, rows, indices, gather=True)
        return rows

    def _blockwise(self, param, grad, lr: float, slots: dict[str, Any]) -> None:
        """``update`` (``update_untouched`` where ``grad`` is None), over consecutive flat
        blocks of ``_BLOCK`` elements when the arrays are large and contiguous.

        A rule is several NumPy operations; on whole large arrays each one streams every
        operand through memory, while a block's operands and temporaries stay in cache
        across them (bench/README.md has the timing), and the temporaries are one block,
        not one weight. The rules are elementwise, so the result is the same bit for bit.
        """
        arrays = [param, *slots.values()] if grad is None else [param, grad, *slots.values()]
        if (param.size < 2 * _BLOCK or not self.elementwise
                or not all(a.flags.c_contiguous for a in arrays)):
            tmp = self._scratch.get(param.shape, param.dtype)
            if grad is None:
                self.update_untouched(param, lr, slots, tmp)
            else:
                self.update(param, grad, lr, slots, tmp)
            return
        flat = [a.reshape(-1) for a in arrays]
        names = list(slots)
        size = param.size
        blocks = [slice(start, min(start + _BLOCK, size)) for start in range(0, size, _BLOCK)]

        def update_blocks(worker, mine):
            first, second = self._scratch.get((_BLOCK,), param.dtype, worker)
            for span in mine:
                block = [a[span] for a in flat]
                tmp = (first[:span.stop - span.start], second[:span.stop - span.start])
                if grad is None:
                    self.update_untouched(block[0], lr, dict(zip(names, block[1:])), tmp)
                else:
                    self.update(block[0], block[1], lr, dict(zip(names, block[2:])), tmp)

        if len(blocks) >= _PARALLEL_BLOCKS:  # large: the workers take turns at blocks
            current_ops().parallel(update_blocks, blocks)
        else:
            update_blocks(0, blocks)

    def _slots_by_parameter(self, n: int) -> list[dict[str, Any]]:
        """``[{slot name: array}]``, one dict per parameter (built once, not per step)."""
        for name, arrays in self._slots.items():
            if len(arrays) != n:
                raise ValueError(f"optimizer has slots for {len(arrays)} parameters, got {n}")
        return [{name: arrays[i] for name, arrays in self._slots.items()} for i in range(n)]


def _joined(arrays: Sequence[Any]):
    """One flat view spanning ``arrays`` if they are C-contiguous views of one flat buffer
    lying back to back in this order, with one dtype; else None."""
    first = arrays[0]
    base = getattr(first, "base", None)
    if (base is None or not isinstance(base, xp.ndarray) or base.ndim != 1
            or not base.flags.c_contiguous or base.dtype != first.dtype):
        return None
    itemsize = first.dtype.itemsize
    start = (first.ctypes.data - base.ctypes.data) // itemsize
    end = start
    for a in arrays:
        if (a.base is not base or a.dtype != first.dtype or not a.flags.c_contiguous
                or a.ctypes.data != base.ctypes.data + end * itemsize):
            return None
        end += a.size
    return base[start:end]
