"""kconf's streaming metrics against Keras 3: each case of
``tests/fixtures/metrics/make_metrics.py`` accumulated over the same three batches (some with
sample weights), the result after every batch equal to Keras's."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from kconf.engine import metric_classes

HERE = Path(__file__).parent / "fixtures" / "metrics"
FIXTURE = json.loads((HERE / "metrics.json").read_text())
META = FIXTURE["cases"]
DATA = np.load(HERE / "metrics.npz")


def _case_id(i: int) -> str:
    case = META[i]
    args = ",".join(f"{k}={v}" for k, v in case["args"].items())
    return f"{i}-{case['class']}({args}){'-weighted' if case['weighted'] else ''}"


def _batches(case):
    y, p = DATA[f"{case['data']}_y"], DATA[f"{case['data']}_p"]
    start = 0
    for size in FIXTURE["batches"]:
        sl = slice(start, start + size)
        yield y[sl], p[sl], (DATA["weights"][sl] if case["weighted"] else None)
        start += size


@pytest.mark.parametrize("i", range(len(META)), ids=_case_id)
def test_streamed_result_equals_keras_after_every_batch(i):
    case = META[i]
    metric = metric_classes.get({case["class"]: case["args"]})
    assert metric.name == re.sub(r"_\d+$", "", case["name"])  # Keras numbers repeated names
    got = []
    for y, p, w in _batches(case):
        metric.update(y, p, sample_weight=w)
        got.append(metric.result())
    np.testing.assert_allclose(got, DATA["results"][i], rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("i", range(len(META)), ids=_case_id)
def test_batch_stats_add_up_to_the_epoch_value(i):
    """What the training loop does: add each batch's statistics, one result at the end."""
    case = META[i]
    metric = metric_classes.get({case["class"]: case["args"]})
    total = sum(metric.stats(y, p, w) for y, p, w in _batches(case))
    np.testing.assert_allclose(metric.result_of(total), DATA["results"][i][-1],
                               rtol=2e-5, atol=2e-6)


def test_every_streamed_metric_class_has_a_keras_case():
    covered = {c["class"] for c in META}
    function_forms = {"CategoricalAccuracy", "SparseCategoricalAccuracy", "MeanSquaredError",
                      "MeanAbsoluteError"}  # the function metrics' class forms (test_metrics)
    assert set(metric_classes.METRIC_CLASSES) - function_forms <= covered


def test_reset_forgets_the_batches():
    metric = metric_classes.get("auc")
    case = META[0]
    y, p, _ = next(_batches(case))
    metric.update(1 - y, p)
    metric.reset()
    metric.update(y, p)
    np.testing.assert_allclose(metric.result(), DATA["results"][0][0], rtol=2e-5)


def test_metric_strings_give_keras_default_objects():
    assert metric_classes.get("auc").name == "auc"
    assert metric_classes.get("kld").name == "kl_divergence"
    assert metric_classes.get("accuracy") == "accuracy"  # resolved from shapes by the model
    with pytest.raises(KeyError):
        metric_classes.get("aucc")


def test_shape_checks_name_what_does_not_fit():
    auc = metric_classes.get("auc")
    assert "multi_label" in auc.check((None, 10), (None, 10))
    assert auc.check((None, 1), (None, 1)) is None
    assert metric_classes.get({"AUC": {"multi_label": True}}).check((None, 10), (None, 10)) is None
    assert "average" in metric_classes.get("f1_score").check((None, 3), (None, 3))
    assert "sparse_y_pred" in metric_classes.get({"MeanIoU": {"num_classes": 3}}).check(
        (None, 3), (None, 3))
    assert "class_id 5" in metric_classes.get({"Precision": {"class_id": 5}}).check(
        (None, 3), (None, 3))
