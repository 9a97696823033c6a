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


def _recurrent(features, units, gates, bias=True, bias_shape=None, prefix=""):
    """kernel (F, G·u), recurrent_kernel (u, G·u), bias (G·u,) unless said otherwise; each
    name after ``prefix`` (a Bidirectional's ``forward_lstm/``)."""
    out = ((f"{prefix}kernel", (features, gates * units)),
           (f"{prefix}recurrent_kernel", (units, gates * units)))
    return out + (((f"{prefix}bias", bias_shape or (gates * units,)),) if bias else ())


def _bi(weights, inner):
    """A Bidirectional's layout: the forward layer's weights, then the backward layer's."""
    return tuple((f"{side}_{inner}/{name}", shape) for side in ("forward", "backward")
                 for name, shape in weights)


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


def _norm(channels, *names):
    """A normalization layer's weights, each of shape ``channels`` (a tuple or an int)."""
    shape = channels if isinstance(channels, tuple) else (channels,)
    return tuple((name, shape) for name in names)


_BN = ("gamma", "beta", "moving_mean", "moving_variance")


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
        # regularizers and constraints: the activity's penalty is in the layer's gradients
        Case("dense_regularized", {"units": 4, "activation": "tanh",
                                   "kernel_regularizer": "l2",
                                   "bias_regularizer": {"L1": {"l1": 0.1}},
                                   "activity_regularizer": {"L1L2": {"l1": 0.01, "l2": 0.2}},
                                   "kernel_constraint": {"MaxNorm": {"max_value": 1.5}},
                                   "bias_constraint": "non_neg"}, (3, 5), _dense(5, 4), 40),
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
        # EfficientNet's stochastic depth: one draw per sample
        Case("dropout_noise_shape_training", {"rate": 0.4, "noise_shape": [None, 1, 1, 1]},
             (4, 2, 2, 3), training=True),
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
        # dilation 2: a 5x5 extent on 6x7 -> 2x3 pixels
        Case("conv_dilated", {"filters": 2, "kernel_size": 3, "dilation_rate": 2},
             (2, 6, 7, 2), _conv(3, 3, 2, 2), 2 * 6 * 18 * 2),
        Case("conv_dilated_same", {"filters": 2, "kernel_size": [2, 3], "dilation_rate": [2, 1],
                                   "padding": "same"}, (1, 5, 4, 3), _conv(2, 3, 3, 2),
             2 * 20 * 18 * 2),
        # groups: kernel (kh, kw, cin / groups, filters)
        Case("conv_groups", {"filters": 4, "kernel_size": 3, "groups": 2, "padding": "same"},
             (2, 4, 4, 4), _conv(3, 3, 2, 4), 2 * 16 * 18 * 4),
        Case("conv_groups_stride2", {"filters": 6, "kernel_size": 2, "strides": 2, "groups": 3,
                                     "activation": "sigmoid"},
             (1, 5, 5, 3), _conv(2, 2, 1, 6), 2 * 4 * 4 * 6),
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
        # stride 1 with kw·cin >= 64, few filters and windows at 90% of the padded
        # positions: products on shifted rows (kernels/convolution.py; kernels of several
        # rows: tests/test_kernels.py)
        Case("conv_shifted_valid", {"filters": 3, "kernel_size": [1, 3], "activation": "relu"},
             (1, 2, 22, 24), _conv(1, 3, 24, 3), 2 * 40 * 72 * 3),
        Case("conv_shifted_same", {"filters": 2, "kernel_size": [1, 4], "padding": "same"},
             (1, 3, 30, 16), _conv(1, 4, 16, 2), 2 * 90 * 64 * 2),
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
        Case("embedding_mask_zero", {"input_dim": 5, "output_dim": 3, "mask_zero": True},
             (2, 4), (("embeddings", (5, 3)),), vocabulary=5),
    ],
    "LSTM": [
        *_variants("LSTM", 4),
        Case("lstm_no_bias", {"units": U, "use_bias": False, "return_state": True}, (N, T, F),
             _recurrent(F, U, 4, bias=False), _recurrent_flops(T, F, U, 4)),
        # an activity regularizer on each of its three outputs
        Case("lstm_activity_regularizer", {"units": U, "return_state": True,
                                           "activity_regularizer": {"L2": {"l2": 0.3}},
                                           "recurrent_regularizer": "l1",
                                           "recurrent_constraint": "unit_norm"}, (N, T, F),
             _recurrent(F, U, 4), _recurrent_flops(T, F, U, 4)),
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
        Case("add_broadcast", {}, [(2, 3, 3, 4), (2, 1, 1, 4)]),  # size-1 axes broadcast
    ],
    "Subtract": [Case("subtract", {}, [(3, 4), (3, 4)]),
                 Case("subtract_broadcast_first", {}, [(2, 1, 3), (2, 4, 3)])],
    "Multiply": [
        Case("multiply", {}, [(3, 4), (3, 4)]),
        Case("multiply_three", {}, [(2, 3), (2, 3), (2, 3)]),
        # squeeze-and-excite: (N, H, W, C) scaled by (N, 1, 1, C)
        Case("multiply_excite_broadcast", {}, [(2, 3, 3, 4), (2, 1, 1, 4)]),
    ],
    "Average": [Case("average", {}, [(3, 4), (3, 4), (3, 4)]),
                Case("average_broadcast", {}, [(3, 4), (3, 1)])],
    "Maximum": [Case("maximum", {}, [(3, 4), (3, 4), (3, 4)]),
                Case("maximum_broadcast", {}, [(2, 3, 4), (2, 1, 4)])],
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
    "BatchNormalization": [
        # training: batch statistics, the gradient through them; inference: moving ones
        Case("bn_training", {}, (5, 3), _norm(3, *_BN), training=True),
        Case("bn_inference", {}, (5, 3), _norm(3, *_BN)),
        Case("bn_images_training", {"momentum": 0.9, "epsilon": 0.01}, (2, 3, 2, 4),
             _norm(4, *_BN), training=True),
        # 45 pixels: one block of column_sums' partial sums and 13 rows left over
        Case("bn_images_blocked_sums_training", {}, (3, 5, 3, 2), _norm(2, *_BN),
             training=True),
        Case("bn_axis1_training", {"axis": 1}, (3, 4, 2), _norm(4, *_BN), training=True),
        Case("bn_axis_neg2_inference", {"axis": -2}, (3, 4, 2), _norm(4, *_BN)),
        Case("bn_no_scale_training", {"scale": False}, (4, 3), _norm(3, *_BN[1:]),
             training=True),
        Case("bn_no_center_training", {"center": False, "gamma_initializer": "glorot_uniform"},
             (2, 2, 3), _norm(3, "gamma", *_BN[2:]), training=True),
        Case("bn_bare_training", {"center": False, "scale": False}, (4, 3), _norm(3, *_BN[2:]),
             training=True),
        Case("bn_frozen_training", {"trainable": False}, (4, 3), _norm(3, *_BN),
             training=True),
        # one process: synchronized statistics are the batch's (the ranks' sums: tests/
        # test_distributed.py)
        Case("bn_synchronized_training", {"synchronized": True, "axis": 1}, (3, 4, 2),
             _norm(4, *_BN), training=True),
    ],
    "LayerNormalization": [
        Case("ln", {}, (3, 4), _norm(4, "gamma", "beta")),
        Case("ln_rank3", {"epsilon": 0.1}, (2, 3, 4), _norm(4, "gamma", "beta")),
        Case("ln_two_axes", {"axis": [2, 1]}, (2, 3, 4, 2), _norm((3, 4), "gamma", "beta")),
        Case("ln_axis1", {"axis": 1}, (2, 3, 4), _norm(3, "gamma", "beta")),
        Case("ln_no_center", {"center": False}, (3, 4), _norm(4, "gamma")),
        Case("ln_no_scale", {"scale": False}, (3, 4), _norm(4, "beta")),
        Case("ln_bare", {"center": False, "scale": False}, (3, 4)),
        Case("ln_rms_scaling", {"rms_scaling": True}, (2, 3, 4), _norm(4, "gamma")),
        Case("ln_rms_scaling_axes", {"rms_scaling": True, "scale": False, "axis": [-1, -2]},
             (2, 3, 4), _norm((3, 4), "gamma")),
    ],
    "GroupNormalization": [
        Case("gn", {"groups": 2}, (2, 3, 4), _norm(4, "gamma", "beta")),
        Case("gn_images", {"groups": 3, "epsilon": 0.01}, (2, 2, 3, 6),
             _norm(6, "gamma", "beta")),
        Case("gn_instance", {"groups": -1}, (2, 4, 3), _norm(3, "gamma", "beta")),
        Case("gn_one_group", {"groups": 1, "center": False}, (2, 3, 4), _norm(4, "gamma")),
        Case("gn_axis1", {"groups": 2, "axis": 1, "scale": False}, (2, 4, 3), _norm(4, "beta")),
        Case("gn_axis_neg2", {"groups": 2, "axis": -2}, (2, 3, 4, 2),
             _norm(4, "gamma", "beta")),
    ],
    "UnitNormalization": [
        Case("unit", {}, (3, 4)),
        Case("unit_rank3", {"axis": 1}, (2, 3, 4)),
        Case("unit_two_axes", {"axis": [1, -1]}, (2, 3, 4)),
    ],
    "Conv1D": [
        Case("conv1d_valid", {"filters": 3, "kernel_size": 3}, (2, 7, 2),
             (("kernel", (3, 2, 3)), ("bias", (3,))), 2 * 5 * 6 * 3),
        # causal: (3 - 1)·2 steps before, so 6 steps out
        Case("conv1d_causal_dilated", {"filters": 2, "kernel_size": 3, "padding": "causal",
                                       "dilation_rate": 2}, (2, 6, 3),
             (("kernel", (3, 3, 2)), ("bias", (2,))), 2 * 6 * 9 * 2),
        Case("conv1d_same_stride2", {"filters": 2, "kernel_size": [2], "strides": 2,
                                     "padding": "same", "activation": "tanh"}, (2, 5, 2),
             (("kernel", (2, 2, 2)), ("bias", (2,))), 2 * 3 * 4 * 2),
        Case("conv1d_groups", {"filters": 4, "kernel_size": 2, "groups": 2, "use_bias": False},
             (2, 5, 4), (("kernel", (2, 2, 4)),), 2 * 4 * 4 * 4),
    ],
    "Conv3D": [
        Case("conv3d_valid", {"filters": 2, "kernel_size": 2}, (2, 3, 4, 3, 2),
             (("kernel", (2, 2, 2, 2, 2)), ("bias", (2,))), 2 * 12 * 16 * 2),
        Case("conv3d_same_strides", {"filters": 2, "kernel_size": [2, 3, 2],
                                     "strides": [1, 2, 2], "padding": "same",
                                     "activation": "relu"}, (1, 3, 5, 4, 2),
             (("kernel", (2, 3, 2, 2, 2)), ("bias", (2,))), 2 * 18 * 24 * 2),
    ],
    "DepthwiseConv1D": [
        Case("depthwise1d", {"kernel_size": 3, "depth_multiplier": 2}, (2, 6, 2),
             (("kernel", (3, 2, 2)), ("bias", (4,))), 2 * 4 * 3 * 4),
    ],
    "DepthwiseConv2D": [
        Case("depthwise", {"kernel_size": 3}, (2, 5, 5, 3),
             (("kernel", (3, 3, 3, 1)), ("bias", (3,))), 2 * 9 * 9 * 3),
        Case("depthwise_mult_same_stride2", {"kernel_size": 3, "depth_multiplier": 2,
                                             "strides": 2, "padding": "same",
                                             "activation": "relu"}, (2, 5, 6, 2),
             (("kernel", (3, 3, 2, 2)), ("bias", (4,))), 2 * 9 * 9 * 4),
        Case("depthwise_dilated", {"kernel_size": 2, "dilation_rate": 2, "use_bias": False},
             (1, 5, 5, 2), (("kernel", (2, 2, 2, 1)),), 2 * 9 * 4 * 2),
    ],
    "SeparableConv1D": [
        Case("separable1d_dilated_same", {"filters": 3, "kernel_size": 3, "dilation_rate": 2,
                                          "padding": "same"}, (2, 7, 2),
             (("depthwise_kernel", (3, 2, 1)), ("pointwise_kernel", (1, 2, 3)),
              ("bias", (3,))), 2 * 7 * 2 * (3 + 3)),
    ],
    "SeparableConv2D": [
        Case("separable", {"filters": 3, "kernel_size": 3}, (2, 5, 5, 2),
             (("depthwise_kernel", (3, 3, 2, 1)), ("pointwise_kernel", (1, 1, 2, 3)),
              ("bias", (3,))), 2 * 9 * 2 * (9 + 3)),
        Case("separable_mult_same_stride2", {"filters": 2, "kernel_size": 2,
                                             "depth_multiplier": 2, "strides": 2,
                                             "padding": "same", "activation": "tanh"},
             (1, 5, 4, 2),
             (("depthwise_kernel", (2, 2, 2, 2)), ("pointwise_kernel", (1, 1, 4, 2)),
              ("bias", (2,))), 2 * 6 * 4 * (4 + 2)),
    ],
    "Conv1DTranspose": [
        # valid: (4 - 1)·2 + 3 + 1 = 10 steps
        Case("conv1d_transpose_stride2_output_padding",
             {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1,
              "use_bias": False}, (2, 4, 3), (("kernel", (3, 2, 3)),), 2 * 4 * 3 * 3 * 2),
        Case("conv1d_transpose_same", {"filters": 3, "kernel_size": 4, "strides": 2,
                                       "padding": "same", "activation": "tanh"}, (2, 3, 2),
             (("kernel", (4, 3, 2)), ("bias", (3,))), 2 * 3 * 4 * 2 * 3),
    ],
    "Conv2DTranspose": [
        # kernel (kh, kw, filters, cin); FLOPs per input pixel
        Case("conv_transpose_valid", {"filters": 2, "kernel_size": 3}, (2, 3, 4, 2),
             (("kernel", (3, 3, 2, 2)), ("bias", (2,))), 2 * 12 * 9 * 2 * 2),
        Case("conv_transpose_same_stride2", {"filters": 3, "kernel_size": 3, "strides": 2,
                                             "padding": "same", "activation": "relu"},
             (2, 3, 3, 2), (("kernel", (3, 3, 3, 2)), ("bias", (3,))), 2 * 9 * 9 * 2 * 3),
        # stride 3 > kernel 2: valid gives in·3, the last column of each window zero
        Case("conv_transpose_valid_stride3", {"filters": 2, "kernel_size": 2, "strides": 3},
             (1, 2, 3, 2), (("kernel", (2, 2, 2, 2)), ("bias", (2,))), 2 * 6 * 4 * 2 * 2),
        Case("conv_transpose_output_padding", {"filters": 2, "kernel_size": [3, 2],
                                               "strides": 2, "padding": "same",
                                               "output_padding": 1}, (1, 3, 2, 2),
             (("kernel", (3, 2, 2, 2)), ("bias", (2,))), 2 * 6 * 6 * 2 * 2),
        Case("conv_transpose_dilated_same", {"filters": 2, "kernel_size": 2,
                                             "dilation_rate": 2, "padding": "same"},
             (1, 3, 3, 2), (("kernel", (2, 2, 2, 2)), ("bias", (2,))), 2 * 9 * 4 * 2 * 2),
    ],
    # --- pooling and shape layers (issue 13) ---
    "MaxPooling1D": [
        Case("maxpool1d", {}, (2, 5, 3)),
        Case("maxpool1d_same_stride1", {"pool_size": 3, "strides": 1, "padding": "same"},
             (2, 5, 2)),
        Case("maxpool1d_overlap", {"pool_size": [3], "strides": [2]}, (2, 7, 2)),
    ],
    "MaxPooling3D": [
        Case("maxpool3d", {}, (2, 4, 4, 4, 2)),
        Case("maxpool3d_same_odd", {"pool_size": [2, 3, 2], "padding": "same"},
             (1, 3, 5, 3, 2)),
        Case("maxpool3d_overlap", {"pool_size": 2, "strides": 1}, (1, 3, 3, 4, 1)),
    ],
    "AveragePooling1D": [
        Case("avgpool1d", {}, (2, 5, 3)),
        Case("avgpool1d_same", {"pool_size": 3, "strides": 2, "padding": "same"}, (2, 6, 2)),
    ],
    "AveragePooling2D": [
        Case("avgpool2d", {}, (2, 4, 5, 2)),
        Case("avgpool2d_same_odd", {"pool_size": 2, "padding": "same"}, (2, 5, 3, 2)),
        Case("avgpool2d_same_stride1", {"pool_size": [3, 2], "strides": 1, "padding": "same"},
             (1, 4, 5, 2)),
        Case("avgpool2d_overlap", {"pool_size": 3, "strides": [2, 1]}, (2, 7, 5, 1)),
    ],
    "AveragePooling3D": [
        Case("avgpool3d", {}, (2, 4, 4, 4, 2)),
        Case("avgpool3d_same", {"pool_size": [3, 2, 2], "strides": [2, 1, 2],
                                "padding": "same"}, (1, 4, 3, 5, 2)),
    ],
    "GlobalAveragePooling1D": [
        Case("gap1d", {}, (2, 5, 3)),
        Case("gap1d_keepdims", {"keepdims": True}, (2, 5, 3)),
    ],
    "GlobalAveragePooling2D": [
        Case("gap2d", {}, (2, 4, 3, 2)),
        Case("gap2d_keepdims", {"keepdims": True}, (2, 4, 3, 2)),
    ],
    "GlobalAveragePooling3D": [
        Case("gap3d", {}, (2, 2, 3, 2, 2)),
        Case("gap3d_keepdims", {"keepdims": True}, (2, 2, 3, 2, 2)),
    ],
    "GlobalMaxPooling1D": [
        Case("gmp1d", {}, (2, 5, 3)),
        Case("gmp1d_keepdims", {"keepdims": True}, (2, 5, 3)),
    ],
    "GlobalMaxPooling2D": [
        Case("gmp2d", {}, (2, 4, 3, 2)),
        Case("gmp2d_keepdims", {"keepdims": True}, (2, 4, 3, 2)),
    ],
    "GlobalMaxPooling3D": [
        Case("gmp3d", {}, (2, 2, 3, 2, 2)),
        Case("gmp3d_keepdims", {"keepdims": True}, (2, 2, 3, 2, 2)),
    ],
    "Reshape": [
        Case("reshape", {"target_shape": [4, 3]}, (2, 3, 4)),
        Case("reshape_inferred", {"target_shape": [-1, 2]}, (2, 3, 2, 2)),
        Case("reshape_flat", {"target_shape": [12]}, (2, 2, 3, 2)),
    ],
    "Permute": [
        Case("permute", {"dims": [2, 1]}, (2, 3, 4)),
        Case("permute_rank4", {"dims": [3, 1, 2]}, (2, 3, 4, 2)),
    ],
    "RepeatVector": [
        Case("repeat_vector", {"n": 3}, (2, 4)),
    ],
    "ZeroPadding1D": [
        Case("zeropad1d", {}, (2, 3, 2)),
        Case("zeropad1d_pair", {"padding": [2, 0]}, (2, 3, 2)),
    ],
    "ZeroPadding2D": [
        Case("zeropad2d", {}, (2, 3, 2, 2)),
        Case("zeropad2d_axes", {"padding": [2, 1]}, (2, 3, 2, 2)),
        Case("zeropad2d_pairs", {"padding": [[1, 0], [0, 2]]}, (2, 3, 2, 2)),
    ],
    "ZeroPadding3D": [
        Case("zeropad3d", {}, (1, 2, 3, 2, 2)),
        Case("zeropad3d_pairs", {"padding": [[1, 0], 2, [0, 1]]}, (1, 2, 3, 2, 1)),
    ],
    "Cropping1D": [
        Case("crop1d", {}, (2, 5, 2)),
        Case("crop1d_pair", {"cropping": [0, 2]}, (2, 5, 2)),
    ],
    "Cropping2D": [
        Case("crop2d_default", {}, (2, 3, 4, 2)),
        Case("crop2d", {"cropping": 1}, (2, 4, 5, 2)),
        Case("crop2d_pairs", {"cropping": [[1, 0], [2, 1]]}, (2, 4, 5, 2)),
    ],
    "Cropping3D": [
        Case("crop3d", {}, (1, 4, 3, 5, 2)),
        Case("crop3d_axes", {"cropping": [0, 1, [2, 0]]}, (1, 2, 4, 5, 1)),
    ],
    "UpSampling1D": [
        Case("upsample1d", {}, (2, 3, 2)),
        Case("upsample1d_3", {"size": 3}, (2, 3, 2)),
    ],
    "UpSampling2D": [
        Case("upsample2d", {}, (2, 3, 2, 2)),
        Case("upsample2d_nonsquare", {"size": [3, 2]}, (2, 2, 3, 1)),
        Case("upsample2d_bilinear", {"interpolation": "bilinear"}, (2, 3, 4, 2)),
        Case("upsample2d_bilinear_3_2", {"size": [3, 2], "interpolation": "bilinear"},
             (1, 2, 3, 2)),
        Case("upsample2d_bilinear_1", {"size": 1, "interpolation": "BILINEAR"}, (1, 3, 3, 1)),
    ],
    "ReLU": [
        Case("relu_default", {}, (3, 5), scale=2.0),
        Case("relu_max_value", {"max_value": 1.0}, (3, 5), scale=2.0),
        Case("relu_all", {"max_value": 2.5, "negative_slope": 0.3, "threshold": 0.5},
             (2, 3, 4), scale=2.0),
        Case("relu_leaky", {"negative_slope": 0.1}, (3, 5)),
    ],
    "LeakyReLU": [
        Case("leaky_relu", {}, (3, 5)),
        Case("leaky_relu_slope", {"negative_slope": 0.05}, (2, 3, 4)),
        Case("leaky_relu_steep", {"negative_slope": 2.0}, (3, 5)),
    ],
    "PReLU": [
        Case("prelu", {}, (3, 4), (("alpha", (4,)),)),
        Case("prelu_image_shared", {"shared_axes": [1, 2]}, (2, 3, 3, 2),
             (("alpha", (1, 1, 2)),)),
        Case("prelu_seq_init", {"alpha_initializer": "ones", "shared_axes": [2]}, (2, 3, 4),
             (("alpha", (3, 1)),)),
    ],
    "ELU": [
        Case("elu_layer", {}, (3, 5), scale=2.0),
        Case("elu_alpha", {"alpha": 0.5}, (2, 3, 4), scale=2.0),
    ],
    "Softmax": [
        Case("softmax_layer", {}, (3, 5), scale=2.0),
        Case("softmax_axis1", {"axis": 1}, (2, 3, 4), scale=2.0),
        Case("softmax_axis_minus2", {"axis": -2}, (2, 3, 4, 2)),
    ],
    "SpatialDropout1D": [
        Case("spatial_dropout1d", {"rate": 0.5}, (2, 4, 3)),
        Case("spatial_dropout1d_training", {"rate": 0.5}, (3, 4, 5), training=True),
    ],
    "SpatialDropout2D": [
        Case("spatial_dropout2d_training", {"rate": 0.3}, (3, 3, 3, 4), training=True),
    ],
    "SpatialDropout3D": [
        Case("spatial_dropout3d_training", {"rate": 0.4}, (2, 2, 3, 2, 5), training=True),
    ],
    "GaussianNoise": [
        Case("gaussian_noise", {"stddev": 0.5}, (3, 4)),
        Case("gaussian_noise_training", {"stddev": 0.5}, (3, 4), training=True),
    ],
    "GaussianDropout": [
        Case("gaussian_dropout", {"rate": 0.3}, (3, 4)),
        Case("gaussian_dropout_training", {"rate": 0.3}, (2, 3, 4), training=True),
    ],
    "AlphaDropout": [
        Case("alpha_dropout", {"rate": 0.2}, (3, 4)),
        Case("alpha_dropout_training", {"rate": 0.2}, (3, 6), training=True),
    ],
    "ActivityRegularization": [
        Case("activity_regularization", {"l1": 0.01, "l2": 0.02}, (3, 4)),
        Case("activity_regularization_l2", {"l2": 0.5}, (2, 3, 4), training=True),
    ],
    "LayerScale": [
        Case("layer_scale", {"init_values": 1e-6, "projection_dim": 4}, (2, 3, 3, 4),
             (("gamma", (4,)),)),
        Case("layer_scale_rank2", {"init_values": 0.5, "projection_dim": 3}, (3, 3),
             (("gamma", (3,)),)),
    ],
    "CustomScaleLayer": [
        Case("custom_scale", {"scale": 0.17}, [(2, 3, 3, 2), (2, 3, 3, 2)]),
        Case("custom_scale_one", {"scale": 1.0}, [(3, 4), (3, 4)]),
    ],
    "Rescaling": [
        Case("rescaling", {"scale": 0.00392156862745098}, (2, 3, 3, 1), scale=100.0),
        Case("rescaling_offset", {"scale": 2.0, "offset": -1.0}, (3, 4)),
    ],
    "MultiHeadAttention": [
        # query (4 steps, 5 features), value (3, 6), key (3, 7); 2 heads of 3
        Case("mha", {"num_heads": 2, "key_dim": 3}, [(2, 4, 5), (2, 3, 6), (2, 3, 7)],
             (("query/kernel", (5, 2, 3)), ("query/bias", (2, 3)),
              ("key/kernel", (7, 2, 3)), ("key/bias", (2, 3)),
              ("value/kernel", (6, 2, 3)), ("value/bias", (2, 3)),
              ("attention_output/kernel", (2, 3, 5)), ("attention_output/bias", (5,))),
             2 * (4 * 5 * 6 + 3 * 7 * 6 + 3 * 6 * 6 + 2 * 4 * 3 * (3 + 3) + 4 * 6 * 5)),
        Case("mha_value_dim_no_bias", {"num_heads": 1, "key_dim": 2, "value_dim": 4,
                                       "use_bias": False, "output_shape": 3},
             [(2, 3, 4), (2, 3, 4)],
             (("query/kernel", (4, 1, 2)), ("key/kernel", (4, 1, 2)),
              ("value/kernel", (4, 1, 4)), ("attention_output/kernel", (1, 4, 3))),
             2 * (3 * 4 * 2 * 2 + 3 * 4 * 4 + 3 * 3 * (2 + 4) + 3 * 4 * 3)),
        Case("mha_causal_scores", {"num_heads": 2, "key_dim": 2, "output_shape": [2, 3]},
             [(2, 3, 4), (2, 3, 4), (2, 3, 4)],
             (("query/kernel", (4, 2, 2)), ("query/bias", (2, 2)),
              ("key/kernel", (4, 2, 2)), ("key/bias", (2, 2)),
              ("value/kernel", (4, 2, 2)), ("value/bias", (2, 2)),
              ("attention_output/kernel", (2, 2, 2, 3)), ("attention_output/bias", (2, 3))),
             2 * (3 * 4 * 4 * 3 + 2 * 3 * 3 * 4 + 3 * 4 * 6),
             call={"use_causal_mask": True, "return_attention_scores": True}),
        Case("mha_dropout_training", {"num_heads": 1, "key_dim": 2, "dropout": 0.5},
             [(2, 3, 4), (2, 3, 4)],
             (("query/kernel", (4, 1, 2)), ("query/bias", (1, 2)),
              ("key/kernel", (4, 1, 2)), ("key/bias", (1, 2)),
              ("value/kernel", (4, 1, 2)), ("value/bias", (1, 2)),
              ("attention_output/kernel", (1, 2, 4)), ("attention_output/bias", (4,))),
             2 * (3 * 4 * 2 * 3 + 3 * 3 * 4 + 3 * 2 * 4), training=True,
             call={"return_attention_scores": True}),
    ],
    "Attention": [
        Case("attention_dot", {}, [(2, 3, 4), (2, 5, 4)], flops=2 * 3 * 5 * (4 + 4)),
        Case("attention_dot_scale_key", {"use_scale": True}, [(2, 3, 4), (2, 5, 6), (2, 5, 4)],
             (("scale", ()),), 2 * 3 * 5 * (4 + 6)),
        Case("attention_concat", {"use_scale": True, "score_mode": "concat"},
             [(2, 3, 4), (2, 5, 4)], (("scale", ()), ("concat_score_weight", ())),
             2 * 3 * 5 * 4),
        Case("attention_concat_causal_scores", {"score_mode": "concat"}, [(2, 4, 3), (2, 4, 3)],
             (("concat_score_weight", ()),), 2 * 4 * 4 * 3,
             call={"use_causal_mask": True, "return_attention_scores": True}),
        Case("attention_dropout_training", {"dropout": 0.5}, [(2, 3, 4), (2, 5, 4)],
             flops=2 * 3 * 5 * (4 + 4), training=True, call={"return_attention_scores": True}),
    ],
    "AdditiveAttention": [
        Case("additive", {}, [(2, 3, 4), (2, 5, 4)], (("scale", (4,)),), 2 * 3 * 5 * 4),
        Case("additive_no_scale_key", {"use_scale": False}, [(2, 3, 4), (2, 5, 6), (2, 5, 4)],
             flops=2 * 3 * 5 * 6),
        Case("additive_causal_scores_dropout", {"dropout": 0.25}, [(2, 4, 3), (2, 4, 3)],
             (("scale", (3,)),), 2 * 4 * 4 * 3, training=True,
             call={"use_causal_mask": True, "return_attention_scores": True}),
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
    "Bidirectional": [
        # the forward layer's weights, then the backward layer's, under their Keras names
        Case("bi_lstm_concat", {"layer": {"LSTM": {"units": U}}}, (N, T, F),
             _bi(_recurrent(F, U, 4), "lstm"), 2 * _recurrent_flops(T, F, U, 4)),
        Case("bi_gru_seq_sum", {"layer": {"GRU": {"units": U, "return_sequences": True}},
                                "merge_mode": "sum"}, (N, T, F),
             _bi(_recurrent(F, U, 3, bias_shape=(2, 3 * U)), "gru"),
             2 * _recurrent_flops(T, F, U, 3)),
        Case("bi_rnn_seq_mul", {"layer": {"SimpleRNN": {"units": U, "return_sequences": True}},
                                "merge_mode": "mul"}, (N, T, F),
             _bi(_recurrent(F, U, 1), "simple_rnn"), 2 * _recurrent_flops(T, F, U, 1)),
        Case("bi_lstm_seq_ave_state", {"layer": {"LSTM": {
            "units": U, "return_sequences": True, "return_state": True}}, "merge_mode": "ave"},
             (N, T, F), _bi(_recurrent(F, U, 4), "lstm"), 2 * _recurrent_flops(T, F, U, 4)),
        Case("bi_gru_none_state", {"layer": {"GRU": {"units": U, "return_state": True}},
                                   "merge_mode": None}, (N, T, F),
             _bi(_recurrent(F, U, 3, bias_shape=(2, 3 * U)), "gru"),
             2 * _recurrent_flops(T, F, U, 3)),
        Case("bi_backward_layer", {
            "layer": {"LSTM": {"units": U, "return_sequences": True}},
            "backward_layer": {"SimpleRNN": {"units": 3, "return_sequences": True,
                                             "go_backwards": True, "activation": "relu"}}},
             (N, T, F), _recurrent(F, U, 4, prefix="forward_lstm/")
             + _recurrent(F, 3, 1, prefix="simple_rnn/"),  # Keras keeps a given one's name
             _recurrent_flops(T, F, U, 4) + _recurrent_flops(T, F, 3, 1)),
    ],
    "Masking": [
        Case("masking", {}, (N, T, F)),
        Case("masking_value", {"mask_value": -1.5}, (N, T, F)),
    ],
}

# Initial states (a graph line's `initial_state=[h, c]`): the layer takes [sequences, *states]
# and gives back the gradients of all of them; Bidirectional splits the states in halves.
CASES["LSTM"].append(Case("lstm_initial_state", {"units": U, "return_sequences": True},
                          [(N, T, F), (N, U), (N, U)], _recurrent(F, U, 4),
                          _recurrent_flops(T, F, U, 4)))
CASES["GRU"].append(Case("gru_initial_state_back", {"units": U, "go_backwards": True,
                                                    "return_state": True},
                         [(N, T, F), (N, U)], _recurrent(F, U, 3, bias_shape=(2, 3 * U)),
                         _recurrent_flops(T, F, U, 3)))
CASES["SimpleRNN"].append(Case("simple_rnn_initial_state", {"units": U}, [(N, T, F), (N, U)],
                               _recurrent(F, U, 1), _recurrent_flops(T, F, U, 1)))
CASES["Bidirectional"].append(Case(
    "bi_lstm_initial_state", {"layer": {"LSTM": {"units": U, "return_sequences": True}}},
    [(N, T, F), (N, U), (N, U), (N, U), (N, U)], _bi(_recurrent(F, U, 4), "lstm"),
    2 * _recurrent_flops(T, F, U, 4)))
