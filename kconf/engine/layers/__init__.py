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
     order), ``flops``, and ``forward`` returning ``(y, backward)``.

2. Import both here and add one line to ``REGISTRY``: ``entry(Conv1D, Conv1DArgs)``.

3. Add the layer's cases to ``tests/layer_cases.py`` (argument sets, input shapes, Keras
   weight layout, FLOPs): the standard test fails for a registered layer without cases.
   Then regenerate the JSON schema: ``python -m kconf.cli schema -o
   schemas/kconf.schema.json``.

Nothing registers itself: a layer exists for kconf when its line is here.
"""
from __future__ import annotations

from dataclasses import dataclass

from kconf.args.layer import LayerArgs
from kconf.engine.layers.base import Layer, WeightSpec
from kconf.engine.layers.input import InputLayer
from kconf.engine.layers.dense import Dense, DenseArgs
from kconf.engine.layers.activation import Activation, ActivationArgs
from kconf.engine.layers.dropout import Dropout, DropoutArgs
from kconf.engine.layers.flatten import Flatten, FlattenArgs
from kconf.engine.layers.conv2d import Conv2D, Conv2DArgs
from kconf.engine.layers.pooling import MaxPooling2D, MaxPooling2DArgs
from kconf.engine.layers.embedding import Embedding, EmbeddingArgs
from kconf.engine.layers.lstm import LSTM, LSTMArgs
from kconf.engine.layers.gru import GRU, GRUArgs
from kconf.engine.layers.simple_rnn import SimpleRNN, SimpleRNNArgs
from kconf.engine.layers.merge import (
    Add,
    Average,
    Concatenate,
    ConcatenateArgs,
    Dot,
    DotArgs,
    Maximum,
    MergeArgs,
    Minimum,
    Multiply,
    Subtract,
)
from kconf.engine.layers.time_distributed import TimeDistributed, TimeDistributedArgs
from kconf.engine.layers.identity import Identity, IdentityArgs
from kconf.engine.layers.normalization import Normalization, NormalizationArgs
from kconf.engine.layers.resizing import Resizing, ResizingArgs
from kconf.engine.layers.center_crop import CenterCrop, CenterCropArgs
from kconf.engine.layers.random_flip import RandomFlip, RandomFlipArgs
from kconf.engine.layers.random_crop import RandomCrop, RandomCropArgs
from kconf.engine.layers.random_contrast import RandomContrast, RandomContrastArgs
from kconf.engine.layers.random_translation import RandomTranslation, RandomTranslationArgs
from kconf.engine.layers.random_rotation import RandomRotation, RandomRotationArgs
from kconf.engine.layers.random_zoom import RandomZoom, RandomZoomArgs


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


def entry(layer: type[Layer], args: type[LayerArgs] | None) -> Entry:
    """A registry line: ``entry(Dense, DenseArgs)``."""
    return Entry(layer, args)


def _registry(*entries: Entry) -> dict[str, Entry]:
    """Name -> entry; a name given twice is an error, never a silent overwrite."""
    out: dict[str, Entry] = {}
    for e in entries:
        if e.name in out:
            raise ValueError(f"layer {e.name} is registered twice")
        out[e.name] = e
    return out


#: Keras class name -> (engine class, argument model): the layers kconf has, in the order
#: configs, schemas and tables list them.
REGISTRY: dict[str, Entry] = _registry(
    entry(InputLayer, None),
    entry(Dense, DenseArgs),
    entry(Activation, ActivationArgs),
    entry(Dropout, DropoutArgs),
    entry(Flatten, FlattenArgs),
    entry(Conv2D, Conv2DArgs),
    entry(MaxPooling2D, MaxPooling2DArgs),
    entry(Embedding, EmbeddingArgs),
    entry(LSTM, LSTMArgs),
    entry(GRU, GRUArgs),
    entry(SimpleRNN, SimpleRNNArgs),
    entry(TimeDistributed, TimeDistributedArgs),
    entry(Concatenate, ConcatenateArgs),
    entry(Add, MergeArgs),
    entry(Subtract, MergeArgs),
    entry(Multiply, MergeArgs),
    entry(Average, MergeArgs),
    entry(Maximum, MergeArgs),
    entry(Minimum, MergeArgs),
    entry(Dot, DotArgs),
    entry(Identity, IdentityArgs),
    entry(Normalization, NormalizationArgs),
    entry(Resizing, ResizingArgs),
    entry(CenterCrop, CenterCropArgs),
    entry(RandomFlip, RandomFlipArgs),
    entry(RandomCrop, RandomCropArgs),
    entry(RandomContrast, RandomContrastArgs),
    entry(RandomTranslation, RandomTranslationArgs),
    entry(RandomRotation, RandomRotationArgs),
    entry(RandomZoom, RandomZoomArgs),
)

#: Keras class name -> engine class.
LAYERS: dict[str, type[Layer]] = {name: e.layer for name, e in REGISTRY.items()}

__all__ = [
    "LAYERS",
    "REGISTRY",
    "Entry",
    "Layer",
    "WeightSpec",
    *(name for name in REGISTRY),
]
