"""Helpers of the ONNX export tests: run an exported model in onnxruntime and compare it with
kconf's ``predict``."""
from __future__ import annotations

import numpy as np

from kconf.engine.layers.input import InputLayer
from kconf.graph.ir import Graph, call_layer
from kconf.model import Model
from kconf.onnx_io import onnx_model
from tests.layer_test import LayerCase, inputs, make_layer

ATOL = 1e-5


def run_onnx(proto, feeds: dict) -> list:
    """The outputs of an ONNX model for named inputs, in onnxruntime on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def model_inputs(model: Model, n: int = 3, seed: int = 0, high: int = 5) -> dict:
    """Random inputs for each of the model's inputs (integer ids below ``high``)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for t in model.graph.inputs:
        shape = (n, *t.shape[1:])
        if t.dtype.startswith("int"):
            feeds[t.name] = rng.integers(0, high, size=shape).astype(t.dtype)
        else:
            feeds[t.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def compare(model: Model, feeds: dict, preprocessing=None, atol: float = ATOL) -> list:
    """Export ``model``, run it on ``feeds`` and assert it gives ``model.predict``'s outputs;
    returns the ONNX outputs."""
    return assert_matches(onnx_model(model, preprocessing=preprocessing), model, feeds, atol)


def assert_matches(proto, model: Model, feeds: dict, atol: float = ATOL) -> list:
    """Assert that the ONNX model gives ``model.predict``'s outputs on ``feeds`` (by input
    name); returns the ONNX outputs."""
    got = run_onnx(proto, feeds)
    xs = [feeds[t.name] for t in model.graph.inputs]
    want = model.predict(xs if len(xs) > 1 else xs[0])
    want = want if isinstance(want, list) else [want]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=atol, rtol=0)
    return got


def config_model(tmp_path, text: str) -> tuple[Model, object]:
    """The model of a config written to ``tmp_path``, and its ONNX export."""
    from kconf.api import build_model

    path = tmp_path / "config.yaml"
    path.write_text(text)
    model = build_model(path)
    return model, onnx_model(model)


def case_model(name: str, case: LayerCase, seed: int = 0) -> tuple[Model, dict]:
    """A model of one layer case: its input(s), the layer, its output(s); random weights
    (state drawn positive, as a moving variance must be) and the case's inputs."""
    layer = make_layer(name, case.args)
    shapes = case.shape if isinstance(case.shape, list) else [case.shape]
    if len(shapes) > 1 and layer.n_inputs == 1:  # initial states: a listed call
        layer.n_inputs = None
    dtype = "int32" if case.vocabulary is not None else "float32"
    tensors = []
    for k, shape in enumerate(shapes):
        inp = InputLayer(shape=tuple(shape[1:]), dtype=dtype, name=f"in{k}")
        tensors += call_layer(inp, [], [f"in{k}"])
    out_shape = layer.compute_output_shape(
        [(None, *s[1:]) for s in shapes] if isinstance(case.shape, list)
        else (None, *shapes[0][1:]), **case.call)
    n_out = len(out_shape) if isinstance(out_shape, list) else 1
    outs = call_layer(layer, tensors, [f"out{k}" for k in range(n_out)], options=case.call)
    model = Model(Graph(tensors, outs), name=f"case_{case.id}")
    model.build(np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    for owner in _owners(layer):
        for key, w in owner.weights.items():
            if key in owner.state_names:
                value = rng.uniform(0.5, 1.5, w.shape)
            else:
                value = rng.standard_normal(w.shape) * 0.5
            w[...] = value
    xs = inputs(case, seed=10, dtype=np.float32)
    xs = xs if isinstance(xs, list) else [xs]
    feeds = {f"in{k}": np.asarray(x, dtype=dtype) for k, x in enumerate(xs)}
    return model, feeds


def _owners(layer):
    """The layers holding weight arrays (a wrapper's inner layers)."""
    inner = [getattr(layer, a) for a in ("layer", "forward_layer", "backward_layer")
             if hasattr(layer, a) and hasattr(getattr(layer, a), "weights")]
    return inner if inner else [layer]
