"""The layer contract every engine layer follows.

Three phases (see STYLE.md): the constructor takes Keras's keyword arguments and validates
nothing the schema already did; ``compute_output_shape`` and ``weight_specs`` work on shapes
alone (so ``validate``/``summary`` need no arrays); ``build`` creates the weights; ``forward``
returns ``(y, backward)`` where ``backward(dy)`` returns ``dx`` and *adds* into ``self.grads``.
Nothing about one call is stored on ``self``: a layer called twice (shared) just works.

``flops(input_shape)`` is the forward cost of one sample, by one convention for every layer:
2 FLOPs per multiply-add of the matrix products (Dense, Conv2D, the recurrent layers' input
and recurrent products, Dot); elementwise work (activations, bias, pooling, dropout, merges,
embedding lookups) counts 0. A training step costs about 3 × forward (forward, gradient of
the inputs, gradient of the weights), the convention of the issue's numbers and of the
reference scripts. A size that is unknown (None outside the batch axis) makes the count 0.

Trainable weights and state (Keras's ``trainable_weights`` / ``non_trainable_weights``). A
``WeightSpec`` with ``trainable=False`` is *state* (BatchNormalization's moving mean and
variance): it lives in ``weights`` beside the trained arrays, is saved with them (``get_weights``,
``weights.npz``, checkpoints, Keras weight files), but has no entry in ``grads``, is never
handed to the optimizer, and is counted as 'Non-trainable params'. ``build`` keeps Keras 3's
order: the trainable specs in their order, then the state specs in theirs (Keras's
``layer.weights`` is ``_trainable_variables + _non_trainable_variables``). The contract for
updating state:

- only ``forward(x, training=True)`` updates it, in place (``w[...] = ...``: the arrays are
  shared with savers, checkpoints and set_weights), and once per call, before it returns —
  never in ``backward`` and never when ``training`` is False (predict, evaluate, validation);
- a shared layer updates it once per call, in the graph's order, exactly as Keras runs two
  calls; the graph runner therefore never stacks the calls of a layer that holds state
  (``has_state``) into one batch, which would turn two updates into one;
- the update may only depend on the call's input and the state itself (no random draws
  beyond the ``rng`` argument), so that a run restored from a checkpoint, which restores the
  state bit-exactly with the other weights, continues exactly as the uninterrupted run.

Freezing (``layer.trainable = False``, ``trainable: false`` in a config) is another matter:
the layer keeps its trainable specs, but none of its weights is trained while it is frozen;
``trainable_weights`` is then empty and ``non_trainable_weights`` holds them all. Setting
``trainable`` on a layer that holds other layers (a nested model, TimeDistributed) sets it on
them too, as Keras does; a ``Model`` collects what the optimizer updates when it is built and
when it is compiled, so freeze before ``compile``, as Keras requires.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from kconf.engine.backend import floatx, xp
from kconf.engine import initializers, masks
from kconf.errors import ShapeError
from kconf.graph.nodes import NodeAPI
from kconf.shapes import Shape, format_shape

Backward = Callable[[Any], Any]


@dataclass(frozen=True)
class CallSignature:
    """How a layer with named inputs is called (Keras's ``call`` arguments), for graph lines
    such as ``a = mha(query=x, value=x, use_causal_mask=True)``.

    The graph gives ``forward`` (and ``compute_output_shape``) the tensors in the order of
    ``tensors``, up to the last one the call names: an optional tensor left out before a
    given one takes the tensor named in ``defaults`` (Keras's ``key=None`` means ``value``).
    The ``options`` (non-tensor keywords) reach ``compute_output_shape`` and ``forward`` as
    keyword arguments, only when the call gives them.

    A keyword of ``tensor_lists`` takes a list of tensors (a recurrent layer's
    ``initial_state=[h, c]``); a call that gives one passes them after the other tensors, and
    the layer then takes its inputs as one list on every call (the graph constructor sets
    its ``n_inputs`` to None).

    Attributes:
        tensors: the tensor arguments in Keras's positional order.
        required: how many of them a call must give.
        options: keyword -> the type of its value (``bool``, ``int``).
        defaults: optional tensor -> the tensor argument it defaults to.
        keras_list: Keras's call takes the tensors as one list (``Attention()([q, v])``),
            not as arguments (``MultiHeadAttention()(q, v, key=k)``).
        tensor_lists: keywords whose value is a list of tensors (``initial_state``).
    """

    tensors: tuple[str, ...]
    required: int
    options: dict[str, type] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    keras_list: bool = False
    tensor_lists: tuple[str, ...] = ()

    def arrange(self, positional: list, named: dict[str, Any]) -> list:
        """The tensors of one call in the order ``forward`` takes them.

        Args:
            positional: the tensors given by position (the first of ``tensors`` onwards).
            named: tensor keyword -> tensor (none of them also given by position).

        Returns:
            The tensors up to the last one given, a left-out one replaced by its default.

        Raises:
            ValueError: a required tensor, or one without a default before a given one, is
                missing (``checks`` reports these at the line first).
        """
        given = dict(zip(self.tensors, positional)) | dict(named)
        last = max((self.tensors.index(k) for k in given), default=-1)
        out = []
        for name in self.tensors[:max(last + 1, self.required)]:
            if name in given:
                out.append(given[name])
            elif name in self.defaults and self.defaults[name] in given:
                out.append(given[self.defaults[name]])
            else:
                raise ValueError(f"the call needs {name}")
        return out


@dataclass(frozen=True)
class WeightSpec:
    """One weight: Keras name ('kernel', 'bias', ...), shape, and initializer spec;
    ``trainable=False`` makes it state (see the module docstring)."""

    name: str
    shape: tuple[int, ...]
    initializer: Any = "zeros"
    trainable: bool = True


class Layer(NodeAPI):
    """Base class. Subclasses set ``n_inputs`` (1, or None for any number >= 2) and implement
    ``compute_output_shape``, ``forward`` and, if they have weights, ``weight_specs``.

    ``forward`` returns ``(y, backward)``; ``backward(dy)`` adds the weight gradients into
    ``grads`` and returns the input gradient(s). Layers with ``input_grads_optional`` also
    take ``backward(dy, need_dx=False)``, which only adds the weight gradients (the graph
    runner asks for that where no gradient flows further back).

    A layer keeps no record of its calls: the graph does (``kconf.graph``); Keras's node API
    (``layer.output``, ``get_output_at(i)`` ...) comes from ``NodeAPI``, which reads it."""

    n_inputs: int | None = 1
    input_grads_optional: bool = False
    #: ``forward`` returns a new array that the layer never reads again (not in backward):
    #: the graph lets its only consumer write over it (``overwrites_input``).
    fresh_output: bool = False
    #: ``forward`` takes ``overwrite=True``, given by the graph where the input is another
    #: layer's ``fresh_output`` that nothing else reads: it may then write its output over
    #: the input (one allocation and pass fewer, and a smaller step in the cache).
    overwrites_input: bool = False
    #: ``forward`` adds a loss (``kconf.engine.added_losses``): its calls are never stacked.
    adds_loss: bool = False
    #: Named inputs and keyword options of a call (MultiHeadAttention); None: positional only.
    call_signature: CallSignature | None = None
    #: Keras's ``supports_masking`` (see ``kconf.engine.masks``): a mask on the (first) input
    #: passes to the output unchanged. False: a masked input is refused when the graph is
    #: built, where Keras 3 would drop the mask with a warning.
    supports_masking: bool = False
    #: ``forward`` takes ``mask=``: the (N, T) bool mask of its input (a list, one per input,
    #: for a layer with several), given only when some input carries one.
    takes_mask: bool = False
    #: Regularizers and constraints its config set (``kconf.engine.weight_options.attach``
    #: replaces these empty, shared defaults): Keras argument -> object, and weight prefix
    #: (``kernel``) -> regularizer / constraint.
    weight_options: Mapping[str, Any] = MappingProxyType({})
    weight_regularizers: Mapping[str, Any] = MappingProxyType({})
    weight_constraints: Mapping[str, Any] = MappingProxyType({})

    def __init__(self, name: str | None = None, trainable: bool = True):
        self.name = name or ""
        self._trainable = bool(trainable)
        self.weights: dict[str, Any] = {}  # name -> array, in Keras's ``layer.weights`` order
        self.grads: dict[str, Any] = {}  # name -> gradient, for the trainable specs only
        self.state_names: frozenset[str] = frozenset()  # the weights that are state
        self.built = False

    # --- shape phase -------------------------------------------------------------------
    def compute_output_shape(self, input_shape: Shape) -> Shape:
        raise NotImplementedError

    def weight_specs(self, input_shape: Shape) -> list[WeightSpec]:
        return []

    def count_params(self, input_shape: Shape) -> int:
        total = 0
        for spec in self.weight_specs(input_shape):
            n = 1
            for d in spec.shape:
                n *= d
            total += n
        return total

    def flops(self, input_shape: Shape) -> int:
        """Forward floating-point operations for ONE sample (see the module docstring).

        Args:
            input_shape: the shape of one call's input, batch axis first (None); a list of
                shapes for layers with several inputs.

        Returns:
            2 per multiply-add of the layer's matrix products; 0 for layers without any, and
            0 where a size the count needs is unknown.
        """
        return 0

    def weight_entries(self, input_shape: Shape) -> list[tuple["Layer", WeightSpec, bool]]:
        """Every weight this layer holds, by shape alone (no arrays needed).

        Args:
            input_shape: the shape the layer is built for.

        Returns:
            ``(owner, spec, trainable)`` per weight in Keras's ``weights`` order: ``owner``
            is the layer whose ``weights`` dict holds it (an inner layer for a nested model
            or a wrapper), ``trainable`` whether the optimizer updates it (a trainable spec,
            and this layer and every layer holding it not frozen).
        """
        return [(self, spec, self.trainable and spec.trainable)
                for spec in keras_weight_order(self.weight_specs(input_shape))]

    def has_state(self, input_shape: Shape) -> bool:
        """Whether the layer (or a layer inside it) holds state, which ``forward`` updates in
        training (see the module docstring)."""
        return any(not spec.trainable for _, spec, _ in self.weight_entries(input_shape))

    # --- trainability (Keras's ``trainable``, ``trainable_weights``, ...) -----------------
    @property
    def trainable(self) -> bool:
        """Whether the layer's trainable specs are trained; setting it sets ``sublayers``'."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self.sublayers:
            layer.trainable = value

    @property
    def sublayers(self) -> list["Layer"]:
        """The layers this one holds (Keras's ``layer._layers``): none for a plain layer."""
        return []

    @property
    def trainable_weights(self) -> list:
        """The arrays the optimizer updates, in ``weights`` order; empty when frozen."""
        if not self.trainable:
            return []
        if self.sublayers:
            return _unique(w for layer in self.sublayers for w in layer.trainable_weights)
        return [w for k, w in self.weights.items() if k not in self.state_names]

    @property
    def non_trainable_weights(self) -> list:
        """The other arrays of ``weights``: its state, and every weight while frozen."""
        trained = {id(w) for w in self.trainable_weights}
        return [w for w in _unique(self.weights.values()) if id(w) not in trained]

    # --- masks (Keras's compute_mask; see kconf.engine.masks) ---------------------------
    def mask_origins(self, origins: list, **options):
        """Which outputs carry a mask, by shape alone (``validate`` knows without data).

        Args:
            origins: per input, None or the description of the layer that made its mask
                (``"Embedding 'embedding' (mask_zero)"``).
            **options: the call's keyword options (``return_attention_scores``).

        Returns:
            The origin of the output's mask or None (a list, one per output, for a layer
            with several outputs; one value means the same for each).

        Raises:
            MaskError: a mask reaches a layer that cannot take one.
        """
        origin = next((o for o in origins if o is not None), None)
        if origin is not None and not self.supports_masking:
            raise masks.refusal(self, origin)
        return origins[0] if origins else None

    def compute_mask(self, x, mask, **options):
        """The output's mask at run time (called only when the graph says it has one).

        Args:
            x: the layer's input (a list for a layer with several).
            mask: the input's bool mask (a list, one per input, for a layer with several).
            **options: the call's keyword options.

        Returns:
            The output's mask (a list, one per output, for a layer with several).
        """
        return mask[0] if isinstance(mask, list) else mask

    # --- weights -----------------------------------------------------------------------
    def build(self, input_shape: Shape, rng, dtype=floatx) -> None:
        """Create weights in Keras order with the given ``numpy.random.Generator``: the
        trainable specs, then the state (``keras_weight_order``)."""
        self.weights = {}
        specs = keras_weight_order(self.weight_specs(input_shape))
        self.state_names = frozenset(spec.name for spec in specs if not spec.trainable)
        for spec in specs:
            value = initializers.get(spec.initializer)(spec.shape, rng)
            # asarray, not ascontiguousarray, which makes a scalar weight (Attention's scale) 1-d
            self.weights[spec.name] = xp.asarray(value, dtype=dtype, order="C")
        self.zero_grads()
        self.built = True

    def zero_grads(self) -> None:
        """Fresh zero gradients for the trainable specs (state has none)."""
        self.grads = {k: xp.zeros_like(v) for k, v in self.weights.items()
                      if k not in self.state_names}

    def get_weights(self) -> list:
        return [w.copy() for w in self.weights.values()]

    def set_weights(self, values) -> None:
        values = list(values)
        if len(values) != len(self.weights):
            raise ValueError(
                f"layer {self.name!r} expects {len(self.weights)} weight arrays, got {len(values)}"
            )
        for (key, old), new in zip(self.weights.items(), values):
            new = xp.asarray(new)
            if new.shape != old.shape:
                raise ValueError(
                    f"layer {self.name!r} weight {key!r} has shape {old.shape}, got {new.shape}"
                )
            old[...] = new  # in place: optimizers and caches keep referring to the same array

    # --- compute -----------------------------------------------------------------------
    def forward(self, x, training: bool = False, rng=None) -> tuple[Any, Backward]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def keras_weight_order(specs: list[WeightSpec]) -> list[WeightSpec]:
    """Keras 3's order of a layer's variables: the trainable ones, then the state, each in
    creation order."""
    return [s for s in specs if s.trainable] + [s for s in specs if not s.trainable]


def _unique(arrays) -> list:
    """``arrays`` without repeats (by identity), first occurrence kept."""
    seen: set[int] = set()
    out = []
    for a in arrays:
        if id(a) not in seen:
            seen.add(id(a))
            out.append(a)
    return out


def require_rank(layer: Layer, input_shape: Shape, rank: int, what: str) -> None:
    """Raise a ShapeError unless ``input_shape`` (batch included) has ``rank`` dimensions."""
    if len(input_shape) != rank:
        raise ShapeError(
            f"{type(layer).__name__} expects {what} (rank {rank} with the batch axis), "
            f"got input shape {format_shape(input_shape)}"
        )
