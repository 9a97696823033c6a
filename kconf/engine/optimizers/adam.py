"""Adam and its family: Adam (and amsgrad), AdamW, Adamax, Nadam, Lamb (Keras 3's rules;
``keras/src/optimizers/{adam,adamw,adamax,nadam,lamb}.py``)."""
from __future__ import annotations

from kconf.engine.backend import xp
from kconf.engine.optimizers.base import Optimizer


class Adam(Optimizer):
    """Adam: ``α = lr·sqrt(1 − β₂ᵗ)/(1 − β₁ᵗ)``, ``w −= α·m / (sqrt(v) + ε)`` (ε outside).

    ``amsgrad`` keeps ``v̂ = max(v̂, v)`` and uses it in the denominator.
    ``lazy_sparse``: see ``kconf.engine.optimizers.base`` (with it: TensorFlow's LazyAdam).
    """

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 decay: float = 0.0, lazy_sparse: bool = False, **options):
        super().__init__(learning_rate, decay, lazy_sparse, **options)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def slot_names(self):
        return ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    def update(self, param, grad, lr, slots, tmp):
        t = tmp[0]
        m, v = slots["m"], slots["v"]
        m *= self.beta_1
        m += xp.multiply(grad, 1.0 - self.beta_1, out=t)
        v *= self.beta_2
        square = xp.multiply(grad, 1.0 - self.beta_2, out=t)
        square *= grad  # (1 − β₂)·g·g
        v += square
        self._move(param, lr, slots, tmp)

    def update_untouched(self, param, lr, slots, tmp):
        slots["m"] *= self.beta_1
        slots["v"] *= self.beta_2
        self._move(param, lr, slots, tmp)

    def _move(self, param, lr, slots, tmp) -> None:
        """``w −= α·m / (sqrt(v) + ε)`` (amsgrad: v̂ = max(v̂, v) in place of v)."""
        t, u = tmp
        step = self.update_count + 1
        alpha = lr * (1.0 - self.beta_2 ** step) ** 0.5 / (1.0 - self.beta_1 ** step)
        v = slots["v"]
        if self.amsgrad:
            v = xp.maximum(slots["v_hat"], v, out=slots["v_hat"])
        denominator = xp.sqrt(v, out=u)
        denominator += self.epsilon
        delta = xp.multiply(slots["m"], alpha, out=t)
        delta /= denominator
        param -= delta

    def get_config(self):
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad, "decay": self.decay,
                "lazy_sparse": self.lazy_sparse, **self.options_config()}



class AdamW(Adam):
    """Adam with decoupled weight decay (Keras's AdamW: Adam whose ``weight_decay`` defaults
    to 0.004 and must be a number): ``w −= w·wd·lr`` before each Adam step."""

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, decay: float = 0.0, lazy_sparse: bool = False,
                 **options):
        if weight_decay is None:
            raise ValueError("AdamW's weight_decay must be a number, got None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, decay, lazy_sparse,
                         weight_decay=weight_decay, **options)


