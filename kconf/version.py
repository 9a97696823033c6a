"""kconf's version, where modules inside kconf read it (``kconf.__version__`` is this one)."""

__version__ = "0.1.0"
