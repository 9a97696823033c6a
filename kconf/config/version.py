"""The version of the config language: the top-level key ``kconf: 1``.

A file may leave the key out: it is then read as the current version. Every command that
writes a config writes the key (``RunConfig.to_data()`` starts with it). A file of an older
version is still read as it is (version 1 reads every spelling of version 0);
``kconf upgrade`` (``kconf.config.upgrade``) rewrites it in the current spelling. A file of a
newer version than this kconf, or a key that is no version, is refused where the key is
written.

Versions:

- 0: the configs written before the key existed, with Keras 2's spellings that kconf reads
  (``lr``, ``decay``, the shape shortcuts ``input_dim``/``input_length``, LeakyReLU's
  ``alpha``);
- 1: Keras 3's spellings (``learning_rate``, a learning-rate schedule, ``input_shape``,
  ``negative_slope``).
"""
from __future__ import annotations

from typing import Any

from kconf.config.source import Source
from kconf.errors import Problem
from kconf.text import show

#: The config language version this kconf writes and reads up to.
CONFIG_VERSION = 1
#: The top-level key that holds it.
VERSION_KEY = "kconf"
#: ``Problem.kind`` of a version newer than this kconf (such a file is not validated further:
#: its keys may mean what this kconf does not know).
VERSION_PROBLEM = "config_version"


def take_version(data: dict[str, Any], source: Source) -> tuple[int, Problem | None]:
    """Remove the ``kconf:`` key from a file's top-level mapping and check it.

    Args:
        data: the file's top-level mapping (changed in place: the key is removed).
        source: the file's positions (for the problem).

    Returns:
        ``(version, problem)``: the version (the current one when the key is missing or
        refused) and the problem of a malformed key or a version newer than this kconf.
    """
    if VERSION_KEY not in data:
        return CONFIG_VERSION, None
    value = data.pop(VERSION_KEY)
    path = (VERSION_KEY,)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return CONFIG_VERSION, Problem(
            f"must be the version of the config language, a whole number from 0 to "
            f"{CONFIG_VERSION} (write kconf: {CONFIG_VERSION}), got {show(value)}",
            path, source.locate(path))
    if value > CONFIG_VERSION:
        from kconf.version import __version__

        return CONFIG_VERSION, Problem(
            f"this config is written in version {value} of the config language, newer than "
            f"the installed kconf ({__version__}) reads (versions 0 to {CONFIG_VERSION}); "
            "upgrade kconf to read it", path, source.locate(path), VERSION_PROBLEM)
    return value, None
