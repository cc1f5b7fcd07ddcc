"""Elementwise math: Exp, Log, Sqrt, Abs, Neg, Reciprocal (Erf lives in erf.py)."""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.unary_kernel import ufunc_kernel
from runtime.providers.cpu.registry import cpu_kernel

_UFUNCS = {
    "Exp": np.exp,
    "Log": np.log,
    "Sqrt": np.sqrt,
    "Abs": np.abs,
    "Neg": np.negative,
    "Reciprocal": np.reciprocal,
}


def _register(op_type: str, ufunc: np.ufunc) -> None:
    @cpu_kernel(op_type)
    def build(ctx: KernelContext) -> Kernel:
        return ufunc_kernel(ctx, ufunc)

    build.__name__ = op_type.lower()


for _op, _ufunc in _UFUNCS.items():
    _register(_op, _ufunc)
