"""The closed table of ONNX converters: layer class name -> the function that converts one
call of it (``f(builder, call) -> output name(s) | Result``), per layer family module.

Nested models (``ModelLayer``) and ``TimeDistributed`` are walked by the exporter itself.
A registered layer missing here is refused with its name ("no ONNX converter"), and
``tests/test_onnx_export.py`` checks that every registered layer has an entry.
"""
from __future__ import annotations

from kconf.onnx_io import attention, conv, core, image, norm, recurrent


def _each(names, fn) -> dict:
    return {name: fn for name in names}


CONVERTERS = {
    **_each(core.INFERENCE_IDENTITY, core.identity),
    "Dense": core.dense,
    "Activation": core.activation,
    "ReLU": core.relu,
    "LeakyReLU": core.leaky_relu,
    "ELU": core.elu,
    "PReLU": core.prelu,
    "Softmax": core.softmax,
    "Flatten": core.flatten,
    "Reshape": core.reshape,
    "Permute": core.permute,
    "RepeatVector": core.repeat_vector,
    "Masking": core.masking,
    **_each(("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"),
            core.elementwise),
    "Concatenate": core.concatenate,
    "Dot": core.dot,
    "CustomScaleLayer": core.custom_scale,
    "Rescaling": core.rescaling,
    "Normalization": core.normalization,
    "UnitNormalization": core.unit_normalization,
    "LayerScale": core.layer_scale,
    "Embedding": core.embedding,
    **_each(("Conv1D", "Conv2D", "Conv3D"), conv.convolution),
    **_each(("DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D"),
            conv.depthwise),
    **_each(("Conv1DTranspose", "Conv2DTranspose"), conv.conv_transpose),
    **_each(("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
             "AveragePooling2D", "AveragePooling3D"), conv.pooling),
    **_each(("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
             "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"),
            conv.global_pooling),
    **_each(("ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"), conv.zero_padding),
    **_each(("Cropping1D", "Cropping2D", "Cropping3D"), conv.cropping),
    "UpSampling1D": conv.upsampling_1d,
    "UpSampling2D": conv.upsampling,
    "Resizing": image.resizing,
    "CenterCrop": image.center_crop,
    "RandomCrop": image.random_crop,
    "BatchNormalization": norm.batch_normalization,
    "LayerNormalization": norm.layer_normalization,
    "GroupNormalization": norm.group_normalization,
    **_each(("SimpleRNN", "GRU", "LSTM"), recurrent.recurrent),
    "Bidirectional": recurrent.bidirectional,
    "MultiHeadAttention": attention.multi_head_attention,
    **_each(("Attention", "AdditiveAttention"), attention.dot_attention),
}

#: the layers whose converter uses the masks of its inputs (where a layer that takes a mask
#: is not listed, a masked call of it is refused)
MASK_AWARE = frozenset({
    "Masking", "Embedding", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum",
    "Concatenate", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "GlobalMaxPooling3D", "SimpleRNN", "GRU", "LSTM", "Bidirectional", "MultiHeadAttention",
    "Attention", "AdditiveAttention",
})
