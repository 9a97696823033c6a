"""FTRL-Proximal ("Follow The Regularized Leader"; Keras 3's rule,
``keras/src/optimizers/ftrl.py``)."""
from __future__ import annotations

from kconf.engine.backend import xp
from kconf.engine.optimizers.base import Optimizer


class Ftrl(Optimizer):
    """FTRL-Proximal with L1, L2 and L2-shrinkage regularization, ``p`` =
    ``learning_rate_power``:

    ``n' = n + g²``; ``z += g + 2·λ₂ₛ·w − (n'^(−p) − n^(−p))/lr · w``;
    ``w = (clip(z, −λ₁, λ₁) − z) / (n'^(−p)/lr + 2(λ₂ + β/(2lr)))``; ``n = n'``.
    The accumulator ``n`` starts at ``initial_accumulator_value``.
    """

    def __init__(self, learning_rate: float = 0.001, learning_rate_power: float = -0.5,
                 initial_accumulator_value: float = 0.1,
                 l1_regularization_strength: float = 0.0,
                 l2_regularization_strength: float = 0.0,
                 l2_shrinkage_regularization_strength: float = 0.0, beta: float = 0.0,
                 decay: float = 0.0, lazy_sparse: bool = False, **options):
        checks = {"initial_accumulator_value": initial_accumulator_value,
                  "l1_regularization_strength": l1_regularization_strength,
                  "l2_regularization_strength": l2_regularization_strength,
                  "l2_shrinkage_regularization_strength": l2_shrinkage_regularization_strength}
        for name, value in checks.items():
            if value < 0:
                raise ValueError(f"Ftrl's {name} must be >= 0, got {value}")
        if learning_rate_power > 0:
            raise ValueError(f"Ftrl's learning_rate_power must be <= 0, "
                             f"got {learning_rate_power}")
        super().__init__(learning_rate, decay, lazy_sparse, **options)
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def slot_names(self):
        return ("accumulator", "linear")

    def slot_initial(self, name):
        return self.initial_accumulator_value if name == "accumulator" else 0.0

    def update(self, param, grad, lr, slots, tmp):
        t, u = tmp
        power = -self.learning_rate_power
        accumulator, linear = slots["accumulator"], slots["linear"]
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        new_accumulator = xp.multiply(grad, grad, out=t)
        new_accumulator += accumulator  # n' (kept in t until the end)
        change = xp.power(new_accumulator, power, out=u)
        change -= xp.power(accumulator, power, out=accumulator)  # n is rewritten below
        change /= lr
        change *= param
        gradient = xp.multiply(param, 2 * self.l2_shrinkage_regularization_strength,
                               out=accumulator)
        gradient += grad
        gradient -= change
        linear += gradient
        quadratic = xp.power(new_accumulator, power, out=u)
        quadratic /= lr
        quadratic += 2 * l2
        l1 = self.l1_regularization_strength
        shrunk = xp.clip(linear, -l1, l1, out=accumulator)
        shrunk -= linear
        shrunk /= quadratic
        param[...] = shrunk
        accumulator[...] = new_accumulator

    def get_config(self):
        return {"learning_rate": self.learning_rate,
                "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength":
                    self.l2_shrinkage_regularization_strength,
                "beta": self.beta, "decay": self.decay, "lazy_sparse": self.lazy_sparse,
                **self.options_config()}
