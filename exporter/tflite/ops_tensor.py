"""Lowering rules for ops that move data: Reshape, Flatten, Transpose, Squeeze, Unsqueeze,
Slice, Concat, Pad, Gather, Split, Expand, Tile, Identity.

Transpose and Identity write no op: they change which layout the value is recorded in (see
:mod:`exporter.tflite.layout`). A Flatten of NHWC feature maps writes a RESHAPE of the
NHWC data when its readers are FULLY_CONNECTED ops, which then take their weight columns in
NHWC order; otherwise the data is transposed back to NCHW first. In int8 graphs these ops
keep their input's scale (TFLite's kernels copy int8 values); a QuantizeLinear after them
with other parameters becomes a requantization (DEQUANTIZE + QUANTIZE).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgefw.ir import Node, Value
from edgefw.ir.schema.tensor import slice_bounds
from exporter.tflite import layout
from exporter.tflite.lowering import LoweringContext, lowers
from exporter.tflite.ops_elementwise import broadcast_operands, is_constant
from exporter.tflite.quantized import (
    Int8Plan,
    int8_output,
    int8_plan,
    requantize,
    requantized_input,
    weight_tensor,
)

_INT32_MAX = 2**31 - 1


def _source(ctx: LoweringContext, node: Node) -> tuple[Value, Int8Plan | None]:
    """The value to move: the int8 source when the node runs as an int8 kernel."""
    plan = int8_plan(ctx, node, [0])
    return (plan.inputs[0][0], plan) if plan is not None else (node.inputs[0], None)


def _write(ctx: LoweringContext, node: Node, plan: Int8Plan | None, op: str,
           inputs: Sequence[int], perm: Sequence[int], options: dict | None = None) -> None:
    """Write data-movement ``op`` into the node's output (int8: keeping the input scale)."""
    if plan is None:
        ctx.emit(op, inputs, [ctx.output(node.output, perm)], options)
        return
    target, finish = int8_output(ctx, plan, perm, required=plan.inputs[0][1])
    ctx.emit(op, inputs, [target], options)
    finish()


def _alias(ctx: LoweringContext, node: Node, plan: Int8Plan | None, tensor: int,
           perm: Sequence[int]) -> None:
    """The node's output is ``tensor`` itself, recorded in layout ``perm``."""
    if plan is None:
        ctx.bind(node.output, tensor, perm)
    elif plan.inputs[0][1].same_as(plan.out_params):
        for q in plan.q_nodes:
            ctx.bind(q.output, tensor, perm)
            ctx.done.add(id(q))
    else:
        target, _ = int8_output(ctx, plan, perm)
        requantize(ctx, tensor, target, node.output, perm)


def target_shape(ctx: LoweringContext, value: Value) -> list[int]:
    """``value``'s shape for RESHAPE / BROADCAST_TO: its one dynamic dim (the batch) as -1."""
    dims = [d if isinstance(d, int) else -1 for d in value.shape]
    if dims.count(-1) > 1:
        raise ctx.fail(f"output {value.name!r} has more than one dynamic dim "
                       f"({list(value.shape)}); TFLite reshapes infer at most one")
    return dims


@lowers("Identity", "Dropout")
def _identity(ctx: LoweringContext, node: Node) -> None:
    if len(node.outputs) > 1 and ctx.consumers(node.outputs[1]):
        raise ctx.fail("the Dropout mask output has no TFLite equivalent")
    source, plan = _source(ctx, node)
    tensor, perm = ctx.stored(source)
    _alias(ctx, node, plan, tensor, perm)


@lowers("Transpose")
def _transpose(ctx: LoweringContext, node: Node) -> None:
    source, plan = _source(ctx, node)
    rank = node.inputs[0].rank
    perm_attr = node.attr("perm")
    transpose = tuple(perm_attr) if perm_attr else tuple(reversed(range(rank)))
    tensor, stored = ctx.stored(source)
    _alias(ctx, node, plan, tensor, layout.after_transpose(stored, transpose))


