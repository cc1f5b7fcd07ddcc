"""Quantized TFLite ops: QUANTIZE / DEQUANTIZE, int8 (and 16x8) kernels as edgefw's integer
ops with TFLite's fixed-point semantics, and dynamic-range ("hybrid") kernels.

- CONV_2D, DEPTHWISE_CONV_2D -> ``QConv``, FULLY_CONNECTED -> ``QGemm``, ADD -> ``QAdd``,
  AVERAGE_POOL_2D -> ``QAveragePool``, spatial MEAN -> ``QGlobalAveragePool``,
  BATCH_MATMUL -> ``QBatchMatMul`` (domain ``edgefw``), with requantization multipliers
  made as TFLite's ``Prepare`` makes them (``QuantizeMultiplier`` of ``double(s_in) *
  double(s_w) / double(s_out)``), the fused activation as an integer clamp
  (``CalculateActivationRangeQuantized``).
- MAX_POOL_2D on int8 is a MaxPool of the integers (TFLite requires equal input and output
  parameters) with the activation clamp.
- Ops without an integer rule run as a float island (see ``tflite_lowering``); an integer
  rule declines (returns False) for combinations it does not cover.
- Hybrid: float input, int8 weights. FULLY_CONNECTED with ``asymmetric_quantize_inputs``
  -> ``QDynamicGemm``; CONV_2D with per-channel scales (TFLite's ``EvalHybridPerChannel``)
  and DEPTHWISE_CONV_2D -> ``QDynamicConv``. TFLite's symmetric hybrid paths (per-tensor
  CONV_2D, FULLY_CONNECTED without asymmetric inputs) are refused, naming the operator.
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import QuantizationError
from edgefw.ir import QuantParams, Value
from edgefw.ir.dtypes import to_onnx
from runtime.loaders.tflite_lowering import (
    FUSED_META,
    NCHW,
    SELF_TYPED,
    Lowering,
    Operator,
    batch_matmul_operands,
    lowers,
    lowers_integer,
)
from runtime.providers.cpu.requantize import (
    quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp,
)

INTEGER_DOMAIN = "edgefw"
_EIGHT_BIT = ("int8",)
_CONV_ACTIVATIONS = ("int8", "int16")
SELF_TYPED.update({"QUANTIZE", "DEQUANTIZE"})


# ---------------------------------------------------------------- QUANTIZE / DEQUANTIZE
@lowers("QUANTIZE")
def quantize(ctx: Lowering, op: Operator) -> None:
    x_t, y_t = op.input(0), op.outputs[0]
    x, perm = ctx.stored(x_t)
    out = ctx.tensor(y_t)
    quant = _per_tensor(ctx, y_t, "output")
    if ctx.is_quantized(x_t):  # requantize: float arithmetic, within one step of TFLite
        x = _dequantize(ctx, x, _per_tensor(ctx, x_t, "input"))
    elif x.dtype not in ("float32", "float16"):
        raise ctx.unsupported(f"QUANTIZE from {x.dtype} is not supported")
    y = ctx.node("QuantizeLinear", [x, np.float32(quant.scale[0]),
                                    np.asarray(quant.zero_point[0], out.dtype)],
                 output=y_t).output
    ctx.define(y_t, y, perm)


@lowers("DEQUANTIZE")
def dequantize(ctx: Lowering, op: Operator) -> None:
    x_t, y_t = op.input(0), op.outputs[0]
    x, perm = ctx.stored(x_t)
    if x.dtype == "float16":  # TFLite's float16 weights: a Cast the optimizer folds
        y = ctx.node("Cast", [x], {"to": to_onnx("float32")}, output=y_t).output
    elif ctx.is_quantized(x_t):
        y = _dequantize(ctx, x, x.quant or ctx.tensor(x_t).quant, output=y_t)
    else:
        raise ctx.unsupported(f"DEQUANTIZE of {x.dtype} without quantization parameters")
    ctx.define(y_t, y, perm)


def _dequantize(ctx: Lowering, x: Value, quant: QuantParams, output: int | None = None) -> Value:
    attrs = {"axis": quant.axis} if quant.axis is not None else None
    scale = quant.scale if quant.axis is not None else quant.scale.reshape(())
    zero = quant.zero_point if quant.axis is not None else quant.zero_point.reshape(())
    return ctx.node("DequantizeLinear", [x, scale.astype(np.float32), zero.astype(x.dtype)],
                    attrs, output=output).output


def _per_tensor(ctx: Lowering, t: int, what: str) -> QuantParams:
    quant = ctx.tensor(t).quant
    if quant is None:
        raise ctx.fail(f"the {what} {ctx.label(t)} has no quantization parameters")
    if quant.scale.size != 1:
        raise ctx.unsupported(f"the {what} {ctx.label(t)} is quantized per channel")
    if not quant.scale[0] > 0:
        raise ctx.fail(f"the {what} {ctx.label(t)} has scale {quant.scale[0]}; it must be > 0")
    return quant


# ----------------------------------------------------------------- integer kernels
def activation_range(ctx: Lowering, t: int, activation: str | None) -> tuple[int, int]:
    """TFLite's ``CalculateActivationRangeQuantized`` for output tensor ``t``."""
    quant, info = _per_tensor(ctx, t, "output"), np.iinfo(ctx.tensor(t).dtype)
    scale, zero = np.float32(quant.scale[0]), int(quant.zero_point[0])

    def q(real: float) -> int:  # zero_point + TfLiteRound(real / scale), in float32
        with np.errstate(over="ignore"):
            x = float(np.float32(real) / scale)
        if not np.isfinite(x):  # a denormal scale: the limit is beyond the dtype's range
            return int(info.max) if x > 0 else int(info.min)
        return zero + int(np.sign(x) * np.floor(abs(x) + 0.5))

    if activation is None:
        return int(info.min), int(info.max)
    if activation == "TANH":
        raise ctx.unsupported("a fused TANH on quantized outputs is not supported")
    lo, hi = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}[activation]
    return max(int(info.min), q(lo)), int(info.max) if hi is None else min(int(info.max), q(hi))


