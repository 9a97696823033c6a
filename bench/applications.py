"""keras.applications end to end through kconf: import, predict, export, one SGD step.

    source /opt/kv/bin/activate; export PYTHONPATH=$PWD
    python bench/applications.py                        # every model (about an hour)
    python bench/applications.py MobileNetV2 ResNet50   # some
    python bench/applications.py --table                # bench/applications.md from the jsonl

Needs a Keras 3 interpreter (``--keras-python``, default ``/tmp/ref/bin/python``; backend
``--backend``, default jax); kconf never imports Keras. The JAX backend is the one whose
numerics kconf follows (shared/KERAS_SEMANTICS.md); on torch, Keras's BatchNormalization takes
the batch variance as E[x²] - E[x]², which differs from JAX's (and kconf's) E[(x - mean)²] in
the last bits, so its training steps are not the reference. For each model:

1. Keras (bench/applications_keras.py ``build``): ``keras.applications.NAME(weights=None,
   input_shape=(96, 96, 3) (``--size``), classes=10)``, compiled with
   SGD(learning_rate=0.1) and categorical crossentropy, saved as ``.keras``; its predictions
   on a fixed batch of 4, and every weight after one ``train_on_batch`` (Dropout off).
2. kconf (this script, in a subprocess of its own): ``import_keras`` (what ``kconf
   import-keras`` runs), then the model built from the written YAML and weights predicts the
   batch (inference), is exported with ``save_keras``, takes one SGD step on the batch
   (Dropout off), and its loss and every weight (moving statistics included) are compared
   with Keras's.
3. Keras (``check``): loads kconf's export and predicts the batch again.

Passing means ``|kconf - keras| <= ATOL + RTOL · |keras|`` for predictions, the export's
predictions, the loss and every weight. ``step_rel`` is the largest weight error divided by
the largest change one step made to any weight: rounding (float32 sums in another order,
amplified by a deep network's backward pass) shows as a small fraction of the step. Each model appends one line to
bench/applications.jsonl (the latest line per model counts), and bench/applications.md is
rewritten from it. Work files (``.keras``, weights; up to gigabytes for the largest models)
go to ``--work`` and are deleted after each model unless ``--keep``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
JSONL = HERE / "applications.jsonl"
TABLE = HERE / "applications.md"
KERAS_SIDE = HERE / "applications_keras.py"
ATOL, RTOL = 1e-5, 1e-4

#: Every architecture of keras.applications, smallest first within each family.
MODELS = (
    "VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2",
    "ResNet152V2", "MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large",
    "DenseNet121", "DenseNet169", "DenseNet201", "InceptionV3", "Xception",
    "InceptionResNetV2", *(f"EfficientNetB{i}" for i in range(8)),
    *(f"EfficientNetV2B{i}" for i in range(4)), "EfficientNetV2S", "ConvNeXtTiny",
    "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge",
)


def excess(got, want) -> float:
    """How far ``got`` is outside the tolerance of ``want``: max(|got - want| - ATOL -
    RTOL·|want|), <= 0 when it passes."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want) - ATOL - RTOL * np.abs(want)))


def max_error(got, want) -> float:
    return float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64))))


# --- the kconf side (run in a subprocess per model) ------------------------------------------


def kconf_side(name: str, work: Path, row: dict) -> None:
    """Import, predict, export and train one model that the Keras side wrote to ``work``,
    recording each result in ``row`` as it comes (a failure keeps the earlier ones)."""
    from kconf.engine.layers.dropout import Dropout
    from kconf.keras_io.h5 import read_keras_weights
    from kconf.keras_io.importer import convert, import_keras
    from kconf.train.trained import load_trained

    ref = dict(np.load(work / f"{name}.npz"))
    start = time.perf_counter()
    result = import_keras(work / f"{name}.keras", work / f"{name}.yaml")
    row.update(import_ok=True, kconf_params=result.params,
               import_s=round(time.perf_counter() - start, 1))
    model = load_trained(result.config_file, result.weights_file).model
    pred = model.predict(ref["x"], batch_size=len(ref["x"]))
    row.update(predict_err=max_error(pred, ref["pred"]), predict_ok=excess(pred, ref["pred"]) <= 0)
    model.save_keras(work / f"{name}.export.keras")
    row["exported"] = True
    before = {key: np.array(value) for key, value in model.named_weights().items()}
    for layer in model.graph.layers:
        if isinstance(layer, Dropout):
            layer.rate = 0.0
    start = time.perf_counter()
    loss = float(np.asarray(model.train_on_batch(ref["x"], ref["y"])).reshape(-1)[0])
    row["step_s"] = round(time.perf_counter() - start, 1)
    keras_names = convert(work / f"{name}.keras").keras_names
    after = read_keras_weights(model, work / f"{name}.after.weights.h5", keras_names)
    mine = model.named_weights()
    np.savez(work / f"{name}.kconf_after.npz", loss=np.float64(loss), **mine)
    worst, worst_excess, weight_err, step = None, -np.inf, 0.0, 0.0
    for key, want in after.items():
        over = excess(mine[key], want)
        weight_err = max(weight_err, max_error(mine[key], want))
        step = max(step, max_error(want, before[key]))
        if over > worst_excess:
            worst, worst_excess = key, over
    row.update(loss=loss, keras_loss=float(ref["loss"]), loss_err=abs(loss - float(ref["loss"])),
               weight_err=weight_err, worst_weight=worst, step_rel=weight_err / max(step, 1e-30),
               sgd_ok=excess(loss, ref["loss"]) <= 0 and worst_excess <= 0)


