"""LSTM with Keras's layout: gate blocks i, f, c, o in kernel (F, 4u), recurrent_kernel (u, 4u)
and bias (4u,).

Per step, with z = xₜK + h R + b: i = σ(z_i), f = σ(z_f), g = act(z_c), o = σ(z_o),
c = f·c + i·g, h = o·act(c) (σ is ``recurrent_activation``); h₀ = c₀ = 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kconf.args.fields import Bool
from kconf.args.layer import Activation
from kconf.engine import initializers
from kconf.engine.backend import xp
from kconf.engine.layers.base import WeightSpec
from kconf.engine.layers.recurrent import Recurrent, StepActivation
from kconf.engine.layers.simple_rnn import SimpleRNNArgs


class LSTMArgs(SimpleRNNArgs):
    recurrent_activation: Activation | None = "sigmoid"
    unit_forget_bias: Bool = True


@dataclass(frozen=True)
class UnitForgetBias:
    """LSTM bias initializer for ``unit_forget_bias``: ``base`` everywhere, then 1 on the
    forget-gate block ``[units:2·units]`` (Keras: base, ones, base concatenated)."""

    units: int
    base: Any = "zeros"

    def __call__(self, shape, rng):
        bias = xp.array(initializers.get(self.base)(shape, rng), dtype=xp.float64)
        bias[self.units:2 * self.units] = 1.0
        return bias


class LSTM(Recurrent):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997), as ``keras.layers.LSTM``.

    Args:
        units: size of the hidden and cell states.
        activation: applied to the candidate ``z_c`` and to ``c`` for the output (tanh).
        recurrent_activation: the gates' activation (sigmoid; Keras <= 2.2 used hard_sigmoid).
        use_bias: whether there is a bias (4·units,).
        kernel_initializer: initializer of ``kernel`` (F, 4·units).
        recurrent_initializer: initializer of ``recurrent_kernel`` (units, 4·units).
        bias_initializer: initializer of ``bias``.
        unit_forget_bias: set the forget-gate block of the initial bias to 1.
        return_sequences: return ``(N, T, units)`` instead of the last output.
        return_state: return ``[output, h_T, c_T]``.
        go_backwards: process the sequence reversed (and return the reversed sequence).
        zero_output_for_mask: with a mask, zeros for the masked steps' outputs.
        **kwargs: ``name`` and ``trainable``.
    """

    n_gates = 4
    n_states = 2

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias: bool = True, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False,
                 zero_output_for_mask: bool = False, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards,
                         zero_output_for_mask=zero_output_for_mask, **kwargs)
        self.recurrent_activation = StepActivation(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias

    def _bias_spec(self):
        init = self.bias_initializer
        if self.unit_forget_bias:
            init = UnitForgetBias(self.units, init)
        return WeightSpec("bias", (4 * self.units,), init)

    def _new_cache(self, n, t, dtype):
        # act(c) of every step, and the activations' closures where there is no fast path.
        return {"act_c": xp.empty((n, t, self.units), dtype=dtype), "closures": [None] * t}

    def _step(self, z, prev, new, cache, s):
        u = self.units
        h_prev, c_prev = prev
        h, c = new
        z += h_prev @ self.weights["recurrent_kernel"]
        gate, act = self.recurrent_activation, self.activation
        back_if = gate.apply(z[:, :2 * u])
        back_g = act.apply(z[:, 2 * u:3 * u])
        back_o = gate.apply(z[:, 3 * u:])
        i, f, g, o = z[:, :u], z[:, u:2 * u], z[:, 2 * u:3 * u], z[:, 3 * u:]
        xp.multiply(f, c_prev, out=c)
        c += i * g
        act_c = cache["act_c"][:, s]
        back_c = act.apply(c, out=act_c)
        xp.multiply(o, act_c, out=h)
        cache["closures"][s] = (back_if, back_g, back_o, back_c)

    def _step_backward(self, dnew, prev, z, cache, s, dz):
        u = self.units
        dh, dc = dnew
        c_prev = prev[1]
        i, f, g, o = z[:, :u], z[:, u:2 * u], z[:, 2 * u:3 * u], z[:, 3 * u:]
        act_c = cache["act_c"][:, s]
        back_if, back_g, back_o, back_c = cache["closures"][s]
        gate, act = self.recurrent_activation, self.activation
        dc = dc + act.grad(dh * o, act_c, back_c)
        dz[:, 3 * u:] = gate.grad(dh * act_c, o, back_o)
        dz[:, :u] = dc * g
        dz[:, u:2 * u] = dc * c_prev
        dz[:, :2 * u] = gate.grad(dz[:, :2 * u], z[:, :2 * u], back_if)
        dz[:, 2 * u:3 * u] = act.grad(dc * i, g, back_g)
        return [dz @ self.weights["recurrent_kernel"].T, dc * f]
