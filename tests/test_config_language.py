"""The config language for many experiments: ``${...}`` interpolation, ``include:``, and the
``kconf:`` version key; each bad input one ``FILE:LINE:COL: path: message`` with exit 2."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kconf.cli import app
from kconf.config import load_config
from kconf.errors import ConfigError

runner = CliRunner()

BASE = """\
name: base
model:
  sequential:
    - Dense: {units: 8, activation: relu, input_shape: [4]}
    - Dense: {units: 3, activation: softmax}
compile:
  optimizer: {Adam: {learning_rate: 0.01}}
  loss: categorical_crossentropy
  metrics: [accuracy]
data:
  train: {random: {samples: 16, x: [4], classes: 3, one_hot: true}}
fit: {epochs: 2, batch_size: 8}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def where(path: Path, needle: str, nth: int = 0) -> str:
    """``FILE:LINE:COL`` of the ``nth`` occurrence of ``needle`` in the file."""
    text = path.read_text()
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    line = text.count("\n", 0, at) + 1
    return f"{path}:{line}:{at - (text.rfind(chr(10), 0, at) + 1) + 1}"


def errors(path: Path, *overrides: str) -> list[str]:
    """The error lines of ``kconf config`` (which must exit with status 2)."""
    result = runner.invoke(app, ["config", str(path), *overrides])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    return [line for line in lines if not line.endswith(f"errors in {path}")]


def resolved(path: Path, *overrides: str) -> dict:
    result = runner.invoke(app, ["config", str(path), *overrides])
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.output)


# --- interpolation -------------------------------------------------------------------------


def test_references_keep_their_type_and_fill_text(tmp_path, monkeypatch):
    monkeypatch.setenv("KCONF_TEST_SAMPLES", "24")
    monkeypatch.delenv("KCONF_TEST_UNSET", raising=False)
    # inside YAML's flow style ({...}, [...]) a reference is quoted: "{" is YAML's there
    path = write(tmp_path, "c.yaml", BASE
                 .replace("name: base", "name: run_${fit.batch_size}_"
                                        "${model.sequential[0].Dense.activation}")
                 .replace("samples: 16", "samples: '${env:KCONF_TEST_SAMPLES}'")
                 .replace("units: 3", "units: '${data.train.random.classes}'")
                 .replace("epochs: 2", "epochs: '${env:KCONF_TEST_UNSET,3}'")
                 .replace("x: [4]", "x: \"${model.sequential.0.Dense.input_shape}\""))
    data = resolved(path)
    assert data["name"] == "run_8_relu"
    assert data["data"]["train"]["random"]["samples"] == 24  # an env number is a number
    assert data["data"]["train"]["random"]["x"] == [4]  # a list stays a list
    assert data["model"]["sequential"][1]["Dense"]["units"] == 3
    assert data["fit"]["epochs"] == 3  # the default of an unset variable


def test_chained_references_a_mapping_and_a_literal_dollar(tmp_path):
    path = write(tmp_path, "c.yaml", BASE.replace(
        "  train: {random: {samples: 16, x: [4], classes: 3, one_hot: true}}",
        "  train: {random: {samples: 16, x: [4], classes: 3, one_hot: true}}\n"
        "  validation: ${data.train}\n  test: ${data.validation}")
        .replace("name: base", "name: \"a$${b}\""))
    result = runner.invoke(app, ["config", str(path)])
    assert result.exit_code == 2  # 'a${b}' is no run name: the literal ${ reached validation
    assert f"{path}:1:7: name: must be a simple name" in result.output
    assert "got 'a${b}'" in result.output
    data = resolved(path, "name=plain")
    assert data["data"]["test"] == data["data"]["validation"] == data["data"]["train"]


def test_references_see_overrides(tmp_path):
    path = write(tmp_path, "c.yaml", BASE.replace("epochs: 2", "epochs: '${fit.batch_size}'"))
    assert resolved(path)["fit"]["epochs"] == 8
    assert resolved(path, "fit.batch_size=5")["fit"]["epochs"] == 5


def test_an_invalid_referenced_value_is_reported_at_the_reference(tmp_path):
    path = write(tmp_path, "c.yaml", BASE.replace("epochs: 2",
                                                  "epochs: '${data.train.random.x}'"))
    (line,) = errors(path)
    assert line == f"{where(path, chr(39) + '${data')}: fit.epochs: expected an integer, got [4]"


