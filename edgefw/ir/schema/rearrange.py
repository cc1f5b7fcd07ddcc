"""Schemas of ops that rearrange or mask elements: Tile, DepthToSpace, SpaceToDepth, Trilu,
ReverseSequence, CenterCropPad, and Size."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.schema.dims import Dim, format_shape, normalize_axis
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


def _times(d: Dim, k: int) -> Dim:
    if k == 1:
        return d
    return d * k if isinstance(d, int) else None


@op_schema("Tile", inputs=2, since_version=13, doc="the input repeated repeats[i] times on axis i")
def _tile(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, {"int64"}, "Tile repeats")
    x = ctx.shape(0)
    repeats = ctx.const_ints(1)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if repeats is None:
        return [TensorType(ctx.dtype(0), (None,) * len(x))]
    if len(repeats) != len(x) or any(r < 0 for r in repeats):
        raise ShapeError(f"Tile repeats {repeats} must be {len(x)} non-negative values for "
                         f"input {format_shape(x)}")
    return [TensorType(ctx.dtype(0), tuple(_times(d, r) for d, r in zip(x, repeats,
                                                                       strict=True)))]


def _nchw(ctx: InferenceContext) -> tuple[Dim, ...] | None:
    x = ctx.shape(0)
    if x is not None and len(x) != 4:
        raise ShapeError(f"{ctx.schema.op_type} input must be [N, C, H, W], got {format_shape(x)}")
    block = int(ctx.attr("blocksize"))
    if block < 1:
        raise ShapeError(f"{ctx.schema.op_type} blocksize must be positive, got {block}")
    return x


@op_schema("DepthToSpace", attrs=[Attr("blocksize", "int"), Attr("mode", "string", "DCR")],
           since_version=13, doc="move channel blocks into spatial blocks: [N, C/b^2, H*b, W*b]")
def _depth_to_space(ctx: InferenceContext) -> list[TensorType]:
    x = _nchw(ctx)
    if ctx.attr("mode") not in ("DCR", "CRD"):
        raise ShapeError(f"DepthToSpace mode must be DCR or CRD, got {ctx.attr('mode')!r}")
    if x is None:
        return [TensorType(ctx.dtype(0), (None,) * 4)]
    b = int(ctx.attr("blocksize"))
    c = x[1]
    if isinstance(c, int) and c % (b * b):
        raise ShapeError(f"DepthToSpace channels {c} are not divisible by blocksize^2 = {b * b}")
    return [TensorType(ctx.dtype(0), (x[0], c // (b * b) if isinstance(c, int) else None,
                                      _times(x[2], b), _times(x[3], b)))]


@op_schema("SpaceToDepth", attrs=[Attr("blocksize", "int"), Attr("mode", "string", "DCR")],
           since_version=28,
           doc="move spatial blocks into channels: [N, C*b^2, H/b, W/b]")
def _space_to_depth(ctx: InferenceContext) -> list[TensorType]:
    x = _nchw(ctx)
    if ctx.attr("mode") not in ("DCR", "CRD"):
        raise ShapeError(f"SpaceToDepth mode must be DCR or CRD, got {ctx.attr('mode')!r}")
    if x is None:
        return [TensorType(ctx.dtype(0), (None,) * 4)]
    b = int(ctx.attr("blocksize"))
    for d in x[2:]:
        if isinstance(d, int) and d % b:
            raise ShapeError(f"SpaceToDepth spatial dims {format_shape(x[2:])} are not "
                             f"divisible by blocksize {b}")
    return [TensorType(ctx.dtype(0), (x[0], _times(x[1], b * b)) + tuple(
        d // b if isinstance(d, int) else None for d in x[2:]))]


@op_schema("Trilu", inputs=(1, 2), attrs=[Attr("upper", "int", 1)], since_version=14,
           doc="upper (or lower) triangle of the last two dims, shifted by diagonal k")
def _trilu(ctx: InferenceContext) -> list[TensorType]:
    x = ctx.shape(0)
    if x is not None and len(x) < 2:
        raise ShapeError(f"Trilu input must have rank >= 2, got {format_shape(x)}")
    if ctx.has_input(1):
        ctx.require_dtype(1, {"int64"}, "Trilu k")
    return [ctx.input_type(0)]


@op_schema("ReverseSequence", inputs=2,
           attrs=[Attr("batch_axis", "int", 1), Attr("time_axis", "int", 0)], since_version=10,
           doc="reverse the first sequence_lens[b] steps along time_axis of each batch b")
def _reverse_sequence(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, {"int64"}, "ReverseSequence sequence_lens")
    x = ctx.shape(0)
    if x is not None:
        if len(x) < 2:
            raise ShapeError(f"ReverseSequence input must have rank >= 2, got {format_shape(x)}")
        axes = {int(ctx.attr("batch_axis")), int(ctx.attr("time_axis"))}
        if axes not in ({0, 1},):
            raise ShapeError(f"ReverseSequence batch_axis and time_axis must be 0 and 1 in some "
                             f"order, got {sorted(axes)}")
    return [ctx.input_type(0)]


@op_schema("CenterCropPad", inputs=2, attrs=[Attr("axes", "ints", None)], since_version=18,
           doc="center crop or zero-pad each listed axis to the shape input")
def _center_crop_pad(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, {"int32", "int64"}, "CenterCropPad shape")
    x = ctx.shape(0)
    target = ctx.const_ints(1)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    axes = ctx.attr("axes")
    axes = list(range(len(x))) if axes is None else [
        normalize_axis(int(a), len(x), "CenterCropPad axis") for a in axes]
    if target is None:
        return [TensorType(ctx.dtype(0), tuple(None if i in axes else d
                                               for i, d in enumerate(x)))]
    if len(target) != len(axes) or any(t < 0 for t in target):
        raise ShapeError(f"CenterCropPad shape {target} must give one size per axis {axes}")
    out = list(x)
    for a, t in zip(axes, target, strict=True):
        out[a] = t
    return [TensorType(ctx.dtype(0), tuple(out))]


@op_schema("Size", since_version=13, doc="number of elements, an int64 scalar")
def _size(ctx: InferenceContext) -> list[TensorType]:
    return [TensorType("int64", ())]
