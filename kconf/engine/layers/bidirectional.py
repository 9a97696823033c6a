"""Bidirectional: a recurrent layer run over the sequence both ways, the two outputs merged.

As ``keras.layers.Bidirectional(layer, merge_mode, backward_layer)``: the forward layer is the
wrapped one, renamed ``forward_<name>``; the backward layer is a copy of it with
``go_backwards`` flipped, named ``backward_<name>`` (or the ``backward_layer`` given, which
keeps its name and must differ from it in ``go_backwards`` and agree in
``return_sequences`` and ``return_state``). The backward layer returns its sequence in the
order it processed it, so with ``return_sequences`` its output is reversed back before the
merge.

``merge_mode``: ``concat`` (on the last axis), ``sum``, ``mul``, ``ave``, or None (two
outputs, forward then backward). With ``return_state`` the outputs are the merged output (or
the two) followed by the forward layer's final states, then the backward layer's.

The wrapper owns no weights: they are its two layers' (``sublayers``), forward then
backward, as Keras's ``get_weights()`` and its ``forward_layer``/``backward_layer`` groups of
the weights file. ``weights`` reads them through under ``<layer name>/<weight>``.

``initial_state`` (``y = bi(x, initial_state=[h_f, c_f, h_b, c_b])``): the first half of
the states start the forward layer, the second half the backward one, as in Keras.

Both calls get the ``mask`` (bool ``(N, T)``, True for real steps) unchanged: a recurrent
layer that goes backwards reverses its input and mask itself.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import MutableMapping
from typing import Any, ClassVar

from pydantic import model_validator

from kconf.args.fields import choice, config_error
from kconf.args.layer import LayerArgs
from kconf.engine.backend import floatx, xp
from kconf.engine.layers.base import Layer
from kconf.engine.layers.recurrent import Recurrent
from kconf.errors import ShapeError
from kconf.shapes import format_shape

#: The recurrent layers Bidirectional wraps (Keras also takes other sequence layers with
#: ``go_backwards``, ``return_sequences`` and ``return_state``; kconf has these three).
RECURRENT_CLASSES = ("LSTM", "GRU", "SimpleRNN")

MergeMode = choice("merge mode", ("concat", "sum", "mul", "ave"))


class BidirectionalArgs(LayerArgs):
    """``Bidirectional(layer, merge_mode, backward_layer)``: ``layer`` (and ``backward_layer``)
    are recurrent layers written as in a sequential list (``{LSTM: {units: 32}}``). Their type,
    ``LayerSpec``, is the config's union of every layer (``kconf.config.layers`` completes this
    model with it); only LSTM, GRU and SimpleRNN are accepted. The graph constructor builds the
    inner layers itself, so ``layer_kwargs()`` holds only ``merge_mode``."""

    keras_ignored: ClassVar[frozenset[str]] = frozenset({"layer", "backward_layer"})

    layer: LayerSpec  # noqa: F821 (resolved by kconf.config.layers)
    merge_mode: MergeMode | None = "concat"
    backward_layer: LayerSpec | None = None  # noqa: F821

    @model_validator(mode="after")
    def _recurrent_inside(self):
        for key in ("layer", "backward_layer"):
            spec = getattr(self, key)
            if spec is None:
                continue
            if spec.tag not in RECURRENT_CLASSES:
                raise config_error(
                    "not_recurrent", f"Bidirectional wraps a recurrent layer "
                                     f"({', '.join(RECURRENT_CLASSES)}), not {spec.tag}: it "
                                     "runs the layer over the sequence forwards and backwards",
                    at=f"{key}.{spec.tag}")
            inner = spec.args
            for field in (*inner.shape_shortcuts, "input_shape", "batch_input_shape"):
                if getattr(inner, field) is not None:
                    raise config_error(
                        "input_hints", "give the input shape to Bidirectional, not to the "
                                       "layer it wraps", at=f"{key}.{spec.tag}.{field}")
        back = self.backward_layer
        if back is not None:
            fwd = self.layer.args
            if back.args.go_backwards == fwd.go_backwards:
                raise config_error(
                    "backward_layer", "backward_layer must process the sequence the other way: "
                                      f"give it go_backwards: {str(not fwd.go_backwards).lower()}",
                    at=f"backward_layer.{back.tag}")
            for field in ("return_sequences", "return_state"):
                if getattr(back.args, field) != getattr(fwd, field):
                    raise config_error(
                        "backward_layer", f"backward_layer must have the same {field} as layer "
                                          f"({str(getattr(fwd, field)).lower()})",
                        at=f"backward_layer.{back.tag}")
        return self

    def layer_kwargs(self) -> dict[str, Any]:
        """``merge_mode``: the wrapped layers are built by the graph constructor."""
        return {"merge_mode": self.merge_mode}


class Bidirectional(Layer):
    """Run ``layer`` forwards and a copy of it backwards over the sequence; merge the outputs.

    Args:
        layer: an unbuilt LSTM, GRU or SimpleRNN; it becomes the forward layer, renamed
            ``forward_<name>``.
        merge_mode: ``"concat"``, ``"sum"``, ``"mul"``, ``"ave"``, or None for two outputs.
        backward_layer: the backward layer (unbuilt; it keeps its name); None makes it from
            ``layer`` with ``go_backwards`` flipped, named ``backward_<name>``.
        **kwargs: ``name`` and ``trainable``.

    Raises:
        TypeError: ``layer`` or ``backward_layer`` is not a recurrent layer.
        ValueError: a merge mode Keras does not have, or a backward layer that goes the same
            way as ``layer`` or differs from it in ``return_sequences``/``return_state``.
    """

    input_grads_optional = True
    #: Keras's ``call(sequences, initial_state=None)``: the first half of the states go to the
    #: forward layer, the second half to the backward one
    call_signature = Recurrent.call_signature

    def __init__(self, layer: Recurrent, merge_mode: str | None = "concat",
                 backward_layer: Recurrent | None = None, **kwargs):
        for given in (layer, backward_layer):
            if given is not None and not isinstance(given, Recurrent):
                raise TypeError(f"Bidirectional wraps a recurrent layer (LSTM, GRU, SimpleRNN), "
                                f"got {given!r}")
        if merge_mode not in ("concat", "sum", "mul", "ave", None):
            raise ValueError(f"merge_mode must be concat, sum, mul, ave or None, "
                             f"got {merge_mode!r}")
        super().__init__(**kwargs)
        #: whether the backward layer was given, not made from ``layer`` (config read-back)
        self.backward_given = backward_layer is not None
        if backward_layer is None:
            backward_layer = copy.deepcopy(layer)
            backward_layer.go_backwards = not layer.go_backwards
        if backward_layer.go_backwards == layer.go_backwards:
            raise ValueError("the backward layer must have the other go_backwards")
        for attr in ("return_sequences", "return_state"):
            if getattr(backward_layer, attr) != getattr(layer, attr):
                raise ValueError(f"the forward and backward layers differ in {attr}")
        layer.name = f"forward_{_unprefixed(_named(layer), 'forward_')}"
        # Keras renames the copy it makes, not a backward layer it is given
        backward_layer.name = (_named(backward_layer) if self.backward_given else
                               f"backward_{_unprefixed(_named(layer), 'forward_')}")
        self.forward_layer = layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        if not self.trainable:  # a frozen wrapper freezes what it wraps (Keras's setter)
            self.trainable = False

    @property
    def layer(self) -> Recurrent:
        """The wrapped layer (the forward one), as Keras's config calls it."""
        return self.forward_layer

    # --- weights: the two layers', read through ------------------------------------------
    @property
    def sublayers(self) -> list[Layer]:
        return [self.forward_layer, self.backward_layer] if "backward_layer" in vars(self) \
            else []

    @property
    def weights(self) -> "_Through":
        return _Through(self.sublayers, "weights")

    @weights.setter
    def weights(self, value) -> None:
        if value:  # Layer.__init__ sets {}: the weights live in the two layers
            raise AttributeError("Bidirectional's weights are its two layers'")

    @property
    def grads(self) -> "_Through":
        return _Through(self.sublayers, "grads")

    @grads.setter
    def grads(self, value) -> None:
        if value:
            raise AttributeError("Bidirectional's gradients are its two layers'")

    def zero_grads(self) -> None:
        for sub in self.sublayers:
            sub.zero_grads()

    def weight_specs(self, input_shape):
        """The two layers' specs, named as in ``weights`` (``forward_lstm/kernel``)."""
        return [dataclasses.replace(spec, name=f"{sub.name}/{spec.name}")
                for sub, shape in zip(self.sublayers, self._halves(input_shape))
                for spec in sub.weight_specs(shape)]

    def weight_entries(self, input_shape):
        """The forward layer's weights, then the backward layer's; none trainable while
        frozen."""
        return [(owner, spec, trainable and self.trainable)
                for sub, shape in zip(self.sublayers, self._halves(input_shape))
                for owner, spec, trainable in sub.weight_entries(shape)]

    def get_weights(self) -> list:
        return [*self.forward_layer.get_weights(), *self.backward_layer.get_weights()]

    def set_weights(self, values) -> None:
        values = list(values)
        n = len(self.forward_layer.weights)
        expected = n + len(self.backward_layer.weights)
        if len(values) != expected:
            raise ValueError(f"layer {self.name!r} expects {expected} weight arrays, "
                             f"got {len(values)}")
        self.forward_layer.set_weights(values[:n])
        self.backward_layer.set_weights(values[n:])

    def build(self, input_shape, rng, dtype=floatx) -> None:
        """Build the forward layer, then the backward one (Keras's order of their weights)."""
        for sub, shape in zip(self.sublayers, self._halves(input_shape)):
            if not sub.built:
                sub.build(shape, rng, dtype=dtype)
        self.built = True

    # --- shapes -----------------------------------------------------------------------------
    def _halves(self, inputs):
        """The inputs of the forward and of the backward layer: the sequence alone, or
        ``[sequences, *states]`` with the first half of the states for the forward layer."""
        if not isinstance(inputs, list):
            return inputs, inputs
        sequences, *states = inputs
        if len(states) % 2:
            raise ShapeError(f"Bidirectional takes initial states for both directions (the "
                             f"forward layer's, then the backward layer's), got {len(states)}")
        half = len(states) // 2
        return [sequences, *states[:half]], [sequences, *states[half:]]

    def compute_output_shape(self, input_shape):
        fwd_in, bwd_in = self._halves(input_shape)
        fwd = self.forward_layer.compute_output_shape(fwd_in)
        bwd = self.backward_layer.compute_output_shape(bwd_in)
        if self.return_state:
            (fwd, *fwd_states), (bwd, *bwd_states) = fwd, bwd
        else:
            fwd_states, bwd_states = [], []
        if self.merge_mode is None:
            outputs = [fwd, bwd]
        elif self.merge_mode == "concat":
            outputs = [(*fwd[:-1], fwd[-1] + bwd[-1])]
        else:
            if tuple(fwd) != tuple(bwd):
                raise ShapeError(f"merge_mode {self.merge_mode} needs the forward and backward "
                                 f"outputs of one shape, got {format_shape(fwd)} and "
                                 f"{format_shape(bwd)} (give both layers the same units)")
            outputs = [fwd]
        outputs += [*fwd_states, *bwd_states]
        return outputs if len(outputs) > 1 else outputs[0]

    def count_params(self, input_shape) -> int:
        return sum(sub.count_params(shape)
                   for sub, shape in zip(self.sublayers, self._halves(input_shape)))

    def flops(self, input_shape) -> int:
        """Both layers' counts (the merge is elementwise: 0)."""
        return sum(sub.flops(shape)
                   for sub, shape in zip(self.sublayers, self._halves(input_shape)))

    # --- compute ----------------------------------------------------------------------------
    def forward(self, x, training=False, rng=None, mask=None):
        extra = {} if mask is None else {"mask": mask}
        listed = isinstance(x, list)  # [sequences, *initial states]: dx comes back listed
        fx, bx = self._halves(x)
        fy, fback = self.forward_layer.forward(fx, training=training, rng=rng, **extra)
        by, bback = self.backward_layer.forward(bx, training=training, rng=rng, **extra)
        n_states = len(fy) - 1 if self.return_state else 0
        f_out, f_states = (fy[0], fy[1:]) if self.return_state else (fy, [])
        b_out, b_states = (by[0], by[1:]) if self.return_state else (by, [])
        seq = self.return_sequences
        if seq:  # the backward layer's sequence comes in processed order: put it back
            b_out = b_out[:, ::-1]
        mode = self.merge_mode
        if mode == "concat":
            merged = [xp.concatenate([f_out, b_out], axis=-1)]
        elif mode == "sum":
            merged = [f_out + b_out]
        elif mode == "ave":
            merged = [(f_out + b_out) * xp.asarray(0.5, dtype=f_out.dtype)]
        elif mode == "mul":
            merged = [f_out * b_out]
        else:
            merged = [f_out, xp.ascontiguousarray(b_out)]
        outputs = [*merged, *f_states, *b_states]
        y = outputs if len(outputs) > 1 else outputs[0]
        split = f_out.shape[-1]

        def backward(dy, need_dx=True):
            dys = list(dy) if len(outputs) > 1 else [dy]
            n_merged = len(merged)
            d_merged, d_states = dys[:n_merged], dys[n_merged:]
            if mode == "concat":
                d = d_merged[0]
                df, db = (None, None) if d is None else (d[..., :split], d[..., split:])
            elif mode in ("sum", "ave"):
                d = d_merged[0]
                if d is not None and mode == "ave":
                    d = d * xp.asarray(0.5, dtype=d.dtype)
                df = db = d
            elif mode == "mul":
                d = d_merged[0]
                df, db = (None, None) if d is None else (d * b_out, d * f_out)
            else:
                df, db = d_merged
            if db is not None and seq:
                db = db[:, ::-1]  # back to the backward layer's processed order
            dfs = [_or_zeros(df, f_out), *(_or_zeros(g, s) for g, s in
                                           zip(d_states[:n_states], f_states))]
            dbs = [_or_zeros(db, b_out), *(_or_zeros(g, s) for g, s in
                                           zip(d_states[n_states:], b_states))]
            dx_f = fback(dfs if self.return_state else dfs[0], need_dx=need_dx)
            dx_b = bback(dbs if self.return_state else dbs[0], need_dx=need_dx)
            if not need_dx:
                return None
            if not listed:
                return dx_f + dx_b
            return [dx_f[0] + dx_b[0], *dx_f[1:], *dx_b[1:]]

        return y, backward


