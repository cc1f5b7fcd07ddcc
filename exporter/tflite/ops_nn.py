"""Lowering rules for the network ops: Conv, pooling, Gemm / MatMul, BatchNormalization
(when not folded) and LayerNormalization (decomposed: TFLite has no builtin for it).

Convolutions and pooling read and write NHWC. Each weighted op has three forms: float
(weights float32, or float16 / int8 constants + DEQUANTIZE), int8 (int8 activations, int8
per-channel weights, int32 bias: when the QDQ graph quantizes the op's input and output) and
hybrid (float activations with int8 weights: dynamic-range quantization).
"""

from __future__ import annotations

import numpy as np

from edgefw.ir import Node, Value
from edgefw.ir.schema.dims import resolve_pads, same_pads
from edgefw.ir.tflite_schema import PADDINGS
from exporter.tflite import layout
from exporter.tflite.lowering import LoweringContext, lowers
from exporter.tflite.ops_elementwise import is_constant, reduce
from exporter.tflite.quantized import (
    hybrid_weight,
    int8_input,
    int8_output,
    int8_plan,
    int32_bias,
    symmetric_int8_weight,
    weight_source,
    weight_tensor,
)


# ---------------------------------------------------------------------- padding
def _window(ctx: LoweringContext, node: Node, x: Value, kernel: list[int]) -> tuple:
    """(strides, dilations, [(begin, end)] pads) of a conv/pool node on NCHW ``x``."""
    n = len(kernel)
    strides = list(node.attr("strides") or [1] * n)
    dilations = list(node.attr("dilations") or [1] * n)
    pads = resolve_pads(node.attr("auto_pad"), node.attr("pads"), x.shape[2:], kernel,
                        strides, dilations)
    if pads is None:
        raise ctx.fail("SAME padding on dynamic spatial dims cannot be checked for TFLite")
    return strides, dilations, pads


def _padding(ctx: LoweringContext, x: Value, kernel: list[int], strides: list[int],
             dilations: list[int], pads: list[tuple[int, int]]) -> tuple[str, bool]:
    """TFLite padding for ONNX ``pads``: ("VALID", False), ("SAME", False), or
    ("VALID", True) when an explicit PAD must come first."""
    if all(p == (0, 0) for p in pads):
        return "VALID", False
    spatial = x.shape[2:]
    if all(isinstance(d, int) for d in spatial) and all(
            same_pads(int(d), k, s, dl, True) == tuple(p)
            for d, k, s, dl, p in zip(spatial, kernel, strides, dilations, pads)):
        return "SAME", False
    return "VALID", True


def _explicit_pad(ctx: LoweringContext, tensor: int, x: Value, pads: list[tuple[int, int]],
                  fill: float | None = None) -> int:
    """``tensor`` (NHWC) padded by ``pads`` with zeros (the zero point when int8), or with
    ``fill`` (PADV2)."""
    src = ctx.model.tensors[tensor]
    paddings = [[0, 0]] + [list(p) for p in pads] + [[0, 0]]
    dims = list(layout.stored_shape(x.shape, layout.NHWC))
    for i, (b, e) in enumerate(pads):
        dims[1 + i] = dims[1 + i] + b + e if isinstance(dims[1 + i], int) else None
    out = ctx.new_tensor(f"{x.name}/padded", x, dims=dims, dtype=src.dtype,
                         quantization=src.quantization)
    inputs = [tensor, ctx.ints(paddings, f"{x.name}/paddings")]
    if fill is None:
        ctx.emit("PAD", inputs, [out])
    else:
        # PADV2 wants its int8 fill value in the tensor's own quantization.
        inputs.append(ctx.model.add_constant(f"{x.name}/pad_value",
                                             np.asarray(fill, dtype=src.dtype),
                                             quantization=src.quantization))
        ctx.emit("PADV2", inputs, [out])
    return out


