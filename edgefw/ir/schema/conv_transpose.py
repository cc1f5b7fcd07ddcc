"""Schemas of the ops that scatter windows back into an image: ConvTranspose and Col2Im."""

from __future__ import annotations

from collections.abc import Sequence

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import Dim, format_shape
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


def conv_transpose_geometry(spatial: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                            dilations: Sequence[int], output_padding: Sequence[int],
                            pads: Sequence[int] | None, output_shape: Sequence[int] | None,
                            auto_pad: str) -> tuple[list[int], list[int]]:
    """(output spatial shape, begin pads) of a ConvTranspose, following ONNX's reference:
    explicit pads (zero unless SAME_*) fix the output size unless output_shape is given;
    SAME_* derive the pads from the output size (input * stride by default)."""
    n = len(spatial)
    full = [strides[i] * (spatial[i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1
            for i in range(n)]
    if pads is None and auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * n)
    if pads is not None:
        if len(pads) != 2 * n:
            raise ShapeError(f"ConvTranspose pads {list(pads)} must have {2 * n} values")
        out = list(output_shape) if output_shape is not None else [
            full[i] - pads[i] - pads[i + n] for i in range(n)]
        return out, list(pads[:n])
    out = list(output_shape) if output_shape is not None else [spatial[i] * strides[i]
                                                               for i in range(n)]
    begins = []
    for i in range(n):
        total = full[i] - out[i]
        begins.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
    return out, begins


@op_schema(
    "ConvTranspose",
    inputs=(2, 3),
    attrs=[
        Attr("auto_pad", "string", "NOTSET"),
        Attr("dilations", "ints", None),
        Attr("group", "int", 1),
        Attr("kernel_shape", "ints", None),
        Attr("output_padding", "ints", None),
        Attr("output_shape", "ints", None),
        Attr("pads", "ints", None),
        Attr("strides", "ints", None),
    ],
    since_version=11,
    doc="transposed (fractionally strided) convolution; weight [C, M/group, k...]",
)
def _conv_transpose(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(0, 1, 2)
    ctx.require_dtype(0, FLOAT_DTYPES)
    x, w = ctx.shape(0), ctx.shape(1)
    if x is None or w is None:
        return [TensorType(dtype, None)]
    if len(x) < 3 or len(w) != len(x):
        raise ShapeError(f"ConvTranspose input {format_shape(x)} and weight {format_shape(w)} "
                         "must both be [N, C, spatial...]")
    group = int(ctx.attr("group"))
    if group < 1 or (isinstance(x[1], int) and isinstance(w[0], int) and x[1] != w[0]) or (
            isinstance(x[1], int) and x[1] % group):
        raise ShapeError(f"ConvTranspose input channels {x[1]} must equal weight dim 0 {w[0]} "
                         f"and divide by group {group}")
    channels: Dim = w[1] * group if isinstance(w[1], int) else None
    n = len(x) - 2
    kernel = list(ctx.attr("kernel_shape") or w[2:])
    if not all(isinstance(d, int) for d in list(x[2:]) + kernel):
        return [TensorType(dtype, (x[0], channels) + (None,) * n)]
    out, _ = conv_transpose_geometry(
        x[2:], kernel, ctx.attr("strides") or [1] * n, ctx.attr("dilations") or [1] * n,
        ctx.attr("output_padding") or [0] * n, ctx.attr("pads"), ctx.attr("output_shape"),
        ctx.attr("auto_pad"))
    return [TensorType(dtype, (x[0], channels) + tuple(out))]


@op_schema("Col2Im", inputs=3,
           attrs=[Attr("dilations", "ints", None), Attr("pads", "ints", None),
                  Attr("strides", "ints", None)], since_version=18,
           doc="sum sliding blocks [N, C*prod(block), L] back into an image [N, C, image...]")
def _col2im(ctx: InferenceContext) -> list[TensorType]:
    x = ctx.shape(0)
    image = ctx.const_ints(1)
    block = ctx.const_ints(2)
    if x is not None and len(x) != 3:
        raise ShapeError(f"Col2Im input must be [N, C*prod(block), L], got {format_shape(x)}")
    if x is None or image is None or block is None:
        rank = None if image is None else len(image) + 2
        return [TensorType(ctx.dtype(0), None if rank is None else (None,) * rank)]
    size = 1
    for b in block:
        size *= b
    channels = x[1] // size if isinstance(x[1], int) and size and x[1] % size == 0 else None
    if isinstance(x[1], int) and channels is None:
        raise ShapeError(f"Col2Im input channels {x[1]} are not divisible by the block size "
                         f"{size}")
    return [TensorType(ctx.dtype(0), (x[0], channels) + tuple(image))]