@pytest.mark.parametrize("value, message, at", [
    ("${fit.batch_sise}", "unknown reference ${fit.batch_sise}: fit has no key 'batch_sise' "
     "(did you mean 'batch_size'?)", "${fit"),
    ("x_${fit.epoch}", "unknown reference ${fit.epoch}: fit has no key 'epoch' (did you mean "
     "'epochs'?)", "${fit"),
    ("${model.sequential[5].Dense}", "unknown reference ${model.sequential[5].Dense}: index 5 "
     "is out of range, model.sequential has 2 items", "${model"),
    ("${fit.epochs.x}", "unknown reference ${fit.epochs.x}: fit.epochs is 2, which has no 'x'",
     "${fit"),
    ("${env:KCONF_TEST_UNSET}", "environment variable KCONF_TEST_UNSET is not set (set it, or "
     "give a default: ${env:KCONF_TEST_UNSET,default})", "${env"),
    ("${}", "empty reference '${}'", "${}"),
    ("${fit..epochs}", "malformed reference ${fit..epochs}", "${fit"),
    ("a ${fit.epochs", "'${' without a closing '}' (write $${ for a literal ${)", "${fit"),
    ("${oc:fit}", "unknown resolver 'oc' in ${oc:fit}", "${oc"),
    ("n_${fit}", "${fit} is a mapping, which cannot be written inside text", "${fit}"),
])
def test_bad_references(tmp_path, monkeypatch, value, message, at):
    monkeypatch.delenv("KCONF_TEST_UNSET", raising=False)
    path = write(tmp_path, "c.yaml", BASE.replace("name: base", f"name: \"{value}\""))
    (line,) = errors(path)
    assert line.startswith(f"{where(path, at)}: name: {message}"), line


def test_a_reference_cycle_is_one_error(tmp_path):
    path = write(tmp_path, "c.yaml", BASE.replace(
        "fit: {epochs: 2, batch_size: 8}", "fit: {epochs: '${fit.batch_size}', "
        "batch_size: '${fit.epochs}'}"))
    (line,) = errors(path)
    assert line == (f"{where(path, '${fit.epochs}')}: fit.batch_size: reference cycle: "
                    "fit.epochs -> fit.batch_size -> fit.epochs")
    path = write(tmp_path, "d.yaml", BASE.replace("fit: {epochs: 2, batch_size: 8}",
                                                  "fit: {epochs: 2, callbacks: ['${fit}']}"))
    (line,) = errors(path)
    assert line == (f"{where(path, '${fit}')}: fit.callbacks[0]: reference cycle: "
                    "fit.callbacks[0] refers to fit, which holds it")


# --- includes --------------------------------------------------------------------------------


def test_includes_merge_in_order_with_the_file_winning(tmp_path):
    write(tmp_path, "common/base.yaml", BASE)
    write(tmp_path, "common/optim/sgd.yaml", """\
        include: ../deep.yaml
        compile:
          optimizer: {SGD: {learning_rate: 0.1, momentum: 0.9}}
        data:
          train: {npz: {path: data.npz}}
        """)
    write(tmp_path, "common/deep.yaml", "fit: {shuffle: false}\nseed: 7\n")
    path = write(tmp_path, "exp/run.yaml", """\
        include: [../common/base.yaml, ../common/optim/sgd.yaml]
        name: run
        model:
          sequential:
            - Dense: {units: 3, activation: softmax, input_shape: [4]}
        fit: {epochs: 1}
        data:
          train: {random: {samples: 4, x: [4], classes: 3, one_hot: true}}
        """)
    data = resolved(path)
    assert data["kconf"] == 1 and data["name"] == "run" and data["seed"] == 7
    assert data["compile"]["optimizer"]["SGD"]["learning_rate"] == 0.1  # a choice replaced
    assert list(data["data"]["train"]) == ["random"]  # ...twice: random, npz, random
    assert data["compile"]["loss"] == "categorical_crossentropy"  # merged, not replaced
    assert len(data["model"]["sequential"]) == 1  # lists are replaced
    assert data["fit"]["epochs"] == 1 and data["fit"]["batch_size"] == 8
    assert data["fit"]["shuffle"] is False
    assert resolved(path, "fit.batch_size=2")["fit"]["batch_size"] == 2  # overrides last


def test_an_error_in_an_included_file_points_into_it(tmp_path):
    base = write(tmp_path, "base.yaml", BASE.replace("units: 8", "units: -8"))
    path = write(tmp_path, "run.yaml", "include: base.yaml\nseed: 1\n")
    (line,) = errors(path)
    assert line.startswith(f"{base}:4:22: model.sequential[0].Dense.units: ")
    assert where(base, "-8") == f"{base}:4:22"


@pytest.mark.parametrize("include, message, at", [
    ("[base.yaml, missing.yaml]", "include[1]: cannot include {dir}/missing.yaml: file not "
     "found", "missing"),
    ("[base.yaml, 3]", "include[1]: expected the path of a YAML file, got 3", "3]"),
    ("{a: 1}", "include: expected a file to include or a list of files, got a mapping", "{a"),
    ("[base.yaml, list.yaml]", "include[1]: {dir}/list.yaml must be a mapping of config "
     "sections to be included, got [1, 2]", "list.yaml"),
])
def test_bad_includes(tmp_path, include, message, at):
    write(tmp_path, "base.yaml", BASE)
    write(tmp_path, "list.yaml", "[1, 2]\n")
    path = write(tmp_path, "run.yaml", f"include: {include}\n" + BASE)
    (line,) = errors(path)
    assert line == f"{where(path, at)}: {message.format(dir=tmp_path)}"


