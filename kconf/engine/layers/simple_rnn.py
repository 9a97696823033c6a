"""SimpleRNN: h = act(xₜK + h R + b) with kernel (F, u), recurrent_kernel (u, u), bias (u,)."""
from __future__ import annotations

from kconf.args.fields import Bool, Fraction, PositiveInt
from kconf.args.layer import Activation, Initializer
from kconf.engine.layers.recurrent import Recurrent, RecurrentArgs


class SimpleRNNArgs(RecurrentArgs):
    units: PositiveInt
    activation: Activation | None = "tanh"
    use_bias: Bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    recurrent_initializer: Initializer = "orthogonal"
    bias_initializer: Initializer = "zeros"
    return_sequences: Bool = False
    return_state: Bool = False
    go_backwards: Bool = False
    dropout: Fraction = 0.0
    recurrent_dropout: Fraction = 0.0
    stateful: Bool = False
    input_dim: PositiveInt | None = None
    input_length: PositiveInt | None = None


class SimpleRNN(Recurrent):
    """Fully connected recurrent layer, as ``keras.layers.SimpleRNN``.

    Args:
        units: size of the hidden state.
        activation: the state's activation (tanh).
        use_bias: whether there is a bias (units,).
        kernel_initializer: initializer of ``kernel`` (F, units).
        recurrent_initializer: initializer of ``recurrent_kernel`` (units, units).
        bias_initializer: initializer of ``bias``.
        return_sequences: return ``(N, T, units)`` instead of the last output.
        return_state: return ``[output, h_T]``.
        go_backwards: process the sequence reversed (and return the reversed sequence).
        zero_output_for_mask: with a mask, zeros for the masked steps' outputs.
        **kwargs: ``name`` and ``trainable``.
    """

    n_gates = 1
    n_states = 1

    def __init__(self, units: int, activation="tanh", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False,
                 zero_output_for_mask: bool = False, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, return_sequences=return_sequences,
                         return_state=return_state, go_backwards=go_backwards,
                         zero_output_for_mask=zero_output_for_mask, **kwargs)

    def _new_cache(self, n, t, dtype):
        return {"closures": [None] * t}  # the activation's closures where there is no fast path

    def _step(self, z, prev, new, cache, s):
        z += prev[0] @ self.weights["recurrent_kernel"]
        cache["closures"][s] = self.activation.apply(z)
        new[0][...] = z

    def _step_backward(self, dnew, prev, z, cache, s, dz):
        dz[...] = self.activation.grad(dnew[0], z, cache["closures"][s])
        return [dz @ self.weights["recurrent_kernel"].T]
