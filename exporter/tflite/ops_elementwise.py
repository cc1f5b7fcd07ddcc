"""Lowering rules for elementwise ops, activations, Softmax, Cast and reductions.

These ops do not care how their input is laid out: they write their output in the layout
their input is stored in (NHWC feature maps stay NHWC), with axes renumbered and constant
operands permuted to match. Softmax computes over the last stored axis in TFLite, so it asks
for a layout that puts its axis last.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgefw.ir import Node, Value
from edgefw.ir.passes.fuse_activation_pass import activation_spec
from edgefw.ir.tflite_schema import TENSOR_TYPES
from exporter.tflite import layout
from exporter.tflite.layout import Perm
from exporter.tflite.lowering import LoweringContext, lowers
from exporter.tflite.quantized import (
    QParams,
    int8_input,
    int8_output,
    int8_plan,
    weight_source,
    weight_tensor,
)

_UNARY = {
    "Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "Exp": "EXP", "Log": "LOG",
    "Sqrt": "SQRT", "Abs": "ABS", "Neg": "NEG", "Floor": "FLOOR", "Ceil": "CEIL",
    "Round": "ROUND", "Sin": "SIN", "Cos": "COS", "Not": "LOGICAL_NOT", "Sign": "SIGN",
    "HardSwish": "HARD_SWISH", "Elu": "ELU",
}
_BINARY = {
    "Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Div": "DIV", "Pow": "POW",
    "Equal": "EQUAL", "Greater": "GREATER", "Less": "LESS", "GreaterOrEqual": "GREATER_EQUAL",
    "LessOrEqual": "LESS_EQUAL", "And": "LOGICAL_AND", "Or": "LOGICAL_OR",
}
_WITH_ACTIVATION_OPTION = {"ADD", "SUB", "MUL", "DIV"}
# Unary ops with an int8 kernel, and the output parameters that kernel requires.
_INT8_UNARY = {
    "Relu": None, "LeakyRelu": None, "Gelu": None, "HardSwish": None, "Clip": None,
    "Sigmoid": QParams(np.float32([1 / 256]), np.int64([-128]), None, "int8"),
    "Tanh": QParams(np.float32([1 / 128]), np.int64([0]), None, "int8"),
}
_INT8_BINARY = ("Add", "Sub", "Mul")
_SOFTMAX_INT8 = QParams(np.float32([1 / 256]), np.int64([-128]), None, "int8")


def is_constant(value: Value | None) -> bool:
    return value is not None and weight_source(value) is not None


def broadcast_operands(ctx: LoweringContext, values: Sequence[Value], rank: int,
                       perm: Perm | None = None) -> tuple[list[int], Perm]:
    """Tensors for the operands of a broadcasting op, all in one stored layout: the layout
    of the first computed operand of full rank (constants are permuted to match; a computed
    operand of lower rank forces the IR's layout)."""
    computed = [v for v in values if not is_constant(v)]
    if perm is None:
        perm = layout.identity(rank)
        if computed and all(v.rank == rank for v in computed):
            perm = ctx.perm_of(computed[0])
    tensors = []
    for v in values:
        if is_constant(v):
            data = weight_source(v).data
            if data.size == 1 or layout.is_identity(perm):
                tensors.append(weight_tensor(ctx, v))
            else:
                tensors.append(weight_tensor(ctx, v, rank=rank, perm=perm))
        else:
            tensors.append(ctx.get(v, perm if v.rank == rank else None))
    return tensors, perm


# ---------------------------------------------------------------------- unary
def lower_int8_unary(ctx: LoweringContext, node: Node, op: str,
                     options: dict | None = None) -> bool:
    """Write ``node`` as an int8 kernel when its QDQ neighbourhood allows; True if done."""
    if node.op_type not in _INT8_UNARY:
        return False
    plan = int8_plan(ctx, node, [0])
    required = _INT8_UNARY[node.op_type]
    if plan is None or (required is not None and not required.same_as(plan.out_params)):
        # A kernel with a fixed output scale would need a requantization (a second
        # rounding, a few LSB off the graph's result): compute in float instead.
        return False
    q, _ = plan.inputs[0]
    tensor, perm = ctx.stored(q)
    target, finish = int8_output(ctx, plan, perm)
    ctx.emit(op, [tensor], [target], options)
    finish()
    return True


@lowers(*_UNARY)
def _unary(ctx: LoweringContext, node: Node) -> None:
    op = _UNARY[node.op_type]
    if lower_int8_unary(ctx, node, op):
        return
    tensor, perm = ctx.stored(node.inputs[0])
    out = ctx.output(node.output, perm)
    ctx.emit(op, [tensor], [out])


@lowers("Reciprocal")
def _reciprocal(ctx: LoweringContext, node: Node) -> None:
    tensor, perm = ctx.stored(node.inputs[0])
    one = ctx.model.add_constant("one", np.ones((), dtype=node.output.dtype))
    ctx.emit("DIV", [one, tensor], [ctx.output(node.output, perm)])


@lowers("LeakyRelu")
def _leaky_relu(ctx: LoweringContext, node: Node) -> None:
    options = {"alpha": float(node.attr("alpha"))}
    if lower_int8_unary(ctx, node, "LEAKY_RELU", options):
        return
    tensor, perm = ctx.stored(node.inputs[0])
    ctx.emit("LEAKY_RELU", [tensor], [ctx.output(node.output, perm)], options)


@lowers("Gelu")
def _gelu(ctx: LoweringContext, node: Node) -> None:
    approximate = node.attr("approximate")
    if approximate not in ("none", "tanh"):
        raise ctx.fail(f"Gelu approximate={approximate!r}; TFLite has 'none' and 'tanh'")
    options = {"approximate": approximate == "tanh"}
    if lower_int8_unary(ctx, node, "GELU", options):
        return
    tensor, perm = ctx.stored(node.inputs[0])
    ctx.emit("GELU", [tensor], [ctx.output(node.output, perm)], options)


@lowers("Clip")
def _clip(ctx: LoweringContext, node: Node) -> None:
    spec = activation_spec(node)
    if spec is None:
        raise ctx.fail("Clip bounds must be constants for TFLite")
    standalone = {(0.0, 6.0): "RELU6", (0.0, None): "RELU", (-1.0, 1.0): "RELU_N1_TO_1"}
    op = standalone.get((spec[1], spec[2]))
    if op is not None and lower_int8_unary(ctx, node, op):
        return
    tensor, perm = ctx.stored(node.inputs[0])
    out = ctx.output(node.output, perm)
    ctx.clip(tensor, out, spec[1], spec[2], node.output)


@lowers("Softmax", "LogSoftmax")
def _softmax(ctx: LoweringContext, node: Node) -> None:
    x = node.inputs[0]
    rank = x.rank
    axis = int(node.attr("axis")) % rank
    op = "SOFTMAX" if node.op_type == "Softmax" else "LOG_SOFTMAX"
    options = {"beta": 1.0} if op == "SOFTMAX" else {}
    plan = int8_plan(ctx, node, [0]) if op == "SOFTMAX" else None
    if plan is not None and not _SOFTMAX_INT8.same_as(plan.out_params):
        plan = None  # TFLite's int8 SOFTMAX writes scale 1/256: only when the graph does
    source = plan.inputs[0][0] if plan is not None else x
    _, have = ctx.stored(source)
    # TFLite normalizes over the last stored axis: keep a layout that has it there.
    perm = have if have[-1] == axis else \
        tuple(a for a in layout.identity(rank) if a != axis) + (axis,)
    if plan is not None:
        target, finish = int8_output(ctx, plan, perm)
        ctx.emit(op, [int8_input(ctx, plan, 0, perm)], [target], options)
        finish()
        return
    ctx.emit(op, [ctx.get(x, perm)], [ctx.output(node.output, perm)], options)


# ---------------------------------------------------------------------- binary
@lowers(*_BINARY)
def _binary(ctx: LoweringContext, node: Node) -> None:
    op = _BINARY[node.op_type]
    rank = node.output.rank
    if node.op_type in _INT8_BINARY and _int8_binary(ctx, node, op, rank):
        return
    tensors, perm = broadcast_operands(ctx, node.inputs[:2], rank)
    field = "fused_activation_function" if op in _WITH_ACTIVATION_OPTION else None
    ctx.finish(op, tensors, {}, perm, activation_field=field)


def _int8_binary(ctx: LoweringContext, node: Node, op: str, rank: int) -> bool:
    computed = [i for i, v in enumerate(node.inputs[:2]) if not is_constant(v)]
    plan = int8_plan(ctx, node, computed)
    if plan is None:
        return False
    for i, v in enumerate(node.inputs[:2]):
        source = weight_source(v) if i not in computed else None
        if i not in computed and (source.params is None or not source.params.per_tensor
                                  or source.params.dtype != "int8"):
            return False
    code, leftover = ctx.fused_activation(node)
    if leftover is not None:
        return False
    sources = {i: plan.inputs[k][0] for k, i in enumerate(computed)}
    full = [sources[i] for i in computed if sources[i].rank == rank]
    perm = layout.identity(rank)
    if full and len(full) == len(computed):
        perm = ctx.perm_of(full[0])
    tensors = []
    for i, v in enumerate(node.inputs[:2]):
        if i in sources:
            tensors.append(ctx.get(sources[i], perm if sources[i].rank == rank else None))
        elif weight_source(v).data.size == 1 or layout.is_identity(perm):
            tensors.append(weight_tensor(ctx, v, keep_quantized=True))
        else:
            tensors.append(weight_tensor(ctx, v, rank=rank, perm=perm, keep_quantized=True))
    target, finish = int8_output(ctx, plan, perm)
    options = {"fused_activation_function": code} if code else {}
    ctx.emit(op, tensors, [target], options)
    finish()
    return True


@lowers("Max", "Min")
def _max_min(ctx: LoweringContext, node: Node) -> None:
    op = "MAXIMUM" if node.op_type == "Max" else "MINIMUM"
    rank = node.output.rank
    inputs = list(node.inputs)
    if len(inputs) == 1:
        tensor, perm = ctx.stored(inputs[0])
        ctx.bind(node.output, tensor, perm)
        return
    tensors, perm = broadcast_operands(ctx, inputs, rank)
    current = tensors[0]
    for i, other in enumerate(tensors[1:], start=2):
        last = i == len(tensors)
        target = ctx.output(node.output, perm) if last else \
            ctx.new_tensor(f"{node.output.name}/partial", node.output, perm)
        ctx.emit(op, [current, other], [target])
        current = target


@lowers("Where")
def _where(ctx: LoweringContext, node: Node) -> None:
    tensors, perm = broadcast_operands(ctx, node.inputs[:3], node.output.rank)
    ctx.emit("SELECT_V2", tensors, [ctx.output(node.output, perm)])


# ---------------------------------------------------------------------- types
@lowers("Cast")
def _cast(ctx: LoweringContext, node: Node) -> None:
    if weight_source(node.output) is not None:
        return  # Cast(float16 constant): readers write the float16 weight + DEQUANTIZE
    x, y = node.inputs[0], node.output
    tensor, perm = ctx.stored(x)
    if x.dtype == y.dtype:
        ctx.bind(y, tensor, perm)
        return
    for dtype in (x.dtype, y.dtype):
        if dtype not in TENSOR_TYPES:
            raise ctx.fail(f"TFLite has no {dtype} tensors")
    ctx.emit("CAST", [tensor], [ctx.output(y, perm)],
             {"in_data_type": TENSOR_TYPES[x.dtype], "out_data_type": TENSOR_TYPES[y.dtype]})


# ---------------------------------------------------------------------- reductions
_REDUCE = {"ReduceMean": "MEAN", "ReduceSum": "SUM", "ReduceMax": "REDUCE_MAX",
           "ReduceMin": "REDUCE_MIN", "ReduceProd": "REDUCE_PROD"}


@lowers(*_REDUCE)
def _reduce(ctx: LoweringContext, node: Node) -> None:
    x = node.inputs[0]
    rank = x.rank
    axes_value = node.inputs[1] if len(node.inputs) > 1 else None
    if axes_value is None:
        if node.attr("noop_with_empty_axes"):
            tensor, perm = ctx.stored(x)
            ctx.bind(node.output, tensor, perm)
            return
        axes = list(range(rank))
    else:
        data = ctx.constant(axes_value)
        if data is None:
            raise ctx.fail("reduction axes must be constant for TFLite")
        axes = sorted({int(a) % rank for a in np.asarray(data).reshape(-1)})
    keep = bool(node.attr("keepdims"))
    reduce(ctx, node, _REDUCE[node.op_type], x, axes, keep)


def reduce(ctx: LoweringContext, node: Node, op: str, x: Value, axes: Sequence[int],
           keep: bool) -> None:
    """Write reduction ``op`` of logical ``axes`` of ``x`` into the node's output."""
    plan = int8_plan(ctx, node, [0]) if op in ("MEAN", "SUM", "REDUCE_MAX") else None
    source = plan.inputs[0][0] if plan is not None else x
    tensor, perm = ctx.stored(source)
    stored_axes = sorted(layout.stored_axis(perm, a) for a in axes)
    out_perm = perm if keep else layout.drop_axes(perm, axes)
    inputs = [tensor, ctx.ints(stored_axes, f"{node.output.name}/axes")]
    options = {"keep_dims": keep}
    if plan is not None:
        required = None if op != "REDUCE_MAX" else plan.inputs[0][1]
        target, finish = int8_output(ctx, plan, out_perm, required=required)
        ctx.emit(op, inputs, [target], options)
        finish()
        return
    ctx.emit(op, inputs, [ctx.output(node.output, out_perm)], options)


__all__ = ["broadcast_operands", "is_constant", "lower_int8_unary", "reduce"]
