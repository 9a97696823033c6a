"""``kconf graph``: the model graph as Graphviz DOT and Mermaid text, and rendering with ``dot``."""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kconf.api import model_from_config
from kconf.cli import app
from kconf.report.graph import (RenderError, _dot_str, _Ids, graph_stem, graph_view,
                                render_dot, to_dot, to_mermaid)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
runner = CliRunner()

DOT_NODE = re.compile(r'^\s*"([^"]+)" \[label="((?:[^"\\]|\\.)*)"(.*)\];$')
DOT_EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)" \[label="((?:[^"\\]|\\.)*)"\];$')
MMD_NODE = re.compile(r'^\s*(\w+)(\[\[|\(\[|\[)"([^"]*)"(\]\]|\]\)|\])$')
MMD_EDGE = re.compile(r'^\s*(\w+) -->\|"([^"]*)"\| (\w+)$')


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def view_of(config, expand=False):
    return graph_view(model_from_config(config), expand=expand)


def parse_dot(text: str):
    """(nodes: id -> (label, attributes), edges: [(source, target, label)]), after checking
    that the text is one balanced digraph whose edges only join declared nodes."""
    assert text.startswith("// ") and "\ndigraph " in text and text.endswith("}\n")
    assert text.count("{") == text.count("}")
    depth = 0
    for line in text.splitlines():
        depth += line.count("{") - line.count("}")
        assert depth >= 0
    nodes, edges = {}, []
    for line in text.splitlines():
        if m := DOT_EDGE.match(line):
            source, target, label = m.groups()
            edges.append((source, target, label.strip()))  # padded apart from its neighbours
        elif m := DOT_NODE.match(line):
            assert m.group(1) not in nodes, f"node {m.group(1)} declared twice"
            nodes[m.group(1)] = (m.group(2).replace("\\n", "\n"), m.group(3))
    for source, target, _ in edges:
        assert source in nodes and target in nodes, (source, target)
    return nodes, edges


def parse_mermaid(text: str):
    """(nodes: id -> (shape, label), edges, classes: class -> ids), checking the structure."""
    lines = text.splitlines()
    assert lines[0].startswith("%% ") and lines[1] == "flowchart TB"
    assert sum(l.strip().startswith("subgraph ") for l in lines) == \
        sum(l.strip() == "end" for l in lines)
    nodes, edges, classes = {}, [], {}
    for line in lines[2:]:
        stripped = line.strip()
        if m := MMD_EDGE.match(line):
            edges.append((m.group(1), m.group(3), m.group(2)))
        elif m := MMD_NODE.match(line):
            assert m.group(1) not in nodes
            nodes[m.group(1)] = (m.group(2), m.group(3).replace("<br/>", "\n"))
        elif stripped.startswith("class "):
            _, members, name = stripped.split()
            classes[name] = members.split(",")
        else:
            assert stripped.startswith(("subgraph ", "direction ", "end", "classDef ")), line
    for source, target, _ in edges:
        assert source in nodes and target in nodes, (source, target)
    for members in classes.values():
        assert set(members) <= set(nodes)
    return nodes, edges, classes


# --- shared layers: one box, one edge per call ----------------------------------------------
def test_dot_draws_the_shared_lstm_once_with_an_edge_per_call():
    nodes, edges = parse_dot(to_dot(view_of(CONFIGS / "shared_lstm.yaml")))
    lstm = [i for i, (label, _) in nodes.items() if label.startswith("shared_lstm (LSTM)")]
    assert lstm == ["shared_lstm"]
    assert nodes["shared_lstm"][0] == "shared_lstm (LSTM)\n(None, 64)"
    incoming = sorted((s, label) for s, t, label in edges if t == "shared_lstm")
    assert incoming == [("tweet_a", "node 0: tweet_a"), ("tweet_b", "node 1: tweet_b")]
    outgoing = sorted(label for s, t, label in edges if s == "shared_lstm")
    assert outgoing == ["encoded_a", "encoded_b"]
    assert nodes["tweet_a"][0] == "tweet_a (InputLayer)\n(None, 280, 256)"
    assert len(nodes) == 5 and len(edges) == 5


def test_mermaid_draws_the_shared_lstm_once_with_an_edge_per_call():
    nodes, edges, classes = parse_mermaid(to_mermaid(view_of(CONFIGS / "shared_lstm.yaml")))
    lstm = [i for i, (_, label) in nodes.items() if label.startswith("shared_lstm (LSTM)")]
    assert lstm == ["shared_lstm"]
    incoming = sorted((s, label) for s, t, label in edges if t == "shared_lstm")
    assert incoming == [("tweet_a", "node 0: tweet_a"), ("tweet_b", "node 1: tweet_b")]
    assert classes == {"input": ["tweet_a", "tweet_b"], "output": ["predictions"]}
    assert nodes["tweet_a"][0] == "([" and nodes["predictions"][0] == "[["
    assert nodes["predictions"][1].endswith("\noutput: out")


def test_a_shared_layer_with_different_shapes_lists_them_per_node():
    nodes, _ = parse_dot(to_dot(view_of(CONFIGS / "shared_conv_nodes.yaml")))
    assert nodes["conv"][0] == ("conv (Conv2D)\nnode 0: (None, 32, 32, 16)\n"
                                "node 1: (None, 64, 64, 16)")


# --- inputs and outputs marked --------------------------------------------------------------
def test_twitter_model_marks_two_outputs_and_two_inputs():
    view = view_of(CONFIGS / "twitter_multi_io.yaml")
    nodes, edges = parse_dot(to_dot(view))
    outputs = {i for i, (_, attrs) in nodes.items() if "peripheries=2" in attrs}
    assert outputs == {"aux_output", "main_output"}
    assert nodes["aux_output"][0].endswith("\noutput: auxiliary_output")
    assert nodes["main_output"][0].endswith("\noutput: main_output")
    inputs = {i for i, (_, attrs) in nodes.items() if '"#dbeafe"' in attrs}
    assert inputs == {"main_input", "aux_input"}
    assert "(None, 100) int32" in nodes["main_input"][0]  # a non-float input says its dtype
    assert ("lstm", "aux_output", "lstm_out") in edges
    _, _, classes = parse_mermaid(to_mermaid(view))
    assert sorted(classes["output"]) == ["aux_output", "main_output"]
    assert sorted(classes["input"]) == ["aux_input", "main_input"]


def test_every_config_gives_plausible_dot_and_mermaid():
    for config in sorted(CONFIGS.glob("*.yaml")):
        if config.name.startswith("sweep_"):  # a sweep file, not a model config
            continue
        for expand in (False, True):
            view = view_of(config, expand)
            nodes, edges = parse_dot(to_dot(view))
            m_nodes, m_edges, classes = parse_mermaid(to_mermaid(view))
            assert set(nodes) == set(m_nodes) and len(edges) == len(m_edges), config
            assert classes.get("input") and classes.get("output"), config


# --- nested models ---------------------------------------------------------------------------
def test_a_model_in_time_distributed_is_one_box_or_an_expanded_cluster():
    nodes, edges = parse_dot(to_dot(view_of(CONFIGS / "time_distributed.yaml")))
    assert set(nodes) == {"input_sequences", "per_step"}
    assert nodes["per_step"][0].split("\n")[:2] == ["per_step (TimeDistributed)",
                                                   "wraps classifier (Sequential)"]
    text = to_dot(view_of(CONFIGS / "time_distributed.yaml", expand=True))
    nodes, edges = parse_dot(text)
    assert 'subgraph "cluster_per_step" {' in text
    assert set(nodes) == {"input_sequences", "per_step__input_layer", "per_step__dense",
                          "per_step__dense_1", "per_step__dense_2"}
    assert ("input_sequences", "per_step__input_layer", "input_sequences") in edges
    assert "peripheries=2" in nodes["per_step__dense_2"][1]  # the model output, inside
    assert nodes["per_step__dense_2"][0].endswith("output: processed_sequences")
    mermaid = to_mermaid(view_of(CONFIGS / "time_distributed.yaml", expand=True))
    assert 'subgraph cluster_per_step ["per_step (TimeDistributed)<br/>' in mermaid


ENCODER = """name: encoder
model:
  sequential:
    - Dense: {units: 3, activation: tanh, input_dim: 4}
"""

TWICE = """name: twice
models:
  enc: {file: encoder.yaml}
model:
  functional:
    inputs:
      a: {shape: [4]}
      b: {shape: [4]}
    layers:
      merge: {Add: {}}
    graph:
      - ea = enc(a)
      - eb = enc(b)
      - s = merge(ea, eb)
    outputs: [s]
compile: {optimizer: sgd, loss: mse}
data:
  train: {random: {samples: 8, x: {a: [4], b: [4]}, y: [3]}}
"""


def test_a_nested_model_called_twice_is_drawn_once(tmp_path):
    (tmp_path / "encoder.yaml").write_text(ENCODER)
    (tmp_path / "twice.yaml").write_text(TWICE)
    nodes, edges = parse_dot(to_dot(view_of(tmp_path / "twice.yaml")))
    assert nodes["enc"][0] == "enc (Sequential)\n(None, 3)"
    assert sorted((s, label) for s, t, label in edges if t == "enc") == \
        [("a", "node 0: a"), ("b", "node 1: b")]
    text = to_dot(view_of(tmp_path / "twice.yaml", expand=True))
    nodes, edges = parse_dot(text)
    assert text.count("subgraph ") == 1
    assert sorted((s, label) for s, t, label in edges if t == "enc__input_layer") == \
        [("a", "node 0: a"), ("b", "node 1: b")]
    assert sorted(label for s, t, label in edges if s == "enc__dense" and t == "merge") == \
        ["ea", "eb"]


# --- ids and escaping -------------------------------------------------------------------------
def test_ids_are_unique_and_never_a_keyword():
    ids = _Ids()
    assert [ids.new(n) for n in ("end", "a-b", "a_b", "3x", "", "Graph")] == \
        ["end_", "a_b", "a_b_2", "n_3x", "n", "Graph_"]
    assert _dot_str('say "hi"\\n\nnext') == r'"say \"hi\"\\n\nnext"'


# --- the command ------------------------------------------------------------------------------
def test_graph_command_writes_dot_and_mermaid(tmp_path):
    result = invoke("graph", CONFIGS / "shared_lstm.yaml", "-o", tmp_path / "out" / "model")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "model.dot").read_text() == \
        to_dot(graph_view(model_from_config(CONFIGS / "shared_lstm.yaml"),
                          source=str(CONFIGS / "shared_lstm.yaml")))
    assert (tmp_path / "out" / "model.mmd").read_text().splitlines()[1] == "flowchart TB"
    assert "model.dot" in result.output and "model.mmd" in result.output


def test_graph_command_defaults_to_the_config_name_in_the_current_folder(tmp_path,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("graph", CONFIGS / "twitter_multi_io.yaml", "--format", "mermaid")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["twitter_multi_io.mmd"]
    assert graph_stem("c/x.yaml", tmp_path) == tmp_path / "x"  # -o an existing folder
    assert graph_stem("c/x.yaml", tmp_path / "g.svg") == tmp_path / "g"


def test_graph_command_on_a_broken_config_exits_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text((CONFIGS / "shared_lstm.yaml").read_text().replace(
        "shared_lstm(tweet_b)", "shared_lsmt(tweet_b)"))
    result = invoke("graph", path, "-o", tmp_path / "g")
    assert result.exit_code == 2 and "shared_lsmt" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "g.dot").exists()


# --- rendering with Graphviz's dot -----------------------------------------------------------
FAKE_DOT = """#!{python}
import pathlib, sys
args = sys.argv[1:]
pathlib.Path(__file__).with_name("args.txt").write_text("\\n".join(args))
if "fail" in pathlib.Path(args[1]).name:
    sys.stderr.write("Error: syntax error in line 1\\n")
    sys.exit(1)
pathlib.Path(args[args.index("-o") + 1]).write_text("<svg/>")
"""


@pytest.fixture
def fake_dot(tmp_path, monkeypatch):
    """A `dot` on an otherwise empty PATH that records its arguments."""
    if sys.platform == "win32":
        pytest.skip("the fake dot is a script with a #! line")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "dot"
    script.write_text(FAKE_DOT.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_render_runs_dot_on_the_dot_file(tmp_path, fake_dot):
    result = invoke("graph", CONFIGS / "shared_lstm.yaml", "-o", tmp_path / "m",
                    "--format", "mermaid", "--render", "svg")
    assert result.exit_code == 0, result.output
    args = (fake_dot / "args.txt").read_text().splitlines()
    assert args == ["-Tsvg", str(tmp_path / "m.dot"), "-o", str(tmp_path / "m.svg")]
    assert (tmp_path / "m.dot").is_file() and (tmp_path / "m.mmd").is_file()  # dot needs it
    assert (tmp_path / "m.svg").read_text() == "<svg/>"
    assert f"wrote {tmp_path / 'm.svg'}" in result.output


def test_a_failing_dot_is_reported(tmp_path, fake_dot):
    result = invoke("graph", CONFIGS / "shared_lstm.yaml", "-o", tmp_path / "fail",
                    "--render", "png")
    assert result.exit_code == 2
    assert "`dot` failed (exit status 1)" in result.output
    assert "syntax error in line 1" in result.output and "Traceback" not in result.output


def test_render_without_graphviz_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = invoke("graph", CONFIGS / "shared_lstm.yaml", "-o", tmp_path / "m",
                    "--render", "svg")
    assert result.exit_code == 2
    assert "needs Graphviz's `dot` program, which is not on PATH" in result.output
    assert (tmp_path / "m.dot").is_file()  # the text is written all the same
    with pytest.raises(RenderError):
        render_dot(tmp_path / "m.dot", "svg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_real_graphviz_renders_svg(tmp_path):
    result = invoke("graph", CONFIGS / "twitter_multi_io.yaml", "-o", tmp_path / "t",
                    "--render", "svg", "--expand")
    assert result.exit_code == 0, result.output
    assert "<svg" in (tmp_path / "t.svg").read_text()
