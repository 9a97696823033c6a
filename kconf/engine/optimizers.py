"""Optimizers with Keras semantics: SGD, RMSprop, Adam — one small class each.

``apply(params, grads)`` updates the parameter arrays in place and then counts the step.
Slots (momentum, velocity, ...) are zeros created on the first ``apply``, one per parameter.
The learning rate of step k (from 1) is ``lr / (1 + decay·(k − 1))`` (Keras-2 ``decay``,
evaluated before the step count increments). Coefficients stay Python floats, which NumPy 2
treats as weak, so float32 parameters and slots stay float32.

``get_state()`` returns ``{"iterations": int, "<slot>.<i>": array, ...}`` (copies) and
``set_state`` restores it bit-exactly, so a checkpoint resumes as if never interrupted.
"""
from __future__ import annotations

from typing import Any, Sequence

from kconf.engine.backend import xp


class Optimizer:
    """Shared bookkeeping: learning rate and decay, step count, lazily created slots, state."""

    def __init__(self, learning_rate: float, decay: float = 0.0):
        self.learning_rate = learning_rate
        self.decay = decay
        self.iterations = 0
        self._slots: dict[str, list[Any]] | None = None

    # --- what each optimizer defines -----------------------------------------------------
    def slot_names(self) -> tuple[str, ...]:
        """Names of the per-parameter slots this configuration needs."""
        return ()

    def update(self, param, grad, lr: float, slots: dict[str, Any]) -> None:
        """Update one parameter (and its slots) in place for the current step."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        raise NotImplementedError

    # --- shared ----------------------------------------------------------------------------
    def current_learning_rate(self) -> float:
        """The learning rate the next step will use: ``lr / (1 + decay·iterations)``.

        Returns:
            A Python float.
        """
        return self.learning_rate / (1.0 + self.decay * self.iterations)

    def apply(self, params: Sequence[Any], grads: Sequence[Any]) -> None:
        """Take one step: update each parameter in place from its gradient, then count it.

        Args:
            params: the parameter arrays, in a fixed order from call to call.
            grads: their gradients, same order and shapes.
        """
        if len(params) != len(grads):
            raise ValueError(f"{len(params)} parameters but {len(grads)} gradients")
        if self._slots is None:
            self._slots = {name: [xp.zeros_like(p) for p in params] for name in self.slot_names()}
        for name, arrays in self._slots.items():
            if len(arrays) != len(params):
                raise ValueError(
                    f"optimizer has slots for {len(arrays)} parameters, got {len(params)}"
                )
        lr = self.current_learning_rate()
        for i, (param, grad) in enumerate(zip(params, grads)):
            slots = {name: arrays[i] for name, arrays in self._slots.items()}
            self.update(param, grad, lr, slots)
        self.iterations += 1

    def get_state(self) -> dict[str, Any]:
        """The step count and copies of all slots.

        Returns:
            ``{"iterations": int, "<slot>.<index>": array, ...}`` (no slots before the first
            step).
        """
        state: dict[str, Any] = {"iterations": self.iterations}
        for name, arrays in (self._slots or {}).items():
            for i, array in enumerate(arrays):
                state[f"{name}.{i}"] = array.copy()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` returned (slots are copied, not shared).

        Args:
            state: a dict from ``get_state`` (arrays may come back from an ``.npz`` file).

        Raises:
            ValueError: if the slots in ``state`` are not those this optimizer uses.
        """
        slots: dict[str, dict[int, Any]] = {}
        for key, value in state.items():
            if key == "iterations":
                continue
            name, _, index = key.rpartition(".")
            if name not in self.slot_names() or not index.isdigit():
                raise ValueError(f"{type(self).__name__} has no slot {key!r}")
            slots.setdefault(name, {})[int(index)] = value
        if slots:
            if set(slots) != set(self.slot_names()):
                raise ValueError(
                    f"{type(self).__name__} needs slots {sorted(self.slot_names())}, "
                    f"state has {sorted(slots)}"
                )
            counts = {len(by_index) for by_index in slots.values()}
            n = counts.pop()
            if counts or any(sorted(by_index) != list(range(n)) for by_index in slots.values()):
                raise ValueError("optimizer state has an incomplete set of slots")
            self._slots = {
                name: [xp.array(by_index[i], copy=True) for i in range(n)]
                for name, by_index in slots.items()
            }
        else:
            self._slots = None
        self.iterations = int(state["iterations"])


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum: ``b = μ·b − lr·g``, ``w += b``."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, decay: float = 0.0):
        super().__init__(learning_rate, decay)
        self.momentum = momentum
        self.nesterov = nesterov

    def slot_names(self):
        return ("momentum",) if self.momentum else ()

    def update(self, param, grad, lr, slots):
        if not self.momentum:
            param -= lr * grad
            return
        b = slots["momentum"]
        b *= self.momentum
        b -= lr * grad
        if self.nesterov:
            param += self.momentum * b - lr * grad
        else:
            param += b

    def get_config(self):
        return {"learning_rate": self.learning_rate, "momentum": self.momentum,
                "nesterov": self.nesterov, "decay": self.decay}


