"""Lion: the sign of an interpolated momentum (Keras 3's rule,
``keras/src/optimizers/lion.py``)."""
from __future__ import annotations

from kconf.engine.backend import xp
from kconf.engine.optimizers.base import Optimizer


class Lion(Optimizer):
    """Lion: ``w −= lr·sign(β₁m + (1 − β₁)g)``, then ``m = β₂m + (1 − β₂)g``."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.99,
                 decay: float = 0.0, lazy_sparse: bool = False, **options):
        if not 0 < beta_1 <= 1:
            raise ValueError(f"Lion's beta_1 must be in (0, 1], got {beta_1}")
        super().__init__(learning_rate, decay, lazy_sparse, **options)
        self.beta_1 = beta_1
        self.beta_2 = beta_2

    def slot_names(self):
        return ("momentum",)

    def update(self, param, grad, lr, slots, tmp):
        t, u = tmp
        m = slots["momentum"]
        direction = xp.multiply(m, self.beta_1, out=t)
        direction += xp.multiply(grad, 1.0 - self.beta_1, out=u)
        xp.sign(direction, out=direction)
        direction *= lr
        param -= direction
        m *= self.beta_2
        m += xp.multiply(grad, 1.0 - self.beta_2, out=u)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "decay": self.decay, "lazy_sparse": self.lazy_sparse,
                **self.options_config()}
