"""Image folders: Keras's file order, split and pixels (fixtures made with Keras 3 by
tests/fixtures/images/make_fixtures.py), label modes, streaming, and bad input."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from kconf import load_config
from kconf.cli import app
from kconf.data.images import ImageRows, index_directory, keras_order
from kconf.data.sources import load_splits
from kconf.data.stream import is_stream
from kconf.data.problem import DataWarning
from kconf.errors import ConfigError
from tests.fixtures.images.make_fixtures import SETTINGS

HERE = Path(__file__).resolve().parent / "fixtures" / "images"
FOLDER = HERE / "folder"
EXPECTED = np.load(HERE / "expected.npz")
runner = CliRunner()


def relative(files) -> list[str]:
    return [os.path.relpath(f, FOLDER) for f in files]


def test_files_are_listed_in_keras_order():
    files, labels, classes = index_directory(FOLDER, None, False, ())
    assert classes == list(EXPECTED["classes"])
    assert relative(files) == list(EXPECTED["sorted_files"])
    assert "cat/notes.txt" not in relative(files) and "cat/more/a.png" in relative(files)
    assert np.array_equal(labels, [classes.index(f.split("/")[0]) for f in relative(files)])


def test_seeded_shuffle_and_validation_split_are_keras():
    files, labels, _ = index_directory(FOLDER, None, False, ())
    parts = keras_order(files, labels, True, 7, 0.3, "both")
    for subset in ("training", "validation"):
        got_files, got_labels = parts[subset]
        assert relative(got_files) == list(EXPECTED[f"{subset}_files"])
        assert np.array_equal(got_labels, EXPECTED[f"{subset}_labels"])


@pytest.mark.parametrize("name,size,mode,interpolation,crop", SETTINGS,
                         ids=[s[0] for s in SETTINGS])
def test_pixels_are_keras(name, size, mode, interpolation, crop):
    files, _, _ = index_directory(FOLDER, None, False, ())
    rows = ImageRows(files, size, mode, interpolation, crop, ())
    got = rows.read(slice(None))
    want = EXPECTED[name]
    assert got.shape == want.shape and got.dtype == np.float32
    # float32 sums in another order: within a few units in the last place of 0-255 values
    np.testing.assert_allclose(got, want, rtol=0, atol=5e-4)
    assert np.abs(got - want).max() > 0 or interpolation == "nearest"  # really computed here
    some = np.array([5, 0, 11])
    np.testing.assert_array_equal(rows.read(some), got[some])  # any rows, any order


def write_config(tmp_path: Path, images: str, extra: str = "", units: int = 3,
                 loss: str = "sparse_categorical_crossentropy", shape="[6, 5, 3]") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"""name: imgs
seed: 0
model:
  sequential:
    - Rescaling: {{scale: 0.00392156862745098, input_shape: {shape}}}
    - Flatten: {{}}
    - Dense: {{units: {units}, activation: softmax}}
compile: {{optimizer: adam, loss: {loss}}}
data:
{images}{extra}
fit: {{epochs: 2, batch_size: 4}}
""")
    if not (tmp_path / "folder").exists():
        shutil.copytree(FOLDER, tmp_path / "folder")
    return path


def test_training_and_validation_subsets_from_the_config(tmp_path):
    path = write_config(tmp_path, """  train: {images: {path: folder, image_size: [6, 5], seed: 7,
                   validation_split: 0.3, subset: training}}
  validation: {images: {path: folder, image_size: [6, 5], seed: 7,
                        validation_split: 0.3, subset: validation}}
""")
    splits = load_splits(load_config(path))
    order = list(EXPECTED["sorted_files"])
    for split, subset in (("train", "training"), ("validation", "validation")):
        index = [order.index(f) for f in EXPECTED[f"{subset}_files"]]
        np.testing.assert_allclose(splits[split].x[0], EXPECTED["bilinear_rgb"][index],
                                   atol=5e-4, rtol=0)
        assert np.array_equal(splits[split].y[0], EXPECTED[f"{subset}_labels"])
        assert splits[split].y[0].dtype == np.int32 and splits[split].y[0].shape == (len(index),)


def test_subset_both_makes_train_and_validation_of_data_source(tmp_path):
    path = write_config(tmp_path, """  source: {images: {path: folder, image_size: [6, 5], seed: 7,
                    validation_split: 0.3, subset: both}}
