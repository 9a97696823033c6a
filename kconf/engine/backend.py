"""The array module behind the engine. Everything numeric goes through ``xp`` so that another
library with the NumPy API (CuPy) could replace it in one place."""
import numpy as xp

floatx = xp.float32

__all__ = ["xp", "floatx"]
