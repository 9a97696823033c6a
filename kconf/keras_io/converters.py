"""Keras argument values <-> kconf's: one converter per form a value takes (``KerasForm``).

kconf's argument names, meanings and defaults are Keras's, so most values pass through
(``Plain``); a few need translating both ways: int-or-pair sizes, paddings, axes,
activations, regularizers and constraints (initializers: ``kconf.keras_io.initializers``).
Each converter reads a Keras value into kconf's form (raising ``Unsupported`` for one kconf
cannot reproduce), writes an engine layer's value in Keras's form, and compares a value with
the schema's default. ``kconf.keras_io.layers`` picks a field's converter from its type.
"""
from __future__ import annotations

from typing import Any

from kconf.args.names import ACTIVATION_NAMES, PADDING_NAMES
from kconf.args.shape_fields import interpolation_problem
from kconf.keras_io.findings import Unsupported


class Plain:
    """A value that means the same in both: numbers, booleans, an axis."""

    def to_kconf(self, value: Any, version: int) -> Any:
        """A Keras value in kconf's form (``version``: the file's Keras major version).

        Raises:
            Unsupported: a value kconf cannot reproduce, saying why.
        """
        return value

    def to_keras(self, value: Any) -> Any:
        """An engine layer's value in Keras's form."""
        return list(value) if isinstance(value, tuple) else value

    def same(self, value: Any, default: Any) -> bool:
        """Whether ``value`` (kconf's form) equals the schema's default."""
        return _plain(value) == _plain(default)


def _plain(value: Any) -> Any:
    """Tuples as lists, for comparisons."""
    return list(value) if isinstance(value, tuple) else value


class Pair(Plain):
    """Keras's int-or-pair sizes (``kernel_size: 3``), kept as written; None passes."""

    def to_kconf(self, value: Any, version: int) -> Any:
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, (list, tuple)) and len(value) == 2)
        if value is not None and not ok:
            raise Unsupported(f"expected an integer or two, got {value!r}")
        return list(value) if isinstance(value, (list, tuple)) else value

    def same(self, value: Any, default: Any) -> bool:
        return _pair(value) == _pair(default)


