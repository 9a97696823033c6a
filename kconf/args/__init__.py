"""Argument types: the pydantic field types and base models that the config schema and the
engine layers' argument models are written with.

``fields`` holds the reusable field types (strict scalars, ``bounded``, ``choice``,
``IntPair``, names, ``ConfigModel``, ``config_error``); ``unions`` the tagged unions
(``{Tag: args}`` wrappers, and the lazy union whose members are built when a config names
them); ``lazy`` the mapping of such members; ``names`` the closed
vocabularies (activation, initializer, loss... names); ``layer`` the layer-argument types
(``Activation``, ``Padding``, ``Initializer``, ``Axis``) and ``LayerArgs``, the base of every
layer's argument model. This package imports only pydantic and the standard library (and
``kconf.text``), so that both ``kconf.config`` and ``kconf.engine`` can use it.

The modules that define config models here and in ``kconf.config`` do without ``from
__future__ import annotations``: pydantic would compile and evaluate every field's annotation
string when it builds a model, which start-up pays for each model (about a fifth of their
build time).
"""
