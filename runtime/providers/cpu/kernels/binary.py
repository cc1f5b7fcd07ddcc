"""Broadcasting binary ops: Add, Sub, Mul, Div, Pow, Equal, Less, Greater; Not; Where.

Arithmetic writes in place into an input the planner releases (same shape as the output),
else into a preallocated buffer. Add honours a fused activation (residual + ReLU).
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.fused_activation import inplace_activation
from runtime.providers.cpu.kernels.unary_kernel import register_ufuncs
from runtime.providers.cpu.registry import cpu_kernel


def _trunc_divide(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Integer division rounding toward zero (C semantics, as onnxruntime), not floor."""
    q = np.floor_divide(a, b, out=out)
    fix = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    np.add(q, 1, out=q, where=fix)
    return q


def _output_target(ctx: KernelContext) -> tuple[int | None, np.ndarray | None]:
    """(input index to overwrite, or None; preallocated buffer, or None)."""
    out_shape = ctx.static_output_shape()
    if out_shape is not None:
        for i in (0, 1):
            t = ctx.input_types[i]
            if t is not None and t.shape == out_shape and t.dtype == ctx.output_types[0].dtype \
                    and ctx.const(i) is None and ctx.reuse_input(i):
                return i, None
    return None, ctx.output_buffer()


def _arith(op_type: str, ufunc: np.ufunc) -> None:
    @cpu_kernel(op_type)
    def build(ctx: KernelContext) -> Kernel:
        dtype = ctx.output_dtype()
        fn = _trunc_divide if (op_type == "Div" and dtype.kind in "iu") else ufunc
        activation = inplace_activation(ctx.fused_activation, dtype) if op_type == "Add" else None
        target, out = _output_target(ctx)

        if target == 0:
            def binary_into_a(a, b):
                y = fn(a, b, out=a)
                if activation is not None:
                    activation(y)
                return y

            return binary_into_a
        if target == 1:
            def binary_into_b(a, b):
                y = fn(a, b, out=b)
                if activation is not None:
                    activation(y)
                return y

            return binary_into_b

        def binary(a, b):
            y = fn(a, b, out=out)
            if activation is not None:
                activation(y)
            return y

        return binary

    build.__name__ = op_type.lower()


for _op, _ufunc in {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
                    "Div": np.divide}.items():
    _arith(_op, _ufunc)


@cpu_kernel("Pow")
def pow_(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()

    def power(x, y):
        if dtype.kind in "iu" and y.dtype.kind == "f":
            return np.power(x.astype(np.float64), y).astype(dtype)
        return np.power(x, y.astype(dtype, copy=False))

    return power


register_ufuncs({"Equal": np.equal, "Less": np.less, "Greater": np.greater,
                 "Not": np.logical_not})


@cpu_kernel("Where")
def where(ctx: KernelContext) -> Kernel:
    def where_(condition, x, y):
        return np.where(condition, x, y)

    return where_
