"""GRU with Keras 3's layout: gate blocks z, r, h in kernel (F, 3u) and recurrent_kernel (u, 3u).

reset_after=True (Keras 3's default; bias (2, 3u), row 0 for the inputs, row 1 for the state):
    x_z, x_r, x_h = split(xₜK + b[0]);  m_z, m_r, m_h = split(h R + b[1])
    z = σ(x_z + m_z);  r = σ(x_r + m_r);  hh = act(x_h + r·m_h)
reset_after=False (bias (3u,)):
    x_z, x_r, x_h = split(xₜK + b);  m_z, m_r = split(h R[:, :2u])
    z = σ(x_z + m_z);  r = σ(x_r + m_r);  hh = act(x_h + (r·h) R[:, 2u:])
then h = z·h + (1 − z)·hh (σ is ``recurrent_activation``); h₀ = 0.
"""
from __future__ import annotations

from kconf.args.fields import Bool
from kconf.args.layer import Activation
from kconf.engine.backend import xp
from kconf.engine.layers.base import WeightSpec
from kconf.engine.layers.recurrent import Recurrent, StepActivation
from kconf.engine.layers.simple_rnn import SimpleRNNArgs


class GRUArgs(SimpleRNNArgs):
    recurrent_activation: Activation | None = "sigmoid"
    reset_after: Bool = True


class GRU(Recurrent):
    """Gated recurrent unit (Cho et al., 2014), as ``keras.layers.GRU``.

    Args:
        units: size of the hidden state.
        activation: the candidate state's activation (tanh).
        recurrent_activation: the update and reset gates' activation (sigmoid).
        use_bias: whether there is a bias.
        kernel_initializer: initializer of ``kernel`` (F, 3·units).
        recurrent_initializer: initializer of ``recurrent_kernel`` (units, 3·units).
        bias_initializer: initializer of ``bias``.
        reset_after: apply the reset gate after the recurrent matrix product (Keras 3 default,
            bias (2, 3·units)) or before it (bias (3·units,)).
        return_sequences: return ``(N, T, units)`` instead of the last output.
        return_state: return ``[output, h_T]``.
        go_backwards: process the sequence reversed (and return the reversed sequence).
        zero_output_for_mask: with a mask, zeros for the masked steps' outputs.
        **kwargs: ``name`` and ``trainable``.
    """

    n_gates = 3
    n_states = 1

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 reset_after: bool = True, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False,
                 zero_output_for_mask: bool = False, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards,
                         zero_output_for_mask=zero_output_for_mask, **kwargs)
        self.recurrent_activation = StepActivation(recurrent_activation)
        self.reset_after = reset_after

    def _bias_spec(self):
        shape = (2, 3 * self.units) if self.reset_after else (3 * self.units,)
        return WeightSpec("bias", shape, self.bias_initializer)

    def _input_bias(self):
        bias = self.weights["bias"]
        return bias[0] if self.reset_after else bias

    def _new_cache(self, n, t, dtype):
        # m_h = h R_h (+ b[1]_h) with reset_after, needed for dr; the closures of the
        # activations without a fast path.
        return {"m_h": xp.empty((n, t, self.units), dtype=dtype), "closures": [None] * t}

    def _step(self, z, prev, new, cache, s):
        u = self.units
        (h_prev,), (h,) = prev, new
        kernel = self.weights["recurrent_kernel"]
        if self.reset_after:
            m = h_prev @ kernel
            if self.use_bias:
                m += self.weights["bias"][1]
            z[:, :2 * u] += m[:, :2 * u]
            cache["m_h"][:, s] = m[:, 2 * u:]
            back_zr = self.recurrent_activation.apply(z[:, :2 * u])
            z[:, 2 * u:] += z[:, u:2 * u] * m[:, 2 * u:]
        else:
            z[:, :2 * u] += h_prev @ kernel[:, :2 * u]
            back_zr = self.recurrent_activation.apply(z[:, :2 * u])
            z[:, 2 * u:] += (z[:, u:2 * u] * h_prev) @ kernel[:, 2 * u:]
        back_h = self.activation.apply(z[:, 2 * u:])
        update, candidate = z[:, :u], z[:, 2 * u:]
        xp.subtract(h_prev, candidate, out=h)
        h *= update
        h += candidate  # z·h_prev + (1 − z)·hh
        cache["closures"][s] = (back_zr, back_h)

    def _step_backward(self, dnew, prev, z, cache, s, dz):
        u = self.units
        (dh,), (h_prev,) = dnew, prev
        kernel = self.weights["recurrent_kernel"]
        update, reset, candidate = z[:, :u], z[:, u:2 * u], z[:, 2 * u:]
        back_zr, back_h = cache["closures"][s]
        dz[:, :u] = dh * (h_prev - candidate)
        dz[:, 2 * u:] = self.activation.grad(dh * (1.0 - update), candidate, back_h)
        dh_prev = dh * update
        if self.reset_after:
            dz[:, u:2 * u] = dz[:, 2 * u:] * cache["m_h"][:, s]
            dz[:, :2 * u] = self.recurrent_activation.grad(dz[:, :2 * u], z[:, :2 * u], back_zr)
            dm = dz.copy()
            dm[:, 2 * u:] *= reset
            dh_prev += dm @ kernel.T
        else:
            d_reset_h = dz[:, 2 * u:] @ kernel[:, 2 * u:].T  # gradient of r·h_prev
            dz[:, u:2 * u] = d_reset_h * h_prev
            dh_prev += d_reset_h * reset
            dz[:, :2 * u] = self.recurrent_activation.grad(dz[:, :2 * u], z[:, :2 * u], back_zr)
            dh_prev += dz[:, :2 * u] @ kernel[:, :2 * u].T
        return [dh_prev]

    def _recurrent_grads(self, h_prev, gates, dz, cache):
        u = self.units
        flat_dz = dz.reshape(-1, 3 * u)
        reset = gates[:, :, u:2 * u].reshape(-1, u)
        grad = self.grads["recurrent_kernel"]
        if self.reset_after:
            dm = flat_dz.copy()  # d(h R + b[1]): the h block passed through r
            dm[:, 2 * u:] *= reset
            grad += h_prev.T @ dm
            if self.use_bias:
                self.grads["bias"][0] += flat_dz.sum(axis=0)
                self.grads["bias"][1] += dm.sum(axis=0)
        else:
            grad[:, :2 * u] += h_prev.T @ flat_dz[:, :2 * u]
            grad[:, 2 * u:] += (reset * h_prev).T @ flat_dz[:, 2 * u:]
            if self.use_bias:
                self.grads["bias"] += flat_dz.sum(axis=0)
