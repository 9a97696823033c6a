"""Keras masks: which time steps of a sequence are padding, carried from layer to layer.

A mask is a bool array ``(N, T)`` beside a tensor ``(N, T, ...)``: True where the step is
data, False where it is padding. As in Keras 3, every layer plays one of these parts:

- **produce**: ``Embedding(mask_zero=True)`` masks index 0; ``Masking(mask_value)`` masks
  the steps whose features all equal ``mask_value`` (and zeroes them);
- **propagate** (``Layer.supports_masking``): the output carries the input's mask unchanged
  (Dense on sequences, Activation, Dropout, the normalizations, TimeDistributed ...);
- **consume** (``Layer.takes_mask``; ``forward(x, training, rng, mask=...)``): the recurrent
  layers skip masked steps (the states carry over, the output of a masked step repeats the
  one before), ``GlobalAveragePooling1D`` averages the data steps only, the attention layers
  never attend to masked keys. A recurrent layer with ``return_sequences`` passes the mask
  on; the attention layers pass the query's;
- **combine**: the merge layers (Add ... Minimum: the OR of the masks, none unless every
  input has one; Concatenate: the masks concatenated along its axis, an unmasked input
  counting as all True), as Keras's ``compute_mask`` does.

Every other layer **refuses** a masked input: Keras 3 drops the mask there with a warning
and the padded steps silently count as data (Flatten, Conv1D, GlobalMaxPooling1D, Dot ...),
so kconf stops at the config line instead (``MaskError``, a ``ShapeError`` the graph
constructor locates). So does a model output that carries a mask: Keras would mask the loss
with it, which kconf does not implement.

The graph knows at shape time which tensors carry a mask (``SymbolicTensor.mask`` holds the
description of the layer that made it, from ``Layer.mask_origins``), so ``validate`` finds
these mistakes without data. At run time the graph runner computes a mask only for the
tensors that carry one (``Layer.compute_mask``) and hands it to the consumers; a model
without masks does no mask work at all.
"""
from __future__ import annotations

from kconf.errors import ShapeError


class MaskError(ShapeError):
    """A mask reaches a layer (or a model output) that cannot take one."""


def origin_of(layer, detail: str = "") -> str:
    """How a message names the layer that makes a mask: ``Embedding 'emb' (mask_zero)``."""
    text = f"{type(layer).__name__} {layer.name!r}"
    return f"{text} ({detail})" if detail else text


def refusal(layer, origin: str) -> MaskError:
    """The error for a masked input reaching ``layer``, which cannot take a mask."""
    return MaskError(
        f"{type(layer).__name__} cannot take the mask made by {origin}: Keras 3 would drop it "
        "here and count the padded steps as data; consume the mask first (LSTM, GRU, "
        "SimpleRNN, GlobalAveragePooling1D, Attention, MultiHeadAttention) or remove it")


def output_refusal(origin: str) -> MaskError:
    """The error for a model output that carries a mask (Keras would mask the loss)."""
    return MaskError(
        f"this output carries the mask made by {origin}; Keras masks the loss with it, which "
        "kconf does not implement: consume the mask before the output (return_sequences: "
        "false, GlobalAveragePooling1D)")
