"""The Keras side of bench/applications.py: run with Keras 3, OUTSIDE kconf's environment.

    KERAS_BACKEND=jax /tmp/ref/bin/python bench/applications_keras.py build ResNet50 WORK 96
    KERAS_BACKEND=jax /tmp/ref/bin/python bench/applications_keras.py check ResNet50 WORK

``build`` makes ``keras.applications.<NAME>(weights=None, input_shape=(S, S, 3),
classes=10)``, compiles it with SGD(learning_rate=0.1) and categorical crossentropy (run
eagerly unless ``KCONF_APPS_JIT=1``: no compilation for one step), and writes to WORK:

- ``NAME.keras``: the model with its initial weights (what ``kconf import-keras`` reads);
- ``NAME.npz``: ``x`` (a fixed batch), ``pred`` (Keras's predictions on it, inference),
  ``y`` (one-hot labels), ``loss`` (the loss of one ``train_on_batch(x, y)``);
- ``NAME.after.weights.h5``: every weight after that one SGD step (BatchNormalization's moving
  statistics included), taken with every Dropout's rate set to 0 (kconf and Keras draw
  different random masks; kconf's side does the same), the archive keeping the real rates.

``float64`` takes the same step in float64 (the reference that tells rounding from a bug).
``layers`` and ``layers64`` write every layer's output in a training pass, in float32 and
float64 (bench/applications_layers.py). ``check`` loads ``NAME.export.keras`` (written by
kconf) with ``keras.saving.load_model`` and writes its predictions on ``x`` to
``NAME.export.npz``.

Never imported by kconf; kconf never imports Keras.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

#: The smallest input size each model takes (32 for the others).
MINIMUM_SIZES = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}
#: Models whose graph holds their own preprocessing (Rescaling/Normalization): fed 0..255.
RAW_PIXELS = ("EfficientNet", "ConvNeXt", "MobileNetV3")
BATCH = 4
CLASSES = 10
LEARNING_RATE = 0.1


def batch(name: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed input batch and one-hot labels of a model (seeded by nothing but the size)."""
    rng = np.random.default_rng(size)
    x = rng.uniform(-1.0, 1.0, (BATCH, size, size, 3)).astype(np.float32)
    if name.startswith(RAW_PIXELS):
        x = ((x + 1.0) * 127.5).astype(np.float32)
    y = np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, BATCH)]
    return x, y


def build(name: str, work: Path, size: int) -> None:
    import keras

    size = max(size, MINIMUM_SIZES.get(name, 32))
    start = time.perf_counter()
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3),
                                              classes=CLASSES)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
                  loss="categorical_crossentropy",
                  jit_compile=os.environ.get("KCONF_APPS_JIT", "0") == "1")
    model.save(work / f"{name}.keras")
    x, y = batch(name, size)
    pred = np.asarray(model.predict(x, verbose=0))
    dropout_off(model)
    loss = float(np.asarray(model.train_on_batch(x, y)))
    model.save_weights(work / f"{name}.after.weights.h5")
    np.savez(work / f"{name}.npz", x=x, y=y, pred=pred, loss=np.float64(loss),
             params=np.int64(model.count_params()), size=np.int64(size),
             seconds=np.float64(time.perf_counter() - start))


def dropout_off(model) -> None:
    """Every Dropout's rate set to 0 (kconf and Keras would draw different masks)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0


def float64(name: str, work: Path, size: int) -> None:
    """The SGD step again in float64 (JAX with x64), from the same initial weights: the
    reference that tells float32 rounding from a bug. Writes NAME.after64.weights.h5 and
    NAME.f64.npz (the loss)."""
    import keras

    model = float64_model(name, work, size)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
                  loss="categorical_crossentropy", jit_compile=False)
    dropout_off(model)
    with np.load(work / f"{name}.npz") as ref:
        x, y = ref["x"].astype("float64"), ref["y"].astype("float64")
    loss = float(np.asarray(model.train_on_batch(x, y)))
    model.save_weights(work / f"{name}.after64.weights.h5")
    np.savez(work / f"{name}.f64.npz", loss=np.float64(loss))


def float64_model(name: str, work: Path, size: int):
    """The model of NAME.keras built again in float64 (JAX with x64, Keras's promotion let to
    give float64: ``float64_promotion``), with its initial weights."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import keras

    float64_promotion()
    initial = keras.saving.load_model(work / f"{name}.keras")
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    size = max(size, MINIMUM_SIZES.get(name, 32))
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3),
                                              classes=CLASSES)
    model.set_weights([w.astype("float64") for w in initial.get_weights()])
    return model


def layers(name: str, work: Path, size: int = 0, dtype: str = "float32") -> None:
    """Every layer's output on ``x`` in a training pass (BatchNormalization on the batch's
    statistics, as in the step), in float32 or (``layers64``) float64: NAME.layers32.npz or
    NAME.layers64.npz, by Keras layer name (bench/applications_layers.py compares them)."""
    import keras

    model = (keras.saving.load_model(work / f"{name}.keras") if dtype == "float32"
             else float64_model(name, work, size))
    with np.load(work / f"{name}.npz") as ref:
        x = ref["x"].astype(dtype)
    dropout_off(model)  # as in the step
    inner = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [layer.output for layer in inner])
    outputs = probe(x, training=True)
    np.savez(work / f"{name}.layers{dtype[-2:]}.npz",
             **{layer.name: np.asarray(out) for layer, out in zip(inner, outputs)})


def float64_promotion() -> None:
    """Let Keras's type promotion give float64. Keras 3 (not on TensorFlow) maps every
    64-bit result of ``backend.result_type`` to its 32-bit type, and layers and ops that
    choose their computation's dtype with it (``result_type(x.dtype, "float32")``, "to upcast
    float16") then compute in float32 even on float64 tensors: BatchNormalization and
    GroupNormalization, ``ops.mean`` and ``ops.var`` (GlobalAveragePooling2D), among others.
    Without this, a "float64" step still rounds every BatchNormalization to float32."""
    from keras.src.backend.common import dtypes

    dtypes.BIT64_TO_BIT32_DTYPE.pop("float64", None)


def check(name: str, work: Path, size: int = 0) -> None:
    import keras

    model = keras.saving.load_model(work / f"{name}.export.keras")
    with np.load(work / f"{name}.npz") as ref:
        x = ref["x"]
    np.savez(work / f"{name}.export.npz", pred=np.asarray(model.predict(x, verbose=0)))


if __name__ == "__main__":
    step, model_name, folder, *wanted = sys.argv[1:]
    steps = {"build": build, "check": check, "float64": float64, "layers": layers,
             "layers64": lambda *args: layers(*args, dtype="float64")}
    steps[step](model_name, Path(folder), int((wanted or [0])[0]))
