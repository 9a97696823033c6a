"""Keras initializers <-> kconf's: the ``Initializer`` converter and the table of the
initializer classes kconf has, with Keras's default arguments."""
from __future__ import annotations

from typing import Any, Mapping

from kconf.args.names import INITIALIZER_NAMES
from kconf.keras_io.converters import Plain
from kconf.keras_io.findings import Unsupported


#: Keras initializer class -> (kconf name, Keras's arguments with their defaults).
INITIALIZERS: dict[str, tuple[str, dict[str, float]]] = {
    "GlorotUniform": ("glorot_uniform", {}),
    "GlorotNormal": ("glorot_normal", {}),
    "HeUniform": ("he_uniform", {}),
    "HeNormal": ("he_normal", {}),
    "LecunUniform": ("lecun_uniform", {}),
    "LecunNormal": ("lecun_normal", {}),
    "Zeros": ("zeros", {}),
    "Ones": ("ones", {}),
    "RandomNormal": ("random_normal", {"mean": 0.0, "stddev": 0.05}),
    "RandomUniform": ("random_uniform", {"minval": -0.05, "maxval": 0.05}),
    "TruncatedNormal": ("truncated_normal", {"mean": 0.0, "stddev": 0.05}),
    "Constant": ("constant", {"value": 0.0}),
    "Orthogonal": ("orthogonal", {"gain": 1.0}),
    "VarianceScaling": ("variance_scaling", {"scale": 1.0, "mode": "fan_in",
                                             "distribution": "truncated_normal"}),
}
_INITIALIZER_CLASS = {name: cls for cls, (name, _) in INITIALIZERS.items()}

#: VarianceScaling(scale, mode, distribution) -> the named initializer it is (Keras 2 wrote
#: glorot_uniform that way; its "normal" meant truncated normal); any other is kconf's
#: variance_scaling.
_VARIANCE_SCALING = {
    (1.0, "fan_avg", "uniform"): "glorot_uniform",
    (1.0, "fan_avg", "truncated_normal"): "glorot_normal",
    (2.0, "fan_in", "uniform"): "he_uniform",
    (2.0, "fan_in", "truncated_normal"): "he_normal",
    (1.0, "fan_in", "uniform"): "lecun_uniform",
    (1.0, "fan_in", "truncated_normal"): "lecun_normal",
}

#: Initializer arguments that change no number kconf computes: kconf draws initial values
#: from its own seeded stream, so Keras's initializer seed cannot apply.
_INITIALIZER_IGNORED = ("seed",)
#: Keras 3.15's fan axes of variance-scaling initializers, supported at their default.
_INITIALIZER_FIXED = {"input_axes": None, "output_axes": None}


class Initializer(Plain):
    """An initializer: a name, or ``{name: {non-default args}}`` in kconf; a
    ``{class_name, config}`` object (or a name) in Keras."""

    def to_kconf(self, value: Any, version: int) -> Any:
        if isinstance(value, str):
            if value in INITIALIZER_NAMES:
                return value
            value = {"class_name": value, "config": {}}
        if not isinstance(value, dict) or not isinstance(value.get("class_name"), str):
            raise Unsupported(f"cannot read the initializer {value!r}")
        cls = value["class_name"]
        config = dict(value.get("config") or {})
        for key in _INITIALIZER_IGNORED:
            config.pop(key, None)
        for key, allowed in _INITIALIZER_FIXED.items():
            if config.pop(key, allowed) != allowed:
                raise Unsupported(f"initializer {cls} with {key} is not supported by kconf")
        if cls == "VarianceScaling":
            return _variance_scaling(config)
        if cls not in INITIALIZERS:
            raise Unsupported(f"initializer {cls!r} is not supported by kconf (kconf has "
                              f"{', '.join(INITIALIZER_NAMES)})")
        name, defaults = INITIALIZERS[cls]
        unknown = sorted(set(config) - set(defaults))
        if unknown:
            raise Unsupported(f"initializer {cls} argument(s) {', '.join(unknown)} are not "
                              "supported by kconf")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in config.values()):
            raise Unsupported(f"initializer {cls} takes numbers in kconf, got {config!r}")
        return compact_initializer(name, config)

    def to_keras(self, value: Any) -> Any:
        if isinstance(value, str):
            name, args = value, {}
        else:
            ((name, args),) = value.items()
        cls = _INITIALIZER_CLASS[name]
        config = {"seed": None} if cls not in ("Zeros", "Ones", "Constant") else {}
        config.update({**INITIALIZERS[cls][1], **args})
        return {"module": "keras.initializers", "class_name": cls, "config": config,
                "registered_name": None}

    def same(self, value: Any, default: Any) -> bool:
        return normal_initializer(value) == normal_initializer(default)


def _variance_scaling(config: Mapping[str, Any]) -> Any:
    """A VarianceScaling config as the named initializer it is (glorot, he, lecun), else as
    ``{variance_scaling: {its non-default args}}``."""
    unknown = sorted(set(config) - {"scale", "mode", "distribution"})
    if unknown:
        raise Unsupported(f"initializer VarianceScaling argument(s) {', '.join(unknown)} are "
                          "not supported by kconf")
    scale = config.get("scale", 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        raise Unsupported(f"VarianceScaling needs a positive scale, got {scale!r}")
    mode = config.get("mode", "fan_in")
    distribution = config.get("distribution", "truncated_normal")
    if distribution == "normal":  # Keras's old name of the truncated normal
        distribution = "truncated_normal"
    if mode not in ("fan_in", "fan_out", "fan_avg") or distribution not in (
            "truncated_normal", "untruncated_normal", "uniform"):
        raise Unsupported(f"VarianceScaling(mode={mode!r}, distribution={distribution!r}) is "
                          "not one Keras defines")
    named = _VARIANCE_SCALING.get((float(scale), mode, distribution))
    if named is not None:
        return named
    return compact_initializer("variance_scaling", {"scale": float(scale), "mode": mode,
                                                    "distribution": distribution})


def compact_initializer(name: str, args: Mapping[str, Any]) -> Any:
    """``name``, or ``{name: {the args that differ from the defaults}}``."""
    cls = _INITIALIZER_CLASS[name]
    defaults = INITIALIZERS[cls][1]
    changed = {k: v for k, v in args.items() if k not in defaults or v != defaults[k]}
    return {name: changed} if changed else name


def normal_initializer(value: Any) -> Any:
    """An initializer in any kconf form (a name, ``{name: {args}}``, a validated spec) in its
    compact form, for comparisons."""
    if hasattr(value, "tag") and hasattr(value, "args"):  # a validated {name: {args}} spec
        value = {value.tag: value.args.model_dump()}
    if isinstance(value, dict):
        ((name, args),) = value.items()
        return compact_initializer(name, dict(args or {}))
    return value
