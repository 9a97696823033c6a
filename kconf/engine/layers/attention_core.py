"""Scaled dot-product attention over heads, a block of samples at a time on the ops' workers:
the core of MultiHeadAttention (``attend``), and the masks and softmax the attention layers
share.

With ``q`` (scaled), ``k`` and ``v`` per sample and head, ``P = softmax(q·kᵀ)`` over
the key axis (masked scores replaced by ``MASKED_SCORE``), ``W = dropout(P)``, ``o = W·v``.
``attend`` never forms ``P`` (unless asked for it): a block keeps the unnormalized
``E = exp(s − max s)`` (``exp(s)`` where no score can overflow it: ``bounded``) and each
query's ``r = 1 / Σ E``, and the row scale goes on the small arrays instead of the (T × S)
ones — ``o = (E·v)·r``; backward, with ``D = Σ_v do·o`` per query (= ``Σ_s dW·W``, as in
FlashAttention), ``r`` goes on ``do`` first: ``G = E·((do·r)·vᵀ − D·r)`` is ``dS``, so
``dq = G·k``, ``dk = Gᵀ·q``, ``dv = Eᵀ·(do·r)``. A training step then makes one
elementwise pass over the scores in forward after the product (exp; the maximum and its
subtraction too where needed) and two in backward (``− D·r``, ``× E``), where the softmax
and its gradient as written took nine, and the sums are matrix-vector products. The scores
are kept transposed, (S × T) per head: a query's maximum, ``r`` and ``D`` are then rows,
which NumPy subtracts and multiplies in long contiguous runs (as columns, broadcast along
the rows of 200 scores, they went through a buffer of repeated numbers).

The products of one block are the per-head products of one batched matmul, and every block
writes its own samples only, so the numbers depend neither on the blocks nor on the number of
workers. A block copies its samples' queries, keys and values heads-first and contiguous
(the products run faster on them than on strided views); the gradients are written straight
into the (batch, steps, heads, size) layout the projections take.
"""
from __future__ import annotations

from kconf.engine import kernels, masks
from kconf.engine.backend import xp
from kconf.engine.ops import current_ops
from kconf.errors import ShapeError
from kconf.shapes import format_shape

#: What Keras puts in place of a masked score before the softmax (``_large_negative_number``).
MASKED_SCORE = -1e9

#: The call options of the attention layers (``CallSignature.options``).
CALL_OPTIONS = {"use_causal_mask": bool, "return_attention_scores": bool}


class QueryMask:
    """The masks of an attention layer (a base before ``Layer``): it takes its inputs'
    masks, and its output carries the query's (the attention scores, when returned, none)."""

    supports_masking = True
    takes_mask = True

    def mask_origins(self, origins, return_attention_scores=False, **options):
        if any(o is not None for o in origins[3:]):  # attention_mask is data, not masked
            raise masks.refusal(self, next(o for o in origins[3:] if o is not None))
        return [origins[0], None] if return_attention_scores else origins[0]

    def compute_mask(self, xs, mask, return_attention_scores=False, **options):
        return [mask[0], None] if return_attention_scores else mask[0]


def sequence_shapes(layer, shapes, takes: tuple[str, ...], known_features: bool = False):
    """The query, value and key shapes of an attention layer's inputs (the key: the
    value's when not given), checked: 2 to ``len(takes)`` inputs (``takes``: the tensors in
    order), each (batch, steps, features) (the features known with ``known_features``),
    the value and the key with the same number of steps."""
    name = type(layer).__name__
    if not 2 <= len(shapes) <= len(takes):
        raise ShapeError(f"{name} takes {', '.join(takes[:-1])} and {takes[-1]} (2 to "
                         f"{len(takes)} tensors), got {len(shapes)}")
    query, value = shapes[:2]
    key = shapes[2] if len(shapes) > 2 else value
    for what, shape in (("query", query), ("value", value), ("key", key)):
        if len(shape) != 3 or (known_features and shape[-1] is None):
            raise ShapeError(f"{name} expects a {what} of shape (batch, steps, features)"
                             f"{' with known features' if known_features else ''}, got "
                             f"{format_shape(shape)}")
    if None not in (value[1], key[1]) and value[1] != key[1]:
        raise ShapeError(f"{name}: value {format_shape(value)} and key {format_shape(key)} "
                         "must have the same number of steps")
    return query, value, key


