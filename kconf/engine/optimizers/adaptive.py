"""Per-coordinate adaptive rates from running squares of the gradient: RMSprop, Adagrad,
Adadelta (Keras 3's rules; ``keras/src/optimizers/{rmsprop,adagrad,adadelta}.py``)."""
from __future__ import annotations

from kconf.engine.backend import xp
from kconf.engine.optimizers.base import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Keras 3): ``v = ρv + (1 − ρ)g²``, ``w −= lr·g / sqrt(v + ε)`` (ε inside).

    ``centered`` subtracts the squared running mean of g under the root; ``momentum`` > 0
    accumulates the increments: ``m = μ·m + lr·g / sqrt(...)``, ``w −= m``.
    ``lazy_sparse``: see ``kconf.engine.optimizers.base``.
    """

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, decay: float = 0.0,
                 lazy_sparse: bool = False, **options):
        super().__init__(learning_rate, decay, lazy_sparse, **options)
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

    def update(self, param, grad, lr, slots, tmp):
        t, u = tmp
        v = slots["velocity"]
        v *= self.rho
        square = xp.multiply(grad, 1.0 - self.rho, out=t)
        square *= grad  # (1 − ρ)·g·g
        v += square
        if self.centered:
            ag = slots["average_gradient"]
            ag *= self.rho
            ag += xp.multiply(grad, 1.0 - self.rho, out=t)
            denominator = xp.multiply(ag, ag, out=u)
            xp.subtract(v, denominator, out=denominator)
            denominator += self.epsilon  # v − ag² + ε
        else:
            denominator = xp.add(v, self.epsilon, out=u)
        xp.sqrt(denominator, out=denominator)
        increment = xp.multiply(grad, lr, out=t)
        increment /= denominator  # lr·g / sqrt(...)
        if self.momentum:
            m = slots["momentum"]
            m *= self.momentum
            m += increment
            param -= m
        else:
            param -= increment

    def update_untouched(self, param, lr, slots, tmp):
        slots["velocity"] *= self.rho
        if self.centered:
            slots["average_gradient"] *= self.rho
        if self.momentum:
            m = slots["momentum"]
            m *= self.momentum
            param -= m

    def get_config(self):
        return {"learning_rate": self.learning_rate, "rho": self.rho,
                "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered, "decay": self.decay,
                "lazy_sparse": self.lazy_sparse, **self.options_config()}



class Adagrad(Optimizer):
    """Adagrad: ``a += g²``, ``w −= lr·g / sqrt(a + ε)``; the accumulator ``a`` starts at
    ``initial_accumulator_value``."""

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, decay: float = 0.0, lazy_sparse: bool = False,
                 **options):
        super().__init__(learning_rate, decay, lazy_sparse, **options)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def slot_names(self):
        return ("accumulator",)

    def slot_initial(self, name):
        return self.initial_accumulator_value

    def update(self, param, grad, lr, slots, tmp):
        t, u = tmp
        accumulator = slots["accumulator"]
        accumulator += xp.multiply(grad, grad, out=t)
        denominator = xp.add(accumulator, self.epsilon, out=u)
        xp.sqrt(denominator, out=denominator)
        step = xp.multiply(grad, lr, out=t)
        step /= denominator
        param -= step

    def update_untouched(self, param, lr, slots, tmp):
        return  # a zero gradient adds nothing and moves nothing

    def get_config(self):
        return {"learning_rate": self.learning_rate,
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon, "decay": self.decay, "lazy_sparse": self.lazy_sparse,
                **self.options_config()}


class Adadelta(Optimizer):
    """Adadelta: ``a = ρa + (1 − ρ)g²``, ``Δ = −sqrt(d + ε)·g / sqrt(a + ε)``,
    ``d = ρd + (1 − ρ)Δ²``, ``w += lr·Δ``."""

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.95, epsilon: float = 1e-7,
                 decay: float = 0.0, lazy_sparse: bool = False, **options):
        super().__init__(learning_rate, decay, lazy_sparse, **options)
        self.rho = rho
        self.epsilon = epsilon

    def slot_names(self):
        return ("accumulated_grad", "accumulated_delta_var")

    def update(self, param, grad, lr, slots, tmp):
        t, u = tmp
        rho = self.rho
        accumulated_grad, accumulated_delta = (slots["accumulated_grad"],
                                               slots["accumulated_delta_var"])
        accumulated_grad *= rho
        square = xp.multiply(grad, grad, out=t)
        square *= 1 - rho
        accumulated_grad += square
        delta = xp.add(accumulated_delta, self.epsilon, out=t)
        xp.sqrt(delta, out=delta)
        delta *= grad
        root = xp.add(accumulated_grad, self.epsilon, out=u)
        xp.sqrt(root, out=root)
        delta /= root
        xp.negative(delta, out=delta)  # Δ
        accumulated_delta *= rho
        square = xp.multiply(delta, delta, out=u)
        square *= 1 - rho
        accumulated_delta += square
        delta *= lr
        param += delta

    def get_config(self):
        return {"learning_rate": self.learning_rate, "rho": self.rho, "epsilon": self.epsilon,
                "decay": self.decay, "lazy_sparse": self.lazy_sparse, **self.options_config()}
