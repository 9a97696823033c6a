"""The large matrix products of a parallel step (``Ops.matmul``, ``Ops.add_matmul``): cut
into blocks that the workers share, each block one single-threaded BLAS product.

The blocks depend on the product's shape alone, and one worker runs the same blocks in turn,
so a product has the same bits whatever the number of workers: OpenBLAS rounds a row by
where its block of rows begins, and a cut by the worker count gave ``--threads 1`` and
``--threads 2`` different weights. Outside a parallel step a product is one ``a @ b`` on
BLAS's own threads.
"""
from __future__ import annotations

from kconf.engine.backend import xp

__all__ = ["add_matmul", "even_slices", "matmul", "product_blocks"]

# Products below this many FLOPs (0.1 ms of one core) are not worth a hand-off to the
# workers; a transformer's feed-forward Dense products (6400 × 32 × 32: 1.3e7) are.
_MATMUL_FLOPS = 10**7
# add_matmul's blocks of rows: about this many entries, so a worker's product is still in its
# cache when it is added.
_ADD_BLOCK = 2**16
# The products' blocks (matmul, add_matmul): at least this many, so that two workers share
# them evenly (more blocks of a 1e7-FLOP product only cost time: 6400 x 32 x 32 on two
# workers, 224 us in 2 blocks, 296 in 4); at most _MOST_PRODUCT_BLOCKS, and more than two
# only where each keeps _BLOCK_FLOPS (the transformer's 52-79 MFLOP products ran no faster
# in four on two workers) and _PRODUCT_LINES rows or columns (a block of a few columns
# reads all of the other operand for little work: vgg's Dense, (32, 30976) @ (30976, 256)).
_PRODUCT_BLOCKS = 2
_MOST_PRODUCT_BLOCKS = 16
_BLOCK_FLOPS = 4 * _MATMUL_FLOPS
_PRODUCT_LINES = 128


def matmul(ops, a, b):
    """``a @ b``; inside a parallel step, a large product of 2-D arrays is cut along the
    longer of its output's axes into blocks that the workers share (``product_blocks``:
    each block one single-threaded product of whole rows or columns, the sums along the
    shared axis not split).

    The blocks depend on the shapes only, and one worker runs the same blocks in turn: the
    product has the same bits whatever the number of workers (BLAS's own rounding of a
    row depends on where its block begins, so one whole product may differ from it in
    the last bits).

    Args:
        ops: the ``Ops`` whose workers share the blocks.
        a, b: arrays that ``@`` takes (only 2-D ones are cut).

    Returns:
        The product, a new array.
    """
    if not ops.parallel_step or a.ndim != 2 or b.ndim != 2:  # the cheap test first
        return a @ b
    m, k = a.shape
    n = b.shape[1]
    flops = 2 * m * k * n
    if flops < _MATMUL_FLOPS:
        return a @ b
    out = xp.empty((m, n), dtype=xp.result_type(a, b))
    if m >= n:
        def work(worker, mine):
            for rows in mine:
                xp.matmul(a[rows], b, out=out[rows])
        ops.parallel(work, product_blocks(m, flops))
    else:
        def work(worker, mine):
            for cols in mine:
                xp.matmul(a, b[:, cols], out=out[:, cols])
        ops.parallel(work, product_blocks(n, flops))
    return out


def add_matmul(ops, out, a, b) -> None:
    """``out += a @ b`` for 2-D arrays.

    Inside a parallel step a large product with more rows than columns (a weight
    gradient ``x.T @ dz``) goes in blocks of rows, shared out to the workers, each
    block's product added while it is in the cache: no product the size of ``out`` is
    made and read again. As ``matmul``'s, the blocks depend on the shapes only: the same
    bits whatever the number of workers.

    Args:
        ops: the ``Ops`` whose workers share the blocks.
        out: the (m, n) array added to, in place.
        a, b: (m, k) and (k, n) arrays.
    """
    if not ops.parallel_step:
        out += a @ b
        return
    m, k = a.shape
    n = b.shape[1]
    if 2 * m * k * n < _MATMUL_FLOPS or m < n:
        out += matmul(ops, a, b)
        return
    # a kernel gradient's few rows (a (32, 6400) @ (6400, 32) product: one block of
    # _ADD_BLOCK) are still cut in _PRODUCT_BLOCKS, so that no second worker idles
    per_block = max(1, min(_ADD_BLOCK // n, -(-m // _PRODUCT_BLOCKS)))
    blocks = [slice(start, min(start + per_block, m)) for start in range(0, m, per_block)]

    def work(worker, mine):
        product = xp.empty((per_block, n), dtype=out.dtype)
        for rows in mine:
            part = product[:rows.stop - rows.start]
            xp.matmul(a[rows], b, out=part)
            out[rows] += part

    ops.parallel(work, blocks)


def product_blocks(length: int, flops: int) -> list[slice]:
    """The blocks a product's rows (or columns) are cut into by ``matmul``: a power of two
    of them, at least ``_PRODUCT_BLOCKS``; more only where each keeps ``_BLOCK_FLOPS`` and
    ``_PRODUCT_LINES`` lines, and at most ``_MOST_PRODUCT_BLOCKS`` (fewer when ``length`` is
    smaller than two); their lengths differ by at most 1. They depend on the product's size
    only, never on the number of workers.

    Args:
        length: the rows (or columns) to cut.
        flops: the whole product's FLOPs.

    Returns:
        Consecutive slices covering ``range(length)``.
    """
    count = _PRODUCT_BLOCKS
    while count * 2 <= min(_MOST_PRODUCT_BLOCKS, flops // _BLOCK_FLOPS,
                           length // _PRODUCT_LINES):
        count *= 2
    return even_slices(length, max(1, min(length, count)))


def even_slices(length: int, count: int) -> list[slice]:
    """``range(length)`` cut into ``count`` consecutive slices whose lengths differ by at most
    1."""
    bounds = [length * i // count for i in range(count + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]