def _requantize_params(ctx: Lowering, x_t: int, w_t: int, y_t: int, channels: int,
                       axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) of ``s_x * s_w[c] / s_y`` as TFLite computes them."""
    s_x = float(_per_tensor(ctx, x_t, "input").scale[0])
    s_y = float(_per_tensor(ctx, y_t, "output").scale[0])
    w_quant = ctx.tensor(w_t).quant
    if w_quant is None:
        raise ctx.fail(f"the weights {ctx.label(w_t)} have no quantization parameters")
    if np.any(w_quant.zero_point != 0):
        raise ctx.fail(f"the weights {ctx.label(w_t)} must have zero points 0 (symmetric)")
    if w_quant.axis is not None and w_quant.axis != axis:
        raise ctx.fail(f"the weights {ctx.label(w_t)} are quantized along axis "
                       f"{w_quant.axis}, not the output channel axis {axis}")
    scales = np.broadcast_to(w_quant.scale.astype(np.float64), (channels,))
    pairs = [quantize_multiplier(s_x * float(s_w) / s_y) for s_w in scales]
    return (np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32))


def _zero_point(ctx: Lowering, t: int) -> int:
    return int(_per_tensor(ctx, t, "tensor").zero_point[0])


def _integer_conv(ctx: Lowering, op: Operator, depthwise: bool) -> bool:
    from runtime.loaders.tflite_nn import DEPTHWISE_FILTER, depthwise_groups, window_attrs

    x_t, w_t, b_t, y_t = op.input(0), op.input(1), op.input(2), op.outputs[0]
    if ctx.dtype(x_t) not in _CONV_ACTIVATIONS or ctx.dtype(w_t) != "int8" \
            or ctx.dtype(y_t) != ctx.dtype(x_t):
        return False
    weights = ctx.require_constant(w_t, "filter")
    if weights.ndim != 4 or ctx.rank(x_t) != 4:
        raise ctx.fail(f"needs a 4-D input and filter, got {ctx.dims(x_t)} and "
                       f"{list(weights.shape)}")
    filter_perm = DEPTHWISE_FILTER if depthwise else NCHW
    oihw = np.transpose(weights, filter_perm)
    channels = oihw.shape[0]
    multiplier, shift = _requantize_params(ctx, x_t, w_t, y_t, channels,
                                           3 if depthwise else 0)
    x = ctx.value(x_t, NCHW)
    attrs = window_attrs(ctx, op, tuple(x.shape[2:]), oihw.shape[2:])
    if depthwise:
        attrs["group"] = depthwise_groups(ctx, x.shape[1], weights.shape[0], channels)
    elif isinstance(x.shape[1], int) and oihw.shape[1] and x.shape[1] % oihw.shape[1] == 0:
        attrs["group"] = x.shape[1] // oihw.shape[1]
    lo, hi = activation_range(ctx, y_t, ctx.activation())
    attrs.update(x_zero_point=_zero_point(ctx, x_t), y_zero_point=_zero_point(ctx, y_t),
                 act_min=lo, act_max=hi)
    inputs = [x, ctx.value(w_t, filter_perm), multiplier, shift,
              _checked_bias(ctx, b_t, channels, ctx.dtype(x_t))]
    y = ctx.node("QConv", inputs, attrs, output=y_t, domain=INTEGER_DOMAIN).output
    ctx.define(y_t, y, NCHW)
    return True


def _checked_bias(ctx: Lowering, t: int | None, channels: int, x_dtype: str) -> Value | None:
    """The bias after checking it: a constant of ``channels`` int32 values (int64 too for
    16x8 int16 activations)."""
    if t is None:
        return None
    bias = ctx.require_constant(t, "bias")
    allowed = ("int32", "int64") if x_dtype == "int16" else ("int32",)
    if bias.dtype.name not in allowed or bias.size != channels:
        raise ctx.fail(f"the bias {ctx.label(t)} must be {' or '.join(allowed)} with "
                       f"{channels} values, got {bias.dtype}{list(bias.shape)}")
    return ctx.value(t)


@lowers_integer("CONV_2D")
def integer_conv_2d(ctx: Lowering, op: Operator) -> bool:
    return _integer_conv(ctx, op, depthwise=False)


@lowers_integer("DEPTHWISE_CONV_2D")
def integer_depthwise_conv_2d(ctx: Lowering, op: Operator) -> bool:
    return _integer_conv(ctx, op, depthwise=True)


@lowers_integer("FULLY_CONNECTED")
def integer_fully_connected(ctx: Lowering, op: Operator) -> bool:
    from runtime.loaders.tflite_nn import flatten_for_fully_connected

    x_t, w_t, b_t, y_t = op.input(0), op.input(1), op.input(2), op.outputs[0]
    if ctx.dtype(x_t) not in _CONV_ACTIVATIONS or ctx.dtype(w_t) != "int8" \
            or ctx.dtype(y_t) != ctx.dtype(x_t) or ctx.constant(w_t) is None:
        return False
    weights = ctx.require_constant(w_t, "weights")
    if weights.ndim != 2:
        raise ctx.fail(f"weights must be [units, depth], got {list(weights.shape)}")
    units = weights.shape[0]
    multiplier, shift = _requantize_params(ctx, x_t, w_t, y_t, units, 0)
    lo, hi = activation_range(ctx, y_t, ctx.activation())
    attrs = {"x_zero_point": _zero_point(ctx, x_t), "y_zero_point": _zero_point(ctx, y_t),
             "act_min": lo, "act_max": hi}
    x = flatten_for_fully_connected(ctx, op)
    inputs = [x, ctx.value(w_t), multiplier, shift,
              _checked_bias(ctx, b_t, units, ctx.dtype(x_t))]
    y = ctx.node("QGemm", inputs, attrs, output=y_t, domain=INTEGER_DOMAIN).output
    ctx.define(y_t, y)
    return True


@lowers_integer("ADD")
def integer_add(ctx: Lowering, op: Operator) -> bool:
    from runtime.loaders.tflite_elementwise import binary_operands

    a_t, b_t, y_t = op.input(0), op.input(1), op.outputs[0]
    if not all(ctx.dtype(t) in _EIGHT_BIT and ctx.is_quantized(t) for t in (a_t, b_t, y_t)):
        return False  # int16 ADD (power-of-two scales) and mixed types: float island
    s_a, s_b = (float(_per_tensor(ctx, t, "input").scale[0]) for t in (a_t, b_t))
    s_y = float(_per_tensor(ctx, y_t, "output").scale[0])
    left_shift = 20
    twice_max = 2.0 * max(s_a, s_b)
    try:
        m_a, sh_a = quantize_multiplier_smaller_than_one_exp(s_a / twice_max)
        m_b, sh_b = quantize_multiplier_smaller_than_one_exp(s_b / twice_max)
        m_y, sh_y = quantize_multiplier_smaller_than_one_exp(twice_max / ((1 << left_shift)
                                                                          * s_y))
    except QuantizationError as exc:
        raise ctx.fail(f"scales {s_a:g}, {s_b:g} -> {s_y:g} cannot be requantized: {exc}"
                       ) from None
    lo, hi = activation_range(ctx, y_t, ctx.activation())
    a, b, perm = binary_operands(ctx, a_t, b_t)
    attrs = {"a_zero_point": _zero_point(ctx, a_t), "b_zero_point": _zero_point(ctx, b_t),
             "y_zero_point": _zero_point(ctx, y_t), "a_multiplier": m_a, "a_shift": sh_a,
             "b_multiplier": m_b, "b_shift": sh_b, "y_multiplier": m_y, "y_shift": sh_y,
             "left_shift": left_shift, "act_min": lo, "act_max": hi}
    y = ctx.node("QAdd", [a, b], attrs, output=y_t, domain=INTEGER_DOMAIN).output
    ctx.define(y_t, y, perm)
    return True


@lowers_integer("BATCH_MATMUL")
def integer_batch_matmul(ctx: Lowering, op: Operator) -> bool:
    """Two int8 activations: ``QBatchMatMul`` with the reference kernel's multiplier
    (``double(s_a) * double(s_b) / double(s_y)``) and its double rounding."""
    a_t, b_t, y_t = op.input(0), op.input(1), op.outputs[0]
    if not all(ctx.dtype(t) in _EIGHT_BIT and ctx.is_quantized(t) for t in (a_t, b_t, y_t)):
        return False
    s_a, s_b = (float(_per_tensor(ctx, t, "input").scale[0]) for t in (a_t, b_t))
    s_y = float(_per_tensor(ctx, y_t, "output").scale[0])
    multiplier, shift = quantize_multiplier(s_a * s_b / s_y)
    operands = batch_matmul_operands(ctx, op)
    attrs = {"a_zero_point": _zero_point(ctx, a_t), "b_zero_point": _zero_point(ctx, b_t),
             "y_zero_point": _zero_point(ctx, y_t), "multiplier": multiplier, "shift": shift,
             "act_min": int(np.iinfo(ctx.dtype(y_t)).min),
             "act_max": int(np.iinfo(ctx.dtype(y_t)).max)}
    y = ctx.node("QBatchMatMul", operands, attrs, output=y_t, domain=INTEGER_DOMAIN).output
    ctx.define(y_t, y)
    return True


def _same_params(ctx: Lowering, a_t: int, b_t: int) -> bool:
    a, b = ctx.tensor(a_t).quant, ctx.tensor(b_t).quant
    return (a is not None and b is not None and a.scale.size == b.scale.size == 1
            and np.isclose(a.scale[0], b.scale[0], rtol=0, atol=1e-6)
            and int(a.zero_point[0]) == int(b.zero_point[0]))


def _integer_pool(ctx: Lowering, op: Operator, op_type: str, domain: str) -> bool:
    from runtime.loaders.tflite_nn import window_attrs

    x_t, y_t = op.input(0), op.outputs[0]
    if ctx.dtype(x_t) not in _EIGHT_BIT or ctx.dtype(y_t) != ctx.dtype(x_t) \
            or not _same_params(ctx, x_t, y_t) or ctx.rank(x_t) != 4:
        return False
    x = ctx.value(x_t, NCHW)
    kernel = (op.option("filter_height"), op.option("filter_width"))
    attrs = window_attrs(ctx, op, tuple(x.shape[2:]), kernel, dilated=False)
    y = ctx.node(op_type, [x], attrs, output=y_t, domain=domain).output
    activation = ctx.activation()
    if activation is not None:
        lo, hi = activation_range(ctx, y_t, activation)
        y = ctx.node("Clip", [y, np.asarray(lo, y.dtype), np.asarray(hi, y.dtype)]).output
    ctx.define(y_t, y, NCHW)
    return True


@lowers_integer("MAX_POOL_2D")
def integer_max_pool_2d(ctx: Lowering, op: Operator) -> bool:
    return _integer_pool(ctx, op, "MaxPool", "")


@lowers_integer("AVERAGE_POOL_2D")
def integer_average_pool_2d(ctx: Lowering, op: Operator) -> bool:
    return _integer_pool(ctx, op, "QAveragePool", INTEGER_DOMAIN)


@lowers_integer("CONCATENATION")
def integer_concatenation(ctx: Lowering, op: Operator) -> bool:
    """Equal parameters everywhere (what TFLite's int8 kernel requires): the integers are
    concatenated as they are."""
    from runtime.loaders.tflite_tensor import concatenation

    y_t = op.outputs[0]
    if ctx.activation() is not None or not all(
            ctx.is_quantized(t) and ctx.dtype(t) == ctx.dtype(y_t) and _same_params(ctx, t, y_t)
            for t in op.inputs):
        return False
    concatenation(ctx, op)
    return True


@lowers_integer("MEAN")
def integer_mean(ctx: Lowering, op: Operator) -> bool:
    x_t, y_t = op.input(0), op.outputs[0]
    axes = ctx.known(op.input(1))
    axes = [axes] if isinstance(axes, int) else axes
    if ctx.dtype(x_t) not in _EIGHT_BIT or ctx.dtype(y_t) != ctx.dtype(x_t) \
            or ctx.rank(x_t) != 4 or axes is None \
            or sorted(a % 4 for a in axes if isinstance(a, int)) != [1, 2]:
        return False
    s_x = float(_per_tensor(ctx, x_t, "input").scale[0])
    s_y = float(_per_tensor(ctx, y_t, "output").scale[0])
    multiplier, shift = quantize_multiplier(s_x / s_y)
    attrs = {"x_zero_point": _zero_point(ctx, x_t), "y_zero_point": _zero_point(ctx, y_t),
             "multiplier": multiplier, "shift": shift}
    pooled = ctx.node("QGlobalAveragePool", [ctx.value(x_t, NCHW)], attrs,
                      domain=INTEGER_DOMAIN).output  # (N, C, 1, 1)
    if op.option("keep_dims"):
        ctx.define(y_t, pooled, NCHW)
    else:
        y = ctx.node("Reshape", [pooled, np.array([0, -1], np.int64)], output=y_t).output
        ctx.define(y_t, y)
    return True


# ----------------------------------------------------------------------- hybrid
def is_hybrid(ctx: Lowering, op: Operator) -> bool:
    """Float input, int8 constant weights with quantization parameters."""
    w_t = op.input(1)
    return (ctx.dtype(op.input(0)) == "float32" and w_t is not None
            and ctx.dtype(w_t) == "int8" and ctx.tensor(w_t).quant is not None
            and ctx.constant(w_t) is not None)


def _hybrid_weights(ctx: Lowering, w_t: int, channels: int, axis: int) -> np.ndarray:
    quant = ctx.tensor(w_t).quant
    if np.any(quant.zero_point != 0):
        raise ctx.fail(f"hybrid weights {ctx.label(w_t)} must have zero points 0")
    if quant.axis is not None and quant.axis != axis:
        raise ctx.fail(f"hybrid weights {ctx.label(w_t)} are quantized along axis "
                       f"{quant.axis}, not the output channel axis {axis}")
    return np.ascontiguousarray(np.broadcast_to(quant.scale.astype(np.float32), (channels,)))


def _hybrid_bias(ctx: Lowering, t: int | None) -> Value | np.ndarray | None:
    if t is None:
        return None
    data = ctx.constant(t)
    if data is not None:
        return data.astype(np.float32)
    return ctx.value(t)


def _fused(ctx: Lowering) -> dict | None:
    activation = ctx.activation()
    return {"fused_activation": FUSED_META[activation]} if activation else None


def hybrid_fully_connected(ctx: Lowering, op: Operator) -> None:
    from runtime.loaders.tflite_nn import flatten_for_fully_connected

    if not op.option("asymmetric_quantize_inputs"):
        raise ctx.unsupported("hybrid FULLY_CONNECTED (int8 weights, float inputs) with "
                              "symmetric input quantization is not supported; edgefw runs "
                              "the asymmetric form TensorFlow's converter writes "
                              "(asymmetric_quantize_inputs=true)")
    weights = ctx.constant(op.input(1))
    if weights.ndim != 2:
        raise ctx.fail(f"weights must be [units, depth], got {list(weights.shape)}")
    w_scale = _hybrid_weights(ctx, op.input(1), weights.shape[0], 0)
    x = flatten_for_fully_connected(ctx, op)
    y_t = op.outputs[0]
    y = ctx.node("QDynamicGemm", [x, ctx.value(op.input(1)), w_scale,
                                  _hybrid_bias(ctx, op.input(2))],
                 output=y_t, domain=INTEGER_DOMAIN, meta=_fused(ctx)).output
    ctx.define(y_t, y)


def hybrid_conv(ctx: Lowering, op: Operator, filter_perm: tuple[int, ...],
                depthwise: bool) -> None:
    from runtime.loaders.tflite_nn import depthwise_groups, window_attrs

    weights = ctx.constant(op.input(1))
    x_t = op.input(0)
    if weights.ndim != 4 or ctx.rank(x_t) != 4:
        raise ctx.fail(f"needs a 4-D input and filter, got {ctx.dims(x_t)} and "
                       f"{list(weights.shape)}")
    oihw = np.transpose(weights, filter_perm)
    channels = oihw.shape[0]
    w_scale = _hybrid_weights(ctx, op.input(1), channels, 3 if depthwise else 0)
    x = ctx.value(x_t, NCHW)
    group = 1
    if depthwise:
        group = depthwise_groups(ctx, x.shape[1], weights.shape[0], channels)
    elif isinstance(x.shape[1], int) and oihw.shape[1] and x.shape[1] % oihw.shape[1] == 0:
        group = x.shape[1] // oihw.shape[1]
    if not depthwise and group == 1 and np.all(w_scale == w_scale[0]):
        raise ctx.unsupported("hybrid CONV_2D with one weight scale for all channels runs "
                              "TFLite's symmetric per-batch kernel, which edgefw does not "
                              "implement (per-channel weight scales are supported)")
    attrs = window_attrs(ctx, op, tuple(x.shape[2:]), oihw.shape[2:])
    attrs["group"] = group
    y_t = op.outputs[0]
    y = ctx.node("QDynamicConv", [x, ctx.value(op.input(1), filter_perm), w_scale,
                                  _hybrid_bias(ctx, op.input(2))], attrs,
                 output=y_t, domain=INTEGER_DOMAIN, meta=_fused(ctx)).output
    ctx.define(y_t, y, NCHW)


__all__ = ["activation_range", "dequantize", "hybrid_conv", "hybrid_fully_connected",
           "is_hybrid", "quantize"]