@lowers("Reshape", "Flatten", "Unsqueeze")
def _reshape(ctx: LoweringContext, node: Node) -> None:
    source, plan = _source(ctx, node)
    out = node.output
    tensor, perm = ctx.stored(source)
    x = node.inputs[0]
    if _flattens_nchw(x, out) and perm == layout.NHWC:
        _, c, h, w = x.shape
        order = layout.nhwc_flatten_order(c, h, w)
        chain = _column_order_chain(ctx, out)
        if np.array_equal(order, np.arange(order.size)) or chain is not None:
            for value in chain or []:
                ctx.column_order[id(value)] = order
            shape = ctx.ints(target_shape(ctx, out), f"{out.name}/shape")
            _write(ctx, node, plan, "RESHAPE", [tensor, shape], layout.identity(2))
            return
    tensor = ctx.get(source)
    shape = ctx.ints(target_shape(ctx, out), f"{out.name}/shape")
    _write(ctx, node, plan, "RESHAPE", [tensor, shape], layout.identity(out.rank))


def _flattens_nchw(x: Value, out: Value) -> bool:
    """``out`` is ``x`` (N, C, H, W with static C, H, W) flattened to (N, C*H*W)."""
    if x.rank != 4 or out.rank != 2 or not all(isinstance(d, int) for d in x.shape[1:]):
        return False
    return out.shape[0] == x.shape[0] and out.shape[1] == x.shape[1] * x.shape[2] * x.shape[3]


def _column_order_chain(ctx: LoweringContext, value: Value) -> list[Value] | None:
    """The values from ``value`` through Quantize/DequantizeLinear pairs when every final
    reader is a FULLY_CONNECTED-to-be (Gemm with transA=0 or MatMul, constant weights)
    reading it as input A; else None (the flattened order must then be NCHW)."""
    chain, frontier = [], [value]
    while frontier:
        current = frontier.pop()
        if ctx.graph.is_output(current):
            return None
        chain.append(current)
        for reader, index in ctx.uses.get(id(current), []):
            if reader.op_type in ("QuantizeLinear", "DequantizeLinear") and index == 0:
                frontier.append(reader.output)
                continue
            weights = reader.inputs[1] if len(reader.inputs) > 1 else None
            fc = (reader.op_type == "Gemm" and not reader.attr("transA")) or (
                reader.op_type == "MatMul" and weights is not None and weights.rank == 2)
            if not (fc and index == 0 and is_constant(weights)):
                return None
    return chain


@lowers("Squeeze")
def _squeeze(ctx: LoweringContext, node: Node) -> None:
    source, plan = _source(ctx, node)
    x = node.inputs[0]
    axes_value = node.inputs[1] if len(node.inputs) > 1 else None
    if axes_value is None:
        axes = [a for a, d in enumerate(x.shape) if d == 1]
    else:
        data = ctx.constant(axes_value)
        if data is None:
            raise ctx.fail("Squeeze axes must be constant for TFLite")
        axes = sorted({int(a) % x.rank for a in np.asarray(data).reshape(-1)})
    tensor, perm = ctx.stored(source)
    stored_axes = sorted(layout.stored_axis(perm, a) for a in axes)
    _write(ctx, node, plan, "SQUEEZE", [tensor], layout.drop_axes(perm, axes),
           {"squeeze_dims": stored_axes})


