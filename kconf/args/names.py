"""The closed vocabularies of the config language, as module-level tuples.

Tests elsewhere check these against the engine's registries, so a name is accepted here
exactly when the engine can build it.
"""
from __future__ import annotations

ACTIVATION_NAMES: tuple[str, ...] = (
    "linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus", "softsign",
    "gelu", "hard_sigmoid", "swish", "silu", "relu6", "leaky_relu", "hard_silu", "hard_swish",
    "mish", "log_softmax", "exponential",
)

INITIALIZER_NAMES: tuple[str, ...] = (
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
    "lecun_normal", "zeros", "ones", "random_normal", "random_uniform", "truncated_normal",
    "constant", "orthogonal", "variance_scaling",
)

LOSS_NAMES: tuple[str, ...] = (
    "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
    "mean_squared_error", "mse", "mean_absolute_error", "mae",
)

METRIC_NAMES: tuple[str, ...] = (
    "accuracy", "acc", "binary_accuracy", "categorical_accuracy",
    "sparse_categorical_accuracy", "mse", "mae", "mean_squared_error", "mean_absolute_error",
)

#: Optimizer class names (the engine's classes); the string form also takes the lowercase
#: Keras identifiers in OPTIMIZER_ALIASES.
OPTIMIZER_NAMES: tuple[str, ...] = ("SGD", "RMSprop", "Adam", "AdamW", "Adamax", "Nadam",
                                     "Adagrad", "Adadelta", "Ftrl", "Lion", "Lamb")

OPTIMIZER_ALIASES: dict[str, str] = {name.lower(): name for name in OPTIMIZER_NAMES}

PADDING_NAMES: tuple[str, ...] = ("valid", "same")

#: Element types of model inputs and of random data (floats are the engine's float32).
DTYPE_NAMES: tuple[str, ...] = ("float32", "int32", "int64")

#: The lowercase helper forms of the merge layers that graph lines may call
#: (``x = concatenate(a, b, axis=1)``), and the layer class each one makes.
MERGE_HELPERS: dict[str, str] = {
    "concatenate": "Concatenate", "add": "Add", "subtract": "Subtract",
    "multiply": "Multiply", "average": "Average", "maximum": "Maximum",
    "minimum": "Minimum", "dot": "Dot",
}

#: How the ``scale`` preprocessing step maps values: ``minmax`` to ``range`` (default [0, 1])
#: by the training split's minimum and maximum (scikit-learn's ``MinMaxScaler``).
SCALING_NAMES: tuple[str, ...] = ("minmax",)

#: Over what ``scale`` and ``standardize`` compute their statistics: each ``feature`` (every
#: value of a sample on its own, over the training samples; scikit-learn's scalers) or ``all``
#: values at once (one minimum / mean for a whole image).
STATISTICS_SCOPES: tuple[str, ...] = ("feature", "all")
