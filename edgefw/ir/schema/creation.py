"""Schemas of ops that make tensors from shapes or ranges: ConstantOfShape, Range, EyeLike,
OneHot."""

from __future__ import annotations

import math

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES, INT_DTYPES, from_numpy, from_onnx
from edgefw.ir.schema.dims import format_shape, normalize_axis
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

NUMERIC = FLOAT_DTYPES | INT_DTYPES
#: The most elements inference accepts for a constant-shaped output before calling the shape
#: absurd (a hostile model must not make the planner allocate terabytes).
MAX_ELEMENTS = 1 << 34


def constant_of_shape_value(value: np.ndarray | None) -> np.ndarray:
    """ConstantOfShape's fill value: the one-element ``value`` attribute, float32 0 if unset."""
    if value is None:
        return np.zeros(1, np.float32)
    if value.size != 1:
        raise ShapeError(f"ConstantOfShape value must hold one element, got shape "
                         f"{list(value.shape)}")
    return value.reshape(1)


@op_schema("ConstantOfShape", attrs=[Attr("value", "tensor", None)], since_version=9,
           doc="a tensor of the shape input, filled with the value attribute (float32 0)")
def _constant_of_shape(ctx: InferenceContext) -> list[TensorType]:
    dtype = from_numpy(constant_of_shape_value(ctx.attr("value")).dtype)
    ctx.require_dtype(0, {"int64"}, "ConstantOfShape shape")
    dims = ctx.const_ints(0)
    if dims is None:
        shape = ctx.shape(0)
        rank = shape[0] if shape is not None and len(shape) == 1 else None
        return [TensorType(dtype, None if not isinstance(rank, int) else (None,) * rank)]
    if any(d < 0 for d in dims):
        raise ShapeError(f"ConstantOfShape shape {dims} has a negative dim")
    if math.prod(dims) > MAX_ELEMENTS:
        raise ShapeError(f"ConstantOfShape shape {dims} is absurdly large")
    return [TensorType(dtype, tuple(dims))]


def range_length(start: float, limit: float, delta: float) -> int:
    """Number of elements of Range(start, limit, delta)."""
    if delta == 0:
        raise ShapeError("Range delta must not be 0")
    return max(int(math.ceil((limit - start) / delta)), 0)


@op_schema("Range", inputs=3, since_version=11,
           doc="start, start + delta, ... up to (not including) limit; scalar inputs")
def _range(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(0, 1, 2)
    ctx.require_dtype(0, NUMERIC)
    for i in range(3):
        shape = ctx.shape(i)
        if shape is not None and len(shape) != 0 and tuple(shape) != (1,):
            raise ShapeError(f"Range input {i} must be a scalar, got {format_shape(shape)}")
    values = [ctx.const(i) for i in range(3)]
    if any(v is None for v in values):
        return [TensorType(dtype, (None,))]
    start, limit, delta = (v.reshape(-1)[0].item() for v in values)
    n = range_length(start, limit, delta)
    if n > MAX_ELEMENTS:
        raise ShapeError(f"Range({start}, {limit}, {delta}) is absurdly long")
    return [TensorType(dtype, (n,))]


@op_schema("EyeLike", attrs=[Attr("dtype", "int", None), Attr("k", "int", 0)], since_version=9,
           doc="a 2-D identity-like matrix (ones on diagonal k) shaped like the input")
def _eye_like(ctx: InferenceContext) -> list[TensorType]:
    shape = ctx.shape(0)
    if shape is not None and len(shape) != 2:
        raise ShapeError(f"EyeLike input must be 2-D, got {format_shape(shape)}")
    code = ctx.attr("dtype")
    dtype = ctx.dtype(0) if code is None else from_onnx(code)
    return [TensorType(dtype, shape)]


@op_schema("OneHot", inputs=3, attrs=[Attr("axis", "int", -1)], since_version=11,
           doc="values[1] where the index (mod depth) matches, values[0] elsewhere; a new "
               "axis of size depth")
def _one_hot(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, NUMERIC, "OneHot indices")
    ctx.require_dtype(1, NUMERIC, "OneHot depth")
    values = ctx.shape(2)
    if values is not None and tuple(values) not in ((2,), (None,)):
        raise ShapeError(f"OneHot values must be [off, on], got {format_shape(values)}")
    depth_data = ctx.const(1)
    depth = None
    if depth_data is not None:
        if depth_data.size != 1:
            raise ShapeError(f"OneHot depth must be one value, got shape "
                             f"{list(depth_data.shape)}")
        depth = int(depth_data.reshape(-1)[0])
        if depth < 1:
            raise ShapeError(f"OneHot depth must be positive, got {depth}")
    indices = ctx.shape(0)
    if indices is None:
        return [TensorType(ctx.dtype(2), None)]
    rank = len(indices) + 1
    axis = normalize_axis(int(ctx.attr("axis")), rank, "OneHot axis")
    out = list(indices)
    out.insert(axis, depth)
    return [TensorType(ctx.dtype(2), tuple(out))]

