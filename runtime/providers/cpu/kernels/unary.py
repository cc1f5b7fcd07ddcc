"""Elementwise math: Exp, Log, Sqrt, Abs, Neg, Reciprocal (Erf lives in erf.py)."""

from __future__ import annotations

import numpy as np

from runtime.providers.cpu.kernels.unary_kernel import register_ufuncs

_UFUNCS = {
    "Exp": np.exp,
    "Log": np.log,
    "Sqrt": np.sqrt,
    "Abs": np.abs,
    "Neg": np.negative,
    "Reciprocal": np.reciprocal,
}


register_ufuncs(_UFUNCS)
