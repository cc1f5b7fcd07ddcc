"""Lowering rules for TFLite's neural-network ops in float: CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED, the 2-D pools, SOFTMAX / LOG_SOFTMAX and BATCH_MATMUL.

Feature maps are read channels-first (:data:`~runtime.loaders.tflite_lowering.NCHW`) and
results stay channels-first: TFLite's OHWI conv filter becomes OIHW, the 1HWC depthwise
filter an OIHW filter of a grouped Conv (``group`` = input channels), and TFLite's SAME
padding explicit pads (the extra row/column at the end, ONNX's SAME_UPPER). Fused
activations go into ``node.meta["fused_activation"]`` where the CPU kernel applies them
(Conv, Gemm, MatMul), else into an explicit node.

Weights stored as int8 with float activations ("dynamic range", "hybrid" kernels) are
lowered by :mod:`runtime.loaders.tflite_quantized` (``QDynamicConv`` / ``QDynamicGemm``);
int8 activations by its integer rules.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir import Value
from edgefw.ir.tflite_schema import PADDING_NAMES
from runtime.loaders import tflite_quantized as quantized
from runtime.loaders.tflite_lowering import (
    FUSED_META,
    NCHW,
    Lowering,
    Operator,
    batch_matmul_operands,
    lowers,
)

#: DEPTHWISE filter [1, H, W, C*M] -> the grouped Conv's [C*M, 1, H, W].
DEPTHWISE_FILTER: tuple[int, ...] = (3, 0, 1, 2)


def window_attrs(ctx: Lowering, op: Operator, spatial: tuple, kernel: tuple[int, int],
                 dilated: bool = True) -> dict:
    """Conv/pool attributes (strides, dilations, pads) of a 2-D window op on an input of
    spatial size ``spatial`` (H, W; None where unknown)."""
    strides = [op.option("stride_h"), op.option("stride_w")]
    dilations = [op.option("dilation_h_factor"), op.option("dilation_w_factor")] \
        if dilated else [1, 1]
    for what, pair in (("strides", strides), ("dilations", dilations)):
        if min(pair) < 1:
            raise ctx.fail(f"{what} {pair} must be positive")
    if min(kernel) < 1:
        raise ctx.fail(f"window {list(kernel)} must be positive")
    attrs = {"strides": strides, "kernel_shape": list(kernel)}
    if dilated:
        attrs["dilations"] = dilations
    padding = PADDING_NAMES.get(op.option("padding"))
    if padding == "VALID":
        attrs["pads"] = [0, 0, 0, 0]
    elif padding == "SAME":
        if all(isinstance(d, int) for d in spatial):
            begin, end = [], []
            for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
                out = -(-size // s)
                total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
                begin.append(total // 2)
                end.append(total - total // 2)
            attrs["pads"] = begin + end
        else:
            attrs["auto_pad"] = "SAME_UPPER"
    else:
        raise ctx.fail(f"unknown padding {op.option('padding')}")
    return attrs


def _fused(ctx: Lowering) -> dict | None:
    activation = ctx.activation()
    return {"fused_activation": FUSED_META[activation]} if activation else None


def _conv_inputs(ctx: Lowering, op: Operator, filter_perm: tuple[int, ...]):
    """(x channels-first, OIHW filter value, bias value or None, filter dims in the file)."""
    x_t, w_t, b_t = op.input(0), op.input(1), op.input(2)
    if ctx.rank(x_t) != 4 or ctx.rank(w_t) != 4:
        raise ctx.fail(f"needs a 4-D input and filter, got {ctx.dims(x_t)} and {ctx.dims(w_t)}")
    return (ctx.value(x_t, NCHW), ctx.value(w_t, filter_perm),
            None if b_t is None else ctx.value(b_t), ctx.dims(w_t))


@lowers("CONV_2D", options="Conv2DOptions")
def conv_2d(ctx: Lowering, op: Operator) -> None:
    if quantized.is_hybrid(ctx, op):
        quantized.hybrid_conv(ctx, op, NCHW, depthwise=False)
        return
    x, w, b, (_, kh, kw, filter_in) = _conv_inputs(ctx, op, NCHW)
    channels = x.shape[1]
    attrs = window_attrs(ctx, op, tuple(x.shape[2:]), (kh, kw))
    if isinstance(channels, int) and isinstance(filter_in, int):
        if filter_in < 1 or channels % filter_in:
            raise ctx.fail(f"input has {channels} channels, not a multiple of the filter's "
                           f"{filter_in}")
        attrs["group"] = channels // filter_in
    y = ctx.node("Conv", [x, w, b], attrs, output=op.outputs[0], meta=_fused(ctx)).output
    ctx.define(op.outputs[0], y, NCHW)


@lowers("DEPTHWISE_CONV_2D", options="DepthwiseConv2DOptions")
def depthwise_conv_2d(ctx: Lowering, op: Operator) -> None:
    if quantized.is_hybrid(ctx, op):
        quantized.hybrid_conv(ctx, op, DEPTHWISE_FILTER, depthwise=True)
        return
    x, w, b, (one, kh, kw, out_channels) = _conv_inputs(ctx, op, DEPTHWISE_FILTER)
    attrs = window_attrs(ctx, op, tuple(x.shape[2:]), (kh, kw))
    attrs["group"] = depthwise_groups(ctx, x.shape[1], one, out_channels)
    y = ctx.node("Conv", [x, w, b], attrs, output=op.outputs[0], meta=_fused(ctx)).output
    ctx.define(op.outputs[0], y, NCHW)


def depthwise_groups(ctx: Lowering, channels, one, out_channels) -> int:
    """The group count (input channels) of a depthwise filter [1, H, W, C*M]."""
    if one != 1 or not isinstance(channels, int) or channels < 1 \
            or out_channels % channels:
        raise ctx.fail(f"depthwise filter [1, H, W, C*M] with {out_channels} outputs does "
                       f"not fit an input with {channels} channels")
    return channels


@lowers("FULLY_CONNECTED", options="FullyConnectedOptions")
def fully_connected(ctx: Lowering, op: Operator) -> None:
    if op.option("weights_format") != 0:
        raise ctx.unsupported("shuffled weights (weights_format SHUFFLED4x16INT8) are not "
                              "supported")
    if quantized.is_hybrid(ctx, op):
        quantized.hybrid_fully_connected(ctx, op)
        return
    x2 = flatten_for_fully_connected(ctx, op)
    w = ctx.value(op.input(1))
    b = None if op.input(2) is None else ctx.value(op.input(2))
    y_t = op.outputs[0]
    if x2.rank == 2:
        y = ctx.node("Gemm", [x2, w, b], {"transB": 1}, output=y_t, meta=_fused(ctx)).output
    else:  # keep_num_dims on a 3-D+ input: x @ W^T (+ b) on the last axis
        w_t = ctx.node("Transpose", [w], {"perm": [1, 0]}).output
        y = ctx.node("MatMul", [x2, w_t], output=None if b is not None else y_t,
                     meta=None if b is not None else _fused(ctx)).output
        if b is not None:
            y = ctx.node("Add", [y, b], output=y_t, meta=_fused(ctx)).output
    ctx.define(y_t, y)


def flatten_for_fully_connected(ctx: Lowering, op: Operator) -> Value:
    """The input as FULLY_CONNECTED reads it: [-1, depth] unless it is already [batch,
    depth] or ``keep_num_dims`` keeps its leading axes."""
    w_dims = ctx.dims(op.input(1))
    if len(w_dims) != 2:
        raise ctx.fail(f"weights must be [units, depth], got {list(w_dims)}")
    depth = w_dims[1]
    x = ctx.value(op.input(0))
    keep = bool(op.option("keep_num_dims"))
    if x.shape is None or len(x.shape) == 0:
        raise ctx.fail("the input must have at least one axis")
    if keep and x.shape[-1] != depth and isinstance(x.shape[-1], int):
        raise ctx.fail(f"keep_num_dims needs the input's last axis ({x.shape[-1]}) to be the "
                       f"depth {depth}")
    if not keep and not (len(x.shape) == 2 and x.shape[1] == depth):
        x = ctx.node("Reshape", [x, np.array([-1, depth], np.int64)]).output
    return x


def _pool(ctx: Lowering, op: Operator, op_type: str) -> None:
    x_t = op.input(0)
    if ctx.rank(x_t) != 4:
        raise ctx.fail(f"needs a 4-D input, got {ctx.dims(x_t)}")
    x = ctx.value(x_t, NCHW)
    kernel = (op.option("filter_height"), op.option("filter_width"))
    attrs = window_attrs(ctx, op, tuple(x.shape[2:]), kernel, dilated=False)
    y = ctx.node(op_type, [x], attrs, output=op.outputs[0]).output
    ctx.define(op.outputs[0], ctx.activate(y, ctx.activation()), NCHW)


@lowers("MAX_POOL_2D", options="Pool2DOptions")
def max_pool_2d(ctx: Lowering, op: Operator) -> None:
    _pool(ctx, op, "MaxPool")


@lowers("AVERAGE_POOL_2D", options="Pool2DOptions")
def average_pool_2d(ctx: Lowering, op: Operator) -> None:
    _pool(ctx, op, "AveragePool")  # count_include_pad=0: TFLite averages in-image taps


def _last_axis(ctx: Lowering, op: Operator):
    """(stored input, its layout, the stored axis holding the logical last axis)."""
    x, perm = ctx.stored(op.input(0))
    if not perm:
        raise ctx.fail("needs an input with at least one axis")
    return x, perm, list(perm).index(len(perm) - 1)


@lowers("SOFTMAX", options="SoftmaxOptions")
def softmax(ctx: Lowering, op: Operator) -> None:
    x, perm, axis = _last_axis(ctx, op)
    beta = float(op.option("beta"))
    if beta != 1.0:
        x = ctx.node("Mul", [x, np.asarray(beta, np.dtype(x.dtype or "float32"))]).output
    y = ctx.node("Softmax", [x], {"axis": axis}, output=op.outputs[0]).output
    ctx.define(op.outputs[0], y, perm)


@lowers("LOG_SOFTMAX")
def log_softmax(ctx: Lowering, op: Operator) -> None:
    x, perm, axis = _last_axis(ctx, op)
    y = ctx.node("LogSoftmax", [x], {"axis": axis}, output=op.outputs[0]).output
    ctx.define(op.outputs[0], y, perm)


@lowers("BATCH_MATMUL", options="BatchMatMulOptions")
def batch_matmul(ctx: Lowering, op: Operator) -> None:
    operands = batch_matmul_operands(ctx, op)
    if ctx.dtype(op.input(1)) != ctx.dtype(op.input(0)):
        raise ctx.unsupported("BATCH_MATMUL with int8 weights and float inputs (hybrid) is "
                              "not supported")
    y = ctx.node("MatMul", operands, output=op.outputs[0]).output
    ctx.define(op.outputs[0], y)


__all__ = ["DEPTHWISE_FILTER", "depthwise_groups", "flatten_for_fully_connected",
           "window_attrs"]
