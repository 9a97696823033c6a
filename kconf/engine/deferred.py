"""Work that nothing needs until later, done by the pool threads while the caller goes on
(``Ops.defer``): a convnet's kernel gradients in backward.

Why. In a convnet's backward pass a convolution's kernel gradient is needed only by the
optimizer, while its input gradient goes on through BatchNormalization, ReLU and the adds,
which run on one thread between the convolutions; deferred, the kernel gradients' products
fill the other core's idle time there. A piece of deferred work is blocks (a convolution's
blocks of images), taken one at a time by a pool thread, or by the thread that finishes the
work for the blocks no pool thread has taken by then; each piece is then finished (its
blocks' shares summed into a layer's gradient) in the order deferred, on that thread, so the
results do not depend on the number of workers or on which thread took a block.
"""
from __future__ import annotations

import contextvars
import itertools
from concurrent.futures import Executor
from typing import Callable, Sequence

__all__ = ["DeferredWork"]


class DeferredWork:
    """The pieces of deferred work not finished yet, in the order deferred."""

    def __init__(self):
        self._pieces: list[_Piece] = []

    @property
    def nbytes(self) -> int:
        """What the pieces' blocks not done yet keep alive (an estimate)."""
        return sum(piece.nbytes for piece in self._pieces)

    def add(self, pool: Executor, work: Callable[[object], None], blocks: Sequence,
            finish: Callable[[], None], nbytes: int = 0) -> None:
        """Defer ``work(block)`` for every block to ``pool``, then ``finish()``.

        Args:
            pool: the pool threads (each piece's blocks go to one of them, in a copy of the
                caller's context).
            work: called with each block.
            blocks: the blocks of work.
            finish: called once every block is done, by ``finish``.
            nbytes: what the blocks keep alive until done, in all.
        """
        piece = _Piece(work, blocks, finish, nbytes)
        piece.future = pool.submit(contextvars.copy_context().run, piece.take_blocks)
        self._pieces.append(piece)

    def finish(self) -> None:
        """Finish every piece, in the order deferred: take its blocks that no pool thread has
        taken, wait for those taken, then call its ``finish``. An exception is raised once
        every piece has stopped (the later pieces are not finished)."""
        pieces, self._pieces = self._pieces, []
        error = None
        for piece in pieces:
            try:
                piece.take_blocks()
            except BaseException as exc:  # noqa: BLE001 - raised below, after the rest stop
                error = error or exc
            try:
                if not piece.future.cancel():
                    piece.future.result()
                if error is None:
                    piece.finish()
            except BaseException as exc:  # noqa: BLE001
                error = error or exc
        if error is not None:
            raise error


class _Piece:
    """One piece of deferred work: its blocks, taken one at a time by whichever thread runs
    ``take_blocks`` (a pool thread, the finishing thread, or both at once), and the bytes its
    blocks not yet done keep alive."""

    __slots__ = ("work", "blocks", "finish", "taken", "future", "nbytes")

    def __init__(self, work, blocks: Sequence, finish, nbytes: int = 0):
        self.work, self.blocks, self.finish = work, blocks, finish
        self.taken = itertools.count()  # next() on it is atomic under the GIL
        self.future = None
        self.nbytes = nbytes

    def take_blocks(self) -> None:
        """Do the blocks no thread has taken yet, one at a time."""
        share = self.nbytes // max(len(self.blocks), 1)
        for index in self.taken:
            if index >= len(self.blocks):
                return
            self.work(self.blocks[index])
            self.nbytes -= share  # a block's work frees what it kept