def _pair(value: Any) -> Any:
    """An int-or-pair as a pair (a list), for comparisons."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value, value]
    return _plain(value)


class Padding(Plain):
    """``valid`` or ``same`` (Keras also has ``causal``, which kconf does not)."""

    def to_kconf(self, value: Any, version: int) -> Any:
        text = str(value).lower()
        if text not in PADDING_NAMES:
            raise Unsupported(f"padding {value!r} is not supported by kconf (only "
                              f"{' and '.join(PADDING_NAMES)})")
        return text


class Axes(Plain):
    """One axis or a list of axes; Keras writes ``axis=-1`` as ``[-1]`` once a layer is built
    (LayerNormalization, Keras 2's BatchNormalization), which is the one axis."""

    def to_kconf(self, value: Any, version: int) -> Any:
        if isinstance(value, (list, tuple)) and len(value) == 1:
            return value[0]
        return list(value) if isinstance(value, tuple) else value

    def same(self, value: Any, default: Any) -> bool:
        return self.to_kconf(_plain(value), 3) == self.to_kconf(_plain(default), 3)


class CausalPadding(Plain):
    """Conv1D's ``valid``, ``same`` or ``causal``."""

    def to_kconf(self, value: Any, version: int) -> Any:
        text = str(value).lower()
        if text not in (*PADDING_NAMES, "causal"):
            raise Unsupported(f"padding {value!r} is not supported by kconf")
        return text


class Ints(Plain):
    """Keras's int-or-tuple sizes and paddings of any rank (Conv1D's ``kernel_size: [3]``,
    ``pool_size: [2, 2, 2]``, ``cropping: [[1, 1], [0, 2]]``), kept as written; an int stands
    for every entry; None passes."""

    def to_kconf(self, value: Any, version: int) -> Any:
        if value is None:
            return None
        if not _ints(value):
            raise Unsupported(f"expected integers, got {value!r}")
        return _plain_deep(value)

    def to_keras(self, value: Any) -> Any:
        return _plain_deep(value)

    def same(self, value: Any, default: Any) -> bool:
        return _same_ints(value, default)


def _ints(value: Any) -> bool:
    """An int, or (nested) lists of ints."""
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_ints(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


def _plain_deep(value: Any) -> Any:
    """Nested tuples as nested lists."""
    return [_plain_deep(v) for v in value] if isinstance(value, (list, tuple)) else value


def _same_ints(a: Any, b: Any) -> bool:
    """Whether two int-or-tuple values are equal, an int standing for every entry."""
    a_seq, b_seq = isinstance(a, (list, tuple)), isinstance(b, (list, tuple))
    if a_seq and b_seq:
        return len(a) == len(b) and all(_same_ints(x, y) for x, y in zip(a, b))
    if a_seq:
        return all(_same_ints(x, b) for x in a)
    if b_seq:
        return all(_same_ints(a, y) for y in b)
    return a == b


class Interpolation(Plain):
    """UpSampling2D's ``nearest`` or ``bilinear`` (Keras's others are reported)."""

    def to_kconf(self, value: Any, version: int) -> Any:
        problem = interpolation_problem(value)
        if problem is not None:
            raise Unsupported(problem)
        return value.lower()


#: Keras 2's hard_sigmoid was 0.2·x + 0.5; Keras 3's (and kconf's) is x/6 + 1/2.
_KERAS2_HARD_SIGMOID = ("Keras 2's hard_sigmoid (clip(0.2·x + 0.5)) differs from kconf's, which "
                        "is Keras 3's (clip(x/6 + 1/2)); use sigmoid, or save the model with "
                        "Keras 3")


class Activation(Plain):
    """An activation by name; None and ``linear`` are the same."""

    def to_kconf(self, value: Any, version: int) -> Any:
        if value is None:
            return "linear"
        if isinstance(value, dict):  # Keras 3's serialised function, or an activation object
            if value.get("class_name") == "function" and isinstance(value.get("config"), str):
                value = value["config"]
            else:
                raise Unsupported(f"the activation {value.get('class_name')!r} object is not "
                                  "supported by kconf (give an activation by name)")
        if version < 3 and value == "hard_sigmoid":
            raise Unsupported(_KERAS2_HARD_SIGMOID)
        if value not in ACTIVATION_NAMES:
            raise Unsupported(f"activation {value!r} is not supported by kconf (kconf has "
                              f"{', '.join(ACTIVATION_NAMES)})")
        return value

    def to_keras(self, value: Any) -> Any:
        return activation_name(value)

    def same(self, value: Any, default: Any) -> bool:
        return (value or "linear") == (default or "linear")


def activation_name(fn: Any) -> str:
    """The Keras name of an engine activation (a function, a recurrent ``StepActivation``,
    a name or None)."""
    from kconf.engine.activations import ACTIVATIONS

    fn = getattr(fn, "fn", fn)
    if fn is None:
        return "linear"
    if isinstance(fn, str):
        return fn
    for name, candidate in ACTIVATIONS.items():
        if candidate is fn:
            return name
    raise ValueError(f"activation {fn!r} has no Keras name")


class WeightOption(Plain):
    """A regularizer or constraint: ``{Class: {args}}`` (or a name) in kconf, a ``{module,
    class_name, config}`` object (Keras 3), ``{class_name, config}`` (Keras 2) or a name in
    Keras; the engine's object on export."""

    def __init__(self, module: str, names: dict, args: dict):
        self.module = module
        self.names = names  # kconf's names -> (class, arguments)
        self.args = args  # class -> argument model

    def to_kconf(self, value: Any, version: int) -> Any:
        if value is None:
            return None
        noun = self.module.rsplit(".", 1)[-1][:-1]
        if isinstance(value, str):
            if value not in self.names or value == "l1_l2":  # Keras 3 has no 'l1_l2'
                raise Unsupported(f"{noun} {value!r} is not supported by kconf")
            return value
        if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
            raise Unsupported(f"cannot read the {noun} {value!r}")
        cls, config = value["class_name"], dict(value.get("config") or {})
        cls = self.names.get(cls, (cls,))[0]  # Keras 2's lower-case class names
        if cls not in self.args:
            raise Unsupported(f"{noun} {cls!r} is not supported by kconf (kconf has "
                              f"{', '.join(self.args)})")
        unknown = sorted(set(config) - set(self.args[cls].model_fields))
        if unknown:
            raise Unsupported(f"{noun} {cls} argument(s) {', '.join(unknown)} are not "
                              "supported by kconf")
        return {cls: config}

    def to_keras(self, value: Any) -> Any:
        if value is None:
            return None
        return {"module": self.module, "class_name": value.class_name,
                "config": value.get_config(), "registered_name": None}

    def same(self, value: Any, default: Any) -> bool:
        return value is None and default is None
