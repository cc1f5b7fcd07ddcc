"""Lowering rules for TFLite's elementwise ops: activations, unary math, binary arithmetic
(numpy broadcasting), comparisons, logic, SELECT and CAST.

Elementwise ops keep their input's layout: a RELU after a channels-first Conv stays
channels-first. Binary ops bring both operands into a common layout
(:func:`binary_operands`): a constant operand of lower rank is expanded and transposed
with the other operand's layout, so a bias added to a conv output costs no Transpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgefw.ir import Value
from edgefw.ir.dtypes import to_onnx
from edgefw.ir.tflite_schema import TENSOR_TYPE_NAMES
from runtime.loaders.tflite_lowering import FUSED_META, Lowering, Operator, Perm, lowers

# TFLite op -> IR op: unary ops that map one to one.
_UNARY = {
    "RELU": "Relu", "LOGISTIC": "Sigmoid", "TANH": "Tanh", "EXP": "Exp", "LOG": "Log",
    "SQRT": "Sqrt", "ABS": "Abs", "NEG": "Neg", "SIN": "Sin", "COS": "Cos", "FLOOR": "Floor",
    "CEIL": "Ceil", "ROUND": "Round", "HARD_SWISH": "HardSwish", "ELU": "Elu",
    "LOGICAL_NOT": "Not", "SIGN": "Sign",
}  # fmt: skip
_BINARY = {
    "ADD": "Add", "SUB": "Sub", "MUL": "Mul", "DIV": "Div", "MAXIMUM": "Max",
    "MINIMUM": "Min", "POW": "Pow", "LESS": "Less", "LESS_EQUAL": "LessOrEqual",
    "GREATER": "Greater", "GREATER_EQUAL": "GreaterOrEqual", "EQUAL": "Equal",
    "LOGICAL_AND": "And", "LOGICAL_OR": "Or",
}  # fmt: skip
_CLIPS = {"RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0), "RELU_0_TO_1": (0.0, 1.0)}
_OPTIONS = {"ADD": "AddOptions", "SUB": "SubOptions", "MUL": "MulOptions",
            "DIV": "DivOptions"}


def binary_operands(ctx: Lowering, a_t: int, b_t: int) -> tuple[Value, Value, Perm]:
    """Both operands in one layout and that layout (the output's).

    A rank-4 operand already stored channels-first sets the layout; the other operand is
    transposed to it, or, when it is a constant of lower rank, expanded to rank 4 and
    transposed at load time. Anything else runs in the file's layout.
    """
    stored = [ctx.stored(t) for t in (a_t, b_t)]
    target = next((perm for _, perm in stored if len(perm) >= 3
                   and perm != tuple(range(len(perm)))), None)
    if target is not None:
        operands = []
        for t, (value, perm) in zip((a_t, b_t), stored, strict=True):
            data = ctx.constant(t)
            if len(perm) == len(target):
                operands.append(ctx.value(t, target))
            elif data is not None and data.ndim < len(target):
                expanded = data.reshape((1,) * (len(target) - data.ndim) + data.shape)
                operands.append(ctx.const(np.ascontiguousarray(np.transpose(expanded, target)),
                                          f"{value.name}/{len(target)}d"))
            elif data is not None or value.rank == 0:
                operands.append(value)  # a scalar broadcasts in any layout
            else:
                break
        else:
            return operands[0], operands[1], target
    a, b = ctx.value(a_t), ctx.value(b_t)
    rank = max(a.rank or 0, b.rank or 0)
    return a, b, tuple(range(rank))


def _binary(ctx: Lowering, op: Operator) -> None:
    a, b, perm = binary_operands(ctx, op.input(0), op.input(1))
    y_t = op.outputs[0]
    activation = ctx.activation() if op.name in _OPTIONS else None
    if op.name == "ADD" and activation is not None:  # the Add kernel applies it
        y = ctx.node("Add", [a, b], output=y_t, meta={"fused_activation": FUSED_META[
            activation]}).output
    else:
        y = ctx.node(_BINARY[op.name], [a, b], output=None if activation else y_t).output
        y = ctx.activate(y, activation)
    ctx.define(y_t, y, perm)


for _name in _BINARY:
    lowers(_name, options=_OPTIONS.get(_name))(_binary)


@lowers("SQUARED_DIFFERENCE")
def squared_difference(ctx: Lowering, op: Operator) -> None:
    a, b, perm = binary_operands(ctx, op.input(0), op.input(1))
    d = ctx.node("Sub", [a, b]).output
    ctx.define(op.outputs[0], ctx.node("Mul", [d, d], output=op.outputs[0]).output, perm)


@lowers("FLOOR_DIV")
def floor_div(ctx: Lowering, op: Operator) -> None:
    if ctx.dtype(op.input(0)) not in ("float32", "float16"):
        raise ctx.unsupported(f"FLOOR_DIV of {ctx.dtype(op.input(0))} is not supported")
    a, b, perm = binary_operands(ctx, op.input(0), op.input(1))
    q = ctx.node("Div", [a, b]).output
    ctx.define(op.outputs[0], ctx.node("Floor", [q], output=op.outputs[0]).output, perm)


@lowers("NOT_EQUAL")
def not_equal(ctx: Lowering, op: Operator) -> None:
    a, b, perm = binary_operands(ctx, op.input(0), op.input(1))
    eq = ctx.node("Equal", [a, b]).output
    ctx.define(op.outputs[0], ctx.node("Not", [eq], output=op.outputs[0]).output, perm)


def _unary(ctx: Lowering, op: Operator, op_type: str, attrs: dict | None = None,
           extra: Sequence[np.ndarray] = ()) -> None:
    x, perm = ctx.stored(op.input(0))
    y = ctx.node(op_type, [x, *extra], attrs, output=op.outputs[0]).output
    ctx.define(op.outputs[0], y, perm)


def _one_to_one(ctx: Lowering, op: Operator) -> None:
    _unary(ctx, op, _UNARY[op.name])


for _name in _UNARY:
    lowers(_name)(_one_to_one)


def _clip(ctx: Lowering, op: Operator) -> None:
    dtype = np.dtype(ctx.dtype(op.input(0)))
    lo, hi = _CLIPS[op.name]
    _unary(ctx, op, "Clip", extra=(np.asarray(lo, dtype), np.asarray(hi, dtype)))


for _name in _CLIPS:
    lowers(_name)(_clip)


@lowers("RSQRT")
def rsqrt(ctx: Lowering, op: Operator) -> None:
    x, perm = ctx.stored(op.input(0))
    root = ctx.node("Sqrt", [x]).output
    ctx.define(op.outputs[0], ctx.node("Reciprocal", [root], output=op.outputs[0]).output, perm)


@lowers("SQUARE")
def square(ctx: Lowering, op: Operator) -> None:
    x, perm = ctx.stored(op.input(0))
    ctx.define(op.outputs[0], ctx.node("Mul", [x, x], output=op.outputs[0]).output, perm)


@lowers("LEAKY_RELU", options="LeakyReluOptions")
def leaky_relu(ctx: Lowering, op: Operator) -> None:
    _unary(ctx, op, "LeakyRelu", {"alpha": float(op.option("alpha"))})


@lowers("GELU", options="GeluOptions")
def gelu(ctx: Lowering, op: Operator) -> None:
    _unary(ctx, op, "Gelu", {"approximate": "tanh" if op.option("approximate") else "none"})


@lowers("PRELU")
def prelu(ctx: Lowering, op: Operator) -> None:
    x, alpha, perm = binary_operands(ctx, op.input(0), op.input(1))
    ctx.define(op.outputs[0], ctx.node("PRelu", [x, alpha], output=op.outputs[0]).output, perm)


@lowers("SELECT", "SELECT_V2")
def select(ctx: Lowering, op: Operator) -> None:
    condition = ctx.value(op.input(0))
    if op.name == "SELECT" and condition.rank == 1 and (ctx.rank(op.input(1)) or 0) > 1:
        raise ctx.unsupported("SELECT with a 1-D condition picking rows is not supported")
    a, b = ctx.value(op.input(1)), ctx.value(op.input(2))
    ctx.define(op.outputs[0], ctx.node("Where", [condition, a, b], output=op.outputs[0]).output)


@lowers("CAST", options="CastOptions")
def cast(ctx: Lowering, op: Operator) -> None:
    x, perm = ctx.stored(op.input(0))
    target = ctx.tensor(op.outputs[0]).dtype
    if target not in TENSOR_TYPE_NAMES.values() or target in ("string", "complex64"):
        raise ctx.unsupported(f"CAST to {target} is not supported")
    try:
        code = to_onnx(target)
    except Exception:  # noqa: BLE001 - DTypeError for types the IR lacks
        raise ctx.unsupported(f"CAST to {target} is not supported") from None
    ctx.define(op.outputs[0], ctx.node("Cast", [x], {"to": code}, output=op.outputs[0]).output,
               perm)


__all__ = ["binary_operands"]