def test_an_include_cycle_is_reported_at_the_include_entry(tmp_path):
    write(tmp_path, "a.yaml", "include: [b.yaml]\nseed: 1\n")
    b = write(tmp_path, "b.yaml", "include: [a.yaml]\n")
    path = write(tmp_path, "run.yaml", BASE.replace("name: base", "include: [a.yaml]"))
    (line,) = errors(path)
    assert line == (f"{where(b, 'a.yaml')}: include[0]: include cycle: a.yaml -> b.yaml -> "
                    "a.yaml; a file cannot include itself, directly or through others")
    path = write(tmp_path, "self.yaml", BASE + "include: self.yaml\n")
    assert errors(path) == [f"{where(path, 'self.yaml')}: include: include cycle: self.yaml "
                            "-> self.yaml; a file cannot include itself, directly or through "
                            "others"]


def test_a_syntax_error_in_an_included_file_is_reported_in_it(tmp_path):
    bad = write(tmp_path, "bad.yaml", "fit: {epochs: 2\n")
    path = write(tmp_path, "run.yaml", BASE + "include: bad.yaml\n")
    (line,) = errors(path)
    assert line.startswith(f"{bad}:2:1: invalid YAML")


# --- the version key ---------------------------------------------------------------------------


def test_the_version_key_is_optional_and_written(tmp_path):
    plain = load_config(write(tmp_path, "plain.yaml", BASE))
    old = load_config(write(tmp_path, "old.yaml", "kconf: 0\n" + BASE))
    new = load_config(write(tmp_path, "new.yaml", "kconf: 1\n" + BASE))
    assert plain.config == old.config == new.config
    assert plain.to_yaml().startswith("kconf: 1\n")
    assert resolved(tmp_path / "old.yaml")["kconf"] == 1


@pytest.mark.parametrize("value, message", [
    ("2", "this config is written in version 2 of the config language, newer than the "
          "installed kconf ({version}) reads (versions 0 to 1); upgrade kconf to read it"),
    ("'1'", "must be the version of the config language, a whole number from 0 to 1 (write "
            "kconf: 1), got '1'"),
    ("1.5", "must be the version of the config language, a whole number from 0 to 1 (write "
            "kconf: 1), got 1.5"),
    ("-1", "must be the version of the config language, a whole number from 0 to 1 (write "
           "kconf: 1), got -1"),
    ("true", "must be the version of the config language, a whole number from 0 to 1 (write "
             "kconf: 1), got true"),
])
def test_a_bad_version_key(tmp_path, value, message):
    from kconf.version import __version__

    path = write(tmp_path, "c.yaml", f"kconf: {value}\n" + BASE)
    assert errors(path) == [f"{path}:1:8: kconf: {message.format(version=__version__)}"]
    other = write(tmp_path, "run.yaml", "include: c.yaml\n")  # in an included file too
    assert errors(other)[0] == f"{path}:1:8: kconf: {message.format(version=__version__)}"


def test_a_run_folder_and_an_import_write_the_version(tmp_path):
    path = write(tmp_path, "c.yaml", BASE.replace("epochs: 2", "epochs: 1"))
    result = runner.invoke(app, ["train", str(path), "--output-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in (tmp_path / "runs").glob("*/*") if p.is_dir()]
    assert (run / "resolved.yaml").read_text().startswith("kconf: 1\n")
    fixture = Path(__file__).parent / "fixtures" / "keras" / "mlp.json"
    out = tmp_path / "imported.yaml"
    result = runner.invoke(app, ["import-keras", str(fixture), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["kconf"] == 1
    assert "\nkconf: 1\n" in out.read_text()


def test_load_config_raises_the_located_errors(tmp_path):
    path = write(tmp_path, "c.yaml", "kconf: 9\n" + BASE)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert [p.pos.line for p in err.value.problems] == [1]


def test_a_bad_reference_in_an_override_is_reported_at_the_override(tmp_path):
    path = write(tmp_path, "c.yaml", BASE)
    assert errors(path, "fit.epochs=${fit.nope}") == [
        "override 'fit.epochs=${fit.nope}': fit.epochs: unknown reference ${fit.nope}: fit has "
        "no key 'nope'; it has epochs, batch_size (a reference sees the values written in the "
        "config, not defaults)"]


def test_a_dict_config_includes_relative_to_its_base_dir(tmp_path):
    write(tmp_path, "base.yaml", BASE)
    cfg = load_config({"include": ["base.yaml"], "seed": 5}, base_dir=tmp_path)
    assert cfg.seed == 5 and cfg.fit.batch_size == 8
    assert cfg.source.locate(("fit", "batch_size")).file == str(tmp_path / "base.yaml")