# ---------------------------------------------------------------------- Conv
@lowers("Conv")
def _conv(ctx: LoweringContext, node: Node) -> None:
    x, w = node.inputs[:2]
    b = node.inputs[2] if len(node.inputs) > 2 else None
    source = weight_source(w)
    if x.rank != 4 or source is None or source.data.ndim != 4:
        raise ctx.fail("only 2-D convolutions (NCHW input, constant OIHW weights) are "
                       "exported to TFLite")
    out_channels, in_per_group, kh, kw = source.data.shape
    group = int(node.attr("group"))
    depthwise = group > 1 and in_per_group == 1 and group == x.shape[1]
    if group != 1 and not depthwise:
        raise ctx.fail(f"grouped convolution (group={group}) is not exported; TFLite has "
                       "regular (group 1) and depthwise (group = input channels) ones")
    strides, dilations, pads = _window(ctx, node, x, [kh, kw])
    padding, explicit = _padding(ctx, x, [kh, kw], strides, dilations, pads)
    options = {"padding": PADDINGS[padding], "stride_h": strides[0], "stride_w": strides[1],
               "dilation_h_factor": dilations[0], "dilation_w_factor": dilations[1]}
    if depthwise:
        options["depth_multiplier"] = out_channels // group
    op = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    weight_perm = (1, 2, 3, 0) if depthwise else (0, 2, 3, 1)  # 1HWC / OHWI

    plan = int8_plan(ctx, node, [0])
    int8_weight = symmetric_int8_weight(w)
    code, leftover = ctx.fused_activation(node)
    if plan is not None and int8_weight is not None and leftover is None:
        tensor = int8_input(ctx, plan, 0, layout.NHWC)
        if explicit:
            tensor = _explicit_pad(ctx, tensor, x, pads)
        filt = weight_tensor(ctx, w, perm=weight_perm, keep_quantized=True)
        bias = int32_bias(ctx, b, float(plan.inputs[0][1].scale[0]), int8_weight.params.scale,
                          out_channels, f"{node.output.name}/bias")
        target, finish = int8_output(ctx, plan, layout.NHWC)
        ctx.emit(op, [tensor, filt, bias], [target],
                 dict(options, fused_activation_function=code))
        finish()
        return
    hybrid = hybrid_weight(node, 1) is not None
    tensor = ctx.get(x, layout.NHWC)
    if explicit:
        tensor = _explicit_pad(ctx, tensor, x, pads)
    filt = weight_tensor(ctx, w, perm=weight_perm, keep_quantized=hybrid)
    bias = float_bias(ctx, b, out_channels, f"{node.output.name}/bias")
    ctx.finish(op, [tensor, filt, bias], options, layout.NHWC)


def float_bias(ctx: LoweringContext, value: Value | None, channels: int, name: str,
               multiplier: float = 1.0) -> int:
    """A float32 bias of ``channels`` values (zeros when absent; a quantized or float16
    bias dequantized here: biases are small, and DEQUANTIZE takes no int32)."""
    if value is None:
        return ctx.model.add_constant(name, np.zeros(channels, np.float32))
    source = weight_source(value)
    if source is None:
        raise ctx.fail(f"bias {value.name!r} must be constant")
    data = source.as_float().reshape(-1)
    if data.size not in (1, channels):
        raise ctx.fail(f"bias of shape {list(value.shape)} is not one value per output "
                       f"channel ({channels})")
    data = np.broadcast_to(data.astype(np.float32) * np.float32(multiplier), (channels,))
    return ctx.model.add_constant(value.name, np.ascontiguousarray(data))


