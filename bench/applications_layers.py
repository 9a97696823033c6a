"""kconf's and Keras's float32 forward pass layer by layer against float64, from the work files
of ``bench/applications.py --float64 --keep``: where a float32 SGD step misses, whether kconf
rounds more than Keras or the miss is a ReLU lottery.

    source /opt/kv/bin/activate; export PYTHONPATH=$PWD
    python bench/applications.py DenseNet121 --float64 --keep --work /tmp/apps
    python bench/applications_layers.py DenseNet121 --work /tmp/apps [--every 1]
    python bench/applications_layers.py DenseNet121 --work /tmp/apps --noise 1e-7 --seeds 8
    python bench/applications_layers.py DenseNet121 --work /tmp/apps --exact none Conv2D:f BatchNormalization

Why the forward pass. A float32 step's weight error against float64 is decided less by how
much each operation rounds than by where ReLU's mask flips: a pre-activation within float32's
error of zero is positive on one side and not on the other, so its whole output gradient is
passed back on one side and dropped on the other, and every layer before it gets a different
gradient (DenseNet121: flips, two at ``pool4_relu`` among them, took the gradients' median
relative error from about 1e-6 to 5e-3). Which pre-activations flip is chance: the float64 step with relative noise of
1e-7 on every convolution's output missed by 1.7e-6 to 5.6e-3 in the weights over eight
seeds (``--noise``, kconf alone: the spread of the step's error under roundings of one size;
bench/README.md). The largest weight error of one step is then a draw of that chance,
and a ratio of two draws (kconf's and Keras's) says little. The forward error is continuous:
its size at every layer says how much each side rounds, and it sets how often flips happen.

For each layer, in kconf's order: the root-mean-square error of its float32 output against
float64, relative to the float64 output's root mean square, for kconf and for Keras (the
outputs of a training pass: BatchNormalization on the batch's statistics); the largest
difference of the two float64 outputs (the same computation: about 1e-15); and at each
ReLU, how many outputs are positive on one side only. The summary gives the geometric mean
over layers of kconf's error over Keras's.

``--exact`` (kconf alone) takes the float32 step's gradients with chosen kinds of layer
computed in float64 (their inputs, weights and output gradients cast up, their outputs and
input gradients rounded back to float32; ``Conv2D:f`` only the forward pass, ``Conv2D:b``
only the backward pass, ``A+B`` both kinds, ``none`` none, ``all`` every layer and the loss;
``-NAME:f`` keeps layer NAME's forward pass in float32: ``all+-conv1_conv:f``) and gives their errors against the float64 gradients: whose rounding makes the miss.

Keras's outputs come from bench/applications_keras.py (``layers``, ``layers64``), written to
the work folder as NAME.layers32.npz and NAME.layers64.npz (hundreds of MB for a DenseNet).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from applications import KERAS_SIDE, _step, float64_model, keras_env  # noqa: E402


def kconf_outputs(model, x) -> dict[str, np.ndarray]:
    """Every layer's output in a training pass of ``model`` on ``x``, by kconf layer name."""
    outputs: dict[str, np.ndarray] = {}
    for layer in model.graph.layers:
        forward = layer.forward

        def recording(inputs, _forward=forward, _name=layer.name, **options):
            y, backward = _forward(inputs, **options)
            outputs[_name] = np.array(y[0] if isinstance(y, list) else y)
            return y, backward

        layer.forward = recording
    with model._ops_step():
        model._forward([x], training=True)
    return outputs


def float32_model(name: str, work: Path):
    """The imported model in float32 with its initial weights, Dropout off."""
    from kconf.engine.layers.dropout import Dropout
    from kconf.train.trained import load_trained

    model = load_trained(work / f"{name}.yaml", work / f"{name}.weights.npz").model
    for layer in model.graph.layers:
        if isinstance(layer, Dropout):
            layer.rate = 0.0
    return model


def gradients(model, x, y) -> dict[str, np.ndarray]:
    """Every weight gradient of one training pass of ``model`` on ``(x, y)``, in float64."""
    with model._ops_step():
        model._zero_grads()
        outputs, backward = model._forward([x], training=True)
        _, _, douts = model._losses([y], outputs)
        backward(douts)
    return {f"{layer.name}/{key}": np.array(grad, np.float64)
            for layer in model.graph.layers for key, grad in layer.grads.items()}


