"""The cases of the standard layer test (``tests/layer_test.py``): for each registered layer,
argument sets as written in YAML, the input they run on, Keras's weight layout and the
forward FLOPs of one sample, counted by hand.

FLOPs (``Layer.flops``): 2 per multiply-add of the matrix products, elementwise work 0.
Conv2D: 2 · output pixels · (kh·kw·cin) · filters. Recurrent: 2 · steps · (F·G + u·G) with G
the gate columns (LSTM 4u, GRU 3u, SimpleRNN u). A layer registered without cases fails
``test_every_registered_layer_has_cases``.
"""
from __future__ import annotations

from kconf.args.names import ACTIVATION_NAMES
from tests.layer_test import LayerCase as Case

N, T, F, U = 2, 3, 3, 2  # small recurrent sizes for the finite differences


def _dense(inputs, units, bias=True):
    """Dense's layout: kernel (in, units), then bias (units,)."""
    return (("kernel", (inputs, units)),) + ((("bias", (units,)),) if bias else ())


def _conv(kh, kw, cin, cout, bias=True):
    """Conv2D's layout: kernel (kh, kw, cin, cout), then bias (cout,)."""
    return (("kernel", (kh, kw, cin, cout)),) + ((("bias", (cout,)),) if bias else ())


def _recurrent(features, units, gates, bias=True, bias_shape=None):
    """kernel (F, G·u), recurrent_kernel (u, G·u), bias (G·u,) unless said otherwise."""
    out = (("kernel", (features, gates * units)),
           ("recurrent_kernel", (units, gates * units)))
    return out + ((("bias", bias_shape or (gates * units,)),) if bias else ())


def _recurrent_flops(steps, features, units, gates):
    return 2 * steps * (features * gates * units + units * gates * units)


def _variants(name, gates, bias_shape=None, **extra):
    """The output variants of one recurrent layer: sequences, states, reversed time."""
    weights = _recurrent(F, U, gates, bias_shape=bias_shape)
    flops = _recurrent_flops(T, F, U, gates)
    tag = "".join(f"_{k}" for k in extra)
    flags = [({}, ""), ({"return_sequences": True}, "_seq"), ({"return_state": True}, "_state"),
             ({"return_sequences": True, "return_state": True}, "_seq_state"),
             ({"go_backwards": True}, "_back"),
             ({"go_backwards": True, "return_sequences": True, "return_state": True},
              "_back_seq_state")]
    return [Case(f"{name.lower()}{tag}{suffix}", {"units": U, **extra, **f}, (N, T, F),
                 weights, flops) for f, suffix in flags]