""")
    splits = load_splits(load_config(path))
    assert [len(splits[s].y[0]) for s in ("train", "validation")] == [10, 3]
    assert np.array_equal(splits["validation"].y[0], EXPECTED["validation_labels"])


def test_label_modes_and_class_names(tmp_path):
    base = "  train: {images: {path: folder, image_size: [6, 5], shuffle: false, "
    cat = load_splits(load_config(write_config(
        tmp_path, base + "label_mode: categorical}}\n", loss="categorical_crossentropy")))
    y = cat["train"].y[0]
    assert y.dtype == np.float32 and y.shape == (13, 3) and np.array_equal(y.sum(1), np.ones(13))
    binary = load_splits(load_config(write_config(
        tmp_path, base + "label_mode: binary, class_names: [dog, bird]}}\n", units=1,
        loss="binary_crossentropy")))
    y = binary["train"].y[0]
    assert y.shape == (7, 1) and y.dtype == np.float32
    assert y[:, 0].tolist() == [0.0] * 3 + [1.0] * 4  # dog first: the order given


def test_streamed_images_train_bit_for_bit_like_decoded_ones(tmp_path):
    images = "  train: {images: {path: folder, image_size: [6, 5], seed: 3}}\n"
    weights = {}
    for stream in ("false", "true"):
        path = write_config(tmp_path, images.replace("seed: 3", f"seed: 3, stream: {stream}"))
        out = tmp_path / f"runs-{stream}"
        result = runner.invoke(app, ["train", str(path), "--output-dir", str(out)])
        assert result.exit_code == 0, result.output
        (run,) = out.glob("*/*")
        weights[stream] = dict(np.load(run / "weights.npz"))
    assert weights["true"].keys() == weights["false"].keys()
    for key in weights["true"]:
        assert np.array_equal(weights["true"][key], weights["false"][key]), key
    cfg = load_config(tmp_path / "c.yaml")
    assert is_stream(load_splits(cfg)["train"].x[0])


def invoke_validate(path: Path):
    result = runner.invoke(app, ["validate", str(path)])
    return result.exit_code, result.output


def test_a_missing_folder_is_located(tmp_path):
    path = write_config(tmp_path, "  train: {images: {path: nowhere, image_size: [6, 5]}}\n")
    code, output = invoke_validate(path)
    assert code == 2
    assert f"{path}:10:26: data.train.images.path: image folder not found: " in output
    assert "nowhere" in output and "Traceback" not in output


def test_an_empty_class_folder_is_named(tmp_path):
    path = write_config(tmp_path, "  train: {images: {path: folder, image_size: [6, 5]}}\n")
    (tmp_path / "folder" / "empty").mkdir()
    code, output = invoke_validate(path)
    assert code == 2
    assert "data.train.images.path: class folder without images" in output
    assert "folder/empty" in output


def test_a_corrupt_image_is_named_or_skipped_with_a_warning(tmp_path):
    path = write_config(tmp_path, "  train: {images: {path: folder, image_size: [6, 5]}}\n")
    (tmp_path / "folder" / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code, output = invoke_validate(path)
    assert code == 2
    assert "data.train.images.path: " in output and "broken.png is not a readable image" in output
    cfg = load_config(path, overrides={"data.train.images.on_bad_file": "skip"})
    with pytest.warns(DataWarning, match="skipped: .*broken.png is not a readable image"):
        splits = load_splits(cfg)
    assert len(splits["train"].x[0]) == 13
    result = runner.invoke(app, ["train", str(path), "data.train.images.on_bad_file=skip",
                                 "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "warning: skipped: " in result.output and "broken.png" in result.output


def test_arguments_are_checked_as_keras_does(tmp_path):
    path = write_config(tmp_path, "  train: {images: {path: folder, validation_split: 0.2}}\n")
    code, output = invoke_validate(path)
    assert code == 2 and "validation_split needs subset" in output
    path = write_config(tmp_path, "  train: {images: {path: folder, interpolation: area}}\n")
    code, output = invoke_validate(path)
    assert code == 2 and "data.train.images.interpolation" in output and "bilinear" in output
    path = write_config(tmp_path, "  train: {images: {path: folder, label_mode: binary}}\n",
                        units=1, loss="binary_crossentropy")
    code, output = invoke_validate(path)
    assert code == 2 and "label_mode: binary needs exactly 2 classes" in output
    path = write_config(tmp_path, "  train: {images: {path: folder, class_names: [cat, cow]}}\n")
    code, output = invoke_validate(path)
    assert code == 2 and "data.train.images.class_names: class_names ['cow']" in output


def test_an_image_that_breaks_during_a_streamed_run_stops_it_with_exit_2(tmp_path):
    """A file rewritten while the run streams it: named, exit 2, the folder keeps its epochs."""
    from kconf.train.run import prepare_run
    from kconf.train.callbacks import Callback

    path = write_config(tmp_path, "  train: {images: {path: folder, image_size: [6, 5], "
                                  "stream: true}}\n")
    cfg = load_config(path, overrides={"fit.epochs": 3})
    run = prepare_run(cfg, tmp_path / "runs")
    victim = tmp_path / "folder" / "dog" / "im0.jpg"

    class Break(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                victim.write_bytes(b"garbage")

    try:
        with pytest.raises(ConfigError, match="im0.jpg changed .* before epoch 2"):
            run.fit(callbacks=[Break()])
    finally:
        run.close()
    status = json.loads((run.run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "im0.jpg changed" in status["error"]
    from kconf.train.checkpoint import load_checkpoint

    assert load_checkpoint(run.run_dir / "checkpoints" / "last.npz").epoch == 1


def test_a_streamed_image_run_resumes_bit_for_bit(tmp_path):
    images = ("  train: {images: {path: folder, image_size: [6, 5], stream: true, "
              "shuffle_buffer: 4}}\n")
    path = write_config(tmp_path, images)

    def train(*args):
        out = tmp_path / f"runs{len(list(tmp_path.glob('runs*')))}"
        result = runner.invoke(app, ["train", str(path), *args, "--output-dir", str(out)])
        assert result.exit_code == 0, result.output
        (run,) = out.glob("*/*")
        return run

    whole = train("fit.epochs=3")
    part = train("fit.epochs=1")
    result = runner.invoke(app, ["train", "--resume", str(part), "fit.epochs=3"])
    assert result.exit_code == 0, result.output
    a, b = np.load(whole / "weights.npz"), np.load(part / "weights.npz")
    assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
