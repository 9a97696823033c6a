"""``kconf docs``: the generated config reference lists every registered name with its
arguments, and the committed ``docs/config-reference.md`` is current."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kconf.cli import app
from kconf.config.callbacks import CALLBACK_SPECS
from kconf.config.compile import OPTIMIZER_SPECS, SCHEDULE_SPECS
from kconf.config.data import DATA_SOURCES, PREPROCESS_STEPS
from kconf.docs import reference_markdown
from kconf.engine import loss_classes, metric_classes
from kconf.engine.layers import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "config-reference.md"


@pytest.fixture(scope="module")
def text():
    return reference_markdown()  # builds every layer's argument model: a few seconds


def test_the_committed_reference_is_current(text):
    assert COMMITTED.read_text(encoding="utf-8") == text, (
        "docs/config-reference.md is out of date: regenerate it with "
        "`python -m kconf.cli docs`")


def test_kconf_docs_writes_every_section_and_name(tmp_path, text):
    out = tmp_path / "ref.md"
    result = CliRunner().invoke(app, ["docs", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == text
    headings = {line[4:] for line in text.splitlines() if line.startswith("### ")}
    names = [n for n, e in REGISTRY.items() if e.args is not None]
    for registry in (names, OPTIMIZER_SPECS, SCHEDULE_SPECS, loss_classes.LOSS_CLASSES,
                     metric_classes.METRIC_CLASSES, CALLBACK_SPECS, DATA_SOURCES,
                     PREPROCESS_STEPS):
        assert set(registry) <= headings, set(registry) - headings
    for section in ("`compile`", "`data`", "`fit`", "`model`", "`model.functional`"):
        assert section in headings
    assert "| `units` | integer > 0 | *required* | size of the output's last axis |" in text
    assert "| `learning_rate` (also `lr`) | number > 0 or {ClassName: {...}} | `0.01` |" in text
    assert "| `patience` | integer >= 0 | `0` |" in text  # EarlyStopping
    assert "| `kconf` | integer >= 0, <= 1 | `1` |" in text


def test_an_embedding_input_dim_is_not_called_a_shortcut(text):
    embedding = text.split("### Embedding\n", 1)[1].split("\n### ", 1)[0]
    assert "| `input_dim` | integer > 0 | *required* |  |" in embedding
    assert "| `input_length` | integer > 0 or null | `null` | Keras 2 shortcut" in embedding