CASES: dict[str, list[Case]] = {
    "InputLayer": [
        Case("input", {"shape": [3, 4]}, (2, 3, 4)),
    ],
    "Dense": [
        Case("dense", {"units": 4}, (3, 5), _dense(5, 4), 2 * 5 * 4),
        # per step of a sequence: 3 positions
        Case("dense_rank3", {"units": 3, "activation": "tanh"}, (2, 3, 4), _dense(4, 3),
             2 * 3 * 4 * 3),
        Case("dense_no_bias", {"units": 3, "use_bias": False}, (2, 4), _dense(4, 3, False),
             2 * 4 * 3),
        Case("dense_relu", {"units": 4, "activation": "relu"}, (3, 5), _dense(5, 4), 40),
        Case("dense_softmax", {"units": 4, "activation": "softmax",
                               "kernel_initializer": {"random_normal": {"stddev": 0.1}},
                               "bias_initializer": "ones"}, (3, 5), _dense(5, 4), 40),
    ],
    "Activation": [
        Case(f"activation_{name}", {"activation": name}, (2, 3, 4), scale=3.0)
        for name in ACTIVATION_NAMES
    ],
    "Dropout": [
        Case("dropout_inference", {"rate": 0.5}, (3, 6)),
        Case("dropout_training", {"rate": 0.4}, (3, 6), training=True),
        Case("dropout_rate0_training", {"rate": 0.0}, (3, 6), training=True),
    ],
    "Flatten": [
        Case("flatten", {}, (2, 3, 2, 2)),
        Case("flatten_rank2", {}, (2, 5)),
    ],
    "Conv2D": [
        # 3x3 valid on 5x5x2 -> 3x3 pixels
        Case("conv_valid", {"filters": 3, "kernel_size": 3}, (2, 5, 5, 2), _conv(3, 3, 2, 3),
             2 * 9 * 18 * 3),
        Case("conv_same", {"filters": 3, "kernel_size": [3, 3], "padding": "same"},
             (2, 5, 5, 2), _conv(3, 3, 2, 3), 2 * 25 * 18 * 3),
        # valid, stride 2 on 7x6: 3x2 pixels
        Case("conv_valid_stride2", {"filters": 2, "kernel_size": 3, "strides": 2},
             (2, 7, 6, 2), _conv(3, 3, 2, 2), 2 * 6 * 18 * 2),
        # same, stride 2 on 5x6: ceil -> 3x3 pixels
        Case("conv_same_stride2_odd", {"filters": 2, "kernel_size": 3, "strides": [2, 2],
                                       "padding": "same"}, (2, 5, 6, 2), _conv(3, 3, 2, 2),
             2 * 9 * 18 * 2),
        Case("conv_same_even_kernel", {"filters": 2, "kernel_size": 2, "padding": "same"},
             (1, 5, 4, 3), _conv(2, 2, 3, 2), 2 * 20 * 12 * 2),
        # same, strides (1, 2) on 5x7: 5x4 pixels
        Case("conv_nonsquare", {"filters": 3, "kernel_size": [2, 3], "strides": [1, 2],
                                "padding": "same", "activation": "relu"}, (2, 5, 7, 2),
             _conv(2, 3, 2, 3), 2 * 20 * 12 * 3),
        # valid, strides (2, 1) on 7x4: 3x4 pixels
        Case("conv_nonsquare_valid", {"filters": 2, "kernel_size": [3, 1], "strides": [2, 1],
                                      "use_bias": False}, (1, 7, 4, 3),
             _conv(3, 1, 3, 2, False), 2 * 12 * 9 * 2),
        # tanh runs block by block in place; sigmoid (no in-place form) after the loop
        Case("conv_tanh_same", {"filters": 2, "kernel_size": 3, "padding": "same",
                                "activation": "tanh"}, (3, 4, 5, 2), _conv(3, 3, 2, 2),
             2 * 20 * 18 * 2),
        Case("conv_sigmoid", {"filters": 2, "kernel_size": 2, "activation": "sigmoid"},
             (3, 4, 4, 2), _conv(2, 2, 2, 2), 2 * 9 * 8 * 2),
        # stride 1 with kw·cin >= 64 and few filters: products on shifted rows (kernels.py)
        Case("conv_shifted_valid", {"filters": 3, "kernel_size": 3, "activation": "relu"},
             (2, 5, 6, 24), _conv(3, 3, 24, 3), 2 * 12 * 216 * 3),
        Case("conv_shifted_same", {"filters": 2, "kernel_size": [2, 4], "padding": "same"},
             (3, 4, 5, 16), _conv(2, 4, 16, 2), 2 * 20 * 128 * 2),
    ],
    "MaxPooling2D": [
        Case("pool_valid", {}, (2, 4, 4, 2)),
        Case("pool_valid_odd", {"pool_size": 2}, (2, 5, 5, 2)),
        Case("pool_same_odd", {"pool_size": 2, "padding": "same"}, (2, 5, 3, 2)),
        Case("pool3", {"pool_size": 3}, (1, 7, 6, 2)),
        Case("pool3_stride2_overlap", {"pool_size": 3, "strides": 2}, (2, 7, 7, 2)),
        Case("pool3_stride1_same", {"pool_size": [3, 3], "strides": [1, 1],
                                    "padding": "SAME"}, (1, 4, 5, 2)),
        Case("pool_nonsquare", {"pool_size": [2, 3], "strides": [1, 2]}, (2, 5, 7, 1)),
    ],
    "Embedding": [
        Case("embedding", {"input_dim": 10, "output_dim": 4}, (2, 5),
             (("embeddings", (10, 4)),), vocabulary=10),
        # repeated indices in a batch of rank-3 inputs: their gradients add up
        Case("embedding_rank3", {"input_dim": 3, "output_dim": 2,
                                 "embeddings_initializer": "glorot_uniform"}, (2, 3, 2),
             (("embeddings", (3, 2)),), vocabulary=3),
    ],
    "LSTM": [
        *_variants("LSTM", 4),
        Case("lstm_no_bias", {"units": U, "use_bias": False, "return_state": True}, (N, T, F),
             _recurrent(F, U, 4, bias=False), _recurrent_flops(T, F, U, 4)),
        Case("lstm_relu_hard_sigmoid", {"units": U, "activation": "relu",
                                        "recurrent_activation": "hard_sigmoid",
                                        "return_sequences": True, "return_state": True},
             (N, T, F), _recurrent(F, U, 4), _recurrent_flops(T, F, U, 4)),
        Case("lstm_swish_softsign", {"units": U, "activation": "swish",
                                     "recurrent_activation": "softsign",
                                     "return_sequences": True, "return_state": True},
             (N, T, F), _recurrent(F, U, 4), _recurrent_flops(T, F, U, 4)),
        Case("lstm_linear", {"units": U, "activation": None, "recurrent_activation": "linear",
                             "unit_forget_bias": False, "return_state": True}, (N, T, F),
             _recurrent(F, U, 4), _recurrent_flops(T, F, U, 4)),
        Case("lstm_one_step", {"units": 3, "return_sequences": True, "return_state": True},
             (3, 1, 2), _recurrent(2, 3, 4), _recurrent_flops(1, 2, 3, 4)),
    ],
    "GRU": [
        # Keras 3's reset_after: bias (2, 3u), row 0 for the inputs, row 1 for the state
        *_variants("GRU", 3, bias_shape=(2, 3 * U)),
        *_variants("GRU", 3, reset_after=False),
        Case("gru_no_bias", {"units": U, "use_bias": False, "return_sequences": True},
             (N, T, F), _recurrent(F, U, 3, bias=False), _recurrent_flops(T, F, U, 3)),
        Case("gru_reset_before_no_bias", {"units": U, "use_bias": False, "reset_after": False},
             (N, T, F), _recurrent(F, U, 3, bias=False), _recurrent_flops(T, F, U, 3)),
        Case("gru_relu_hard_sigmoid", {"units": U, "activation": "relu",
                                       "recurrent_activation": "hard_sigmoid",
                                       "return_sequences": True, "return_state": True},
             (N, T, F), _recurrent(F, U, 3, bias_shape=(2, 3 * U)),
             _recurrent_flops(T, F, U, 3)),
        Case("gru_reset_before_elu_softsign", {"units": U, "activation": "elu",
                                               "recurrent_activation": "softsign",
                                               "reset_after": False, "return_state": True},
             (N, T, F), _recurrent(F, U, 3), _recurrent_flops(T, F, U, 3)),
    ],
    "SimpleRNN": [
        *_variants("SimpleRNN", 1),
        Case("simple_rnn_no_bias", {"units": U, "use_bias": False, "return_sequences": True},
             (N, T, F), _recurrent(F, U, 1, bias=False), _recurrent_flops(T, F, U, 1)),
        Case("simple_rnn_relu", {"units": U, "activation": "relu", "return_state": True},
             (N, T, F), _recurrent(F, U, 1), _recurrent_flops(T, F, U, 1)),
        Case("simple_rnn_gelu", {"units": 3, "activation": "gelu", "return_sequences": True},
             (2, 4, 2), _recurrent(2, 3, 1), _recurrent_flops(4, 2, 3, 1)),
    ],
    "TimeDistributed": [
        # the inner layer's weights; its FLOPs once per step
        Case("td_dense", {"layer": {"Dense": {"units": 3}}}, (2, 4, 5), _dense(5, 3),
             4 * 2 * 5 * 3),
        Case("td_dense_relu_rank4", {"layer": {"Dense": {"units": 2, "activation": "relu"}}},
             (2, 3, 2, 4), _dense(4, 2), 3 * 2 * 2 * 4 * 2),
        Case("td_conv2d", {"layer": {"Conv2D": {"filters": 2, "kernel_size": 2}}},
             (2, 3, 4, 4, 2), _conv(2, 2, 2, 2), 3 * 2 * 9 * 8 * 2),
        Case("td_conv2d_same_stride2", {"layer": {"Conv2D": {
            "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}}},
             (1, 2, 5, 4, 1), _conv(3, 3, 1, 2), 2 * 2 * 6 * 9 * 2),
        Case("td_pool", {"layer": {"MaxPooling2D": None}}, (2, 2, 4, 4, 1)),
        Case("td_flatten", {"layer": {"Flatten": {}}}, (2, 3, 2, 2)),
        Case("td_activation", {"layer": {"Activation": {"activation": "softmax"}}},
             (2, 3, 4)),
        Case("td_dropout_training", {"layer": {"Dropout": {"rate": 0.3}}}, (2, 3, 4),
             training=True),
        Case("td_lstm", {"layer": {"LSTM": {"units": 2}}}, (2, 2, 3, 2),
             _recurrent(2, 2, 4), 2 * _recurrent_flops(3, 2, 2, 4)),
    ],
    "Concatenate": [
        Case("concat_last", {}, [(2, 3), (2, 4)]),
        Case("concat_three", {"axis": -1}, [(2, 3, 2), (2, 3, 1), (2, 3, 4)]),
        Case("concat_axis1", {"axis": 1}, [(2, 2, 3), (2, 4, 3)]),
    ],
    "Add": [
        Case("add", {}, [(3, 4), (3, 4)]),
        Case("add_three_rank3", {}, [(2, 3, 2), (2, 3, 2), (2, 3, 2)]),
    ],
    "Subtract": [Case("subtract", {}, [(3, 4), (3, 4)])],
    "Multiply": [
        Case("multiply", {}, [(3, 4), (3, 4)]),
        Case("multiply_three", {}, [(2, 3), (2, 3), (2, 3)]),
    ],
    "Average": [Case("average", {}, [(3, 4), (3, 4), (3, 4)])],
    "Maximum": [Case("maximum", {}, [(3, 4), (3, 4), (3, 4)])],
    "Minimum": [Case("minimum", {}, [(3, 4), (3, 4)])],
    "Dot": [
        Case("dot_rank2", {"axes": 1}, [(3, 4), (3, 4)], flops=2 * 4),
        Case("dot_rank2_negative", {"axes": -1}, [(3, 4), (3, 4)], flops=2 * 4),
        Case("dot_rank2_normalize", {"axes": 1, "normalize": True}, [(3, 4), (3, 4)],
             flops=2 * 4),
        # (3, 4) @ (4, 5) per sample
        Case("dot_rank3_matmul", {"axes": [2, 1]}, [(2, 3, 4), (2, 4, 5)], flops=2 * 3 * 4 * 5),
        Case("dot_rank3_same_axis", {"axes": 2}, [(2, 3, 4), (2, 5, 4)], flops=2 * 3 * 5 * 4),
        Case("dot_rank3_axes_1_2", {"axes": [1, 2]}, [(2, 5, 2), (2, 3, 5)],
             flops=2 * 2 * 3 * 5),
        Case("dot_rank3_normalize", {"axes": [2, 2], "normalize": True},
             [(2, 3, 4), (2, 2, 4)], flops=2 * 3 * 2 * 4),
        Case("dot_rank2_rank3", {"axes": [1, 2]}, [(2, 4), (2, 3, 4)], flops=2 * 3 * 4),
    ],
    "Identity": [
        Case("identity", {}, (3, 4)),
        Case("identity_rank4", {"name": "same", "trainable": False}, (2, 3, 2, 2), scale=2.0),
    ],
    "Normalization": [
        Case("normalization_given", {"mean": [0.5, -1.0, 2.0], "variance": [4.0, 0.25, 1.0]},
             (3, 4, 3)),
        Case("normalization_given_scalar", {"axis": None, "mean": 1.5, "variance": 2.0},
             (2, 3)),
        Case("normalization_invert", {"mean": [0.5, 2.0], "variance": [4.0, 0.0],
                                      "invert": True}, (3, 2)),
        # state: mean, variance and count, as Keras's non-trainable weights
        Case("normalization_adapted", {}, (3, 2, 4),
             (("mean", (4,)), ("variance", (4,)), ("count", ()))),
        Case("normalization_axes", {"axis": [1, -1]}, (2, 3, 2),
             (("mean", (3, 2)), ("variance", (3, 2)), ("count", ()))),
    ],
    "Resizing": [
        Case("resizing_down", {"height": 3, "width": 2}, (2, 5, 4, 2)),
        Case("resizing_up", {"height": 7, "width": 5}, (2, 3, 4, 1)),
        Case("resizing_nearest", {"height": 4, "width": 7, "interpolation": "nearest"},
             (2, 5, 3, 2)),
        Case("resizing_crop_to_aspect", {"height": 3, "width": 3,
                                         "crop_to_aspect_ratio": True}, (2, 4, 6, 1)),
    ],
    "CenterCrop": [
        Case("center_crop", {"height": 3, "width": 2}, (2, 6, 5, 2)),
        Case("center_crop_smaller", {"height": 3, "width": 8}, (2, 5, 6, 1)),
    ],
    "RandomFlip": [
        Case("random_flip_inference", {}, (3, 3, 4, 2)),
        Case("random_flip_training", {}, (6, 3, 4, 2), training=True),
        Case("random_flip_horizontal", {"mode": "horizontal"}, (6, 2, 3, 1), training=True),
        Case("random_flip_vertical", {"mode": "vertical"}, (6, 3, 2, 1), training=True),
    ],
    "RandomCrop": [
        Case("random_crop_inference", {"height": 3, "width": 2}, (2, 5, 4, 2)),
        Case("random_crop_training", {"height": 3, "width": 2}, (2, 5, 4, 2), training=True),
        Case("random_crop_training_not_larger", {"height": 4, "width": 2}, (2, 4, 5, 1),
             training=True),
    ],
    "RandomContrast": [
        Case("random_contrast_inference", {"factor": 0.5}, (2, 3, 4, 2)),
        Case("random_contrast_training", {"factor": [0.5, 0.4], "value_range": [-2, 2]},
             (3, 3, 4, 2), training=True),
        Case("random_contrast_clipped", {"factor": 0.3}, (3, 3, 4, 2), training=True,
             scale=2.0),
    ],
    "RandomTranslation": [
        Case("random_translation_inference", {"height_factor": 0.2, "width_factor": 0.3},
             (2, 4, 5, 2)),
        Case("random_translation_training", {"height_factor": 0.3, "width_factor": [-0.2, 0.4]},
             (3, 4, 5, 2), training=True),
        Case("random_translation_constant_nearest", {
            "height_factor": 0.5, "width_factor": 0.5, "fill_mode": "constant",
            "fill_value": 1.5, "interpolation": "nearest"}, (3, 4, 4, 1), training=True),
    ],
    "RandomRotation": [
        Case("random_rotation_inference", {"factor": 0.2}, (2, 4, 5, 2)),
        Case("random_rotation_training", {"factor": 0.2}, (3, 5, 4, 2), training=True),
        Case("random_rotation_wrap", {"factor": [-0.5, 0.1], "fill_mode": "wrap"},
             (2, 4, 4, 1), training=True),
    ],
    "RandomZoom": [
        Case("random_zoom_inference", {"height_factor": 0.3}, (2, 4, 5, 2)),
        Case("random_zoom_training", {"height_factor": 0.3}, (3, 5, 4, 2), training=True),
        Case("random_zoom_both_nearest_edge", {
            "height_factor": [-0.5, 0.2], "width_factor": 0.4, "fill_mode": "nearest"},
             (2, 4, 6, 1), training=True),
    ],
}