class Adamax(Optimizer):
    """Adamax: ``m += (g − m)(1 − β₁)``, ``u = max(β₂u, |g|)``,
    ``w −= lr·m / ((1 − β₁ᵗ)(u + ε))``."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, decay: float = 0.0,
                 lazy_sparse: bool = False, **options):
        super().__init__(learning_rate, decay, lazy_sparse, **options)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def slot_names(self):
        return ("momentum", "norm")

    def update(self, param, grad, lr, slots, tmp):
        t, u = tmp
        m, norm = slots["momentum"], slots["norm"]
        change = xp.subtract(grad, m, out=t)
        change *= 1.0 - self.beta_1
        m += change
        norm *= self.beta_2
        xp.maximum(norm, xp.abs(grad, out=t), out=norm)
        step = xp.multiply(m, lr, out=t)
        denominator = xp.add(norm, self.epsilon, out=u)
        denominator *= 1.0 - self.beta_1 ** (self.update_count + 1)
        step /= denominator
        param -= step

    def get_config(self):
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon, "decay": self.decay,
                "lazy_sparse": self.lazy_sparse, **self.options_config()}


class Nadam(Optimizer):
    """Nadam (Adam with Nesterov momentum, Keras's schedule of the momentum):
    ``μₜ = β₁(1 − ½·0.96ᵗ)``, ``Πₜ = Π μ₁..μₜ`` (``u_product``, state beside the slots),
    ``m̂ = μₜ₊₁m / (1 − Πₜμₜ₊₁) + (1 − μₜ)g / (1 − Πₜ)``, ``v̂ = v / (1 − β₂ᵗ)``,
    ``w −= lr·m̂ / (sqrt(v̂) + ε)``."""

    scalars = ("u_product",)

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, decay: float = 0.0,
                 lazy_sparse: bool = False, **options):
        super().__init__(learning_rate, decay, lazy_sparse, **options)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.u_product = 1.0
        self._coefficients = (0.0, 0.0, 0.0)

    def slot_names(self):
        return ("momentum", "velocity")

    def _mu(self, step: int) -> float:
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** step)

    def before_update(self):
        """Advance ``u_product`` and fix this step's coefficients (once per update, as Keras's
        ``_backend_update_step``; float32 as Keras's variable)."""
        step = self.update_count + 1
        self.u_product = float(xp.float32(self.u_product * self._mu(step)))
        u_t, u_next = self._mu(step), self._mu(step + 1)
        self._coefficients = (u_next / (1.0 - self.u_product * u_next),
                              (1.0 - u_t) / (1.0 - self.u_product),
                              1.0 - self.beta_2 ** step)

    def update(self, param, grad, lr, slots, tmp):
        t, u = tmp
        momentum_factor, gradient_factor, velocity_correction = self._coefficients
        m, v = slots["momentum"], slots["velocity"]
        change = xp.subtract(grad, m, out=t)
        change *= 1.0 - self.beta_1
        m += change
        change = xp.multiply(grad, grad, out=t)
        change -= v
        change *= 1.0 - self.beta_2
        v += change
        m_hat = xp.multiply(m, momentum_factor, out=t)
        m_hat += xp.multiply(grad, gradient_factor, out=u)
        denominator = xp.divide(v, velocity_correction, out=u)
        xp.sqrt(denominator, out=denominator)
        denominator += self.epsilon
        m_hat *= lr
        m_hat /= denominator
        param -= m_hat

    def get_config(self):
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon, "decay": self.decay,
                "lazy_sparse": self.lazy_sparse, **self.options_config()}


class Lamb(Optimizer):
    """Lamb: Adam's ``m̂ / (sqrt(v̂) + ε)`` scaled per parameter by the trust ratio
    ``‖w‖ / ‖update‖`` (1 where either norm is 0): ``w −= ratio·lr·update``. Not elementwise:
    each parameter is updated whole."""

    elementwise = False

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, decay: float = 0.0,
                 lazy_sparse: bool = False, **options):
        super().__init__(learning_rate, decay, lazy_sparse, **options)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def slot_names(self):
        return ("momentum", "velocity")

    def update(self, param, grad, lr, slots, tmp):
        t, u = tmp
        step = self.update_count + 1
        m, v = slots["momentum"], slots["velocity"]
        change = xp.subtract(grad, m, out=t)
        change *= 1.0 - self.beta_1
        m += change
        change = xp.multiply(grad, grad, out=t)
        change -= v
        change *= 1.0 - self.beta_2
        v += change
        update = xp.divide(m, 1.0 - self.beta_1 ** step, out=t)
        root = xp.divide(v, 1.0 - self.beta_2 ** step, out=u)
        xp.sqrt(root, out=root)
        root += self.epsilon
        update /= root
        flat_w, flat_update = param.reshape(-1), update.reshape(-1)
        w_norm = float(xp.sqrt(xp.dot(flat_w, flat_w)))
        g_norm = float(xp.sqrt(xp.dot(flat_update, flat_update)))
        ratio = w_norm / g_norm if w_norm > 0 and g_norm > 0 else 1.0
        update *= ratio * lr
        param -= update

    def get_config(self):
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon, "decay": self.decay,
                "lazy_sparse": self.lazy_sparse, **self.options_config()}
