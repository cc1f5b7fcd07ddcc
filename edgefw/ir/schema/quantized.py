"""Schemas of ONNX's integer ("QOperator") ops: QLinearConv, QLinearMatMul, MatMulInteger,
ConvInteger and DynamicQuantizeLinear.

edgefw's own quantized graphs are QDQ (DequantizeLinear -> float op -> QuantizeLinear);
these ops exist so that models made by onnxruntime's quantization tool load and run.
Output shapes are those of the float op (Conv / MatMul inference on the same shapes).

>>> from edgefw.ir.schema import infer_types, TensorType
>>> u8, f32 = "uint8", "float32"
>>> infer_types("MatMulInteger", [TensorType(u8, ("batch", 16)), TensorType("int8", (16, 4))],
...             [None, None], {})
[TensorType(dtype='int32', shape=('batch', 4))]
"""

from __future__ import annotations

from edgefw.errors import DTypeError, ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import Dim, format_shape
from edgefw.ir.schema.registry import (
    Attr,
    InferenceContext,
    TensorType,
    infer_types,
    op_schema,
)

EIGHT_BIT = frozenset({"int8", "uint8"})
_CONV_ATTRS = [
    Attr("auto_pad", "string", "NOTSET"),
    Attr("dilations", "ints", None),
    Attr("group", "int", 1),
    Attr("kernel_shape", "ints", None),
    Attr("pads", "ints", None),
    Attr("strides", "ints", None),
]


def _float_types(ctx: InferenceContext, *indices: int) -> list[TensorType | None]:
    """The shapes of inputs ``indices`` as float32 types (for the float op's inference)."""
    return [TensorType("float32", ctx.shape(i)) if ctx.has_input(i) else None for i in indices]


def _conv_shape(ctx: InferenceContext, x: int, w: int, bias: int | None) -> tuple:
    types = _float_types(ctx, x, w)
    if bias is not None and ctx.has_input(bias):
        types.append(TensorType("float32", ctx.shape(bias)))
    return infer_types("Conv", types, [None] * len(types), ctx.attrs)[0].shape


def _matmul_shape(ctx: InferenceContext, a: int, b: int) -> tuple | None:
    return infer_types("MatMul", _float_types(ctx, a, b), [None, None], {})[0].shape


def _check_pair(ctx: InferenceContext, value: int, zero_point: int, what: str) -> None:
    """An 8-bit input and its zero point share one dtype."""
    ctx.require_dtype(value, EIGHT_BIT, what)
    if ctx.has_input(zero_point):
        ctx.require_dtype(zero_point, EIGHT_BIT, f"{what} zero point")
        if ctx.dtype(value) is not None and ctx.dtype(zero_point) is not None \
                and ctx.dtype(value) != ctx.dtype(zero_point):
            raise DTypeError(f"{what} is {ctx.dtype(value)} but its zero point is "
                             f"{ctx.dtype(zero_point)}")


def _numel(shape: tuple | None) -> Dim:
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    n = 1
    for d in shape:
        n *= d
    return n


def _check_scalar(ctx: InferenceContext, i: int, what: str) -> None:
    n = _numel(ctx.shape(i)) if ctx.has_input(i) else 1
    if n is not None and n != 1:
        raise ShapeError(f"{what} must be a scalar (per tensor), got {format_shape(ctx.shape(i))}")


def _check_per_channel(ctx: InferenceContext, i: int, channels: Dim, what: str) -> None:
    """Scalar, or 1-D with one value per output channel."""
    if not ctx.has_input(i) or ctx.shape(i) is None:
        return
    shape = ctx.shape(i)
    if _numel(shape) == 1:
        return
    if len(shape) != 1 or (isinstance(channels, int) and isinstance(shape[0], int)
                           and shape[0] != channels):
        raise ShapeError(f"{what} must be a scalar or [{channels}] (per output channel), got "
                         f"{format_shape(shape)}")


@op_schema("QLinearConv", inputs=(8, 9), attrs=_CONV_ATTRS, since_version=10,
           doc="Conv on 8-bit x, w: int32 accumulation of (x - x_zp) * (w - w_zp) + B, "
               "requantized as round_half_even(acc * x_scale * w_scale / y_scale) + y_zp")
