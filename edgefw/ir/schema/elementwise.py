"""Schemas of elementwise ops: activations, unary math, broadcasting binary ops, Where, Cast."""

from __future__ import annotations

from edgefw.errors import DTypeError
from edgefw.ir.dtypes import FLOAT_DTYPES, INT_DTYPES, from_onnx
from edgefw.ir.schema.dims import broadcast_shapes
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

NUMERIC = FLOAT_DTYPES | INT_DTYPES


def _same_as_input(ctx: InferenceContext) -> list[TensorType]:
    return [ctx.input_type(0)]


def _float_unary(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    return [ctx.input_type(0)]


def _numeric_unary(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, NUMERIC)
    return [ctx.input_type(0)]


_FLOAT_UNARY_DOCS = {
    "Sigmoid": "1 / (1 + exp(-x))",
    "Tanh": "tanh(x)",
    "Erf": "the Gauss error function",
    "Exp": "e ** x",
    "Log": "natural logarithm",
    "Sqrt": "square root",
    "Reciprocal": "1 / x",
}
for _op, _doc in _FLOAT_UNARY_DOCS.items():
    op_schema(_op, doc=_doc)(_float_unary)

op_schema("Relu", doc="max(x, 0)")(_numeric_unary)
op_schema("Abs", doc="|x|")(_numeric_unary)
op_schema("Neg", doc="-x")(_numeric_unary)
op_schema("Identity", doc="x, unchanged")(_same_as_input)


@op_schema("LeakyRelu", attrs=[Attr("alpha", "float", 0.01)], doc="x if x >= 0 else alpha * x")
def _leaky_relu(ctx: InferenceContext) -> list[TensorType]:
    return _float_unary(ctx)


@op_schema(
    "Gelu",
    attrs=[Attr("approximate", "string", "none")],
    since_version=20,
    doc="0.5 x (1 + erf(x / sqrt 2)); approximate='tanh' uses the tanh form",
)
def _gelu(ctx: InferenceContext) -> list[TensorType]:
    if ctx.attr("approximate") not in ("none", "tanh"):
        raise DTypeError(f"approximate must be 'none' or 'tanh', got {ctx.attr('approximate')!r}")
    return _float_unary(ctx)


@op_schema("Clip", inputs=(1, 3), since_version=13, doc="min(max(x, min), max); bounds as inputs")
def _clip(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, NUMERIC)
    for i in (1, 2):
        if ctx.has_input(i):
            shape = ctx.shape(i)
            if shape is not None and len(shape) != 0 and shape != (1,):
                raise DTypeError(f"Clip bound (input {i}) must be a scalar, got shape {shape}")
            ctx.require_same_dtype(0, i)
    return [ctx.input_type(0)]


@op_schema(
    "Dropout",
    inputs=(1, 3),
    outputs=(1, 2),
    attrs=[Attr("seed", "int", 0)],
    since_version=13,
    doc="inference form: output = input; the optional mask is all true",
)
def _dropout(ctx: InferenceContext) -> list[TensorType]:
    t = ctx.input_type(0)
    return [t, TensorType("bool", t.shape)]


def _broadcast_arith(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(0, 1)
    ctx.require_dtype(0, NUMERIC)
    return [TensorType(dtype, broadcast_shapes(ctx.shape(0), ctx.shape(1)))]


for _op, _doc in {"Add": "a + b", "Sub": "a - b", "Mul": "a * b", "Div": "a / b"}.items():
    op_schema(_op, inputs=2, since_version=14, doc=_doc + " (numpy broadcasting)")(
        _broadcast_arith
    )


@op_schema("Pow", inputs=2, since_version=15, doc="x ** y (numpy broadcasting); dtype of x")
def _pow(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, NUMERIC)
    ctx.require_dtype(1, NUMERIC)
    return [TensorType(ctx.dtype(0), broadcast_shapes(ctx.shape(0), ctx.shape(1)))]


def _compare(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_same_dtype(0, 1)
    return [TensorType("bool", broadcast_shapes(ctx.shape(0), ctx.shape(1)))]


for _op, _doc in {"Equal": "a == b", "Less": "a < b", "Greater": "a > b"}.items():
    op_schema(_op, inputs=2, since_version=13, doc=_doc + " -> bool (numpy broadcasting)")(
        _compare
    )


@op_schema("Not", doc="logical not of a bool tensor")
def _not(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, {"bool"})
    return [ctx.input_type(0)]


@op_schema("Where", inputs=3, since_version=16, doc="x where condition else y (broadcasting)")
def _where(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, {"bool"}, "condition")
    dtype = ctx.require_same_dtype(1, 2)
    return [TensorType(dtype, broadcast_shapes(ctx.shape(0), ctx.shape(1), ctx.shape(2)))]


@op_schema(
    "Cast",
    attrs=[Attr("to", "int"), Attr("saturate", "int", 1)],
    since_version=13,
    doc="convert to the dtype whose ONNX code is `to`",
)
def _cast(ctx: InferenceContext) -> list[TensorType]:
    return [TensorType(from_onnx(ctx.attr("to")), ctx.shape(0))]
