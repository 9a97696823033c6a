"""Test session setup: the data that example configs read but the repository does not hold."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session) -> None:
    """Write ``configs/data/digits_images/`` (configs/digits_images.yaml) when it is missing."""
    folder = ROOT / "configs" / "data" / "digits_images"
    if not folder.is_dir():
        sys.path.insert(0, str(folder.parent))
        try:
            from make_digits_images import main
        finally:
            sys.path.pop(0)
        main(folder)
