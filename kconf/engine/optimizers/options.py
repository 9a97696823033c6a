"""The options every Keras 3 optimizer takes, and the steps they add around its rule.

Keras's ``BaseOptimizer.apply`` (``keras/src/optimizers/base_optimizer.py`` and the JAX
backend's ``_backend_apply_gradients``), which ``Optimizer.apply`` follows in this order:

1. ``loss_scale_factor``: the gradients are of the loss times the factor; divide them by it.
2. ``gradient_accumulation_steps`` (n ≥ 2): a call whose step count plus one is not a
   multiple of n only adds the gradients to the accumulators (the weights and slots stay);
   the n-th uses ``(g + accumulated) / n`` and empties the accumulators. The update count that
   bias corrections use is ``iterations // n``; a schedule still sees every call.
3. clipping, at most one of: ``clipnorm`` (each gradient to that L2 norm), ``global_clipnorm``
   (all gradients together), ``clipvalue`` (each element to [-v, v]).
4. ``weight_decay``: ``w −= w·wd·lr`` before the rule (decoupled, as AdamW).
5. the optimizer's rule.
6. ``use_ema``: ``average = μ·average + (1 − μ)·w`` after every call (μ = 0 while the update
   count is 0, so the average starts at the weights); every ``ema_overwrite_frequency``
   updates the weights are set to the average, and ``Model.fit`` ends by setting them to it
   (Keras's ``finalize_variable_values``).

The functions here work in place on float32 arrays (a ``RowGrad``'s values for a row-sparse
gradient), with Python-float coefficients as the rules do.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from kconf.engine.backend import xp


@dataclass(frozen=True)
class Options:
    """Keras's optimizer keyword arguments shared by every optimizer (defaults: Keras's).

    Raises:
        ValueError: as Keras does: more than one clipping argument, ``ema_momentum`` outside
            [0, 1], ``ema_overwrite_frequency`` below 1, ``gradient_accumulation_steps`` below
            2; and (kconf) a negative clipping value or weight decay, a loss scale factor that
            is not positive.
    """

    weight_decay: float | None = None
    clipnorm: float | None = None
    clipvalue: float | None = None
    global_clipnorm: float | None = None
    use_ema: bool = False
    ema_momentum: float = 0.99
    ema_overwrite_frequency: int | None = None
    loss_scale_factor: float | None = None
    gradient_accumulation_steps: int | None = None

    def __post_init__(self):
        clips = [name for name in ("clipnorm", "clipvalue", "global_clipnorm")
                 if getattr(self, name) is not None]
        if len(clips) > 1:
            raise ValueError(f"only one of clipnorm, clipvalue and global_clipnorm can be set, "
                             f"got {' and '.join(clips)}")
        for name in (*clips, "weight_decay"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.loss_scale_factor is not None and not self.loss_scale_factor > 0:
            raise ValueError(f"loss_scale_factor must be > 0, got {self.loss_scale_factor}")
        steps = self.gradient_accumulation_steps
        if steps and not (isinstance(steps, int) and steps >= 2):
            raise ValueError(f"gradient_accumulation_steps must be an integer >= 2, got {steps}")
        if not 0 <= self.ema_momentum <= 1:
            raise ValueError(f"ema_momentum must be in [0, 1], got {self.ema_momentum}")
        frequency = self.ema_overwrite_frequency
        if frequency is not None and not (isinstance(frequency, int) and frequency >= 1):
            raise ValueError(f"ema_overwrite_frequency must be an integer >= 1 or None, "
                             f"got {frequency}")

    @property
    def plain(self) -> bool:
        """True when no option changes a step (then ``apply`` takes its fast path)."""
        return not (self.weight_decay or self.clip or self.use_ema
                    or self.gradient_accumulation_steps
                    or self.loss_scale_factor not in (None, 1, 1.0))

    @property
    def clip(self) -> bool:
        """Whether a clipping argument is on (Keras: set and > 0)."""
        return bool(self.clipnorm or self.clipvalue or self.global_clipnorm)

    @property
    def accumulation(self) -> int:
        """The number of calls whose gradients make one update (1: none accumulated)."""
        return self.gradient_accumulation_steps or 1

    def extra_slots(self) -> tuple[str, ...]:
        """Per-parameter arrays the options keep (Keras's variable names)."""
        return ((("average",) if self.use_ema else ())
                + (("gradient_accumulator",) if self.gradient_accumulation_steps else ()))

    def config(self) -> dict[str, Any]:
        """The options as Keras's ``get_config`` lists them."""
        return asdict(self)


def unscale(grad, factor: float) -> None:
    """``grad /= factor`` in place (a RowGrad: its values)."""
    values = grad if isinstance(grad, xp.ndarray) else grad.values
    xp.divide(values, factor, out=values)


def squared_norm(grad) -> float:
    """Σ g² of one gradient (a RowGrad's coalesced values: its rows are unique), float32 as
    Keras sums."""
    values = grad if isinstance(grad, xp.ndarray) else grad.values
    flat = values.reshape(-1)
    return float(xp.dot(flat, flat)) if flat.dtype.kind == "f" else float((flat * flat).sum())


def scale(grad, factor: float) -> None:
    """``grad *= factor`` in place."""
    values = grad if isinstance(grad, xp.ndarray) else grad.values
    values *= factor


def clip_by_norm(grad, clipnorm: float) -> None:
    """Keras's ``_clip_by_norm``: ``g·c / max(‖g‖, c)`` (a zero gradient stays zero)."""
    l2sum = squared_norm(grad)
    if l2sum > 0:
        values = grad if isinstance(grad, xp.ndarray) else grad.values
        values *= clipnorm
        values /= max(l2sum ** 0.5, clipnorm)


def clip_all(grads: Sequence[Any], options: Options) -> None:
    """Clip the gradients of one update in place as ``options`` say (one per parameter, so
    ``clipnorm`` takes each parameter's own norm)."""
    if options.clipnorm:
        for grad in grads:
            clip_by_norm(grad, options.clipnorm)
    elif options.global_clipnorm:
        norm = sum(squared_norm(g) for g in grads) ** 0.5
        c = options.global_clipnorm
        # Keras: c·min(1/‖g‖, 1/c), NaN when the norm is not finite
        factor = c * min(1.0 / norm, 1.0 / c) if norm > 0 else 1.0
        if norm != norm or norm == float("inf"):
            factor = float("nan")
        for grad in grads:
            scale(grad, factor)
    elif options.clipvalue:
        v = options.clipvalue
        for grad in grads:
            values = grad if isinstance(grad, xp.ndarray) else grad.values
            xp.clip(values, -v, v, out=values)


def decay_weights(param, weight_decay: float, lr: float, tmp) -> None:
    """Decoupled weight decay, Keras's order: ``w −= (w·wd)·lr``."""
    shrink = xp.multiply(param, weight_decay, out=tmp)
    shrink *= lr
    param -= shrink


def accumulate(accumulator, grad) -> None:
    """``accumulator += grad`` (a RowGrad: its rows, which are unique)."""
    if isinstance(grad, xp.ndarray):
        accumulator += grad
    else:
        indices, values = grad.coalesce()
        accumulator[indices] += values


def moving_average(average, param, momentum: float, tmp) -> None:
    """``average = μ·average + (1 − μ)·w`` in place, with μ and 1 − μ rounded to float32 as
    Keras computes them."""
    momentum = float(xp.float32(momentum))
    average *= momentum
    weighted = xp.multiply(param, float(xp.float32(1) - xp.float32(momentum)), out=tmp)
    average += weighted