@lowers("Slice")
def _slice(ctx: LoweringContext, node: Node) -> None:
    source, plan = _source(ctx, node)
    x = node.inputs[0]
    rank = x.rank
    values = [ctx.constant(v) if v is not None else None for v in node.inputs[1:5]]
    if values[0] is None or values[1] is None or any(
            v is None for v, given in zip(values[2:], node.inputs[3:5]) if given is not None):
        raise ctx.fail("Slice starts/ends/axes/steps must be constants for TFLite")
    starts, ends = (np.asarray(v, np.int64).reshape(-1).tolist() for v in values[:2])
    axes = list(range(len(starts))) if values[2] is None else \
        [int(a) % rank for a in np.asarray(values[2]).reshape(-1)]
    steps = [1] * len(starts) if values[3] is None else \
        np.asarray(values[3], np.int64).reshape(-1).tolist()
    tensor, perm = ctx.stored(source)
    begin, end, strides = [0] * rank, [0] * rank, [1] * rank
    begin_mask = end_mask = 0
    sliced = {a: (s, e, st) for s, e, a, st in zip(starts, ends, axes, steps)}
    for i, a in enumerate(perm):
        if a not in sliced:
            begin_mask |= 1 << i
            end_mask |= 1 << i
            continue
        start, stop, step = sliced[a]
        strides[i] = step
        dim = x.shape[a]
        if isinstance(dim, int):
            lo, hi = slice_bounds(start, stop, step, dim)
            begin[i] = lo
            if step < 0 and hi == -1:
                end_mask |= 1 << i  # "through index 0": TFLite would read -1 as the last
            else:
                end[i] = hi
            continue
        # A dynamic dim: TFLite wraps negative indices like ONNX; huge ones become masks.
        if (step > 0 and start <= 0 and start > -_INT32_MAX) or step < 0 and start >= _INT32_MAX:
            begin_mask |= 1 << i
        begin[i] = int(np.clip(start, -_INT32_MAX, _INT32_MAX))
        if (step > 0 and stop >= _INT32_MAX) or (step < 0 and stop <= -_INT32_MAX):
            end_mask |= 1 << i
        else:
            end[i] = int(stop)
    name = node.output.name
    inputs = [tensor, ctx.ints(begin, f"{name}/begin"), ctx.ints(end, f"{name}/end"),
              ctx.ints(strides, f"{name}/strides")]
    options = {"begin_mask": begin_mask, "end_mask": end_mask}
    _write(ctx, node, plan, "STRIDED_SLICE", inputs, perm, options)


@lowers("Concat")
def _concat(ctx: LoweringContext, node: Node) -> None:
    rank = node.output.rank
    axis = int(node.attr("axis")) % rank
    computed = [i for i, v in enumerate(node.inputs) if not is_constant(v)]
    plan = int8_plan(ctx, node, computed) if len(computed) == len(node.inputs) else None
    if plan is None:
        tensors, perm = broadcast_operands(ctx, node.inputs, rank)
        ctx.finish("CONCATENATION", tensors, {"axis": layout.stored_axis(perm, axis)}, perm)
        return
    perm = ctx.perm_of(plan.inputs[0][0])
    tensors = [requantized_input(ctx, plan, i, plan.out_params, perm)
               for i in range(len(plan.inputs))]
    target, finish = int8_output(ctx, plan, perm)
    ctx.emit("CONCATENATION", tensors, [target], {"axis": layout.stored_axis(perm, axis)})
    finish()


@lowers("Pad")
def _pad(ctx: LoweringContext, node: Node) -> None:
    x = node.inputs[0]
    rank = x.rank
    mode = node.attr("mode")
    pads = ctx.constant(node.inputs[1])
    axes_value = node.inputs[3] if len(node.inputs) > 3 else None
    axes = list(range(rank))
    if axes_value is not None:
        axes_data = ctx.constant(axes_value)
        if axes_data is None:
            raise ctx.fail("Pad axes must be constant for TFLite")
        axes = [int(a) % rank for a in np.asarray(axes_data).reshape(-1)]
    if pads is None:
        raise ctx.fail("Pad pads must be constant for TFLite")
    pads = np.asarray(pads, np.int64).reshape(-1)
    per_axis = {a: (int(pads[j]), int(pads[j + len(axes)])) for j, a in enumerate(axes)}
    if any(p < 0 for pair in per_axis.values() for p in pair):
        raise ctx.fail(f"negative pads {pads.tolist()} (cropping) are not exported")
    value_input = node.inputs[2] if len(node.inputs) > 2 else None
    fill = 0.0
    if value_input is not None:
        data = ctx.constant(value_input)
        if data is None:
            raise ctx.fail("Pad constant_value must be constant for TFLite")
        fill = float(np.asarray(data).reshape(-1)[0]) if np.asarray(data).size else 0.0
    source, plan = _source(ctx, node)
    if plan is not None and (mode != "constant" or fill != 0.0):
        source, plan = x, None
    tensor, perm = ctx.stored(source)
    paddings = [list(per_axis.get(a, (0, 0))) for a in perm]
    inputs = [tensor, ctx.ints(paddings, f"{node.output.name}/paddings")]
    if mode == "reflect":
        _write(ctx, node, plan, "MIRROR_PAD", inputs, perm, {"mode": 0})
    elif mode != "constant":
        raise ctx.fail(f"Pad mode {mode!r} has no TFLite builtin (constant and reflect do)")
    elif fill == 0.0:
        _write(ctx, node, plan, "PAD", inputs, perm)
    else:
        inputs.append(ctx.model.add_constant(f"{node.output.name}/value",
                                             np.asarray(fill, dtype=x.dtype)))
        _write(ctx, node, plan, "PADV2", inputs, perm)