# ---------------------------------------------------------------------- pooling
@lowers("MaxPool", "AveragePool")
def _pool(ctx: LoweringContext, node: Node) -> None:
    x = node.inputs[0]
    if len(node.outputs) > 1 and ctx.consumers(node.outputs[1]):
        raise ctx.fail("MaxPool's Indices output has no TFLite equivalent")
    kernel = list(node.attr("kernel_shape"))
    if x.rank != 4 or len(kernel) != 2:
        raise ctx.fail("only 2-D pooling of NCHW input is exported to TFLite")
    strides, dilations, pads = _window(ctx, node, x, kernel)
    if dilations != [1, 1]:
        raise ctx.fail(f"dilated pooling (dilations={dilations}) has no TFLite builtin")
    if node.attr("ceil_mode"):
        _check_ceil_mode(ctx, node, x, kernel, strides, pads)
    padding, explicit = _padding(ctx, x, kernel, strides, dilations, pads)
    is_max = node.op_type == "MaxPool"
    if not is_max and node.attr("count_include_pad") and padding == "SAME":
        padding, explicit = "VALID", True  # TFLite's SAME averages exclude the padding
    if explicit and not is_max and not node.attr("count_include_pad"):
        raise ctx.fail(f"AveragePool pads {pads} with count_include_pad=0 differ from "
                       "TFLite's SAME padding; only SAME-equivalent pads are exported")
    op = "MAX_POOL_2D" if is_max else "AVERAGE_POOL_2D"
    options = {"padding": PADDINGS[padding], "stride_h": strides[0], "stride_w": strides[1],
               "filter_height": kernel[0], "filter_width": kernel[1]}
    plan = int8_plan(ctx, node, [0])
    if plan is not None:
        tensor = int8_input(ctx, plan, 0, layout.NHWC)
        if explicit:
            tensor = _explicit_pad(ctx, tensor, x, pads, fill=-128 if is_max else None)
        target, finish = int8_output(ctx, plan, layout.NHWC, required=plan.inputs[0][1])
        ctx.emit(op, [tensor], [target], options)
        finish()
        return
    tensor = ctx.get(x, layout.NHWC)
    if explicit:
        tensor = _explicit_pad(ctx, tensor, x, pads,
                               fill=float(np.finfo(np.float32).min) if is_max else None)
    ctx.finish(op, [tensor], options, layout.NHWC)


def _check_ceil_mode(ctx: LoweringContext, node: Node, x: Value, kernel: list[int],
                     strides: list[int], pads: list[tuple[int, int]]) -> None:
    for d, k, s, (b, e) in zip(x.shape[2:], kernel, strides, pads):
        if not isinstance(d, int) or (d + b + e - k) % s:
            raise ctx.fail("ceil_mode=1 changes the output size here; TFLite pooling rounds "
                           "down")


@lowers("GlobalAveragePool")
def _global_average_pool(ctx: LoweringContext, node: Node) -> None:
    x = node.inputs[0]
    reduce(ctx, node, "MEAN", x, list(range(2, x.rank)), keep=True)


# ---------------------------------------------------------------------- Gemm / MatMul
@lowers("Gemm")
def _gemm(ctx: LoweringContext, node: Node) -> None:
    a, b = node.inputs[:2]
    c = node.inputs[2] if len(node.inputs) > 2 else None
    alpha, beta = float(node.attr("alpha")), float(node.attr("beta"))
    trans_a, trans_b = bool(node.attr("transA")), bool(node.attr("transB"))
    if not is_constant(b) or (c is not None and not is_constant(c)):
        _gemm_as_batch_matmul(ctx, node, a, b, c, alpha, beta, trans_a, trans_b)
        return
    n = b.shape[0] if trans_b else b.shape[1]
    weight_perm = (0, 1) if trans_b else (1, 0)  # FULLY_CONNECTED weights are (N, K)
    _fully_connected(ctx, node, a, b, c, weight_perm, n, alpha, beta,
                     input_perm=(1, 0) if trans_a else None, keep_num_dims=False)