def in_float64(layer, part: str = "fb") -> None:
    """Make ``layer`` of a float32 model compute in float64 (``f``: its forward pass, ``b``:
    its backward pass), rounding what leaves it back to float32 (``--exact``)."""
    forward = layer.forward

    def cast(value, dtype):
        if isinstance(value, (list, tuple)):
            return [cast(v, dtype) for v in value]
        return value if value is None else value.astype(dtype)

    def run(call, value):
        """``call(value)`` with the layer's weights in float64 (state written back)."""
        weights = dict(layer.weights)
        layer.weights.update({key: w.astype(np.float64) for key, w in weights.items()})
        try:
            return call(cast(value, np.float64))
        finally:
            for key, w in weights.items():
                if key.startswith("moving"):
                    w[...] = layer.weights[key]
            layer.weights.update(weights)

    def mixed(inputs, **options):
        y32, backward32 = forward(inputs, **options)
        y64, backward64 = run(lambda x: forward(x, **options), inputs)

        def backward(dy, **flags):
            return cast(run(lambda d: backward64(d, **flags), dy), np.float32)

        return (cast(y64, np.float32) if "f" in part else y32,
                backward if "b" in part else backward32)

    layer.forward = mixed


def loss_in_float64(model) -> None:
    """Make the float32 model's loss compute in float64, its output gradients rounded back."""
    losses = model._losses

    def in_float64(ys, outputs):
        total, per_output, douts = losses([y.astype(np.float64) for y in ys],
                                          [out.astype(np.float64) for out in outputs])
        return total, per_output, [d.astype(np.float32) for d in douts]

    model._losses = in_float64


def exact_parts(name: str, work: Path, variants: list[str]) -> None:
    """The float32 step's gradients with the layer kinds of each variant in float64 (see the
    module docstring), against the float64 gradients."""
    with np.load(work / f"{name}.npz") as ref:
        x, y = ref["x"], ref["y"]
    exact = gradients(float64_model(name, work), x.astype(np.float64), y.astype(np.float64))
    for variant in variants:
        model = float32_model(name, work)
        items = [item if ":" in item else item + ":fb" for item in variant.split("+")]
        kinds = dict(item.split(":") for item in items if not item.startswith("-"))
        kept = dict(item[1:].split(":") for item in items if item.startswith("-"))
        for layer in model.graph.layers:
            part = "fb" if "all" in kinds else kinds.get(type(layer).__name__, "")
            part = "".join(p for p in part if p not in kept.get(layer.name, ""))
            if part:
                in_float64(layer, part)
        if "all" in kinds or "loss" in kinds:
            loss_in_float64(model)
        report(name, variant, exact, gradients(model, x, y))


def report(name: str, what: str, exact: dict, got: dict) -> None:
    """One line: the largest gradient error (times the learning rate, 0.1: the step's weight
    error) and the median over weights of the relative gradient error."""
    errors = {key: np.abs(got[key] - want) for key, want in exact.items()}
    worst = max(errors, key=lambda key: errors[key].max())
    relative = [np.linalg.norm(errors[key]) / max(np.linalg.norm(want), 1e-300)
                for key, want in exact.items()]
    print(f"{name} {what}: weight error {0.1 * errors[worst].max():.1e} ({worst}), median "
          f"relative gradient error {np.median(relative):.1e}", flush=True)


def noise_spread(name: str, work: Path, sigma: float, seeds: int) -> None:
    """The float64 step's gradients with every convolution's output multiplied by
    ``1 + sigma·N(0, 1)`` (a rounding of float32's size, drawn again for each seed), against
    the exact float64 gradients: the largest error (times the learning rate, 0.1, the weight
    error of the step) and the median over weights of the relative error."""
    from kconf.engine.layers.convolution import Convolution

    with np.load(work / f"{name}.npz") as ref:
        x, y = ref["x"].astype(np.float64), ref["y"].astype(np.float64)
    exact = gradients(float64_model(name, work), x, y)
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        model = float64_model(name, work)
        for layer in model.graph.layers:
            if isinstance(layer, Convolution):
                def noisy(inputs, _forward=layer.forward, **options):
                    out, backward = _forward(inputs, **options)
                    return out * (1 + sigma * rng.standard_normal(out.shape)), backward

                layer.forward = noisy
        report(name, f"seed {seed}", exact, gradients(model, x, y))


