"""Engine layers: a closed registry of the Keras layer classes kconf implements.

``REGISTRY`` pairs each layer class with its argument model (Keras's arguments: names, types,
defaults, validation), both written in the layer's own file. Everything else is derived from
it: the config's ``{ClassName: args}`` wrappers and their union (``kconf.config.layers``),
the JSON schema, the Keras import/export of each argument (``kconf.keras_io.layers``, by the
field's type), the summary's parameter counts and FLOPs (methods of the layer), and the
standard layer test every registered layer goes through (``tests/test_layer_standard.py``).

To add a layer (say ``Conv1D``):

1. Write ``kconf/engine/layers/conv1d.py``:

   - ``class Conv1DArgs(LayerArgs)``: its Keras arguments as fields, with the types of
     ``kconf.args`` (``PositiveInt``, ``IntPair``, ``Padding``, ``Activation``,
     ``Initializer``...), which decide the error messages, the JSON schema and the Keras
     conversion. Keras arguments kconf supports at one value only go in ``keras_fixed``,
     those that change no number in ``keras_ignored``, ``keras_channels_last = True`` where
     Keras has ``data_format`` (see ``LayerArgs``);
   - ``class Conv1D(Layer)``: a constructor taking those arguments as keywords (same names
     and defaults; ``**kwargs`` for ``name`` and ``trainable``) and keeping each on ``self``
     under its name, ``compute_output_shape``, ``weight_specs`` (Keras's names, shapes and
     order), ``flops``, and ``forward`` returning ``(y, backward)``. Where Keras's layer has
     ``supports_masking`` and passes a mask through unchanged, ``supports_masking = True``;
     a layer that uses, makes or combines masks says how (``kconf.engine.masks``).

2. Add one line to ``REGISTRY``: ``entry("Conv1D", "conv1d")`` (the class, its module here;
   the argument model's name when it is not ``Conv1DArgs``). The module is imported when
   the layer is first looked up: start-up does not grow with the registry.

3. Add the layer's cases to ``tests/layer_cases.py`` (argument sets, input shapes, Keras
   weight layout, FLOPs): the standard test fails for a registered layer without cases.
   Then regenerate the JSON schema: ``python -m kconf.cli schema -o
   schemas/kconf.schema.json``.

Nothing registers itself: a layer exists for kconf when its line is here.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping

from kconf.args.lazy import LazyMembers
from kconf.args.layer import LayerArgs
from kconf.args.weight_options import with_weight_options
from kconf.engine.layers.base import Layer, WeightSpec


@dataclass(frozen=True)
class Entry:
    """One registered layer: its engine class and its argument model (None for the
    ``InputLayer``, which configs declare in their ``inputs``, not as a layer)."""

    layer: type[Layer]
    args: type[LayerArgs] | None

    @property
    def name(self) -> str:
        """The Keras class name (``"Dense"``)."""
        return self.layer.__name__


@dataclass(frozen=True)
class Place:
    """Where a registered layer is written: ``kconf.engine.layers.<module>``, which defines
    the class ``name`` and its argument model ``args`` (None for the ``InputLayer``)."""

    name: str
    module: str
    args: str | None

    def load(self) -> Entry:
        """Import the module and pair the two classes; the argument model gets its weights'
        regularizer and constraint fields (``with_weight_options``), and the module the
        model with them under its name (so that pickle, and later imports, find it)."""
        module = importlib.import_module(f"{__name__}.{self.module}")
        layer = getattr(module, self.name)
        if self.args is None:
            return Entry(layer, None)
        args = with_weight_options(getattr(module, self.args))
        setattr(module, self.args, args)
        return Entry(layer, args)


_DEFAULT = object()


def entry(name: str, module: str, args: Any = _DEFAULT) -> Place:
    """A registry line: ``entry("Dense", "dense")``; ``args`` names a shared argument model
    (``"MergeArgs"``), or None for a layer configs cannot name."""
    return Place(name, module, f"{name}Args" if args is _DEFAULT else args)


class Registry(LazyMembers):
    """Keras class name -> :class:`Entry`, in registration order. Names and order are known
    without importing anything; a layer's module is imported on its first look-up (once,
    also when threads look up at the same time)."""

    def __init__(self, places: dict[str, Place]):
        super().__init__(places, lambda name: places[name].load())
        self._places = places

    def place(self, name: str) -> Place:
        """Where a layer is written, without importing it."""
        return self._places[name]


def _registry(*places: Place) -> Registry:
    """Name -> entry; a name given twice is an error, never a silent overwrite."""
    out: dict[str, Place] = {}
    for p in places:
        if p.name in out:
            raise ValueError(f"layer {p.name} is registered twice")
        out[p.name] = p
    return Registry(out)


#: Keras class name -> (engine class, argument model): the layers kconf has, in the order
#: configs, schemas and tables list them.
REGISTRY: Registry = _registry(
    entry("InputLayer", "input", None),
    entry("Dense", "dense"),
    entry("Activation", "activation"),
    entry("Dropout", "dropout"),
    entry("Flatten", "flatten"),
    entry("Conv2D", "conv2d"),
    entry("MaxPooling2D", "pooling"),
    entry("Embedding", "embedding"),
    entry("LSTM", "lstm"),
    entry("GRU", "gru"),
    entry("SimpleRNN", "simple_rnn"),
    entry("TimeDistributed", "time_distributed"),
    entry("Concatenate", "merge"),
    entry("Add", "merge", "MergeArgs"),
    entry("Subtract", "merge", "MergeArgs"),
    entry("Multiply", "merge", "MergeArgs"),
    entry("Average", "merge", "MergeArgs"),
    entry("Maximum", "merge", "MergeArgs"),
    entry("Minimum", "merge", "MergeArgs"),
    entry("Dot", "merge"),
    entry("Identity", "identity"),
    entry("BatchNormalization", "batch_normalization"),
    entry("LayerNormalization", "layer_normalization"),
    entry("GroupNormalization", "group_normalization"),
    entry("UnitNormalization", "unit_normalization"),
    entry("Conv1D", "convolution"),
    entry("Conv3D", "convolution"),
    entry("DepthwiseConv1D", "depthwise"),
    entry("DepthwiseConv2D", "depthwise"),
    entry("SeparableConv1D", "separable"),
    entry("SeparableConv2D", "separable"),
    entry("Conv1DTranspose", "conv_transpose"),
    entry("Conv2DTranspose", "conv_transpose"),
    entry("MaxPooling1D", "pooling_nd", "Pooling1DArgs"),
    entry("MaxPooling3D", "pooling_nd", "Pooling3DArgs"),
    entry("AveragePooling1D", "pooling_nd", "Pooling1DArgs"),
    entry("AveragePooling2D", "pooling_nd", "Pooling2DArgs"),
    entry("AveragePooling3D", "pooling_nd", "Pooling3DArgs"),
    entry("GlobalAveragePooling1D", "global_pooling", "GlobalPoolingArgs"),
    entry("GlobalAveragePooling2D", "global_pooling", "GlobalPoolingArgs"),
    entry("GlobalAveragePooling3D", "global_pooling", "GlobalPoolingArgs"),
    entry("GlobalMaxPooling1D", "global_pooling", "GlobalPoolingArgs"),
    entry("GlobalMaxPooling2D", "global_pooling", "GlobalPoolingArgs"),
    entry("GlobalMaxPooling3D", "global_pooling", "GlobalPoolingArgs"),
    entry("Reshape", "reshaping"),
    entry("Permute", "reshaping"),
    entry("RepeatVector", "reshaping"),
    entry("ZeroPadding1D", "padding"),
    entry("ZeroPadding2D", "padding"),
    entry("ZeroPadding3D", "padding"),
    entry("Cropping1D", "padding"),
    entry("Cropping2D", "padding"),
    entry("Cropping3D", "padding"),
    entry("UpSampling1D", "upsampling"),
    entry("UpSampling2D", "upsampling"),
    entry("ReLU", "relu"),
    entry("LeakyReLU", "leaky_relu"),
    entry("PReLU", "prelu"),
    entry("ELU", "elu"),
    entry("Softmax", "softmax"),
    entry("SpatialDropout1D", "spatial_dropout"),
    entry("SpatialDropout2D", "spatial_dropout", "SpatialDropoutArgs"),
    entry("SpatialDropout3D", "spatial_dropout", "SpatialDropoutArgs"),
    entry("GaussianNoise", "noise"),
    entry("GaussianDropout", "noise"),
    entry("AlphaDropout", "noise"),
    entry("ActivityRegularization", "activity_regularization"),
    entry("LayerScale", "layer_scale"),
    entry("CustomScaleLayer", "custom_scale"),
    entry("Rescaling", "rescaling"),
    entry("MultiHeadAttention", "attention"),
    entry("Attention", "dot_attention"),
    entry("AdditiveAttention", "dot_attention"),
    entry("Normalization", "normalization"),
    entry("Resizing", "resizing"),
    entry("CenterCrop", "center_crop"),
    entry("RandomFlip", "random_flip"),
    entry("RandomCrop", "random_crop"),
    entry("RandomContrast", "random_contrast"),
    entry("RandomTranslation", "random_translation"),
    entry("RandomRotation", "random_rotation"),
    entry("RandomZoom", "random_zoom"),
    entry("Bidirectional", "bidirectional"),
    entry("Masking", "masking"),
)


#: Keras class name -> engine class.
LAYERS: Mapping[str, type[Layer]] = LazyMembers(REGISTRY, lambda name: REGISTRY[name].layer)

#: Class name -> registered layer, for ``from kconf.engine.layers import Dense, DenseArgs``.
_BY_CLASS = {**{p.args: p for p in REGISTRY._places.values() if p.args},
             **{p.name: p for p in REGISTRY._places.values()}}


def __getattr__(name: str) -> Any:
    """A registered layer's class or argument model, imported on first use."""
    place = _BY_CLASS.get(name)
    if place is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    entry_ = REGISTRY[place.name]
    return entry_.layer if name == place.name else entry_.args


__all__ = [
    "LAYERS",
    "REGISTRY",
    "Entry",
    "Layer",
    "WeightSpec",
    *REGISTRY,
]
