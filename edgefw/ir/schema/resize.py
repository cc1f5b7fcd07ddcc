"""Schemas of Resize (opset 19: roi/scales/sizes inputs, axes, antialias, aspect-ratio
policy) and the deprecated Upsample (opset 9: a scales input)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from edgefw.errors import ShapeError
from edgefw.ir.schema.dims import Dim, normalize_axis
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

RESIZE_MODES = ("nearest", "linear", "cubic")
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                    "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
ASPECT_POLICIES = ("stretch", "not_larger", "not_smaller")


def resize_plan(in_shape: Sequence[Dim], scales: Sequence[float] | None,
                sizes: Sequence[int] | None, axes: Sequence[int] | None, policy: str
                ) -> tuple[list[Dim], list[float | None]]:
    """(output shape, per-axis scale) of a Resize: from ``sizes`` (with the aspect-ratio
    policy) or from ``scales`` (output = floor(scale * input)). Unknown dims stay None."""
    rank = len(in_shape)
    listed = list(range(rank)) if axes is None else [normalize_axis(a, rank, "Resize axis")
                                                     for a in axes]
    if len(set(listed)) != len(listed):
        raise ShapeError(f"Resize axes {list(axes or [])} repeat an axis")
    given = sizes if sizes is not None else scales
    if given is None:
        raise ShapeError("Resize needs scales or sizes")
    if len(given) != len(listed):
        what = "sizes" if sizes is not None else "scales"
        raise ShapeError(f"Resize {what} {list(given)} must have one value per resized axis "
                         f"({len(listed)})")
    out: list[Dim] = list(in_shape)
    factors: list[float | None] = [1.0] * rank
    if sizes is not None:
        if any(s < 0 for s in sizes):
            raise ShapeError(f"Resize sizes {list(sizes)} must not be negative")
        for a, s in zip(listed, sizes, strict=True):
            d = in_shape[a]
            factors[a] = s / d if isinstance(d, int) and d else None
            out[a] = int(s)
        if policy != "stretch":
            known = [factors[a] for a in listed]
            if any(f is None for f in known):
                return [None if a in listed else d for a, d in enumerate(in_shape)], \
                    [None if a in listed else 1.0 for a in range(rank)]
            scale = min(known) if policy == "not_larger" else max(known)  # type: ignore[type-var]
            for a in listed:
                factors[a] = scale
                out[a] = int(scale * in_shape[a] + 0.5)  # type: ignore[operator]
        return out, factors
    for a, s in zip(listed, scales, strict=True):  # type: ignore[arg-type]
        if not s > 0:
            raise ShapeError(f"Resize scales {list(scales)} must be positive")  # type: ignore[arg-type]
        d = in_shape[a]
        factors[a] = float(s)
        out[a] = int(math.floor(s * d)) if isinstance(d, int) else None
    return out, factors


def _float_list(ctx: InferenceContext, i: int) -> list[float] | None:
    data = ctx.const(i) if ctx.has_input(i) else None
    return None if data is None else [float(v) for v in data.reshape(-1)]


@op_schema(
    "Resize",
    inputs=(1, 4),
    attrs=[
        Attr("antialias", "int", 0),
        Attr("axes", "ints", None),
        Attr("coordinate_transformation_mode", "string", "half_pixel"),
        Attr("cubic_coeff_a", "float", -0.75),
        Attr("exclude_outside", "int", 0),
        Attr("extrapolation_value", "float", 0.0),
        Attr("keep_aspect_ratio_policy", "string", "stretch"),
        Attr("mode", "string", "nearest"),
        Attr("nearest_mode", "string", "round_prefer_floor"),
    ],
    since_version=19,
    doc="resize by scales or to sizes: nearest, (bi)linear or cubic interpolation",
)
def _resize(ctx: InferenceContext) -> list[TensorType]:
    for name, allowed in (("mode", RESIZE_MODES),
                          ("coordinate_transformation_mode", COORDINATE_MODES),
                          ("nearest_mode", NEAREST_MODES),
                          ("keep_aspect_ratio_policy", ASPECT_POLICIES)):
        if ctx.attr(name) not in allowed:
            raise ShapeError(f"Resize {name} {ctx.attr(name)!r} is not one of "
                             f"{', '.join(allowed)}")
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    scales = _float_list(ctx, 2)
    sizes = ctx.const_ints(3) if ctx.has_input(3) else None
    if scales is not None and not scales:  # an empty scales input means "use sizes"
        scales = None
    runtime_params = (ctx.has_input(2) and ctx.const(2) is None) or (
        ctx.has_input(3) and ctx.const(3) is None)
    if runtime_params or (scales is None and sizes is None):
        return [TensorType(ctx.dtype(0), (None,) * len(x))]
    out, _ = resize_plan(x, None if sizes is not None else scales, sizes, ctx.attr("axes"),
                         ctx.attr("keep_aspect_ratio_policy"))
    return [TensorType(ctx.dtype(0), tuple(out))]


@op_schema("Upsample", inputs=2, attrs=[Attr("mode", "string", "nearest")], since_version=9,
           doc="deprecated Resize: output = floor(input * scales), nearest or linear")
def _upsample(ctx: InferenceContext) -> list[TensorType]:
    if ctx.attr("mode") not in ("nearest", "linear"):
        raise ShapeError(f"Upsample mode must be nearest or linear, got {ctx.attr('mode')!r}")
    x = ctx.shape(0)
    scales = _float_list(ctx, 1)
    if x is None or scales is None:
        return [TensorType(ctx.dtype(0), None if x is None else (None,) * len(x))]
    out, _ = resize_plan(x, scales, None, None, "stretch")
    return [TensorType(ctx.dtype(0), tuple(out))]


__all__ = ["resize_plan"]
