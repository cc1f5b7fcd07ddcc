"""Schemas of QuantizeLinear / DequantizeLinear (per-tensor and per-axis, QDQ form)."""

from __future__ import annotations

from edgefw.errors import DTypeError, ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES, QUANT_DTYPES, from_onnx
from edgefw.ir.schema.dims import format_shape, normalize_axis
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


def _check_params(ctx: InferenceContext, what: str) -> None:
    """Scale and zero point are scalars (per tensor) or 1-D along ``axis`` (per axis)."""
    if ctx.attr("block_size"):
        raise ShapeError(f"{what} with block_size (blocked quantization) is not supported")
    x, scale = ctx.shape(0), ctx.shape(1)
    if ctx.has_input(2) and ctx.shape(2) is not None and scale is not None \
            and tuple(ctx.shape(2)) != tuple(scale):
        raise ShapeError(f"{what} zero point {format_shape(ctx.shape(2))} and scale "
                         f"{format_shape(scale)} differ in shape")
    if scale is None or len(scale) == 0 or tuple(scale) == (1,):
        return
    if len(scale) != 1:
        raise ShapeError(f"{what} scale must be a scalar or 1-D, got {format_shape(scale)}")
    if x is not None:
        axis = normalize_axis(int(ctx.attr("axis")), len(x), f"{what} axis")
        if isinstance(x[axis], int) and isinstance(scale[0], int) and x[axis] != scale[0]:
            raise ShapeError(f"{what} per-axis scale {format_shape(scale)} does not match axis "
                             f"{axis} of input {format_shape(x)}")


@op_schema(
    "QuantizeLinear",
    inputs=(2, 3),
    attrs=[
        Attr("axis", "int", 1),
        Attr("saturate", "int", 1),
        Attr("block_size", "int", 0),
        Attr("output_dtype", "int", 0),
    ],
    since_version=21,
    doc="saturate(round_half_even(x / scale) + zero_point); dtype of the zero point",
)
def _quantize_linear(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES | {"int32"})
    ctx.require_dtype(1, FLOAT_DTYPES, "scale")
    _check_params(ctx, "QuantizeLinear")
    if ctx.has_input(2):
        dtype = ctx.dtype(2)
        if ctx.attr("output_dtype") and from_onnx(ctx.attr("output_dtype")) != dtype:
            raise DTypeError(f"QuantizeLinear output_dtype {from_onnx(ctx.attr('output_dtype'))} "
                             f"differs from the zero point's {dtype}")
    elif ctx.attr("output_dtype"):
        dtype = from_onnx(ctx.attr("output_dtype"))
    else:
        dtype = "uint8"
    if dtype is not None and dtype not in QUANT_DTYPES:
        raise DTypeError(f"QuantizeLinear output dtype {dtype} is not one of "
                         f"{', '.join(sorted(QUANT_DTYPES))}")
    return [TensorType(dtype, ctx.shape(0))]


@op_schema(
    "DequantizeLinear",
    inputs=(2, 3),
    attrs=[Attr("axis", "int", 1), Attr("block_size", "int", 0)],
    since_version=21,
    doc="(x - zero_point) * scale; dtype of the scale",
)
def _dequantize_linear(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, QUANT_DTYPES | {"int32"})
    ctx.require_dtype(1, FLOAT_DTYPES, "scale")
    if ctx.has_input(2) and ctx.dtype(0) is not None:
        ctx.require_same_dtype(0, 2)
    _check_params(ctx, "DequantizeLinear")
    return [TensorType(ctx.dtype(1), ctx.shape(0))]
