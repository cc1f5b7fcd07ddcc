"""Schemas of ReduceSum/ReduceMean/ReduceMax/ReduceMin (axes as an input, newest form)."""

from __future__ import annotations

from edgefw.ir.dtypes import FLOAT_DTYPES, INT_DTYPES
from edgefw.ir.schema.dims import Shape, normalize_axis
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


def reduced_axes(rank: int, axes: list[int] | None, noop_with_empty_axes: int) -> list[int]:
    """Sorted axes a Reduce* node reduces; [] means no-op (empty axes with the noop flag)."""
    if not axes:
        return [] if noop_with_empty_axes else list(range(rank))
    normalized = sorted({normalize_axis(a, rank, "reduce axis") for a in axes})
    return normalized


def _reduce(ctx: InferenceContext) -> list[TensorType]:
    # ReduceMax/ReduceMin take bool too (opset 20).
    logical = {"bool"} if ctx.schema.op_type in ("ReduceMax", "ReduceMin") else set()
    ctx.require_dtype(0, FLOAT_DTYPES | INT_DTYPES | logical)
    dtype, x = ctx.dtype(0), ctx.shape(0)
    keepdims = bool(ctx.attr("keepdims"))
    if x is None:
        return [TensorType(dtype, None)]
    axes = ctx.const_ints(1) if ctx.has_input(1) else []
    if axes is None:
        return [TensorType(dtype, (None,) * len(x) if keepdims else None)]
    reduced = reduced_axes(len(x), axes, int(ctx.attr("noop_with_empty_axes")))
    if not reduced and axes == [] and ctx.attr("noop_with_empty_axes"):
        return [TensorType(dtype, x)]
    out: Shape = tuple(
        1 if i in reduced else d for i, d in enumerate(x) if keepdims or i not in reduced
    )
    return [TensorType(dtype, out)]


_REDUCE_ATTRS = [Attr("keepdims", "int", 1), Attr("noop_with_empty_axes", "int", 0)]
REDUCE_OPS = {
    "ReduceSum": (13, "sum"),
    "ReduceMean": (18, "mean"),
    "ReduceMax": (18, "max"),
    "ReduceMin": (18, "min"),
}
for _op, (_since, _what) in REDUCE_OPS.items():
    op_schema(
        _op,
        inputs=(1, 2),
        attrs=_REDUCE_ATTRS,
        since_version=_since,
        doc=f"{_what} over the axes input (all axes when absent, unless noop_with_empty_axes)",
    )(_reduce)
