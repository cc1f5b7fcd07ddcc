"""Schemas of the other reductions: ReduceL1/L2/LogSum/LogSumExp/Prod/SumSquare (axes as an
input, like reduce.py's), ArgMax/ArgMin, CumSum/CumProd and TopK."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES, INT_DTYPES
from edgefw.ir.schema.dims import format_shape
from edgefw.ir.schema.reduce import _REDUCE_ATTRS, _reduce
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

NUMERIC = FLOAT_DTYPES | INT_DTYPES

MORE_REDUCE_OPS = {
    "ReduceL1": "sum of |x|",
    "ReduceL2": "sqrt of the sum of x^2",
    "ReduceLogSum": "log of the sum",
    "ReduceLogSumExp": "log of the sum of exp(x)",
    "ReduceProd": "product",
    "ReduceSumSquare": "sum of x^2",
}
for _op, _what in MORE_REDUCE_OPS.items():
    op_schema(
        _op,
        inputs=(1, 2),
        attrs=_REDUCE_ATTRS,
        since_version=18,
        doc=f"{_what} over the axes input (all axes when absent, unless noop_with_empty_axes)",
    )(_reduce)


def _arg_reduce(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, NUMERIC)
    x = ctx.shape(0)
    if x is None:
        return [TensorType("int64", None)]
    axis = ctx.axis("axis", len(x))
    keep = bool(ctx.attr("keepdims"))
    out = tuple(1 if i == axis else d for i, d in enumerate(x) if keep or i != axis)
    return [TensorType("int64", out)]


_ARG_ATTRS = [Attr("axis", "int", 0), Attr("keepdims", "int", 1),
              Attr("select_last_index", "int", 0)]
op_schema("ArgMax", attrs=_ARG_ATTRS, since_version=13,
          doc="index of the maximum along axis (int64; the last one if select_last_index)")(
    _arg_reduce
)
op_schema("ArgMin", attrs=_ARG_ATTRS, since_version=13,
          doc="index of the minimum along axis (int64; the last one if select_last_index)")(
    _arg_reduce
)


def _cumulative(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, NUMERIC)
    ctx.require_dtype(1, {"int32", "int64"}, "axis")
    axis = ctx.shape(1)
    if axis is not None and not (len(axis) == 0 or (len(axis) == 1 and axis[0] in (1, None))):
        raise ShapeError(f"{ctx.schema.op_type} axis must be a scalar, got {format_shape(axis)}")
    return [ctx.input_type(0)]


_CUMULATIVE_ATTRS = [Attr("exclusive", "int", 0), Attr("reverse", "int", 0)]
op_schema("CumSum", inputs=2, attrs=_CUMULATIVE_ATTRS, since_version=14,
          doc="running sum along the axis input (exclusive / reverse as set)")(_cumulative)
op_schema("CumProd", inputs=2, attrs=_CUMULATIVE_ATTRS, since_version=26,
          doc="running product along the axis input (exclusive / reverse as set)")(_cumulative)


@op_schema("TopK", inputs=2, outputs=2,
           attrs=[Attr("axis", "int", -1), Attr("largest", "int", 1), Attr("sorted", "int", 1)],
           since_version=11, doc="the K largest (or smallest) values along axis and their indices")
def _top_k(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, NUMERIC)
    ctx.require_dtype(1, {"int64"}, "K")
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None), TensorType("int64", None)]
    axis = ctx.axis("axis", len(x))
    k = ctx.const_ints(1)
    if k is not None:
        if len(k) != 1 or k[0] < 0:
            raise ShapeError(f"TopK K must be one non-negative value, got {k}")
        if isinstance(x[axis], int) and k[0] > x[axis]:
            raise ShapeError(f"TopK K={k[0]} exceeds axis {axis} of {format_shape(x)}")
    out = tuple((k[0] if k is not None else None) if i == axis else d for i, d in enumerate(x))
    return [TensorType(ctx.dtype(0), out), TensorType("int64", out)]