def _qlinear_conv(ctx: InferenceContext) -> list[TensorType]:
    _check_pair(ctx, 0, 2, "QLinearConv x")
    _check_pair(ctx, 3, 5, "QLinearConv w")
    _check_pair(ctx, 7, 7, "QLinearConv y zero point")
    for i, name in ((1, "x_scale"), (4, "w_scale"), (6, "y_scale")):
        ctx.require_dtype(i, {"float32"}, f"QLinearConv {name}")
    for i, name in ((1, "x_scale"), (2, "x_zero_point"), (6, "y_scale"), (7, "y_zero_point")):
        _check_scalar(ctx, i, f"QLinearConv {name}")
    if ctx.has_input(8):
        ctx.require_dtype(8, {"int32"}, "QLinearConv bias")
    shape = _conv_shape(ctx, 0, 3, 8)
    channels = ctx.shape(3)[0] if ctx.shape(3) is not None else None
    _check_per_channel(ctx, 4, channels, "QLinearConv w_scale")
    _check_per_channel(ctx, 5, channels, "QLinearConv w_zero_point")
    return [TensorType(ctx.dtype(7), shape)]


def _check_matmul_param(ctx: InferenceContext, i: int, operand: int, per: str,
                        what: str) -> None:
    """Scalar, a vector (per row of a / per column of b), or N-D broadcastable."""
    shape, x = ctx.shape(i) if ctx.has_input(i) else None, ctx.shape(operand)
    if shape is None or x is None or _numel(shape) == 1 or len(x) < 2:
        return
    size = x[-2] if per == "row" else x[-1]
    if len(shape) == 1:
        if isinstance(size, int) and isinstance(shape[0], int) and shape[0] != size:
            raise ShapeError(f"{what} {format_shape(shape)} must have one value per {per} "
                             f"({size}) of {format_shape(x)}")
        return
    if len(shape) > len(x):
        raise ShapeError(f"{what} {format_shape(shape)} has a higher rank than its input "
                         f"{format_shape(x)}")


@op_schema("QLinearMatMul", inputs=8, since_version=21,
           doc="numpy.matmul on 8-bit a, b with int32 accumulation, requantized as "
               "round_half_even(acc * a_scale * b_scale / y_scale) + y_zp")
def _qlinear_matmul(ctx: InferenceContext) -> list[TensorType]:
    _check_pair(ctx, 0, 2, "QLinearMatMul a")
    _check_pair(ctx, 3, 5, "QLinearMatMul b")
    _check_pair(ctx, 7, 7, "QLinearMatMul y zero point")
    for i, name in ((1, "a_scale"), (4, "b_scale"), (6, "y_scale")):
        ctx.require_dtype(i, FLOAT_DTYPES, f"QLinearMatMul {name}")
    for i, operand, per, name in ((1, 0, "row", "a_scale"), (2, 0, "row", "a_zero_point"),
                                  (4, 3, "column", "b_scale"), (5, 3, "column", "b_zero_point"),
                                  (6, 0, "row", "y_scale"), (7, 0, "row", "y_zero_point")):
        _check_matmul_param(ctx, i, operand, per, f"QLinearMatMul {name}")
    return [TensorType(ctx.dtype(7), _matmul_shape(ctx, 0, 3))]


@op_schema("MatMulInteger", inputs=(2, 4), since_version=10,
           doc="numpy.matmul of (A - a_zp) and (B - b_zp) on 8-bit inputs, int32 result; "
               "zero points per tensor, per row of A, per column of B")
def _matmul_integer(ctx: InferenceContext) -> list[TensorType]:
    _check_pair(ctx, 0, 2, "MatMulInteger A")
    _check_pair(ctx, 1, 3, "MatMulInteger B")
    _check_matmul_param(ctx, 2, 0, "row", "MatMulInteger a_zero_point")
    _check_matmul_param(ctx, 3, 1, "column", "MatMulInteger b_zero_point")
    return [TensorType("int32", _matmul_shape(ctx, 0, 1))]


@op_schema("ConvInteger", inputs=(2, 4), attrs=_CONV_ATTRS, since_version=10,
           doc="Conv of (x - x_zp) and (w - w_zp) on 8-bit inputs, int32 result")
def _conv_integer(ctx: InferenceContext) -> list[TensorType]:
    _check_pair(ctx, 0, 2, "ConvInteger x")
    _check_pair(ctx, 1, 3, "ConvInteger w")
    _check_scalar(ctx, 2, "ConvInteger x_zero_point")
    shape = _conv_shape(ctx, 0, 1, None)
    channels = ctx.shape(1)[0] if ctx.shape(1) is not None else None
    _check_per_channel(ctx, 3, channels, "ConvInteger w_zero_point")
    return [TensorType("int32", shape)]


@op_schema("DynamicQuantizeLinear", outputs=3, since_version=11,
           doc="uint8 quantization with scale (max(0, max x) - min(0, min x)) / 255 and a "
               "zero point computed from the data: outputs y, y_scale, y_zero_point")
def _dynamic_quantize_linear(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, {"float32"}, "DynamicQuantizeLinear x")
    return [TensorType("uint8", ctx.shape(0)), TensorType("float32", ()),
            TensorType("uint8", ())]