class RMSprop(Optimizer):
    """RMSprop (Keras 3): ``v = ρv + (1 − ρ)g²``, ``w −= lr·g / sqrt(v + ε)`` (ε inside).

    ``centered`` subtracts the squared running mean of g under the root; ``momentum`` > 0
    accumulates the increments: ``m = μ·m + lr·g / sqrt(...)``, ``w −= m``.
    """

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, decay: float = 0.0):
        super().__init__(learning_rate, decay)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def slot_names(self):
        names = ("velocity",)
        if self.centered:
            names += ("average_gradient",)
        if self.momentum:
            names += ("momentum",)
        return names

    def update(self, param, grad, lr, slots):
        v = slots["velocity"]
        v *= self.rho
        v += (1.0 - self.rho) * grad * grad
        if self.centered:
            ag = slots["average_gradient"]
            ag *= self.rho
            ag += (1.0 - self.rho) * grad
            denominator = v - ag * ag + self.epsilon
        else:
            denominator = v + self.epsilon
        increment = lr * grad / xp.sqrt(denominator)
        if self.momentum:
            m = slots["momentum"]
            m *= self.momentum
            m += increment
            param -= m
        else:
            param -= increment

    def get_config(self):
        return {"learning_rate": self.learning_rate, "rho": self.rho,
                "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered, "decay": self.decay}


class Adam(Optimizer):
    """Adam: ``α = lr·sqrt(1 − β₂ᵗ)/(1 − β₁ᵗ)``, ``w −= α·m / (sqrt(v) + ε)`` (ε outside).

    ``amsgrad`` keeps ``v̂ = max(v̂, v)`` and uses it in the denominator.
    """

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 decay: float = 0.0):
        super().__init__(learning_rate, decay)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def slot_names(self):
        return ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    def update(self, param, grad, lr, slots):
        t = self.iterations + 1
        alpha = lr * (1.0 - self.beta_2 ** t) ** 0.5 / (1.0 - self.beta_1 ** t)
        m, v = slots["m"], slots["v"]
        m *= self.beta_1
        m += (1.0 - self.beta_1) * grad
        v *= self.beta_2
        v += (1.0 - self.beta_2) * grad * grad
        if self.amsgrad:
            v_hat = slots["v_hat"]
            xp.maximum(v_hat, v, out=v_hat)
            v = v_hat
        param -= alpha * m / (xp.sqrt(v) + self.epsilon)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad, "decay": self.decay}


OPTIMIZERS: dict[str, type[Optimizer]] = {"SGD": SGD, "RMSprop": RMSprop, "Adam": Adam}


def get(name: str, **kwargs) -> Optimizer:
    """An optimizer from its class name or Keras string alias.

    Args:
        name: ``"SGD"``, ``"RMSprop"``, ``"Adam"``, or an alias matched case-insensitively
            (``"sgd"``, ``"rmsprop"``, ``"adam"``).
        **kwargs: constructor arguments (``learning_rate``, ``momentum``, ...).

    Returns:
        A new optimizer instance.

    Raises:
        KeyError: for an unknown name.
    """
    by_lower = {key.lower(): cls for key, cls in OPTIMIZERS.items()}
    cls = OPTIMIZERS.get(name) or by_lower.get(str(name).lower())
    if cls is None:
        raise KeyError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return cls(**kwargs)