def compare_float64(name: str, work: Path) -> dict:
    """kconf's and Keras's float32 steps against Keras's float64 step (``--float64``): the
    largest weight error and the loss error of each; and kconf's own step in float64 against
    Keras's (``f64_same_*``): the same computation agrees to float64 rounding (about 1e-12),
    a different one shows at float32's size or more."""
    from kconf.keras_io.h5 import read_keras_weights
    from kconf.keras_io.importer import convert

    model = float64_model(name, work)
    keras_names = convert(work / f"{name}.keras").keras_names
    exact = read_keras_weights(model, work / f"{name}.after64.weights.h5", keras_names)
    keras32 = read_keras_weights(model, work / f"{name}.after.weights.h5", keras_names)
    loss64 = float(np.load(work / f"{name}.f64.npz")["loss"])
    row = {"f64_keras_weight_err": max(max_error(keras32[k], v) for k, v in exact.items())}
    del keras32
    with np.load(work / f"{name}.kconf_after.npz") as mine:
        row["f64_kconf_weight_err"] = max(max_error(mine[k], v) for k, v in exact.items())
        row["f64_kconf_loss_err"] = abs(float(mine["loss"]) - loss64)
    with np.load(work / f"{name}.npz") as ref:
        row["f64_keras_loss_err"] = abs(float(ref["loss"]) - loss64)
        loss = float(np.asarray(model.train_on_batch(ref["x"].astype(np.float64), ref["y"])
                                ).reshape(-1)[0])
    after = model.named_weights()
    row.update(f64_same_weight_err=max(max_error(after[k], v) for k, v in exact.items()),
               f64_same_loss_err=abs(loss - loss64),
               f64_same_ok=excess(loss, loss64) <= 0 and all(
                   excess(after[k], v) <= 0 for k, v in exact.items()))
    return row


def float64_model(name: str, work: Path):
    """The imported model built again in float64 (the engine computes in its weights' dtype;
    its inputs are cast to theirs: a Rescaling first would otherwise compute in float32),
    with the initial weights and Dropout off."""
    from kconf.api import build_model
    from kconf.engine.layers.dropout import Dropout
    from kconf.train.trained import read_weights, set_named_weights

    model = build_model(work / f"{name}.yaml")
    model.build(np.random.default_rng(0), dtype=np.float64)
    for tensor in model.graph.inputs:  # fed as float64 (a config's inputs are float32 at most)
        tensor.dtype = "float64"
    set_named_weights(model, read_weights(work / f"{name}.weights.npz"), f"{name}.weights.npz")
    for layer in model.graph.layers:
        if isinstance(layer, Dropout):
            layer.rate = 0.0
    return model


# --- the orchestration -----------------------------------------------------------------------