def keep_mask(mask, causal: bool, t: int, s: int):
    """Which scores count, (B or 1, T, S) booleans, or None for all: ``mask`` (nonzero
    entries kept, as Keras casts it to bool) and, with ``causal``, position i sees j <= i."""
    keep = None if mask is None else xp.asarray(mask) != 0
    if causal:
        lower = xp.tril(xp.ones((t, s), dtype=bool))[None]
        keep = lower if keep is None else keep & lower
    return keep


def softmax(z):
    """Softmax over the last axis and its backward."""
    e = xp.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)

    def backward(dp):
        return p * (dp - (dp * p).sum(axis=-1, keepdims=True))

    return p, backward


def transposed(a):
    """``a`` with its last two axes swapped (a view)."""
    return a.swapaxes(-1, -2)


#: Scores within ±this: their exps are normal float32 numbers far from overflow (e^30 is
#: 1.1e13), so the softmax needs no maximum taken out first (``bounded``).
BOUNDED_SCORE = 30.0


def bounded(q, k):
    """Which (sample, head) have every score ``q·kᵀ`` within ±``BOUNDED_SCORE``, by the
    Cauchy–Schwarz bound ``|q_t·k_s| <= max_t |q_t| · max_s |k_s|``: (b, H) booleans for
    (b, H, T, K) queries and (b, H, S, K) keys.

    Why: the softmax's ``exp(s − max s) / Σ exp(s − max s)`` is ``exp(s) / Σ exp(s)``; the
    maximum is taken out only so that exp cannot overflow. Where it cannot anyway, ``attend``
    skips the two passes over the scores (the maximum and the subtraction) and exps the
    scores as they are: the same numbers up to float32 rounding (``s`` is not rounded by a
    subtraction first). The bound costs a pass over q and k, 1/100th of the scores here.
    """
    ones = xp.ones((q.shape[-1], 1), dtype=q.dtype)
    longest = [xp.matmul(a * a, ones).max(axis=(-2, -1)) for a in (q, k)]  # squared norms
    return longest[0] * longest[1] <= BOUNDED_SCORE ** 2


