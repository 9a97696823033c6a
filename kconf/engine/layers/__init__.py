"""Engine layers: a closed registry of the Keras layer classes kconf implements.

Adding a layer is adding one file and one import line here; nothing registers itself.
"""
from __future__ import annotations

from kconf.engine.layers.base import Layer, WeightSpec
from kconf.engine.layers.input import InputLayer
from kconf.engine.layers.dense import Dense
from kconf.engine.layers.activation import Activation
from kconf.engine.layers.dropout import Dropout
from kconf.engine.layers.flatten import Flatten
from kconf.engine.layers.conv2d import Conv2D
from kconf.engine.layers.pooling import MaxPooling2D
from kconf.engine.layers.embedding import Embedding
from kconf.engine.layers.lstm import LSTM
from kconf.engine.layers.gru import GRU
from kconf.engine.layers.simple_rnn import SimpleRNN
from kconf.engine.layers.merge import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)
from kconf.engine.layers.time_distributed import TimeDistributed

LAYERS: dict[str, type[Layer]] = {
    "InputLayer": InputLayer,
    "Dense": Dense,
    "Activation": Activation,
    "Dropout": Dropout,
    "Flatten": Flatten,
    "Conv2D": Conv2D,
    "MaxPooling2D": MaxPooling2D,
    "Embedding": Embedding,
    "LSTM": LSTM,
    "GRU": GRU,
    "SimpleRNN": SimpleRNN,
    "Concatenate": Concatenate,
    "Add": Add,
    "Subtract": Subtract,
    "Multiply": Multiply,
    "Average": Average,
    "Maximum": Maximum,
    "Minimum": Minimum,
    "Dot": Dot,
    "TimeDistributed": TimeDistributed,
}

__all__ = [
    "LAYERS",
    "Layer",
    "WeightSpec",
    "InputLayer",
    "Dense",
    "Activation",
    "Dropout",
    "Flatten",
    "Conv2D",
    "MaxPooling2D",
    "Embedding",
    "LSTM",
    "GRU",
    "SimpleRNN",
    "Concatenate",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Dot",
    "TimeDistributed",
]
