"""How values and names are written in user-facing messages: ``show`` a value as YAML,
``suggest`` the closest valid name for a misspelt one.

Config errors, the CLI, data sources and the argument models all write messages this way;
this module imports only the standard library.
"""
from __future__ import annotations

import difflib
from typing import Any, Iterable

def show(value: Any) -> str:
    """A value the way the user wrote it in YAML: strings quoted, ``null``/``true``, short."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, dict):
        text = "a mapping"
    elif isinstance(value, (list, tuple)):
        if any(isinstance(v, (dict, list, tuple)) for v in value):
            text = "a list"
        else:
            text = "[" + ", ".join(show(v) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The closest valid name to a misspelt one, or None when nothing is close."""
    choices = list(choices)
    for option in choices:
        if option.lower() == word.lower():
            return option
    best, best_score = None, 0.0
    for option in choices:  # difflib's ratio and cutoff; on a tie the first option wins
        score = difflib.SequenceMatcher(None, option, word).ratio()
        if score >= 0.6 and score > best_score:
            best, best_score = option, score
    return best


def unknown_name_message(noun: str, word: Any, choices: Iterable[str]) -> str:
    """``unknown activation 'reluu' (did you mean 'relu'?)``, or the list of valid names."""
    choices = list(choices)
    close = suggest(word, choices) if isinstance(word, str) else None
    if close is not None:
        return f"unknown {noun} {show(word)} (did you mean {close!r}?)"
    return f"unknown {noun} {show(word)}; valid: {', '.join(choices)}"
