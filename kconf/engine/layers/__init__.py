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
from kconf.engine.layers.batch_normalization import BatchNormalization, BatchNormalizationArgs
from kconf.engine.layers.layer_normalization import LayerNormalization, LayerNormalizationArgs
from kconf.engine.layers.group_normalization import GroupNormalization, GroupNormalizationArgs
from kconf.engine.layers.unit_normalization import UnitNormalization, UnitNormalizationArgs
from kconf.engine.layers.convolution import Conv1D, Conv1DArgs, Conv3D, Conv3DArgs
from kconf.engine.layers.depthwise import (
    DepthwiseConv1D,
    DepthwiseConv1DArgs,
    DepthwiseConv2D,
    DepthwiseConv2DArgs,
)
from kconf.engine.layers.conv_transpose import (
    Conv1DTranspose,
    Conv1DTransposeArgs,
    Conv2DTranspose,
    Conv2DTransposeArgs,
)
from kconf.engine.layers.separable import (
    SeparableConv1D,
    SeparableConv1DArgs,
    SeparableConv2D,
    SeparableConv2DArgs,
)
from kconf.engine.layers.pooling_nd import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    MaxPooling1D,
    MaxPooling3D,
    Pooling1DArgs,
    Pooling2DArgs,
    Pooling3DArgs,
)
from kconf.engine.layers.global_pooling import (
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    GlobalPoolingArgs,
)
from kconf.engine.layers.reshaping import (
    Permute,
    PermuteArgs,
    RepeatVector,
    RepeatVectorArgs,
    Reshape,
    ReshapeArgs,
)
from kconf.engine.layers.padding import (
    Cropping1D,
    Cropping1DArgs,
    Cropping2D,
    Cropping2DArgs,
    Cropping3D,
    Cropping3DArgs,
    ZeroPadding1D,
    ZeroPadding1DArgs,
    ZeroPadding2D,
    ZeroPadding2DArgs,
    ZeroPadding3D,
    ZeroPadding3DArgs,
)
from kconf.engine.layers.upsampling import (
    UpSampling1D,
    UpSampling1DArgs,
    UpSampling2D,
    UpSampling2DArgs,
)
from kconf.engine.layers.relu import ReLU, ReLUArgs
from kconf.engine.layers.leaky_relu import LeakyReLU, LeakyReLUArgs
from kconf.engine.layers.prelu import PReLU, PReLUArgs
from kconf.engine.layers.elu import ELU, ELUArgs
from kconf.engine.layers.softmax import Softmax, SoftmaxArgs
from kconf.engine.layers.spatial_dropout import (
    SpatialDropout1D,
    SpatialDropout1DArgs,
    SpatialDropout2D,
    SpatialDropout3D,
    SpatialDropoutArgs,
)
from kconf.engine.layers.noise import (
    AlphaDropout,
    AlphaDropoutArgs,
    GaussianDropout,
    GaussianDropoutArgs,
    GaussianNoise,
    GaussianNoiseArgs,
)
from kconf.engine.layers.activity_regularization import (
    ActivityRegularization,
    ActivityRegularizationArgs,
)
from kconf.engine.layers.layer_scale import LayerScale, LayerScaleArgs
from kconf.engine.layers.custom_scale import CustomScaleLayer, CustomScaleLayerArgs
from kconf.engine.layers.rescaling import Rescaling, RescalingArgs
from kconf.engine.layers.attention import (
    AdditiveAttention,
    AdditiveAttentionArgs,
    Attention,
    AttentionArgs,
    MultiHeadAttention,
    MultiHeadAttentionArgs,
)
from kconf.engine.layers.normalization import Normalization, NormalizationArgs
from kconf.engine.layers.resizing import Resizing, ResizingArgs
from kconf.engine.layers.center_crop import CenterCrop, CenterCropArgs
from kconf.engine.layers.random_flip import RandomFlip, RandomFlipArgs
from kconf.engine.layers.random_crop import RandomCrop, RandomCropArgs
from kconf.engine.layers.random_contrast import RandomContrast, RandomContrastArgs
from kconf.engine.layers.random_translation import RandomTranslation, RandomTranslationArgs
from kconf.engine.layers.random_rotation import RandomRotation, RandomRotationArgs
from kconf.engine.layers.random_zoom import RandomZoom, RandomZoomArgs
from kconf.engine.layers.bidirectional import Bidirectional, BidirectionalArgs
from kconf.engine.layers.masking import Masking, MaskingArgs


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
    entry(BatchNormalization, BatchNormalizationArgs),
    entry(LayerNormalization, LayerNormalizationArgs),
    entry(GroupNormalization, GroupNormalizationArgs),
    entry(UnitNormalization, UnitNormalizationArgs),
    entry(Conv1D, Conv1DArgs),
    entry(Conv3D, Conv3DArgs),
    entry(DepthwiseConv1D, DepthwiseConv1DArgs),
    entry(DepthwiseConv2D, DepthwiseConv2DArgs),
    entry(SeparableConv1D, SeparableConv1DArgs),
    entry(SeparableConv2D, SeparableConv2DArgs),
    entry(Conv1DTranspose, Conv1DTransposeArgs),
    entry(Conv2DTranspose, Conv2DTransposeArgs),
    entry(MaxPooling1D, Pooling1DArgs),
    entry(MaxPooling3D, Pooling3DArgs),
    entry(AveragePooling1D, Pooling1DArgs),
    entry(AveragePooling2D, Pooling2DArgs),
    entry(AveragePooling3D, Pooling3DArgs),
    entry(GlobalAveragePooling1D, GlobalPoolingArgs),
    entry(GlobalAveragePooling2D, GlobalPoolingArgs),
    entry(GlobalAveragePooling3D, GlobalPoolingArgs),
    entry(GlobalMaxPooling1D, GlobalPoolingArgs),
    entry(GlobalMaxPooling2D, GlobalPoolingArgs),
    entry(GlobalMaxPooling3D, GlobalPoolingArgs),
    entry(Reshape, ReshapeArgs),
    entry(Permute, PermuteArgs),
    entry(RepeatVector, RepeatVectorArgs),
    entry(ZeroPadding1D, ZeroPadding1DArgs),
    entry(ZeroPadding2D, ZeroPadding2DArgs),
    entry(ZeroPadding3D, ZeroPadding3DArgs),
    entry(Cropping1D, Cropping1DArgs),
    entry(Cropping2D, Cropping2DArgs),
    entry(Cropping3D, Cropping3DArgs),
    entry(UpSampling1D, UpSampling1DArgs),
    entry(UpSampling2D, UpSampling2DArgs),
    entry(ReLU, ReLUArgs),
    entry(LeakyReLU, LeakyReLUArgs),
    entry(PReLU, PReLUArgs),
    entry(ELU, ELUArgs),
    entry(Softmax, SoftmaxArgs),
    entry(SpatialDropout1D, SpatialDropout1DArgs),
    entry(SpatialDropout2D, SpatialDropoutArgs),
    entry(SpatialDropout3D, SpatialDropoutArgs),
    entry(GaussianNoise, GaussianNoiseArgs),
    entry(GaussianDropout, GaussianDropoutArgs),
    entry(AlphaDropout, AlphaDropoutArgs),
    entry(ActivityRegularization, ActivityRegularizationArgs),
    entry(LayerScale, LayerScaleArgs),
    entry(CustomScaleLayer, CustomScaleLayerArgs),
    entry(Rescaling, RescalingArgs),
    entry(MultiHeadAttention, MultiHeadAttentionArgs),
    entry(Attention, AttentionArgs),
    entry(AdditiveAttention, AdditiveAttentionArgs),
    entry(Normalization, NormalizationArgs),
    entry(Resizing, ResizingArgs),
    entry(CenterCrop, CenterCropArgs),
    entry(RandomFlip, RandomFlipArgs),
    entry(RandomCrop, RandomCropArgs),
    entry(RandomContrast, RandomContrastArgs),
    entry(RandomTranslation, RandomTranslationArgs),
    entry(RandomRotation, RandomRotationArgs),
    entry(RandomZoom, RandomZoomArgs),
    entry(Bidirectional, BidirectionalArgs),
    entry(Masking, MaskingArgs),
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
