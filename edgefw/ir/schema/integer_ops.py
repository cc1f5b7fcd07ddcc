"""Schemas of edgefw's internal integer ops (domain ``"edgefw"``), with TFLite semantics.

:class:`~edgefw.ir.passes.FuseQDQPass` rewrites QDQ groups (``DequantizeLinear -> op ->
QuantizeLinear``) into these; the CPU provider runs them with int32 accumulation and
TFLite's fixed-point requantization (``runtime/providers/cpu/requantize.py``). They exist
only inside an optimized session graph: exporters write the QDQ graph, never these.

============================  ==============================================================
op                            computes
============================  ==============================================================
``QConv``                     TFLite CONV_2D / DEPTHWISE_CONV_2D (per-channel): ``clamp(MBQM(
                              sum(w * (x - x_zp)) + bias, multiplier[c], shift[c]) + y_zp,
                              act_min, act_max)``; Conv attributes; int16 x (16x8) uses the
                              int64 accumulator and multiply
``QGemm``                     FULLY_CONNECTED on the last axis: ``x[..., K]``, ``w[N, K]``
                              -> ``y[..., N]`` (Gemm and MatMul with a constant weight)
``QAdd``                      ADD of two quantized tensors (numpy broadcasting): both inputs
                              rescaled with ``left_shift`` bits of headroom, summed, rescaled
``QBatchMatMul``              BATCH_MATMUL of two quantized activations (numpy.matmul
                              broadcasting): ``clamp(MBQM(sum (a - a_zp) * (b - b_zp),
                              multiplier, shift) + y_zp, act_min, act_max)``, per tensor
``QAveragePool``              AVERAGE_POOL_2D (input and output share scale and zero point):
                              in-window sum rounded half away by the in-image tap count
``QGlobalAveragePool``        MEAN over the spatial axes with requantization
``QDynamicGemm``              dynamic-range FULLY_CONNECTED: float x quantized per row
                              (asymmetric int8), int8 weight with per-channel ``w_scale``,
                              float bias and output
``QDynamicConv``              dynamic-range CONV_2D: each image quantized on its own
============================  ==============================================================

Requantization parameters are constants: ``multiplier`` (int32 Q31) and ``shift`` (int32,
negative = right shift) per output channel, as TFLite's ``QuantizeMultiplier`` makes them.

    >>> import numpy as np
    >>> from edgefw.ir import TensorType, infer_types
    >>> infer_types("QGemm", [TensorType("int8", ("batch", 400)), TensorType("int8", (120, 400)),
    ...              TensorType("int32", (120,)), TensorType("int32", (120,))], [None] * 4,
    ...             {"act_min": -128, "act_max": 127}, domain="edgefw")
    [TensorType(dtype='int8', shape=('batch', 120))]
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import DTypeError, ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import broadcast_shapes, format_shape
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, infer_types, op_schema

DOMAIN = "edgefw"
#: Activation dtypes of the integer ops: int8/uint8, and int16 (16x8, zero point 0).
ACTIVATION_DTYPES = frozenset({"int8", "uint8", "int16"})

_CONV_ATTR_NAMES = ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")
_CONV_ATTRS = [
    Attr("auto_pad", "string", "NOTSET"),
    Attr("dilations", "ints", None),
    Attr("group", "int", 1),
    Attr("kernel_shape", "ints", None),
    Attr("pads", "ints", None),
    Attr("strides", "ints", None),
]
_POOL_ATTR_NAMES = ("auto_pad", "ceil_mode", "kernel_shape", "pads", "strides")
_REQUANT_ATTRS = [
    Attr("x_zero_point", "int", 0),
    Attr("y_zero_point", "int", 0),
    Attr("act_min", "int"),
    Attr("act_max", "int"),
    Attr("output_dtype", "string", ""),
]


def _output_dtype(ctx: InferenceContext, input_index: int = 0) -> str | None:
    """``output_dtype`` when set, else the dtype of the quantized input."""
    dtype = ctx.attr("output_dtype") or ctx.dtype(input_index)
    if dtype is not None and dtype not in ACTIVATION_DTYPES:
        raise DTypeError(f"{ctx.schema.op_type} output dtype {dtype} is not one of "
                         f"{', '.join(sorted(ACTIVATION_DTYPES))}")
    return dtype


def _check_zero_point(ctx: InferenceContext, name: str, dtype: str | None) -> None:
    if dtype is None:
        return
    info = np.iinfo(dtype)
    value = int(ctx.attr(name))
    if not info.min <= value <= info.max:
        raise ShapeError(f"{name} {value} is outside the {dtype} range [{info.min}, {info.max}]")


def _check_act_range(ctx: InferenceContext, dtype: str | None) -> None:
    lo, hi = int(ctx.attr("act_min")), int(ctx.attr("act_max"))
    if lo > hi:
        raise ShapeError(f"act_min {lo} is above act_max {hi}")
    if dtype is not None:
        info = np.iinfo(dtype)
        if lo < info.min or hi > info.max:
            raise ShapeError(f"activation range [{lo}, {hi}] exceeds {dtype} "
                             f"[{info.min}, {info.max}]")


def _check_channel_vector(ctx: InferenceContext, index: int, what: str, dtypes: set[str],
                          channels) -> None:
    ctx.require_dtype(index, dtypes, what)
    shape = ctx.shape(index)
    if shape is None:
        return
    if len(shape) != 1 or (isinstance(shape[0], int) and isinstance(channels, int)
                           and shape[0] != channels):
        raise ShapeError(f"{what} must be [{channels}] (one per output channel), got "
                         f"{format_shape(shape)}")


def _check_requant_inputs(ctx: InferenceContext, channels, *, bias_index: int | None) -> None:
    x_dtype = ctx.require_dtype(0, ACTIVATION_DTYPES, "input")
    ctx.require_dtype(1, {"int8"}, "weight")
    _check_channel_vector(ctx, 2, "multiplier", {"int32"}, channels)
    _check_channel_vector(ctx, 3, "shift", {"int32"}, channels)
    if bias_index is not None and ctx.has_input(bias_index):
        bias_dtypes = {"int64", "int32"} if x_dtype == "int16" else {"int32"}
        _check_channel_vector(ctx, bias_index, "bias", bias_dtypes, channels)
    _check_zero_point(ctx, "x_zero_point", x_dtype)
    out = _output_dtype(ctx)
    _check_zero_point(ctx, "y_zero_point", out)
    _check_act_range(ctx, out)


def _float_like(ctx: InferenceContext, index: int) -> TensorType:
    return TensorType("float32", ctx.shape(index))


@op_schema("QConv", domain=DOMAIN, inputs=(4, 5), attrs=_CONV_ATTRS + _REQUANT_ATTRS,
           doc="integer Conv (TFLite CONV_2D/DEPTHWISE_CONV_2D): (x, w, multiplier, shift, "
               "bias?)")
def _qconv(ctx: InferenceContext) -> list[TensorType]:
    w = ctx.shape(1)
    channels = w[0] if w is not None else None
    _check_requant_inputs(ctx, channels, bias_index=4)
    attrs = {k: v for k, v in ctx.attrs.items() if k in _CONV_ATTR_NAMES}
    (float_out,) = infer_types("Conv", [_float_like(ctx, 0), _float_like(ctx, 1)],
                               [None, None], attrs)
    return [TensorType(_output_dtype(ctx), float_out.shape)]


def _last_axis_product(ctx: InferenceContext, what: str) -> tuple:
    """Shape of ``x[..., K] @ w[N, K].T``."""
    x, w = ctx.shape(0), ctx.shape(1)
    if w is not None and len(w) != 2:
        raise ShapeError(f"{what} weight must be [N, K], got {format_shape(w)}")
    if x is None:
        return None
    if len(x) < 1:
        raise ShapeError(f"{what} input must have at least one axis, got {format_shape(x)}")
    if w is None:
        return tuple(x[:-1]) + (None,)
    if isinstance(x[-1], int) and isinstance(w[1], int) and x[-1] != w[1]:
        raise ShapeError(f"{what}: input {format_shape(x)} has K={x[-1]} but weight "
                         f"{format_shape(w)} has K={w[1]}")
    return tuple(x[:-1]) + (w[0],)


@op_schema("QGemm", domain=DOMAIN, inputs=(4, 5), attrs=_REQUANT_ATTRS,
           doc="integer FullyConnected on the last axis: (x[..., K], w[N, K], multiplier, shift, "
               "bias?) -> y[..., N]")
def _qgemm(ctx: InferenceContext) -> list[TensorType]:
    w = ctx.shape(1)
    _check_requant_inputs(ctx, w[0] if w is not None and len(w) == 2 else None, bias_index=4)
    return [TensorType(_output_dtype(ctx), _last_axis_product(ctx, "QGemm"))]


# QAdd and QBatchMatMul: two quantized operands, each with its zero point, one output.
_ZERO_POINTS = [Attr("a_zero_point", "int", 0), Attr("b_zero_point", "int", 0),
                Attr("y_zero_point", "int", 0)]
_OUTPUT_RANGE = [Attr("act_min", "int"), Attr("act_max", "int"),
                 Attr("output_dtype", "string", "")]


def _check_two_operands(ctx: InferenceContext, allowed) -> str:
    """Check both operands' dtypes against ``allowed`` and every zero point and the output
    range against their dtypes; returns the output dtype."""
    for i, name in enumerate("ab"):
        dtype = ctx.require_dtype(i, allowed, f"input {name}")
        _check_zero_point(ctx, f"{name}_zero_point", dtype)
    out = _output_dtype(ctx)
    _check_zero_point(ctx, "y_zero_point", out)
    _check_act_range(ctx, out)
    return out


@op_schema(
    "QAdd",
    domain=DOMAIN,
    inputs=2,
    attrs=[
        *_ZERO_POINTS,
        Attr("a_multiplier", "int"),
        Attr("a_shift", "int"),
        Attr("b_multiplier", "int"),
        Attr("b_shift", "int"),
        Attr("y_multiplier", "int"),
        Attr("y_shift", "int"),
        Attr("left_shift", "int", 20),
        *_OUTPUT_RANGE,
    ],
    doc="integer Add (TFLite ADD): both inputs rescaled to a common scale with left_shift "
        "bits of headroom, summed, requantized",
)
def _qadd(ctx: InferenceContext) -> list[TensorType]:
    out = _check_two_operands(ctx, ACTIVATION_DTYPES)
    for name in ("a_shift", "b_shift", "y_shift"):
        if int(ctx.attr(name)) > 0:
            raise ShapeError(f"QAdd {name} must be <= 0 (multipliers below 1), got "
                             f"{ctx.attr(name)}")
    if not 0 <= int(ctx.attr("left_shift")) <= 20:
        raise ShapeError(f"QAdd left_shift must be in [0, 20], got {ctx.attr('left_shift')}")
    return [TensorType(out, broadcast_shapes(ctx.shape(0), ctx.shape(1)))]


@op_schema(
    "QBatchMatMul",
    domain=DOMAIN,
    inputs=2,
    attrs=[*_ZERO_POINTS, Attr("multiplier", "int"), Attr("shift", "int"), *_OUTPUT_RANGE],
    doc="integer MatMul of two activations (TFLite BATCH_MATMUL): zero-centred int32 "
        "products summed, requantized per tensor",
)
def _qbatch_matmul(ctx: InferenceContext) -> list[TensorType]:
    out = _check_two_operands(ctx, ACTIVATION_DTYPES - {"int16"})
    (float_out,) = infer_types("MatMul", [_float_like(ctx, 0), _float_like(ctx, 1)],
                               [None, None], {})
    return [TensorType(out, float_out.shape)]


@op_schema(
    "QAveragePool",
    domain=DOMAIN,
    attrs=[
        Attr("auto_pad", "string", "NOTSET"),
        Attr("ceil_mode", "int", 0),
        Attr("kernel_shape", "ints"),
        Attr("pads", "ints", None),
        Attr("strides", "ints", None),
    ],
    doc="integer AveragePool (TFLite AVERAGE_POOL_2D): same scale and zero point in and out; "
        "padding excluded from the count",
)
def _qaverage_pool(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_dtype(0, ACTIVATION_DTYPES, "input")
    attrs = {k: v for k, v in ctx.attrs.items() if k in _POOL_ATTR_NAMES}
    (float_out,) = infer_types("AveragePool", [_float_like(ctx, 0)], [None], attrs)
    return [TensorType(dtype, float_out.shape)]


@op_schema(
    "QGlobalAveragePool",
    domain=DOMAIN,
    attrs=[
        Attr("x_zero_point", "int", 0),
        Attr("y_zero_point", "int", 0),
        Attr("multiplier", "int"),
        Attr("shift", "int"),
        Attr("output_dtype", "string", ""),
    ],
    doc="integer mean over the spatial axes (TFLite MEAN): rescale the zero-centred sum, "
        "divide by the count rounding half away, add the output zero point",
)
def _qglobal_average_pool(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_dtype(0, ACTIVATION_DTYPES, "input")
    _check_zero_point(ctx, "x_zero_point", dtype)
    out = _output_dtype(ctx)
    _check_zero_point(ctx, "y_zero_point", out)
    (float_out,) = infer_types("GlobalAveragePool", [_float_like(ctx, 0)], [None], {})
    return [TensorType(out, float_out.shape)]


def _check_dynamic_inputs(ctx: InferenceContext, channels) -> None:
    ctx.require_dtype(0, FLOAT_DTYPES, "input")
    ctx.require_dtype(1, {"int8"}, "weight")
    _check_channel_vector(ctx, 2, "w_scale", {"float32"}, channels)
    if ctx.has_input(3):
        _check_channel_vector(ctx, 3, "bias", {"float32"}, channels)


@op_schema("QDynamicGemm", domain=DOMAIN, inputs=(3, 4),
           doc="dynamic-range FullyConnected: (x[..., K] float, w[N, K] int8, w_scale[N], "
               "bias[N]?) -> float y[..., N]; x quantized per row (asymmetric int8)")
def _qdynamic_gemm(ctx: InferenceContext) -> list[TensorType]:
    w = ctx.shape(1)
    _check_dynamic_inputs(ctx, w[0] if w is not None and len(w) == 2 else None)
    return [TensorType(ctx.dtype(0), _last_axis_product(ctx, "QDynamicGemm"))]


@op_schema("QDynamicConv", domain=DOMAIN, inputs=(3, 4), attrs=_CONV_ATTRS,
           doc="dynamic-range Conv: (x float, w int8, w_scale[C_out], bias?) -> float; each "
               "image quantized on its own (asymmetric int8)")
def _qdynamic_conv(ctx: InferenceContext) -> list[TensorType]:
    w = ctx.shape(1)
    _check_dynamic_inputs(ctx, w[0] if w is not None else None)
    (float_out,) = infer_types("Conv", [_float_like(ctx, 0), _float_like(ctx, 1)], [None, None],
                               dict(ctx.attrs))
    return [TensorType(ctx.dtype(0), float_out.shape)]


__all__ = ["ACTIVATION_DTYPES", "DOMAIN"]