def keras_env(backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.pop("PYTHONPATH", None)  # the Keras interpreter never sees kconf
    return env


def run_model(name: str, args) -> dict:
    """One model through all three steps; a step that fails records its error."""
    work = Path(args.work)
    row = {"model": name, "backend": args.backend, "import_ok": False, "predict_ok": False,
           "export_ok": False, "sgd_ok": False}
    start = time.perf_counter()
    try:
        _step([args.keras_python, str(KERAS_SIDE), "build", name, str(work), str(args.size)],
              keras_env(args.backend), args.timeout, "keras build")
        with np.load(work / f"{name}.npz") as ref:
            row.update(size=int(ref["size"]), params=int(ref["params"]),
                       keras_s=round(float(ref["seconds"]), 1))
            want = ref["pred"]
        out = _step([sys.executable, __file__, "--kconf-side", name, "--work", str(work)],
                    dict(os.environ, PYTHONPATH=str(ROOT)), args.timeout, "kconf")
        row.update(json.loads(out.strip().splitlines()[-1]))
        if args.float64 and row.get("loss") is not None and not row["sgd_ok"]:
            _step([args.keras_python, str(KERAS_SIDE), "float64", name, str(work),
                   str(args.size)], keras_env(args.backend), args.timeout, "keras float64")
            out = _step([sys.executable, __file__, "--compare64", name, "--work", str(work)],
                        dict(os.environ, PYTHONPATH=str(ROOT)), args.timeout, "compare64")
            row.update(json.loads(out.strip().splitlines()[-1]))
        if row.get("exported"):
            _step([args.keras_python, str(KERAS_SIDE), "check", name, str(work)],
                  keras_env(args.backend), args.timeout, "keras check")
            with np.load(work / f"{name}.export.npz") as back:
                row.update(export_err=max_error(back["pred"], want),
                           export_ok=excess(back["pred"], want) <= 0)
    except Exception as error:  # noqa: BLE001 - the table records every failure
        row.setdefault("error", str(error)[-2000:])
    row["total_s"] = round(time.perf_counter() - start, 1)
    if not args.keep:
        for path in work.glob(f"{name}.*"):
            path.unlink()
    return row


def _step(command: list[str], env: dict, timeout: int, what: str) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {(done.stdout + done.stderr)[-1500:]}")
    return done.stdout


def latest_rows(path: Path = JSONL) -> dict[str, dict]:
    """The last line of each model in the jsonl, a JAX one where there is one (the backend
    whose numerics kconf follows)."""
    rows: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                old = rows.get(row["model"])
                if old is None or row["backend"] == "jax" or old["backend"] != "jax":
                    rows[row["model"]] = row
    return rows


def _yes(value) -> str:
    return "yes" if value else "**no**"


def _num(row: dict, key: str) -> str:
    value = row.get(key)
    return "" if value is None else f"{value:.1e}"


def _sgd(row: dict) -> str:
    """yes; else, with ``--float64``: "**differs**" where kconf's float64 step is not Keras's
    (a difference in what is computed), "rounding" where it is and kconf's float32 step is
    no farther from Keras's float64 step than Keras's own float32 step (within a factor 2),
    "rounding (N×)" where it is farther; "**no**" without a float64 check (rows from before
    ``f64_same_*``: their Keras "float64" step rounded BatchNormalization in float32)."""
    if row["sgd_ok"]:
        return "yes"
    if "f64_same_ok" not in row:
        return "**no**"
    if not row["f64_same_ok"]:
        return "**differs**"
    ratio = row["f64_kconf_weight_err"] / max(row["f64_keras_weight_err"], 1e-30)
    if ratio <= 2 and row["f64_kconf_loss_err"] <= 2 * row["f64_keras_loss_err"] + ATOL:
        return "rounding"
    return f"rounding ({ratio:.1f}×)"


def _float64(row: dict) -> str:
    if "f64_same_ok" not in row:
        return " | "
    return (f"{row['f64_same_weight_err']:.0e} (loss {row['f64_same_loss_err']:.0e}) | "
            f"{row['f64_kconf_weight_err']:.1e} / {row['f64_keras_weight_err']:.1e} (loss "
            f"{row['f64_kconf_loss_err']:.1e} / {row['f64_keras_loss_err']:.1e})")


def write_table(path: Path = TABLE, jsonl: Path = JSONL) -> None:
    rows = latest_rows(jsonl)
    lines = [
        "# keras.applications through kconf",
        "",
        "Written by `python bench/applications.py` (see its docstring): each model built by "
        "Keras 3 (JAX backend unless said) with `weights=None`, `classes=10`, at the input "
        "size given, saved as `.keras`,",
        "imported by kconf, predicted on a batch of 4 (inference), exported back and loaded by "
        "Keras, and trained one SGD step (learning rate 0.1, Dropout off) on that batch.",
        f"Pass: |kconf - Keras| <= {ATOL:g} + {RTOL:g}·|Keras| for every prediction, the loss "
        "and every weight after the step (BatchNormalization's moving statistics included).",
        "Errors are the largest absolute differences; err/step is the weight error over the "
        "largest change the step made to any weight.",
        "Where the step is outside the tolerance, `--float64` takes it again in float64 from "
        "the same weights, with Keras (JAX with x64, and Keras's type promotion let to give "
        "float64: bench/applications_keras.py `float64_promotion`) and with kconf (the model "
        "built in float64). \"kconf64 - Keras64\" is the largest weight (and loss) "
        "difference of the two float64 steps: float64 rounding (about 1e-12) where both "
        "compute the same. \"vs float64\" gives the largest weight (and loss) error of "
        "kconf's and of Keras's own float32 step against Keras's float64 step.",
        "SGD step: \"rounding\" where the float64 steps agree within the tolerance and "
        "kconf's float32 step is no farther from them than Keras's (within a factor 2); "
        "\"rounding (N×)\" where the float64 steps agree but kconf's float32 step is N "
        "times farther than Keras's (one draw: which ReLUs flip decides it, bench/README.md); "
        "\"**differs**\" where the float64 steps do not agree (a difference in what is "
        "computed); \"**no**\" where no float64 check was run.",
        "",
        "| model | size | params | import | predict err | export (err) | loss Keras | loss err "
        "| weight err | err/step | SGD step | kconf64 - Keras64 | vs float64: kconf / Keras "
        "| kconf s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {name: i for i, name in enumerate(MODELS)}
    for name in sorted(rows, key=lambda n: order.get(n, len(order))):
        row = rows[name]
        loss = row.get("keras_loss")
        lines.append(
            f"| {name}{'' if row['backend'] == 'jax' else ' (' + row['backend'] + ')'} | "
            f"{row.get('size', '')} | {row.get('params', 0):,} | "
            f"{_yes(row['import_ok'])} | {_num(row, 'predict_err')}"
            f"{'' if row['predict_ok'] else ' **no**'} | {_yes(row['export_ok'])} "
            f"({_num(row, 'export_err')}) | {'' if loss is None else f'{loss:.6f}'} | "
            f"{_num(row, 'loss_err')} | {_num(row, 'weight_err')} | {_num(row, 'step_rel')} | "
            f"{_sgd(row)} | {_float64(row)} | "
            f"{row.get('import_s', 0) + row.get('step_s', 0):.0f} |")
    failed = {n: r["error"] for n, r in rows.items() if r.get("error")}
    if failed:
        lines += ["", "Errors:", ""] + [f"- {n}: `{e.splitlines()[-1][:300]}`"
                                        for n, e in failed.items()]
    passed = sum(r["import_ok"] and r["predict_ok"] and r["export_ok"] and r["sgd_ok"]
                 for r in rows.values())
    rounding = sum(r["import_ok"] and r["predict_ok"] and r["export_ok"]
                   and _sgd(r).startswith("rounding") for r in rows.values())
    lines += ["", f"{passed} of {len(rows)} models pass every check; {rounding} more pass all "
                  "but the SGD step's tolerance, where kconf's float64 step is Keras's "
                  "(rounding)."]
    missing = [name for name in MODELS if name not in rows]
    if missing:
        lines += ["", f"Not run yet: {', '.join(missing)}."]
    if any(row["backend"] == "torch" for row in rows.values()):
        lines += ["", "(torch): Keras on its torch backend, whose BatchNormalization takes the "
                      "batch variance as E[x²] - E[x]² (JAX and kconf: E[(x - mean)²]); its "
                      "training step rounds differently."]
    lines.append("")
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="keras.applications names (default: all)")
    parser.add_argument("--keras-python", default="/tmp/ref/bin/python")
    parser.add_argument("--backend", default="jax", choices=("jax", "torch"))
    parser.add_argument("--size", type=int, default=96, help="input size (at least the "
                                                              "model's minimum)")
    parser.add_argument("--work", default=None, help="folder for the work files")
    parser.add_argument("--keep", action="store_true", help="keep the work files")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per step")
    parser.add_argument("--table", action="store_true", help="only rewrite the table")
    parser.add_argument("--float64", action="store_true", help="where the SGD step differs, "
                        "take it again in float64 with Keras and compare both to it")
    parser.add_argument("--kconf-side", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--compare64", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.kconf_side:
        row: dict = {}
        try:
            kconf_side(args.kconf_side, Path(args.work), row)
        except Exception:  # noqa: BLE001 - reported in the row
            row["error"] = traceback.format_exc()[-2000:]
        print(json.dumps(row))
        return 0
    if args.compare64:
        print(json.dumps(compare_float64(args.compare64, Path(args.work))))
        return 0
    if args.table:
        write_table()
        return 0
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"not keras.applications models: {', '.join(unknown)}")
    args.work = args.work or tempfile.mkdtemp(prefix="kconf_apps_")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    for name in args.models or MODELS:
        row = run_model(name, args)
        with JSONL.open("a") as out:
            out.write(json.dumps(row) + "\n")
        write_table()
        print(f"{name}: import {row['import_ok']} predict {row.get('predict_err')} export "
              f"{row['export_ok']} sgd {row['sgd_ok']} loss_err {row.get('loss_err')} "
              f"weight_err {row.get('weight_err')} {row.get('error', '')[-300:]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
