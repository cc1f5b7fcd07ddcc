"""Schemas of the normalizations beyond BatchNormalization/LayerNormalization (nn.py): LRN,
InstanceNormalization, GroupNormalization, MeanVarianceNormalization, LpNormalization,
RMSNormalization."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import Dim, broadcast_shapes, format_shape
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


def _dims_differ(a: Dim, b: Dim) -> bool:
    return isinstance(a, int) and isinstance(b, int) and a != b


def _channel_input(ctx: InferenceContext, what: str) -> tuple[Dim, ...] | None:
    ctx.require_dtype(0, FLOAT_DTYPES)
    x = ctx.shape(0)
    if x is not None and len(x) < 2:
        raise ShapeError(f"{what} input must be [N, C, ...], got {format_shape(x)}")
    return x


@op_schema("LRN", attrs=[Attr("alpha", "float", 1e-4), Attr("beta", "float", 0.75),
                         Attr("bias", "float", 1.0), Attr("size", "int")], since_version=13,
           doc="x / (bias + alpha / size * sum of x^2 over size neighbouring channels)^beta")
def _lrn(ctx: InferenceContext) -> list[TensorType]:
    _channel_input(ctx, "LRN")
    if int(ctx.attr("size")) < 1:
        raise ShapeError(f"LRN size must be positive, got {ctx.attr('size')}")
    return [ctx.input_type(0)]


def _per_channel_params(ctx: InferenceContext, what: str, channels: Dim,
                        indices: tuple[int, ...] = (1, 2)) -> None:
    for i in indices:
        p = ctx.shape(i) if ctx.has_input(i) else None
        if p is not None and (len(p) != 1 or _dims_differ(p[0], channels)):
            raise ShapeError(f"{what} input {i} {format_shape(p)} must be [{channels}]")


@op_schema("InstanceNormalization", inputs=3, attrs=[Attr("epsilon", "float", 1e-5)],
           since_version=6, doc="per sample and channel: (x - mean) / sqrt(var + eps) * scale + B")
def _instance_norm(ctx: InferenceContext) -> list[TensorType]:
    x = _channel_input(ctx, "InstanceNormalization")
    ctx.require_same_dtype(0, 1, 2)
    _per_channel_params(ctx, "InstanceNormalization", None if x is None else x[1])
    return [ctx.input_type(0)]


@op_schema("GroupNormalization", inputs=3,
           attrs=[Attr("epsilon", "float", 1e-5), Attr("num_groups", "int"),
                  Attr("stash_type", "int", 1)], since_version=21,
           doc="normalize each group of C/num_groups channels, then per-channel scale and bias")
def _group_norm(ctx: InferenceContext) -> list[TensorType]:
    x = _channel_input(ctx, "GroupNormalization")
    groups = int(ctx.attr("num_groups"))
    if groups < 1:
        raise ShapeError(f"GroupNormalization num_groups must be positive, got {groups}")
    channels = None if x is None else x[1]
    if isinstance(channels, int) and channels % groups:
        raise ShapeError(f"GroupNormalization channels {channels} are not divisible by "
                         f"num_groups {groups}")
    _per_channel_params(ctx, "GroupNormalization", channels)
    return [ctx.input_type(0)]


@op_schema("MeanVarianceNormalization", attrs=[Attr("axes", "ints", [0, 2, 3])],
           since_version=13, doc="(x - mean) / sqrt(var), statistics over axes")
def _mvn(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    rank = ctx.rank(0)
    if rank is not None:
        for a in ctx.attr("axes"):
            if not -rank <= int(a) < rank:
                raise ShapeError(f"MeanVarianceNormalization axis {a} is out of range for rank "
                                 f"{rank}")
    return [ctx.input_type(0)]


@op_schema("LpNormalization", attrs=[Attr("axis", "int", -1), Attr("p", "int", 2)],
           since_version=1, doc="x / ||x||_p along axis (p = 1 or 2)")
def _lp_norm(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    if int(ctx.attr("p")) not in (1, 2):
        raise ShapeError(f"LpNormalization p must be 1 or 2, got {ctx.attr('p')}")
    if ctx.rank(0) is not None:
        ctx.axis("axis", ctx.rank(0))
    return [ctx.input_type(0)]


@op_schema("RMSNormalization", inputs=2,
           attrs=[Attr("axis", "int", -1), Attr("epsilon", "float", 1e-5),
                  Attr("stash_type", "int", 1)], since_version=23,
           doc="x / sqrt(mean(x^2 over dims axis..) + epsilon) * scale")
def _rms_norm(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(0, 1)
    ctx.require_dtype(0, FLOAT_DTYPES)
    x = ctx.shape(0)
    if x is not None:
        axis = ctx.axis("axis", len(x))
        scale = ctx.shape(1)
        if scale is not None:
            try:
                b = broadcast_shapes(tuple(x[axis:]), scale)
            except ShapeError:
                b = None
            if b is None or len(b) != len(x) - axis:
                raise ShapeError(f"RMSNormalization scale {format_shape(scale)} does not "
                                 f"broadcast to the normalized dims {format_shape(x[axis:])}")
    return [TensorType(dtype, x)]