@lowers("Gather")
def _gather(ctx: LoweringContext, node: Node) -> None:
    data, indices = node.inputs[:2]
    rank = data.rank
    axis = int(node.attr("axis")) % rank
    constant_indices = ctx.constant(indices)
    if constant_indices is not None:
        dim = data.shape[axis]
        fixed = np.asarray(constant_indices, np.int64)
        if np.any(fixed < 0):
            if not isinstance(dim, int):
                raise ctx.fail("negative Gather indices on a dynamic axis")
            fixed = np.where(fixed < 0, fixed + dim, fixed)
        index_tensor = ctx.ints(fixed, f"{node.output.name}/indices")
    else:
        index_tensor = ctx.get(indices)
    if is_constant(data):
        plan, tensor = None, weight_tensor(ctx, data)
    else:
        source, plan = _source(ctx, node)
        tensor = ctx.get(source)
    _write(ctx, node, plan, "GATHER", [tensor, index_tensor], layout.identity(node.output.rank),
           {"axis": axis})


@lowers("Split")
def _split(ctx: LoweringContext, node: Node) -> None:
    x = node.inputs[0]
    rank = x.rank
    axis = int(node.attr("axis")) % rank
    tensor, perm = ctx.stored(x)
    stored = layout.stored_axis(perm, axis)
    name = node.outputs[0].name
    outputs = [ctx.output(v, perm) for v in node.outputs]
    sizes_value = node.inputs[1] if len(node.inputs) > 1 else None
    axis_tensor = ctx.ints(np.asarray(stored), f"{name}/axis")
    if sizes_value is None:
        ctx.emit("SPLIT", [axis_tensor, tensor], outputs, {"num_splits": len(outputs)})
        return
    sizes = ctx.constant(sizes_value)
    if sizes is None:
        raise ctx.fail("Split sizes must be constant for TFLite")
    ctx.emit("SPLIT_V", [tensor, ctx.ints(np.asarray(sizes).reshape(-1), f"{name}/sizes"),
                         axis_tensor], outputs, {"num_splits": len(outputs)})


@lowers("Expand")
def _expand(ctx: LoweringContext, node: Node) -> None:
    shape = target_shape(ctx, node.output)
    if -1 in shape:
        raise ctx.fail("Expand to a dynamic shape is not exported")
    tensor = ctx.get(node.inputs[0])
    ctx.emit("BROADCAST_TO", [tensor, ctx.ints(shape, f"{node.output.name}/shape")],
             [ctx.output(node.output)])


@lowers("Tile")
def _tile(ctx: LoweringContext, node: Node) -> None:
    repeats = ctx.constant(node.inputs[1])
    if repeats is None:
        raise ctx.fail("Tile repeats must be constant for TFLite")
    tensor, perm = ctx.stored(node.inputs[0])
    repeats = np.asarray(repeats).reshape(-1)
    ctx.emit("TILE", [tensor, ctx.ints([int(repeats[a]) for a in perm],
                                       f"{node.output.name}/multiples")],
             [ctx.output(node.output, perm)])


@lowers("Constant")
def _constant(ctx: LoweringContext, node: Node) -> None:
    """Constant outputs are written where they are read (as constant tensors)."""


__all__ = ["target_shape"]
