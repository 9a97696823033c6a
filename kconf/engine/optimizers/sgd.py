"""SGD: gradient descent with optional (Nesterov) momentum."""
from __future__ import annotations

from kconf.engine.backend import xp
from kconf.engine.optimizers.base import Optimizer


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum: ``b = μ·b − lr·g``, ``w += b``
    (Nesterov: ``w += μ·b − lr·g``); without momentum ``w −= lr·g``.

    ``lazy_sparse``: see ``kconf.engine.optimizers.base`` (no difference without momentum).
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, decay: float = 0.0, lazy_sparse: bool = False,
                 **options):
        super().__init__(learning_rate, decay, lazy_sparse, **options)
        self.momentum = momentum
        self.nesterov = nesterov

    def slot_names(self):
        return ("momentum",) if self.momentum else ()

    def update(self, param, grad, lr, slots, tmp):
        step = xp.multiply(grad, lr, out=tmp[0])  # lr·g
        if not self.momentum:
            param -= step
            return
        b = slots["momentum"]
        b *= self.momentum
        b -= step
        if self.nesterov:
            ahead = xp.multiply(b, self.momentum, out=tmp[1])
            ahead -= step
            param += ahead
        else:
            param += b

    def update_untouched(self, param, lr, slots, tmp):
        if not self.momentum:
            return
        b = slots["momentum"]
        b *= self.momentum
        if self.nesterov:
            param += xp.multiply(b, self.momentum, out=tmp[1])
        else:
            param += b

    def get_config(self):
        return {"learning_rate": self.learning_rate, "momentum": self.momentum,
                "nesterov": self.nesterov, "decay": self.decay,
                "lazy_sparse": self.lazy_sparse, **self.options_config()}


