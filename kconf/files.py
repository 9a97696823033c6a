"""Files replaced whole and atomically, so that a reader never sees one half written.

Run folders, checkpoints, CSV logs, sweep folders and Keras exports all write through
``write_atomic``; it depends on nothing else in kconf, so any of them can use it.
"""
from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write to a temporary sibling, fsync, then rename over ``path``.

    Args:
        path: the file to replace (its folder must exist).
        data: the whole content; text is written as UTF-8.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