def _fully_connected(ctx: LoweringContext, node: Node, a: Value, w: Value, bias: Value | None,
                     weight_perm: tuple[int, int], n: int, alpha: float, beta: float, *,
                     input_perm: tuple[int, ...] | None, keep_num_dims: bool) -> None:
    columns = ctx.column_order.get(id(a)) if input_perm is None else None
    options = {"keep_num_dims": keep_num_dims} if keep_num_dims else {}
    plan = int8_plan(ctx, node, [0])
    int8_weight = symmetric_int8_weight(w)
    if plan is not None and int8_weight is not None and input_perm is None:
        code, leftover = ctx.fused_activation(node)
        if leftover is None:
            tensor = int8_input(ctx, plan, 0)
            columns = ctx.column_order.get(id(plan.inputs[0][0]))
            filt = weight_tensor(ctx, w, perm=weight_perm, columns=columns, multiplier=alpha,
                                 keep_quantized=True)
            scales = ctx.model.tensors[filt].quantization.scale
            bias_tensor = int32_bias(ctx, bias, float(plan.inputs[0][1].scale[0]), scales, n,
                                     f"{node.output.name}/bias", multiplier=beta)
            target, finish = int8_output(ctx, plan, layout.identity(node.output.rank))
            ctx.emit("FULLY_CONNECTED", [tensor, filt, bias_tensor], [target],
                     dict(options, fused_activation_function=code))
            finish()
            return
    hybrid = input_perm is None and hybrid_weight(node, 1) is not None
    tensor = ctx.get(a, input_perm)
    filt = weight_tensor(ctx, w, perm=weight_perm, columns=columns, multiplier=alpha,
                         keep_quantized=hybrid)
    bias_tensor = -1 if bias is None else float_bias(ctx, bias, n, bias.name, beta)
    if hybrid:
        options["asymmetric_quantize_inputs"] = True
    ctx.finish("FULLY_CONNECTED", [tensor, filt, bias_tensor], options)


def _gemm_as_batch_matmul(ctx: LoweringContext, node: Node, a: Value, b: Value,
                          c: Value | None, alpha: float, beta: float, trans_a: bool,
                          trans_b: bool) -> None:
    if alpha != 1.0 or (c is not None and beta != 1.0):
        raise ctx.fail("Gemm with a computed B and alpha/beta != 1 is not exported")
    if c is not None or node.meta.get("fused_activation") is not None:
        raise ctx.fail("Gemm with a computed B and a bias is not exported (use MatMul + Add)")
    options = {"adj_x": trans_a, "adj_y": trans_b}
    ctx.emit("BATCH_MATMUL", [ctx.get(a), ctx.get(b)], [ctx.output(node.output)], options)


@lowers("MatMul")
def _matmul(ctx: LoweringContext, node: Node) -> None:
    a, b = node.inputs
    if a.rank is None or b.rank is None or a.rank < 2 or b.rank < 2:
        raise ctx.fail("MatMul of 1-D operands is not exported; reshape them to 2-D")
    if is_constant(b) and b.rank == 2:
        bias, add = _bias_add(ctx, node)
        if add is not None:  # FULLY_CONNECTED writes the Add's output, with its activation
            ctx.node = add
            ctx.done.add(id(add))
        _fully_connected(ctx, node, a, b, bias, (1, 0), int(b.shape[1]), 1.0, 1.0,
                         input_perm=None, keep_num_dims=a.rank > 2)
        return
    plan = int8_plan(ctx, node, [0, 1])
    sources = [p[0] for p in plan.inputs] if plan is not None else [a, b]
    tensors, options = [], {}
    for value, flag in zip(sources, ("adj_x", "adj_y")):
        tensor, adjoint = _matmul_operand(ctx, value)
        tensors.append(tensor)
        options[flag] = adjoint
    if plan is not None:
        target, finish = int8_output(ctx, plan, layout.identity(node.output.rank))
        ctx.emit("BATCH_MATMUL", tensors, [target], options)
        finish()
        return
    ctx.finish("BATCH_MATMUL", tensors, options, activation_field=None)


def _matmul_operand(ctx: LoweringContext, value: Value) -> tuple[int, bool]:
    """A BATCH_MATMUL operand: as stored when that is the IR layout with the last two axes
    swapped (read with adj_x / adj_y), else in the IR layout."""
    rank = value.rank
    swapped = layout.identity(rank - 2) + (rank - 1, rank - 2)
    if not is_constant(value) and ctx.perm_of(value) == swapped:
        return ctx.get(value, swapped), True
    return ctx.get(value), False


