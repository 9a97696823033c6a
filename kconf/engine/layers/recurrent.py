"""The machinery LSTM, GRU and SimpleRNN share: one loop over time steps, forward and back.

Input ``(N, T, F)``. Forward projects the inputs of *all* steps with one matrix product
(``x.reshape(N·T, F) @ kernel`` plus the input bias) into ``gates`` ``(N, T, G)``; the time loop
then hands each step's slice to the cell, which adds the recurrent term and overwrites the
slice with its gate values in place (so they are kept for backward without another copy).
The states ``h`` (and LSTM's ``c``) of every step live in preallocated ``(N, T + 1, units)``
arrays, index 0 being the zero initial state.

Backward through time walks the steps in reverse; the cell writes each step's gradient of its
pre-activations into ``dz`` ``(N, T, G)`` and returns the gradients of the previous states.
After the loop, ``dkernel = x.T @ dz`` and ``dx = dz @ kernel.T`` are one matrix product each
over all steps, and so are the recurrent-kernel and bias gradients.

``go_backwards`` processes the sequence reversed and, like Keras, returns the sequence output
in the processed (reversed) order; ``dx`` comes back in the input's order.

``initial_state`` (a graph line's ``y = lstm(x, initial_state=[h, c])``): the states of index
0 are the given arrays instead of zeros, and backward returns their gradients after ``dx``.
A layer called so anywhere takes its inputs as a list on every call, ``[sequences, *states]``
(``n_inputs`` None, see ``CallSignature``), ``[sequences]`` for a call without them.
A mask (``forward(x, mask=m)``, ``m`` bool (N, T), True for data; ``kconf.engine.masks``)
makes a masked step keep the states of the step before (the cell still runs on every row,
then the masked rows are copied back), and its output is the output of the step before, or
zeros with ``zero_output_for_mask`` (Keras's ``backend.rnn``); with ``go_backwards`` the mask
is reversed with the sequence. Backward sends a masked step's state gradients straight to
the step before, and none into its cell. Without a mask the loops are the plain ones.

A cell subclass sets ``n_gates`` and ``n_states`` and implements ``_step`` and
``_step_backward`` (and ``_recurrent_grads`` / ``_input_bias`` / ``_bias_spec`` where its
weights differ from the plain ``z = x K + h R + b`` layout).
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from kconf.args.fields import Bool, config_error
from kconf.args.layer import Fixed, LayerArgs
from kconf.engine import activations
from kconf.engine.backend import xp
from kconf.engine.layers.base import CallSignature, Layer, WeightSpec, require_rank
from kconf.errors import ShapeError
from kconf.shapes import format_shape


#: Why ``stateful: true`` is refused (config and Keras import), and what to do instead.
STATEFUL_UNSUPPORTED = (
    "stateful recurrent layers are not supported: kconf starts every batch from zero states "
    "(stateful: true would carry the last states of a batch into the next); remove stateful, "
    "or start a call from given states with initial_state in a functional graph line "
    "(y = lstm(x, initial_state=[h, c]))")


class RecurrentArgs(LayerArgs):
    """What SimpleRNN, LSTM and GRU share: the Keras 2 shortcuts ``input_dim`` (features per
    step) and ``input_length`` (steps), and arguments accepted only at their defaults."""

    shape_shortcuts: ClassVar[tuple[str, ...]] = ("input_dim", "input_length")
    config_only: ClassVar[tuple[str, ...]] = ("dropout", "recurrent_dropout", "stateful")
    keras_fixed: ClassVar[dict[str, Fixed]] = {
        "dropout": ((0, 0.0), "dropout inside recurrent layers is not implemented in kconf; "
                              "put a Dropout layer before or after"),
        "recurrent_dropout": ((0, 0.0), "recurrent dropout is not implemented in kconf"),
        "stateful": ((False,), STATEFUL_UNSUPPORTED),
        "time_major": ((False,), "kconf's sequences are batch-major"),
    }
    #: unroll and implementation choose how the same numbers are computed.
    keras_ignored: ClassVar[frozenset[str]] = frozenset({
        "unroll", "implementation", "seed", "use_cudnn"})

    #: Keras's RNN argument (LSTM, GRU and SimpleRNN take it through ``**kwargs``): with a
    #: mask, the output of a masked step is zeros instead of the output of the step before.
    zero_output_for_mask: Bool = False

    @model_validator(mode="after")
    def _supported(self):
        for field in ("dropout", "recurrent_dropout"):
            if getattr(self, field) != 0:
                raise config_error("unsupported", "dropout inside recurrent layers is not "
                                                  "supported yet; put a Dropout layer before "
                                                  "or after", at=field)
        if self.stateful:
            raise config_error("unsupported", STATEFUL_UNSUPPORTED, at="stateful")
        if self.input_length is not None and self.input_dim is None:
            raise config_error("input_hints", "input_length needs input_dim (the features of "
                                              "each step), or give input_shape",
                               at="input_length")
        return self

    def shortcut_shape(self) -> tuple[int | None, ...] | None:
        """``input_dim`` (+ ``input_length``) means ``input_shape: [input_length, input_dim]``."""
        if self.input_dim is None:
            return None
        return (self.input_length, self.input_dim)


class StepActivation:
    """An activation applied in place to one step's slice, differentiated later from its output.

    sigmoid, tanh and linear have allocation-light fast paths whose derivatives need only the
    output; any other activation goes through its ``(y, backward)`` closure, which ``apply``
    returns for the caller to keep until backward.

    Args:
        spec: an activation name (see ``kconf.engine.activations``), None, or a function.
    """

    def __init__(self, spec: Any):
        self.fn = activations.get(spec)

    def apply(self, z, out=None):
        """Write act(z) into ``out`` (default: z itself); return the closure backward needs, or None."""
        out = z if out is None else out
        fn = self.fn
        if fn is activations.tanh:
            xp.tanh(z, out=out)
        elif fn is activations.sigmoid:
            # sigmoid(z) = (1 + tanh(z / 2)) / 2: in place, no overflow for very negative z.
            xp.multiply(z, 0.5, out=out)
            xp.tanh(out, out=out)
            out *= 0.5
            out += 0.5
        elif fn is activations.linear:
            if out is not z:
                out[...] = z
        else:
            y, backward = fn(z.copy())  # a copy: the closure may refer to its input later
            out[...] = y
            return backward
        return None

    def grad(self, dy, y, backward):
        """dL/dz from dL/dy, the output ``y`` that ``apply`` wrote and the closure it returned."""
        fn = self.fn
        if fn is activations.tanh:
            return dy * (1.0 - y * y)
        if fn is activations.sigmoid:
            return dy * y * (1.0 - y)
        if fn is activations.linear:
            return dy
        return backward(dy)


class Recurrent(Layer):
    """Base of the recurrent layers: shapes, weights and the loops over time.

    Args:
        units: size of the hidden state (and of the output at each step).
        activation: the cell's output activation.
        use_bias: whether the cell has a bias.
        kernel_initializer: initializer of ``kernel`` (F, n_gates·units).
        recurrent_initializer: initializer of ``recurrent_kernel`` (units, n_gates·units).
        bias_initializer: initializer of ``bias``.
        return_sequences: return every step's output ``(N, T, units)`` instead of the last one.
        return_state: also return the final states; ``forward`` then returns a list
            ``[output, *states]`` and ``backward`` takes a list of as many gradients.
        go_backwards: process the sequence from the last step to the first.
        zero_output_for_mask: with a mask, output zeros at masked steps instead of the
            output of the step before (Keras's RNN argument; Bidirectional sets it to
            ``return_sequences``).
        **kwargs: ``name`` and ``trainable`` (see ``Layer``).
    """

    input_grads_optional = True
    supports_masking = True
    takes_mask = True
    n_gates: int = 1  # column blocks of the kernels
    n_states: int = 1  # h, or h and c
    #: Keras's ``call(sequences, initial_state=None)``
    call_signature = CallSignature(("sequences",), 1, tensor_lists=("initial_state",))

    def __init__(self, units: int, activation="tanh", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False,
                 zero_output_for_mask: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.zero_output_for_mask = zero_output_for_mask
        self.units = units
        self.activation = StepActivation(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards

    # --- shape phase -------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        input_shape = self._check_initial_states(input_shape)
        require_rank(self, input_shape, 3, "sequences (batch, timesteps, features)")
        if input_shape[-1] is None:
            raise ShapeError(
                f"{type(self).__name__} needs a known number of features (last axis), got "
                f"input shape {format_shape(input_shape)}"
            )
        batch, steps = input_shape[0], input_shape[1]
        out = (batch, steps, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [out] + [(batch, self.units)] * self.n_states
        return out

    def _check_initial_states(self, input_shape):
        """The sequence's shape; for a call with initial states (a list of shapes), check
        that they are ``n_states`` of shape (batch, units)."""
        if not isinstance(input_shape, list):
            return input_shape
        sequences, *states = input_shape
        kind = type(self).__name__
        if states and len(states) != self.n_states:
            names = "[h, c]" if self.n_states == 2 else "[h]"
            raise ShapeError(f"{kind} takes {self.n_states} initial state"
                             f"{'s' if self.n_states > 1 else ''} ({names}), got {len(states)}")
        for k, shape in enumerate(states):
            if len(shape) != 2 or shape[-1] != self.units:
                raise ShapeError(f"{kind}'s initial state {k} must have shape (batch, "
                                 f"{self.units}) (units), got {format_shape(shape)}")
        return sequences
    def mask_origins(self, origins, **options):
        """The sequence output keeps the input's mask; the last output and states have none."""
        out = origins[0] if self.return_sequences else None
        return [out] + [None] * self.n_states if self.return_state else out

    def compute_mask(self, x, mask, **options):
        mask = mask[0] if isinstance(mask, list) else mask
        out = mask if self.return_sequences else None
        return [out] + [None] * self.n_states if self.return_state else out

    def weight_specs(self, input_shape):
        if isinstance(input_shape, list):  # [sequences, *initial states]
            input_shape = input_shape[0]
        width = self.n_gates * self.units
        specs = [
            WeightSpec("kernel", (input_shape[-1], width), self.kernel_initializer),
            WeightSpec("recurrent_kernel", (self.units, width), self.recurrent_initializer),
        ]
        if self.use_bias:
            specs.append(self._bias_spec())
        return specs

    def _bias_spec(self) -> WeightSpec:
        """The bias: one vector over all gate blocks unless the cell says otherwise."""
        return WeightSpec("bias", (self.n_gates * self.units,), self.bias_initializer)

    def _input_bias(self):
        """The part of the bias added to the input projection of every step."""
        return self.weights["bias"]

    def flops(self, input_shape):
        """Per step, the input product (F × G) and the recurrent product (units × G), where
        G = n_gates · units; times the number of steps, 0 when that is unknown (None)."""
        if isinstance(input_shape, list):  # [sequences, *initial states]
            input_shape = input_shape[0]
        steps, features = input_shape[1], input_shape[-1]
        if steps is None or features is None:
            return 0
        width = self.n_gates * self.units
        return 2 * steps * (features * width + self.units * width)

    # --- compute -----------------------------------------------------------------------
    def forward(self, x, training=False, rng=None, mask=None):
        listed = isinstance(x, list)  # [sequences, *initial states]: dx comes back listed
        x, initial = (x[0], x[1:]) if listed else (x, [])
        n, t, f = x.shape
        units, n_states = self.units, self.n_states
        seq = x[:, ::-1] if self.go_backwards else x
        flat_x = seq.reshape(n * t, f)  # a copy only when reversed
        kernel = self.weights["kernel"]
        gates = (flat_x @ kernel).reshape(n, t, -1)  # every step's input projection at once
        if self.use_bias:
            gates += self._input_bias()
        dtype = gates.dtype
        states = [xp.zeros((n, t + 1, units), dtype=dtype) for _ in range(n_states)]
        for a, given in zip(states, initial):
            a[:, 0] = given
        cache = self._new_cache(n, t, dtype)
        keep = None  # (N, T, 1), 1.0 where the step (in processing order) is data
        if isinstance(mask, list):  # one per input of a listed call: the sequence's is first
            mask = mask[0]
        if mask is None:
            for s in range(t):
                self._step(gates[:, s], [a[:, s] for a in states],
                           [a[:, s + 1] for a in states], cache, s)
        else:
            keep = xp.asarray(mask, dtype=bool)[:, ::-1 if self.go_backwards else 1, None]
            skip = ~keep
            keep = keep.astype(dtype)
            for s in range(t):
                self._step(gates[:, s], [a[:, s] for a in states],
                           [a[:, s + 1] for a in states], cache, s)
                for a in states:  # a masked row keeps the states of the step before
                    xp.copyto(a[:, s + 1], a[:, s], where=skip[:, s])

        h = states[0]
        zero_masked = keep is not None and self.zero_output_for_mask
        if self.return_sequences:
            out = h[:, 1:] * keep if zero_masked else h[:, 1:].copy()
        else:
            out = h[:, t] * keep[:, t - 1] if zero_masked else h[:, t].copy()
        y = [out, *(a[:, t].copy() for a in states)] if self.return_state else out

        def backward(dy, need_dx=True):
            if self.return_state:
                dout, *dfinal = dy
            else:
                dout, dfinal = dy, [None] * n_states
            d = [xp.zeros((n, units), dtype=dtype) for _ in range(n_states)]
            for k, g in enumerate(dfinal):
                if g is not None:
                    d[k] = d[k] + g
            if dout is not None and zero_masked:  # zeroed outputs pass no gradient
                dout = dout * (keep if self.return_sequences else keep[:, t - 1])
            per_step = dout is not None and self.return_sequences
            if dout is not None and not self.return_sequences:
                d[0] = d[0] + dout
            dz = xp.empty_like(gates)
            if keep is None:
                for s in range(t - 1, -1, -1):
                    if per_step:
                        d[0] = d[0] + dout[:, s]
                    d = self._step_backward(d, [a[:, s] for a in states], gates[:, s], cache,
                                            s, dz[:, s])
            else:
                for s in range(t - 1, -1, -1):
                    if per_step:
                        d[0] = d[0] + dout[:, s]
                    # a masked row's state gradients skip the cell, to the step before
                    through = [g * keep[:, s] for g in d]
                    back = self._step_backward(through, [a[:, s] for a in states],
                                               gates[:, s], cache, s, dz[:, s])
                    d = [b + (g - g_in) for b, g, g_in in zip(back, d, through)]
            flat_dz = dz.reshape(n * t, -1)
            self.grads["kernel"] += flat_x.T @ flat_dz
            self._recurrent_grads(h[:, :-1].reshape(n * t, units), gates, dz, cache)
            if not need_dx:
                return None
            dx = (flat_dz @ kernel.T).reshape(n, t, f)
            dx = xp.ascontiguousarray(dx[:, ::-1]) if self.go_backwards else dx
            return [dx, *d[:len(initial)]] if listed else dx

        return y, backward

    def _recurrent_grads(self, h_prev, gates, dz, cache) -> None:
        """Add the recurrent-kernel and bias gradients; ``h_prev`` is (N·T, units), dz (N, T, G)."""
        flat_dz = dz.reshape(-1, dz.shape[-1])
        self.grads["recurrent_kernel"] += h_prev.T @ flat_dz
        if self.use_bias:
            self.grads["bias"] += flat_dz.sum(axis=0)

    # --- the cell ----------------------------------------------------------------------
    def _new_cache(self, n: int, t: int, dtype) -> dict:
        """Per-call arrays the cell keeps for backward, beyond the gates and the states."""
        return {}

    def _step(self, z, prev: list, new: list, cache: dict, s: int) -> None:
        """One step: ``z`` (N, G) holds x_s K + b and is overwritten with the gate values;
        write the new states into the views ``new``."""
        raise NotImplementedError

    def _step_backward(self, dnew: list, prev: list, z, cache: dict, s: int, dz) -> list:
        """Back through one step: fill ``dz`` (N, G) with dL/d(pre-activations) given the
        gradients ``dnew`` of the step's new states; return those of the previous states."""
        raise NotImplementedError
