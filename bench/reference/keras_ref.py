"""Keras 3 reference for the workloads resnet_small and transformer_classifier, built with
the functional API as a Keras user writes them, trained with model.fit(..., verbose=0) and
timed per epoch by a callback (as ``shared/reference/keras_ref.py``).

  * resnet_small: configs/resnet_small.yaml layer for layer (Conv2D without bias,
    BatchNormalization, ReLU, add, GlobalAveragePooling2D, Dense softmax);
  * transformer_classifier: the Keras example "Text classification with Transformer"
    (configs/transformer_text.yaml), with the positions as a second input as in the config
    (the example computes ops.arange(maxlen) inside a layer: the same embedding lookup);
  * Adam() with Keras's defaults, sparse_categorical_crossentropy, metrics=["accuracy"].

Backend: KERAS_BACKEND (default here: torch).
Usage: KERAS_BACKEND=jax python keras_ref.py WORKLOAD [--epochs E] [--n N]
Prints one JSON line on stdout.
"""
import time

T_START = time.perf_counter()

import os  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

_args_pre = common.parse_args("keras").parse_args()
if os.environ["KERAS_BACKEND"] == "torch":
    import torch  # noqa: E402

    torch.set_num_threads(_args_pre.threads)

import keras  # noqa: E402
from keras import layers  # noqa: E402

T_IMPORTED = time.perf_counter()


def resnet_small():
    """The CIFAR-style ResNet-8 of configs/resnet_small.yaml."""
    def conv_bn(x, filters, kernel, strides=1):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same",
                          use_bias=False)(x)
        return layers.BatchNormalization()(x)

    image = keras.Input((32, 32, 3))
    x = layers.ReLU()(conv_bn(image, 16, 3))
    for filters, strides in ((16, 1), (32, 2), (64, 2)):
        h = layers.ReLU()(conv_bn(x, filters, 3, strides))
        h = conv_bn(h, filters, 3)
        s = x if strides == 1 else conv_bn(x, filters, 1, strides)
        x = layers.ReLU()(layers.add([s, h]))
    out = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    return keras.Model(image, out)


def transformer_classifier():
    """The Keras example's model (configs/transformer_text.yaml)."""
    tokens = keras.Input((common.MAXLEN,), dtype="int32")
    positions = keras.Input((common.MAXLEN,), dtype="int32")
    x = layers.add([layers.Embedding(common.VOCAB, common.EMBED)(tokens),
                    layers.Embedding(common.MAXLEN, common.EMBED)(positions)])
    attended = layers.MultiHeadAttention(num_heads=common.HEADS, key_dim=common.EMBED)(x, x)
    x = layers.LayerNormalization(epsilon=1e-6)(x + layers.Dropout(0.1)(attended))
    ff = layers.Dense(common.FF, activation="relu")(x)
    ff = layers.Dense(common.EMBED)(ff)
    x = layers.LayerNormalization(epsilon=1e-6)(x + layers.Dropout(0.1)(ff))
    x = layers.Dropout(0.1)(layers.GlobalAveragePooling1D()(x))
    x = layers.Dropout(0.1)(layers.Dense(20, activation="relu")(x))
    out = layers.Dense(2, activation="softmax")(x)
    return keras.Model([tokens, positions], out)


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        float(logs["loss"])  # make sure the epoch's work is materialized
        self.times.append(time.perf_counter() - self.t0)


def main():
    args = _args_pre
    keras.utils.set_random_seed(args.seed)
    n, batch, epochs = common.resolve_sizes(args)
    inputs, targets = common.make_data(args.workload, n, args.seed)
    model = {"resnet_small": resnet_small,
             "transformer_classifier": transformer_classifier}[args.workload]()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rss_setup = common.peak_rss_mb()

    x = inputs if len(inputs) > 1 else inputs[0]
    timer = EpochTimer()
    t_fit = time.perf_counter()
    hist = model.fit(x, targets[0], epochs=epochs, batch_size=batch, verbose=0,
                     callbacks=[timer])
    fit_total = time.perf_counter() - t_fit

    backend = keras.backend.backend()
    rec = {
        "workload": args.workload, "framework": f"keras-{backend}",
        "version": keras.__version__, "samples": n, "batch": batch, "epochs": epochs,
        "steps_per_epoch": -(-n // batch),
        "threads": torch.get_num_threads() if backend == "torch" else "xla-default",
        "tag": args.tag, "epoch_seconds": [round(e, 5) for e in timer.times],
        "fit_total_s": round(fit_total, 4), "final_loss": float(hist.history["loss"][-1]),
        "final_accuracy": float(hist.history["accuracy"][-1]),
        "params": model.count_params(),
        "import_s": round(T_IMPORTED - T_START, 3), "rss_after_setup_mb": round(rss_setup, 1),
    }
    rec["script_wall_s"] = round(time.perf_counter() - T_START, 3)
    common.emit(rec)


if __name__ == "__main__":
    main()