def _bias_add(ctx: LoweringContext, node: Node) -> tuple[Value | None, Node | None]:
    """A float ``Add(matmul, bias)`` right after ``node`` that FULLY_CONNECTED can absorb."""
    readers = ctx.consumers(node.output)
    if len(readers) != 1 or ctx.graph.is_output(node.output) \
            or node.meta.get("fused_activation") is not None:
        return None, None
    add = readers[0]
    if add.op_type != "Add" or add.output.dtype != "float32":
        return None, None
    others = [v for v in add.inputs if v is not node.output]
    if len(others) != 1 or not is_constant(others[0]):
        return None, None
    data = weight_source(others[0]).data
    if data.ndim != 1 or data.size != node.output.shape[-1] or weight_source(
            others[0]).kind != "plain":
        return None, None
    return others[0], add


# ---------------------------------------------------------------------- normalization
@lowers("BatchNormalization")
def _batch_norm(ctx: LoweringContext, node: Node) -> None:
    x = node.inputs[0]
    params = [weight_source(v) for v in node.inputs[1:5]]
    if any(p is None for p in params) or len(node.outputs) > 1:
        raise ctx.fail("BatchNormalization needs constant statistics (inference form)")
    gamma, beta, mean, var = (p.as_float().astype(np.float64) for p in params)
    scale = gamma / np.sqrt(var + float(node.attr("epsilon")))
    shift = beta - mean * scale
    shape = (1, -1) + (1,) * (x.rank - 2)
    tensor, perm = ctx.stored(x)
    name = node.output.name
    scaled = ctx.new_tensor(f"{name}/scaled", node.output, perm)
    ctx.emit("MUL", [tensor, ctx.model.add_constant(f"{name}/scale", layout.permute_constant(
        scale.astype(np.float32).reshape(shape), perm, x.rank))], [scaled])
    shift_tensor = ctx.model.add_constant(f"{name}/shift", layout.permute_constant(
        shift.astype(np.float32).reshape(shape), perm, x.rank))
    ctx.finish("ADD", [scaled, shift_tensor], {}, perm)


@lowers("LayerNormalization")
def _layer_norm(ctx: LoweringContext, node: Node) -> None:
    if any(ctx.consumers(v) or ctx.graph.is_output(v) for v in node.outputs[1:]):
        raise ctx.fail("LayerNormalization's Mean / InvStdDev outputs are not exported")
    x, gamma = node.inputs[:2]
    beta = node.inputs[2] if len(node.inputs) > 2 else None
    rank = x.rank
    axis = int(node.attr("axis")) % rank
    out = node.output
    name = out.name
    axes = ctx.ints(list(range(axis, rank)), f"{name}/axes")
    reduced = list(x.shape[:axis]) + [1] * (rank - axis)

    def temp(label: str, dims: list | None = None) -> int:
        return ctx.new_tensor(f"{name}/{label}", out, dims=dims)

    xt = ctx.get(x)
    mean, centered, squared, var, var_eps, inv_std, normalized = (
        temp("mean", reduced), temp("centered"), temp("squared"), temp("variance", reduced),
        temp("variance_eps", reduced), temp("inv_std", reduced), temp("normalized"))
    ctx.emit("MEAN", [xt, axes], [mean], {"keep_dims": True})
    ctx.emit("SUB", [xt, mean], [centered])
    ctx.emit("MUL", [centered, centered], [squared])
    ctx.emit("MEAN", [squared, axes], [var], {"keep_dims": True})
    eps = ctx.model.add_constant(f"{name}/epsilon",
                                 np.asarray(node.attr("epsilon"), np.float32))
    ctx.emit("ADD", [var, eps], [var_eps])
    ctx.emit("RSQRT", [var_eps], [inv_std])
    ctx.emit("MUL", [centered, inv_std], [normalized])
    if beta is None:
        ctx.emit("MUL", [normalized, weight_tensor(ctx, gamma)], [ctx.output(out)])
        return
    scaled = temp("scaled")
    ctx.emit("MUL", [normalized, weight_tensor(ctx, gamma)], [scaled])
    ctx.emit("ADD", [scaled, weight_tensor(ctx, beta)], [ctx.output(out)])


__all__: list[str] = []
