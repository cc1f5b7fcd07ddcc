"""Schemas of index-driven ops: GatherElements, ScatterElements (and the deprecated
Scatter), GatherND, ScatterND, TensorScatter, NonZero, Compress, Unique."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.schema.dims import Dim, format_shape, normalize_axis
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

_INDEX = {"int32", "int64"}
SCATTER_REDUCTIONS = ("none", "add", "mul", "max", "min")


@op_schema("GatherElements", inputs=2, attrs=[Attr("axis", "int", 0)], since_version=13,
           doc="out[i][j][k] = data[index[i][j][k]][j][k] (for axis 0); shape of indices")
def _gather_elements(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, _INDEX, "GatherElements indices")
    data, idx = ctx.shape(0), ctx.shape(1)
    if data is not None and idx is not None:
        if len(data) != len(idx):
            raise ShapeError(f"GatherElements data {format_shape(data)} and indices "
                             f"{format_shape(idx)} ranks differ")
        ctx.axis("axis", len(data))
    return [TensorType(ctx.dtype(0), idx)]


def _check_reduction(ctx: InferenceContext) -> None:
    if ctx.attr("reduction") not in SCATTER_REDUCTIONS:
        raise ShapeError(f"reduction must be one of {', '.join(SCATTER_REDUCTIONS)}, got "
                         f"{ctx.attr('reduction')!r}")


@op_schema("ScatterElements", inputs=3,
           attrs=[Attr("axis", "int", 0), Attr("reduction", "string", "none")], since_version=18,
           doc="data with updates written (or reduced) at indices along axis")
def _scatter_elements(ctx: InferenceContext) -> list[TensorType]:
    _check_reduction(ctx)
    ctx.require_dtype(1, _INDEX, "ScatterElements indices")
    ctx.require_same_dtype(0, 2)
    data, idx, upd = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if data is not None:
        ctx.axis("axis", len(data))
        if idx is not None and len(idx) != len(data):
            raise ShapeError(f"ScatterElements indices {format_shape(idx)} and data "
                             f"{format_shape(data)} ranks differ")
    if idx is not None and upd is not None and len(idx) != len(upd):
        raise ShapeError(f"ScatterElements indices {format_shape(idx)} and updates "
                         f"{format_shape(upd)} differ")
    return [ctx.input_type(0)]


@op_schema("Scatter", inputs=3, attrs=[Attr("axis", "int", 0)], since_version=9,
           doc="deprecated ScatterElements (opsets 9-10): updates written at indices along axis")
def _scatter(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, _INDEX, "Scatter indices")
    ctx.require_same_dtype(0, 2)
    if ctx.rank(0) is not None:
        ctx.axis("axis", ctx.rank(0))
    return [ctx.input_type(0)]


@op_schema("TensorScatter", inputs=(2, 3),
           attrs=[Attr("axis", "int", -2), Attr("mode", "string", "linear")], since_version=24,
           doc="a KV cache with update written along axis at each batch's write index "
               "(mode circular wraps around)")
def _tensor_scatter(ctx: InferenceContext) -> list[TensorType]:
    if ctx.attr("mode") not in ("linear", "circular"):
        raise ShapeError(f"TensorScatter mode must be linear or circular, got "
                         f"{ctx.attr('mode')!r}")
    ctx.require_same_dtype(0, 1)
    cache, update = ctx.shape(0), ctx.shape(1)
    if cache is not None:
        axis = ctx.axis("axis", len(cache))
        if axis == 0:
            raise ShapeError("TensorScatter axis must not be the batch axis 0")
        if update is not None and (len(update) != len(cache) or any(
                isinstance(p, int) and isinstance(q, int) and (p < q if i == axis else p != q)
                for i, (p, q) in enumerate(zip(cache, update)))):
            raise ShapeError(f"TensorScatter update {format_shape(update)} does not fit cache "
                             f"{format_shape(cache)} along axis {axis}")
    if ctx.has_input(2):
        ctx.require_dtype(2, {"int64"}, "TensorScatter write_indices")
    return [ctx.input_type(0)]


@op_schema("GatherND", inputs=2, attrs=[Attr("batch_dims", "int", 0)], since_version=13,
           doc="slices of data addressed by the last axis of indices")
def _gather_nd(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, {"int64"}, "GatherND indices")
    data, idx = ctx.shape(0), ctx.shape(1)
    b = int(ctx.attr("batch_dims"))
    if data is None or idx is None:
        return [TensorType(ctx.dtype(0), None)]
    if len(idx) < 1 or b < 0 or b >= min(len(data), len(idx)):
        raise ShapeError(f"GatherND batch_dims {b} does not fit data {format_shape(data)} and "
                         f"indices {format_shape(idx)}")
    last = idx[-1]
    if not isinstance(last, int):
        return [TensorType(ctx.dtype(0), None)]
    if last < 1 or b + last > len(data):
        raise ShapeError(f"GatherND indices {format_shape(idx)} address {last} dims of data "
                         f"{format_shape(data)} after {b} batch dims")
    return [TensorType(ctx.dtype(0), tuple(idx[:-1]) + tuple(data[b + last:]))]


@op_schema("ScatterND", inputs=3, attrs=[Attr("reduction", "string", "none")], since_version=18,
           doc="data with the slices addressed by indices replaced (or reduced) by updates")
def _scatter_nd(ctx: InferenceContext) -> list[TensorType]:
    _check_reduction(ctx)
    ctx.require_dtype(1, {"int64"}, "ScatterND indices")
    ctx.require_same_dtype(0, 2)
    data, idx = ctx.shape(0), ctx.shape(1)
    if data is not None and idx is not None and isinstance(idx[-1], int) \
            and idx[-1] > len(data):
        raise ShapeError(f"ScatterND indices {format_shape(idx)} address more dims than data "
                         f"{format_shape(data)} has")
    return [ctx.input_type(0)]


@op_schema("NonZero", since_version=13,
           doc="indices of the non-zero elements, [rank, count] int64 (count is data-dependent)")
def _non_zero(ctx: InferenceContext) -> list[TensorType]:
    rank = ctx.rank(0)
    return [TensorType("int64", (rank, None))]


@op_schema("Compress", inputs=2, attrs=[Attr("axis", "int", None)], since_version=11,
           doc="the slices along axis (of the flattened input if none) whose condition is true")
def _compress(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, {"bool"}, "Compress condition")
    x = ctx.shape(0)
    axis = ctx.attr("axis")
    if axis is None:
        return [TensorType(ctx.dtype(0), (None,))]
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    a = normalize_axis(int(axis), len(x), "Compress axis")
    return [TensorType(ctx.dtype(0), tuple(None if i == a else d for i, d in enumerate(x)))]


@op_schema("Unique", outputs=(1, 4), attrs=[Attr("axis", "int", None), Attr("sorted", "int", 1)],
           since_version=11,
           doc="unique values (or slices along axis), first-occurrence indices, inverse "
               "indices and counts")
def _unique(ctx: InferenceContext) -> list[TensorType]:
    x = ctx.shape(0)
    axis = ctx.attr("axis")
    values: tuple[Dim, ...] | None
    if axis is None:
        values = (None,)
    elif x is None:
        values = None
    else:
        a = normalize_axis(int(axis), len(x), "Unique axis")
        values = tuple(None if i == a else d for i, d in enumerate(x))
    return [TensorType(ctx.dtype(0), values)] + [TensorType("int64", (None,))] * 3
