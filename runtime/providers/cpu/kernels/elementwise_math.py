"""Elementwise math beyond unary.py/binary.py: trigonometry, rounding, Sign, IsNaN/IsInf,
logical and bitwise ops, GreaterOrEqual/LessOrEqual, Mod, BitShift, the variadic
Min/Max/Mean/Sum, and CastLike."""

from __future__ import annotations

from functools import reduce

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.unary_kernel import register_ufuncs
from runtime.providers.cpu.registry import cpu_kernel

_UNARY_UFUNCS = {
    "Sin": np.sin, "Cos": np.cos, "Tan": np.tan,
    "Asin": np.arcsin, "Acos": np.arccos, "Atan": np.arctan,
    "Sinh": np.sinh, "Cosh": np.cosh, "Asinh": np.arcsinh, "Acosh": np.arccosh,
    "Atanh": np.arctanh,
    "Floor": np.floor, "Ceil": np.ceil,
    "Round": np.rint,  # halves to even, as ONNX asks
    "Sign": np.sign,
    "BitwiseNot": np.invert,
}


register_ufuncs(_UNARY_UFUNCS)


@cpu_kernel("IsNaN")
def is_nan(ctx: KernelContext) -> Kernel:
    out = ctx.output_buffer()

    def is_nan_(x):
        return np.isnan(x, out=out)

    return is_nan_


@cpu_kernel("IsInf")
def is_inf(ctx: KernelContext) -> Kernel:
    negative, positive = bool(ctx.attr("detect_negative")), bool(ctx.attr("detect_positive"))

    def is_inf_(x):
        if negative and positive:
            return np.isinf(x)
        if positive:
            return np.isposinf(x)
        if negative:
            return np.isneginf(x)
        return np.zeros(x.shape, dtype=bool)

    return is_inf_


_BINARY_UFUNCS = {
    "And": np.logical_and, "Or": np.logical_or, "Xor": np.logical_xor,
    "BitwiseAnd": np.bitwise_and, "BitwiseOr": np.bitwise_or, "BitwiseXor": np.bitwise_xor,
    "GreaterOrEqual": np.greater_equal, "LessOrEqual": np.less_equal,
}


register_ufuncs(_BINARY_UFUNCS)


@cpu_kernel("Mod")
def mod(ctx: KernelContext) -> Kernel:
    # fmod=0 (integers only): the sign of the divisor, numpy's mod; fmod=1: C's fmod, the
    # sign of the dividend.
    ufunc = np.fmod if ctx.attr("fmod") else np.mod
    out = ctx.output_buffer()

    def mod_(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return ufunc(a, b, out=out)

    return mod_


@cpu_kernel("BitShift")
def bit_shift(ctx: KernelContext) -> Kernel:
    left = ctx.attr("direction") == "LEFT"

    def bit_shift_(x, y):
        x, y = np.broadcast_arrays(x, y)
        bits = np.iinfo(x.dtype).bits
        valid = (y >= 0) & (y < bits)
        # numpy leaves shifts by >= the width undefined; ONNX defines them (0, or -1 for a
        # negative signed value shifted right), so those lanes are filled separately.
        amount = np.where(valid, y, 0).astype(x.dtype, copy=False)
        if left:
            unsigned = x.view(np.dtype(f"u{x.dtype.itemsize}"))
            shifted = np.left_shift(unsigned, amount.view(unsigned.dtype)).view(x.dtype)
            return np.where(valid, shifted, 0).astype(x.dtype, copy=False)
        shifted = np.right_shift(x, amount)
        overflow = np.where(x < 0, -1, 0) if x.dtype.kind == "i" else 0
        return np.where(valid, shifted, overflow).astype(x.dtype, copy=False)

    return bit_shift_


def _register_variadic(op_type: str, ufunc: np.ufunc, mean: bool = False) -> None:
    @cpu_kernel(op_type)
    def build(ctx: KernelContext) -> Kernel:
        dtype = ctx.output_dtype()

        def variadic(*xs):
            y = reduce(ufunc, xs[1:], xs[0])
            if mean:
                y = y / dtype.type(len(xs)) if dtype.kind == "f" else y // len(xs)
            # One input: a copy, so the output never aliases the input.
            return np.array(y, dtype=dtype) if len(xs) == 1 else np.asarray(y, dtype=dtype)

        return variadic

    build.__name__ = op_type.lower()


_register_variadic("Min", np.minimum)
_register_variadic("Max", np.maximum)
_register_variadic("Sum", np.add)
_register_variadic("Mean", np.add, mean=True)


@cpu_kernel("CastLike")
def cast_like(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()

    def cast_like_(x, _target):
        return x.astype(dtype)

    return cast_like_


@cpu_kernel("BitCast", since=26)
def bit_cast(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()

    def bit_cast_(x):
        return np.array(x, order="C").view(dtype)  # a copy: the output must not alias x

    return bit_cast_
