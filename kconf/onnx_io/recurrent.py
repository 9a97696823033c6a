"""SimpleRNN, GRU, LSTM and Bidirectional, as an ONNX Scan whose body is one step of the cell.

The body is the cell written with ONNX operators on Keras's weights as they are (ONNX's
LSTM/GRU operators order the gates differently and know only some activations), so it
expresses exactly what kconf computes, for any number of steps (a dynamic one included):
any activation, ``go_backwards``, initial states, and masks (a masked step keeps the states
of the step before; its output is that state, or zeros with ``zero_output_for_mask``).
"""
from __future__ import annotations

import numpy as np

from kconf.onnx_io import activations
from kconf.onnx_io.builder import Builder, Call, Unsupported

INT64_MIN = -(2 ** 63)


def _fn(step_activation):
    fn = step_activation.fn
    if not activations.has_onnx_form(fn):
        raise Unsupported(f"activation {getattr(fn, '__name__', fn)!r} has no ONNX form")
    return fn


def _split(b: Builder, x: str, parts: int, axis: int) -> list[str]:
    if parts == 1:
        return [x]
    return b.op("Split", [x], parts, axis=axis, num_outputs=parts)


def _zeros(b: Builder, x: str, units: int) -> str:
    """(N, units) zeros, N being ``x``'s batch size."""
    batch = b.op("Shape", [x], start=0, end=1)
    size = b.op("Concat", [batch, b.ints([units])], axis=0)
    return b.op("ConstantOfShape", [size], value=b.tensor(0.0, 1))


def _cell_constants(b: Builder, layer) -> dict[str, str]:
    """The cell's weights as constants, made once for all the steps."""
    u = layer.units
    rkernel = layer.weights["recurrent_kernel"]
    if type(layer).__name__ == "GRU" and not layer.reset_after:
        return {"recurrent_zr": b.const(rkernel[:, :2 * u], hint="recurrent_zr"),
                "recurrent_h": b.const(rkernel[:, 2 * u:], hint="recurrent_h")}
    consts = {"recurrent": b.const(rkernel, hint="recurrent")}
    if type(layer).__name__ == "GRU" and layer.use_bias:
        consts["recurrent_bias"] = b.const(layer.weights["bias"][1], hint="recurrent_bias")
    return consts


def _cell(b: Builder, layer, z: str, states: list[str], w: dict[str, str]) -> list[str]:
    """One step of the layer's cell: the new states from the input projection ``z``."""
    kind = type(layer).__name__
    u = layer.units
    act = _fn(layer.activation)
    if kind == "SimpleRNN":
        z = b.op("Add", [z, b.op("MatMul", [states[0], w["recurrent"]])])
        return [activations.apply(b, act, z)]
    gate = _fn(layer.recurrent_activation)
    if kind == "LSTM":
        h, c = states
        z = b.op("Add", [z, b.op("MatMul", [h, w["recurrent"]])])
        zi, zf, zg, zo = _split(b, z, 4, 1)
        i, f, o = (activations.apply(b, gate, t) for t in (zi, zf, zo))
        g = activations.apply(b, act, zg)
        c = b.op("Add", [b.op("Mul", [f, c]), b.op("Mul", [i, g])])
        return [b.op("Mul", [o, activations.apply(b, act, c)]), c]
    if kind == "GRU":
        (h,) = states
        z_zr, z_h = b.slice(z, [0], [2 * u], [1]), b.slice(z, [2 * u], [3 * u], [1])
        if layer.reset_after:
            m = b.op("MatMul", [h, w["recurrent"]])
            if layer.use_bias:
                m = b.op("Add", [m, w["recurrent_bias"]])
            m_zr, m_h = b.slice(m, [0], [2 * u], [1]), b.slice(m, [2 * u], [3 * u], [1])
            zr = activations.apply(b, gate, b.op("Add", [z_zr, m_zr]))
            update, reset = _split(b, zr, 2, 1)
            pre = b.op("Add", [z_h, b.op("Mul", [reset, m_h])])
        else:
            m_zr = b.op("MatMul", [h, w["recurrent_zr"]])
            zr = activations.apply(b, gate, b.op("Add", [z_zr, m_zr]))
            update, reset = _split(b, zr, 2, 1)
            rh = b.op("Mul", [reset, h])
            pre = b.op("Add", [z_h, b.op("MatMul", [rh, w["recurrent_h"]])])
        cand = activations.apply(b, act, pre)
        return [b.op("Add", [b.op("Mul", [b.op("Sub", [h, cand]), update]), cand])]
    raise Unsupported(f"no ONNX converter for the recurrent layer {kind}")