def attend(q, k, v, scale=1.0, biases=None, keep=None, dropout=None, rng=None,
           want_probs=False):
    """Attention of every head of a batch, on the current ops' workers.

    Args:
        q: (B, T, H, K) queries.
        k: (B, S, H, K) keys.
        v: (B, S, H, V) values.
        scale: what the queries are multiplied by (Keras's ``1 / sqrt(key_dim)``).
        biases: None, or the (H, K), (H, K) and (H, V) biases added to ``q``, ``k`` and
            ``v`` first (the projections' biases: a block adds its samples').
        keep: which scores count, (B or 1, T, S) booleans, or None for all.
        dropout: a ``Dropout`` for the attention weights (training), or None.
        rng: the generator of the dropout.
        want_probs: also return ``P``.

    Returns:
        ``(o, probs, backward)``: ``o`` (B, T, H, V); ``probs`` (B, H, T, S) or None;
        ``backward(do, d_probs=None, out=None)`` -> ``(dq, dk, dv)``, the gradients of
        ``q``, ``k`` and ``v`` given those of ``o`` and ``probs``, written into ``out``
        (three arrays of their shapes: views of other arrays too) or new arrays.
    """
    batch, t, h, _ = q.shape
    s, vd = k.shape[1], v.shape[3]
    dtype = q.dtype
    # contiguous heads-first copies (the products run faster on them than on strided
    # views), the queries scaled; a block copies its samples
    qh, kh, vh = (xp.empty((a.shape[0], a.shape[2], a.shape[1], a.shape[3]), dtype=dtype)
                  for a in (q, k, v))
    scale = dtype.type(scale)
    # the biases repeated over the steps, (H, steps · size): a block adds them to its
    # contiguous copies in long runs (broadcast over the steps, each run was 32 numbers)
    tiled = [None if bias is None else
             xp.broadcast_to(bias[:, None], (h, a.shape[1], a.shape[3])).reshape(h, -1)
             for a, bias in zip((q, k, v), biases or (None,) * 3)]
    # the scores' arrays, transposed (B, H, S, T) (module docstring): E, and with dropout
    # E·mask/(1 − rate) beside it
    exps = xp.empty((batch, h, s, t), dtype=dtype)
    multiplier = None
    if dropout is not None:  # drawn in the (B, H, T, S) order
        multiplier = transposed(dropout.multiplier((batch, h, t, s), rng, dtype))
    weighted = exps if multiplier is None else xp.empty_like(exps)
    dropped = None if keep is None else transposed(~keep[:, None])  # (B or 1, 1, S, T)
    recip = xp.empty((batch, h, 1, t), dtype=dtype)  # r = 1 / Σ_s E per query
    probs = xp.empty((batch, h, t, s), dtype=dtype) if want_probs else None
    o = xp.empty((batch, t, h, vd), dtype=dtype)
    oh = o.transpose(0, 2, 1, 3)  # its heads-first view, written by the blocks
    ones, ones_v = xp.ones((1, s), dtype=dtype), xp.ones((vd, 1), dtype=dtype)
    # blocks of samples whose scores, with backward's gradient of them and the temporaries of
    # their size, stay in a core's L2 cache (transformer_text: 2 samples, 640 KB of scores)
    blocks = kernels.even_blocks(batch, 6 * h * t * s * q.itemsize)

    def of(mask, rows):
        """A (B or 1, ...) mask's rows for a block of samples."""
        return mask[rows] if mask.shape[0] > 1 else mask

    def forward_blocks(worker, mine):
        for _, rows in mine:
            for a, heads, bias in zip((q, k, v), (qh, kh, vh), tiled):
                block = heads[rows]
                xp.copyto(block, a[rows].transpose(0, 2, 1, 3))
                if bias is not None:
                    runs = block.reshape(block.shape[0], h, -1)  # a view: block is contiguous
                    runs += bias
            qh[rows] *= scale
            e = exps[rows]
            xp.matmul(kh[rows], transposed(qh[rows]), out=e)
            if dropped is not None:
                xp.copyto(e, dtype.type(MASKED_SCORE), where=of(dropped, rows))
                e -= e.max(axis=-2, keepdims=True)
            else:
                for sample, head in zip(*xp.nonzero(~bounded(qh[rows], kh[rows]))):
                    scores = e[sample, head]
                    scores -= scores.max(axis=0)
            xp.exp(e, out=e)
            r = recip[rows]
            xp.matmul(ones, e, out=r)
            xp.divide(1, r, out=r)
            if probs is not None:
                xp.multiply(e, r, out=transposed(probs[rows]))
            w = e
            if multiplier is not None:
                w = xp.multiply(e, multiplier[rows], out=weighted[rows])
            xp.multiply(xp.matmul(transposed(w), vh[rows]), transposed(r), out=oh[rows])

    current_ops().parallel(forward_blocks, blocks)

    def backward(do, d_probs=None, out=None):
        dq, dk, dv = out or (xp.empty(q.shape, dtype), xp.empty(k.shape, dtype),
                             xp.empty(v.shape, dtype))
        dqh, dkh, dvh = (a.transpose(0, 2, 1, 3) for a in (dq, dk, dv))
        doh = do.transpose(0, 2, 1, 3)

        def backward_blocks(worker, mine):
            for _, rows in mine:
                e, r = exps[rows], recip[rows]
                do_r = doh[rows] * transposed(r)
                # D·r, D = Σ_s dP·P = Σ_v do·o per query: (b, H, 1, T)
                d_row = xp.matmul(xp.multiply(do[rows], o[rows]).reshape(-1, vd), ones_v)
                d_row = d_row.reshape(-1, t, h).transpose(0, 2, 1)[:, :, None] * r
                g = xp.matmul(vh[rows], transposed(do_r))  # dWᵀ·r
                if multiplier is not None:
                    g *= multiplier[rows]
                if d_probs is not None:
                    dp = transposed(d_probs[rows])
                    g += dp * r
                    d_row += xp.matmul(ones, dp * transposed(probs[rows])) * r
                g -= d_row
                g *= e  # Gᵀ = dSᵀ
                if dropped is not None:
                    xp.copyto(g, dtype.type(0), where=of(dropped, rows))
                xp.multiply(xp.matmul(transposed(g), kh[rows]), scale, out=dqh[rows])
                xp.matmul(g, qh[rows], out=dkh[rows])
                xp.matmul(weighted[rows], do_r, out=dvh[rows])

        current_ops().parallel(backward_blocks, blocks)
        return dq, dk, dv

    return o, probs, backward