class _Through(MutableMapping):
    """The two layers' ``weights`` (or ``grads``) as one mapping, ``<layer name>/<weight>``
    -> array; setting an entry sets it in the layer that holds it."""

    def __init__(self, layers: list[Layer], attr: str):
        self._dicts = {layer.name: getattr(layer, attr) for layer in layers}

    def _split(self, key: str):
        owner, _, name = key.partition("/")
        if owner not in self._dicts or name not in self._dicts[owner]:
            raise KeyError(key)
        return self._dicts[owner], name

    def __getitem__(self, key: str):
        held, name = self._split(key)
        return held[name]

    def __setitem__(self, key: str, value) -> None:
        held, name = self._split(key)
        held[name] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("a Bidirectional layer's weights are fixed by its layers")

    def __iter__(self):
        return (f"{owner}/{name}" for owner, held in self._dicts.items() for name in held)

    def __len__(self) -> int:
        return sum(len(held) for held in self._dicts.values())


def _named(layer: Layer) -> str:
    """A layer's name, or Keras's automatic one for an unnamed layer (``simple_rnn``)."""
    if layer.name:
        return layer.name
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type(layer).__name__)  # as the graph's namer
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def _or_zeros(grad, like):
    """``grad``, or zeros shaped like the output it belongs to (an output nothing used)."""
    return xp.zeros(like.shape, dtype=like.dtype) if grad is None else grad


def _unprefixed(name: str, prefix: str) -> str:
    """``name`` without ``prefix`` (Keras's ``removeprefix``, so names do not double it)."""
    return name[len(prefix):] if name.startswith(prefix) else name