def run_recurrent(b: Builder, layer, x: str, shape, initial: list[str],
                  mask: str | None) -> list[str]:
    """The layer's outputs as its ``forward`` returns them (with ``return_state``, the
    output then the final states): an ONNX Scan over the steps (any number of them) whose
    body is one step of the cell."""
    from onnx import TensorProto, helper

    gates = b.op("MatMul", [x, b.const(layer.weights["kernel"], hint="kernel")])
    if layer.use_bias:
        gates = b.op("Add", [gates, b.const(layer._input_bias(), hint="bias")])
    states = list(initial) or [_zeros(b, x, layer.units) for _ in range(layer.n_states)]
    consts = _cell_constants(b, layer)  # outer-scope constants the body reads
    keep = None if mask is None else b.unsqueeze(mask, [-1])  # (N, T, 1) bool
    zero = b.const(0.0)

    outer_nodes, b.nodes = b.nodes, []  # the body's nodes go into its own graph
    state_in = [b.fresh(f"{b.prefix}state_in") for _ in states]
    z_in = b.fresh(f"{b.prefix}z_t")
    keep_in = None if keep is None else b.fresh(f"{b.prefix}keep_t")
    new = _cell(b, layer, z_in, state_in, consts)
    out = new[0]
    if keep_in is not None:  # a masked step keeps the states of the step before
        new = [b.op("Where", [keep_in, n, s]) for n, s in zip(new, state_in)]
        out = new[0]
        if layer.zero_output_for_mask:
            out = b.op("Where", [keep_in, out, zero])
    outs = [b.op("Identity", [v]) for v in new]
    if layer.return_sequences:
        outs.append(b.op("Identity", [out]))
    body_nodes, b.nodes = b.nodes, outer_nodes

    def info(name, dtype=TensorProto.FLOAT, width=None):
        return helper.make_tensor_value_info(name, dtype, [None, width])

    width = layer.units
    body = helper.make_graph(
        body_nodes, b.fresh(f"{b.prefix}step"),
        [info(v, width=width) for v in state_in] + [info(z_in)] +
        ([info(keep_in, TensorProto.BOOL, 1)] if keep_in else []),
        [info(v, width=width) for v in outs])
    scanned = [gates] + ([keep] if keep is not None else [])
    backwards = 1 if layer.go_backwards else 0
    results = b.op("Scan", [*states, *scanned], [b.fresh(f"{b.prefix}Scan") for _ in outs],
                   body=body,
                   num_scan_inputs=len(scanned), scan_input_axes=[1] * len(scanned),
                   scan_input_directions=[backwards] * len(scanned),
                   scan_output_axes=[1] * (len(outs) - len(states)) or None)
    final = results[:len(states)]
    if layer.return_sequences:
        y = results[-1]  # in processing order, as kconf (and Keras) return it
    else:
        y = final[0]
        if keep is not None and layer.zero_output_for_mask:  # the last processed step
            last = b.op("Gather", [mask, b.const(0 if backwards else -1, np.int64)], axis=1)
            y = b.op("Where", [b.unsqueeze(last, [-1]), y, zero])
    return [y, *final] if layer.return_state else [y]


def recurrent(b: Builder, call: Call):
    return run_recurrent(b, call.layer, call.x, call.shape, call.inputs[1:], call.mask)


def bidirectional(b: Builder, call: Call):
    layer = call.layer
    extra = call.inputs[1:]
    half = len(extra) // 2
    fwd = run_recurrent(b, layer.forward_layer, call.x, call.shape, extra[:half], call.mask)
    bwd = run_recurrent(b, layer.backward_layer, call.x, call.shape, extra[half:], call.mask)
    f_out, f_states = fwd[0], fwd[1:]
    b_out, b_states = bwd[0], bwd[1:]
    if layer.return_sequences:  # the backward sequence, back in time order
        b_out = b.slice(b_out, [-1], [INT64_MIN], [1], [-1])
    mode = layer.merge_mode
    if mode == "concat":
        merged = [b.op("Concat", [f_out, b_out], axis=-1)]
    elif mode == "sum":
        merged = [b.op("Add", [f_out, b_out])]
    elif mode == "ave":
        merged = [b.op("Mul", [b.op("Add", [f_out, b_out]), b.const(0.5)])]
    elif mode == "mul":
        merged = [b.op("Mul", [f_out, b_out])]
    else:
        merged = [f_out, b_out]
    return [*merged, *f_states, *b_states]
