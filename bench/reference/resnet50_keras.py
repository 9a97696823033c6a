"""Save Keras's ResNet50 (``keras.applications.ResNet50(weights=None)``, 224x224x3, 1000
classes, random initial weights) as a ``.keras`` file, for kconf to import
(``kconf import-keras``) in ``bench/resnet50_inference.py``.

Usage: KERAS_BACKEND=jax python resnet50_keras.py OUT.keras
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402


def main():
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None)
    model.save(sys.argv[1])
    print(model.count_params())


if __name__ == "__main__":
    main()
