"""Schemas of GlobalMaxPool and LpPool (MaxPool/AveragePool/GlobalAveragePool are in nn.py)."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import format_shape
from edgefw.ir.schema.nn import _POOL_ATTRS, _pool
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


@op_schema("GlobalMaxPool", since_version=1, doc="max over all spatial dims, kept as size 1")
def _global_max_pool(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if len(x) < 3:
        raise ShapeError(f"GlobalMaxPool input must be [N, C, spatial...], got {format_shape(x)}")
    return [TensorType(ctx.dtype(0), (x[0], x[1]) + (1,) * (len(x) - 2))]


@op_schema("LpPool", attrs=_POOL_ATTRS + [Attr("p", "int", 2)], since_version=18,
           doc="(sum of |x|^p over sliding windows)^(1/p); padding counts as 0")
def _lp_pool(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    if int(ctx.attr("p")) < 1:
        raise ShapeError(f"LpPool p must be positive, got {ctx.attr('p')}")
    return _pool(ctx)[:1]