def relative_rms(got, want) -> float:
    want = np.asarray(want, np.float64)
    scale = np.sqrt(np.mean(want * want))
    return float(np.sqrt(np.mean((np.asarray(got, np.float64) - want) ** 2)) / max(scale, 1e-300))


def compare(name: str, work: Path, every: int) -> None:
    """Print the per-layer table and the summary (see the module docstring)."""
    from kconf.engine.layers.activation import Activation
    from kconf.engine.layers.relu import ReLU
    from kconf.keras_io.importer import convert

    with np.load(work / f"{name}.npz") as ref:
        x = ref["x"]
    mine64 = kconf_outputs(float64_model(name, work), x.astype(np.float64))
    model = float32_model(name, work)
    mine32 = kconf_outputs(model, x)
    keras_names = convert(work / f"{name}.keras").keras_names
    keras32 = np.load(work / f"{name}.layers32.npz")
    keras64 = np.load(work / f"{name}.layers64.npz")
    print(f"{'layer':34s} {'kconf':>9s} {'Keras':>9s} {'kconf64-Keras64':>16s} ReLU flips "
          "kconf / Keras")
    ratios, flips, same = [], [0, 0], 0.0
    for number, layer in enumerate(model.graph.layers):
        key = keras_names.get((None, layer.name), layer.name)
        if layer.name not in mine32 or key not in keras64.files:
            continue
        want, theirs = mine64[layer.name], keras64[key].astype(np.float64)
        ours, keras = relative_rms(mine32[layer.name], want), relative_rms(keras32[key], theirs)
        diff = float(np.max(np.abs(want - theirs))) / max(float(np.max(np.abs(want))), 1e-300)
        same = max(same, diff)
        if ours > 0 and keras > 0:
            ratios.append(ours / keras)
        flipped = ""
        relu = isinstance(layer, ReLU) or (isinstance(layer, Activation)
                                           and getattr(layer.activation, "__name__", "") == "relu")
        if relu:
            counts = [int(np.sum((side > 0) != (want > 0)))
                      for side in (mine32[layer.name], keras32[key])]
            flips = [flips[0] + counts[0], flips[1] + counts[1]]
            flipped = f"{counts[0]} / {counts[1]}" if any(counts) else ""
        if number % every == 0 or flipped or number == len(model.graph.layers) - 1:
            print(f"{layer.name:34s} {ours:9.2e} {keras:9.2e} {diff:16.1e} {flipped}")
    print(f"{name}: float32 forward error, kconf over Keras, geometric mean over {len(ratios)} "
          f"layers: {np.exp(np.mean(np.log(ratios))):.2f}; ReLU flips kconf {flips[0]}, Keras "
          f"{flips[1]}; float64 outputs differ by {same:.1e} at most (relative)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model whose work files are in --work")
    parser.add_argument("--work", required=True, help="the work folder of a --keep run")
    parser.add_argument("--keras-python", default="/tmp/ref/bin/python")
    parser.add_argument("--backend", default="jax", choices=("jax", "torch"))
    parser.add_argument("--every", type=int, default=10, help="print every N-th layer (and "
                                                               "every layer with a flip)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per Keras step")
    parser.add_argument("--noise", type=float, default=None, help="instead: the float64 step "
                        "with this relative noise on every convolution's output (kconf alone)")
    parser.add_argument("--seeds", type=int, default=8, help="noise draws for --noise")
    parser.add_argument("--exact", nargs="+", default=None, help="instead: the float32 step "
                        "with these layer kinds in float64 (kconf alone; see the docstring)")
    args = parser.parse_args(argv)
    work = Path(args.work)
    if args.noise is not None:
        noise_spread(args.model, work, args.noise, args.seeds)
        return 0
    if args.exact:
        exact_parts(args.model, work, args.exact)
        return 0
    with np.load(work / f"{args.model}.npz") as ref:
        size = str(int(ref["size"]))
    for step, suffix in (("layers", "32"), ("layers64", "64")):
        if not (work / f"{args.model}.layers{suffix}.npz").exists():
            _step([args.keras_python, str(KERAS_SIDE), step, args.model, str(work), size],
                  keras_env(args.backend), args.timeout, f"keras {step}")
    compare(args.model, work, args.every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
