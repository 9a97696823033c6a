"""The standard layer test: one set of checks that every registered layer goes through.

Like Keras's ``run_layer_test``: given a layer's registry name and a ``LayerCase`` (its YAML
arguments, an input shape, its Keras weight layout and FLOPs), ``run_layer_test`` checks

- ``compute_output_shape`` against ``forward`` (every output, batch axis None);
- float64 finite-difference gradients of every input and every weight, with a loss that
  reads every output (plus what the layer adds to the loss: ``kconf.engine.added_losses``);
- a layer called twice (shared): each backward closure owns its call, and the weight
  gradients add;
- float32 in gives float32 out (outputs, input and weight gradients), close to float64;
- no per-call state on the layer;
- the weights: Keras's names and shapes, in Keras's order (``weight_specs``, ``build``);
- FLOPs of one sample equal the count given in the case;
- config -> layer -> config: the YAML arguments build an engine layer whose arguments,
  read back, validate to the same arguments;
- Keras export -> import: ``keras_io.layers.keras_args`` of the layer, read back by
  ``layer_args``, gives the same arguments, and nothing is reported unsupported.

Each check is a function of its own (``CHECKS``, ``CONFIG_CHECKS``), so that a failure names
it; the numeric ones take a ``make`` factory, so a layer that no YAML can write (a stand-in
model wrapped in TimeDistributed) can go through them too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from kconf.args.layer import COMMON_FIELDS
from kconf.config.layers import LAYER_SPECS
from kconf.engine import activations
from kconf.engine.added_losses import collecting
from kconf.engine.layers import REGISTRY, Bidirectional, Layer, TimeDistributed
from kconf.engine.weight_options import attach as attach_weight_options
from kconf.keras_io.converters import activation_name
from kconf.keras_io.layers import keras_args, keras_form, layer_args
from tests.gradcheck import assert_close_grad, numeric_grad

Shape = tuple[int, ...]


@dataclass(frozen=True)
class LayerCase:
    """One argument set of a layer and the input it is checked on.

    Attributes:
        id: the case's name in test ids.
        args: the layer's arguments as written in YAML (for the InputLayer, which configs
            do not write as a layer: its constructor's keywords).
        shape: the input's shape, batch first; a list of shapes for layers with several
            inputs.
        weights: Keras's weight layout: (name, shape) of each weight, in Keras's order.
        flops: the forward FLOPs of one sample (``Layer.flops``'s convention).
        training: run ``forward`` in training mode (Dropout).
        scale: the spread of the random inputs.
        vocabulary: integer inputs in ``[0, vocabulary)`` (Embedding), which have no gradient.
        call: the call's keyword options (``{"use_causal_mask": True}``), given to
            ``forward`` and ``compute_output_shape`` as a graph line gives them.
    """

    id: str
    args: dict[str, Any]
    shape: Shape | list[Shape]
    weights: tuple[tuple[str, Shape], ...] = ()
    flops: int = 0
    training: bool = False
    scale: float = 1.0
    vocabulary: int | None = None
    call: dict[str, Any] = field(default_factory=dict)


# --- making layers --------------------------------------------------------------------------


def make_layer(name: str, args: dict[str, Any]) -> Layer:
    """The engine layer the YAML ``{name: args}`` makes (as the graph constructor does).

    Args:
        name: a registry name.
        args: the layer's YAML arguments.

    Returns:
        A new, unbuilt layer.
    """
    entry = REGISTRY[name]
    if entry.args is None:
        return entry.layer(**args)
    spec = LAYER_SPECS[name].model_validate({name: args})
    return _from_spec(spec)


def _from_spec(spec) -> Layer:
    if spec.class_name == "TimeDistributed":
        return TimeDistributed(_from_spec(spec.args.layer), trainable=spec.args.trainable)
    if spec.class_name == "Bidirectional":
        back = spec.args.backward_layer
        return Bidirectional(_from_spec(spec.args.layer),
                             backward_layer=None if back is None else _from_spec(back),
                             trainable=spec.args.trainable, **spec.args.layer_kwargs())
    layer = REGISTRY[spec.class_name].layer(trainable=spec.args.trainable,
                                            **spec.args.layer_kwargs())
    attach_weight_options(layer, spec.args.weight_options())
    return layer


def layer_config(layer: Layer) -> dict[str, Any]:
    """An engine layer's arguments read back from it, as YAML would write them."""
    args = REGISTRY[type(layer).__name__].args
    out = {}
    for key in args.constructor_fields():
        value = getattr(layer, args.engine_names.get(key, key))
        if key == "backward_layer" and not layer.backward_given:
            value = None  # made from the forward layer, not written in the config
        if isinstance(value, Layer):
            value = {type(value).__name__: layer_config(value)}
        elif keras_form(args.model_fields[key]) == "activation":
            value = activation_name(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    for key in args.weight_option_fields:  # held apart: kconf.engine.weight_options
        held = layer.weight_options.get(key)
        out[key] = None if held is None else {held.class_name: held.get_config()}
    return out


def engine_form(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """YAML arguments validated, in the form the engine layer is built from (the same layer
    gives the same form, however it was written)."""
    model = LAYER_SPECS[name].model_validate({name: args}).args
    if name == "TimeDistributed":
        inner = model.layer
        return {"layer": (inner.class_name, engine_form(inner.class_name,
                                                        inner.args.model_dump()))}
    if name == "Bidirectional":
        return {"merge_mode": model.merge_mode, **{
            key: None if inner is None else (inner.class_name, engine_form(
                inner.class_name, inner.args.model_dump()))
            for key, inner in (("layer", model.layer), ("backward_layer", model.backward_layer))}}
    kwargs = model.layer_kwargs()
    fields = {model.engine_names.get(f, f): f for f in type(model).model_fields}
    for key in kwargs:
        if keras_form(type(model).model_fields[fields[key]]) == "activation":
            # the function's Keras name: None is linear, silu is swish
            kwargs[key] = activation_name(activations.get(kwargs[key]))
    return {**kwargs, **model.weight_options()}


# --- inputs and runs ------------------------------------------------------------------------


def _shapes(case: LayerCase) -> list[Shape]:
    return case.shape if isinstance(case.shape, list) else [case.shape]


def symbolic(case: LayerCase):
    """The input shape(s) with the batch axis unknown, as the graph passes them."""
    shapes = [(None, *s[1:]) for s in _shapes(case)]
    return shapes if isinstance(case.shape, list) else shapes[0]


def inputs(case: LayerCase, seed: int = 10, dtype=np.float64):
    """Random inputs of the case (integers below ``vocabulary`` for an Embedding)."""
    rng = np.random.default_rng(seed)
    if case.vocabulary is not None:
        xs = [rng.integers(0, case.vocabulary, s) for s in _shapes(case)]
    else:
        xs = [(rng.standard_normal(s) * case.scale).astype(dtype) for s in _shapes(case)]
    return xs if isinstance(case.shape, list) else xs[0]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def built(make: Callable[[], Layer], case: LayerCase, dtype=np.float64, seed: int = 0) -> Layer:
    """A fresh layer built for the case's input in ``dtype``, with random weights (so that a
    bias left out would show); state is drawn positive (a moving variance must be)."""
    layer = make()
    layer.build(symbolic(case), np.random.default_rng(seed), dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    for name, w in layer.weights.items():  # fresh C-ordered arrays: numeric_grad edits them flat
        if name in layer.state_names:
            value = rng.uniform(0.5, 1.5, w.shape)
        else:
            value = rng.standard_normal(w.shape) * 0.5
        layer.weights[name] = np.array(value, dtype=dtype)  # 0-d too
    return layer


def trained_names(layer: Layer) -> list[str]:
    """The names of the weights that have gradients (not the state), in order."""
    return [k for k in layer.weights if k not in layer.state_names]


def run(case: LayerCase, layer: Layer, x):
    """``forward`` in the case's mode; a freshly seeded rng per call, so dropout masks repeat."""
    return layer.forward(x, training=case.training, rng=np.random.default_rng(123), **case.call)


def loss_weights(y, seed: int) -> list:
    """Random R_k, one per output: the loss is Σ_k sum(out_k · R_k)."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(o.shape) for o in _as_list(y)]


def as_dy(y, rs: list):
    """The argument of backward: a list for several outputs, else the one array."""
    return rs if isinstance(y, list) else rs[0]


def dense(grad) -> np.ndarray:
    """A weight gradient as an array (an Embedding's row-sparse one made dense), copied."""
    return np.array(grad, dtype=np.float64)


# --- the checks -----------------------------------------------------------------------------


def check_output_shape(make: Callable[[], Layer], case: LayerCase) -> None:
    """``forward``'s outputs have the shapes ``compute_output_shape`` promised."""
    layer = built(make, case)
    y, _ = run(case, layer, inputs(case))
    expected = layer.compute_output_shape(symbolic(case), **case.call)
    assert isinstance(y, list) == isinstance(expected, list)
    n = _shapes(case)[0][0]
    assert len(_as_list(y)) == len(_as_list(expected))
    for out, shape in zip(_as_list(y), _as_list(expected)):
        assert shape[0] is None
        assert out.shape == (n, *shape[1:])


def check_gradients(make: Callable[[], Layer], case: LayerCase) -> None:
    """float64 finite differences of every input and every weight; backward leaves its dy as
    it was (Add hands one dy array to all its inputs' backward passes, uncopied)."""
    layer = built(make, case)
    x = inputs(case)
    y, backward = run(case, layer, x)
    rs = loss_weights(y, seed=11)
    given = [r.copy() for r in rs]
    layer.zero_grads()
    dx = backward(as_dy(y, rs))
    for r, before in zip(rs, given):
        np.testing.assert_array_equal(r, before, err_msg=f"{case.id}: backward wrote into dy")

    def loss():
        with collecting() as added:  # a layer's added loss (ActivityRegularization) counts
            outs = _as_list(run(case, layer, x)[0])
        return float(sum((o * r).sum() for o, r in zip(outs, rs))) + sum(added)

    if case.vocabulary is not None:
        assert dx is None  # integer indices have no gradient
    else:
        assert isinstance(dx, list) == isinstance(x, list)
        for i, (xi, dxi) in enumerate(zip(_as_list(x), _as_list(dx))):
            assert_close_grad(dxi, numeric_grad(loss, xi), f"{case.id}: d input {i}")
    assert list(layer.grads) == trained_names(layer)
    for name in layer.grads:
        weight = layer.weights[name]
        assert_close_grad(dense(layer.grads[name]), numeric_grad(loss, weight),
                          f"{case.id}: d {name}")


def check_shared_gradients_add(make: Callable[[], Layer], case: LayerCase) -> None:
    """Two calls of one layer: each backward gives its own call's input gradient, and the
    weight gradients of both add, whatever order the backward passes run in."""
    layer = built(make, case)
    x1, x2 = inputs(case, seed=20), inputs(case, seed=21)
    y1, back1 = run(case, layer, x1)
    y2, back2 = run(case, layer, x2)
    r1, r2 = loss_weights(y1, seed=22), loss_weights(y2, seed=23)

    def alone(x, r):
        """Input and weight gradients of one call on its own."""
        layer.zero_grads()
        y, back = run(case, layer, x)
        dx = back(as_dy(y, r))
        return dx, {k: dense(g) for k, g in layer.grads.items()}

    dx1_alone, g1 = alone(x1, r1)
    dx2_alone, g2 = alone(x2, r2)
    layer.zero_grads()
    dx2 = back2(as_dy(y2, r2))  # the later call's backward first: each closure owns its call
    dx1 = back1(as_dy(y1, r1))
    for got, want in ((dx1, dx1_alone), (dx2, dx2_alone)):
        if case.vocabulary is not None:
            assert got is None and want is None
            continue
        for a, b in zip(_as_list(got), _as_list(want)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for name in layer.grads:
        np.testing.assert_allclose(dense(layer.grads[name]), g1[name] + g2[name], rtol=1e-12,
                                   atol=1e-12, err_msg=f"{case.id}: {name}")


def check_float32(make: Callable[[], Layer], case: LayerCase) -> None:
    """float32 in, float32 out: outputs, input gradients and weight gradients; the outputs
    close to the same computation in float64."""
    layer = built(make, case, dtype=np.float32)
    x = inputs(case, dtype=np.float32)
    y, backward = run(case, layer, x)
    assert all(o.dtype == np.float32 for o in _as_list(y))
    dx = backward(as_dy(y, [np.ones_like(o) for o in _as_list(y)]))
    if case.vocabulary is None:
        for xi, dxi in zip(_as_list(x), _as_list(dx)):
            assert dxi.dtype == np.float32 and dxi.shape == xi.shape
    for name, grad in layer.grads.items():
        assert grad.dtype == np.float32, name
    layer64 = built(make, case)
    x64 = x if case.vocabulary is not None else [xi.astype(np.float64) for xi in _as_list(x)]
    if case.vocabulary is None and not isinstance(x, list):
        x64 = x64[0]
    y64, _ = run(case, layer64, x64)
    for o32, o64 in zip(_as_list(y), _as_list(y64)):
        np.testing.assert_allclose(o32, o64, rtol=1e-5, atol=1e-6)


def check_no_per_call_state(make: Callable[[], Layer], case: LayerCase) -> None:
    """A forward and backward pass leave the layer's attributes as they were."""
    layer = built(make, case)
    before = {k: v for k, v in vars(layer).items() if k not in ("weights", "grads")}
    y, backward = run(case, layer, inputs(case))
    backward(as_dy(y, [np.ones_like(o) for o in _as_list(y)]))
    after = {k: v for k, v in vars(layer).items() if k not in ("weights", "grads")}
    assert before.keys() == after.keys()
    assert all(before[k] is after[k] for k in before)
    assert list(layer.grads) == trained_names(layer)


def check_weight_layout(make: Callable[[], Layer], case: LayerCase) -> None:
    """Keras's weight names and shapes, in Keras's order, from the specs and once built."""
    layer = make()
    specs = layer.weight_specs(symbolic(case))
    assert [(s.name, tuple(s.shape)) for s in specs] == list(case.weights)
    assert layer.count_params(symbolic(case)) == sum(int(np.prod(s)) for _, s in case.weights)
    layer.build(symbolic(case), np.random.default_rng(0))
    assert [(k, w.shape) for k, w in layer.weights.items()] == list(case.weights)
    assert [w.shape for w in layer.get_weights()] == [s for _, s in case.weights]


def check_flops(make: Callable[[], Layer], case: LayerCase) -> None:
    """The forward FLOPs of one sample are the count given in the case."""
    flops = make().flops(symbolic(case))
    assert isinstance(flops, int) and flops == case.flops


def check_config_round_trip(name: str, case: LayerCase) -> None:
    """YAML arguments -> engine layer -> arguments read back: the same arguments."""
    layer = make_layer(name, case.args)
    back = layer_config(layer)
    assert engine_form(name, back) == engine_form(name, case.args)


def check_keras_round_trip(name: str, case: LayerCase) -> None:
    """Keras export then import of the layer's arguments gives the same arguments, with
    nothing reported; what the import writes is only what differs from the defaults."""
    layer = make_layer(name, case.args)
    back = _keras_round_trip(layer)
    assert engine_form(name, back) == engine_form(name, case.args)
    yaml_keys = {k for k in case.args if k not in COMMON_FIELDS}
    assert set(back) <= yaml_keys | {"layer"}


def _keras_round_trip(layer: Layer) -> dict[str, Any]:
    name = type(layer).__name__
    unsupported = []
    config = keras_args(name, layer)
    out = layer_args(name, config, 3, lambda key, message: unsupported.append((key, message)))
    assert unsupported == []
    if isinstance(layer, TimeDistributed):  # its layer is read apart, as the importer does
        out["layer"] = {type(layer.layer).__name__: _keras_round_trip(layer.layer)}
    if isinstance(layer, Bidirectional):  # so are its two (the backward one when given)
        out["layer"] = {type(layer.layer).__name__: _keras_round_trip(layer.layer)}
        if layer.backward_given:
            back = layer.backward_layer
            out["backward_layer"] = {type(back).__name__: _keras_round_trip(back)}
    return out


#: The numeric checks: ``check(make, case)``.
CHECKS: dict[str, Callable[[Callable[[], Layer], LayerCase], None]] = {
    "output_shape": check_output_shape,
    "gradients": check_gradients,
    "shared_gradients_add": check_shared_gradients_add,
    "float32": check_float32,
    "no_per_call_state": check_no_per_call_state,
    "weight_layout": check_weight_layout,
    "flops": check_flops,
}
#: The checks of a layer's arguments: ``check(name, case)`` (layers a config can write).
CONFIG_CHECKS: dict[str, Callable[[str, LayerCase], None]] = {
    "config_round_trip": check_config_round_trip,
    "keras_round_trip": check_keras_round_trip,
}


def run_layer_test(name: str, case: LayerCase) -> None:
    """Every check of the standard layer test on one case of a registered layer.

    Args:
        name: the layer's registry name.
        case: its arguments, input and expected layout and FLOPs.
    """
    for check in CHECKS.values():
        check(lambda: make_layer(name, case.args), case)
    if REGISTRY[name].args is not None:
        for config_check in CONFIG_CHECKS.values():
            config_check(name, case)
