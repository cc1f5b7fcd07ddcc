"""Schemas of AffineGrid (sampling grids from affine matrices) and GridSample (sampling an
image at grid positions)."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import format_shape
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

GRID_MODES = ("linear", "nearest", "cubic")
PADDING_MODES = ("zeros", "border", "reflection")


@op_schema("AffineGrid", inputs=2, attrs=[Attr("align_corners", "int", 0)], since_version=20,
           doc="the sampling grid [N, (D,) H, W, 2 or 3] of theta [N, 2, 3] or [N, 3, 4] over "
               "the size [N, C, (D,) H, W]")
def _affine_grid(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    ctx.require_dtype(1, {"int64"}, "AffineGrid size")
    theta = ctx.shape(0)
    if theta is not None and (len(theta) != 3 or tuple(theta[1:]) not in ((2, 3), (3, 4))):
        raise ShapeError(f"AffineGrid theta must be [N, 2, 3] or [N, 3, 4], got "
                         f"{format_shape(theta)}")
    size = ctx.const_ints(1)
    if size is None:
        n = ctx.shape(1)[0] if ctx.shape(1) is not None else None
        rank = n if isinstance(n, int) else None  # N, (D,) H, W and the coordinates
        return [TensorType(ctx.dtype(0), None if rank is None else (None,) * rank)]
    if len(size) not in (4, 5) or any(d < 1 for d in size):
        raise ShapeError(f"AffineGrid size must be [N, C, H, W] or [N, C, D, H, W], got {size}")
    return [TensorType(ctx.dtype(0), (size[0], *size[2:], len(size) - 2))]


@op_schema("GridSample", inputs=2,
           attrs=[Attr("align_corners", "int", 0), Attr("mode", "string", "linear"),
                  Attr("padding_mode", "string", "zeros")], since_version=22,
           doc="X [N, C, spatial...] sampled at the normalized coordinates of grid "
               "[N, out..., rank] (last coordinate first)")
def _grid_sample(ctx: InferenceContext) -> list[TensorType]:
    if ctx.attr("mode") not in GRID_MODES or ctx.attr("padding_mode") not in PADDING_MODES:
        raise ShapeError(f"GridSample mode {ctx.attr('mode')!r} / padding_mode "
                         f"{ctx.attr('padding_mode')!r} is not one of {GRID_MODES} / "
                         f"{PADDING_MODES}")
    x, grid = ctx.shape(0), ctx.shape(1)
    if x is None or grid is None:
        return [TensorType(ctx.dtype(0), None)]
    if len(x) < 3 or len(grid) != len(x) or grid[-1] not in (len(x) - 2, None):
        raise ShapeError(f"GridSample grid {format_shape(grid)} does not fit input "
                         f"{format_shape(x)}")
    return [TensorType(ctx.dtype(0), (x[0], x[1]) + tuple(grid[1:-1]))]
