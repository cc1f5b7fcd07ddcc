"""ConstantOfShape, Range, EyeLike and OneHot: tensors made from shapes, ranges and indices.

Sizes come from input data, so each is checked against the same limit shape inference uses
before anything is allocated.
"""

from __future__ import annotations

import math

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.schema.creation import MAX_ELEMENTS, constant_of_shape_value, range_length
from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def _checked_shape(dims: np.ndarray, what: str) -> tuple[int, ...]:
    shape = tuple(int(d) for d in dims.reshape(-1))
    if any(d < 0 for d in shape) or math.prod(shape) > MAX_ELEMENTS:
        raise ShapeError(f"{what} shape {list(shape)} is negative or absurdly large")
    return shape


@cpu_kernel("ConstantOfShape", since=9, output_alias="const")
def constant_of_shape(ctx: KernelContext) -> Kernel:
    fill = constant_of_shape_value(ctx.attr("value"))
    const_shape = ctx.const(0)
    if const_shape is not None:
        # A constant shape (every weight of the ONNX light models): build it once, read-only.
        value = np.full(_checked_shape(const_shape, "ConstantOfShape"), fill[0], fill.dtype)
        value.flags.writeable = False

        def constant_of_shape_const(_shape):
            return value

        return constant_of_shape_const

    def constant_of_shape_(shape):
        # "const" outputs may be held across runs, so hand out a read-only array.
        value = np.full(_checked_shape(shape, "ConstantOfShape"), fill[0], fill.dtype)
        value.flags.writeable = False
        return value

    return constant_of_shape_


@cpu_kernel("Range", since=11)
def range_(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()

    def range_kernel(start, limit, delta):
        s, lim, d = (v.reshape(-1)[0] for v in (start, limit, delta))
        n = range_length(s.item(), lim.item(), d.item())
        if n > MAX_ELEMENTS:
            raise ShapeError(f"Range({s}, {lim}, {d}) is absurdly long")
        # start + i * delta in the input dtype, as the ONNX loop body computes it.
        return (s + np.arange(n, dtype=dtype) * d).astype(dtype, copy=False)

    return range_kernel


@cpu_kernel("EyeLike", since=9)
def eye_like(ctx: KernelContext) -> Kernel:
    dtype = ctx.output_dtype()
    k = int(ctx.attr("k"))

    def eye_like_(x):
        rows, cols = x.shape
        return np.eye(rows, cols, k=k, dtype=dtype)

    return eye_like_


@cpu_kernel("OneHot", since=11)
def one_hot(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))

    def one_hot_(indices, depth, values):
        d = int(depth.reshape(-1)[0])
        if d < 1 or indices.size * d > MAX_ELEMENTS:
            raise ShapeError(f"OneHot depth {d} is not positive or absurdly large")
        a = normalize_axis(axis, indices.ndim + 1, "OneHot axis")
        idx = indices.astype(np.int64)
        idx = np.where(idx < 0, idx + d, idx)  # negative indices count from the end
        classes = np.arange(d).reshape((1,) * a + (d,) + (1,) * (indices.ndim - a))
        hot = np.expand_dims(idx, a) == classes
        off, on = values.reshape(-1)[0], values.reshape(-1)[1]
        return np.where(hot, on, off).astype(values.dtype, copy=False)

    return one_hot_
