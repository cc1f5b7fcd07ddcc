"""Schemas of the activations beyond Relu/LeakyRelu/Sigmoid/Tanh/Gelu: Elu, Selu, Celu,
HardSigmoid, HardSwish, Softplus, Softsign, ThresholdedRelu, Mish, Swish, Shrink, PRelu,
Hardmax."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES, INT_DTYPES
from edgefw.ir.schema.dims import broadcast_shapes, format_shape
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

#: Selu's defaults, the constants of the self-normalizing networks paper (float32 values).
SELU_ALPHA = 1.67326319217681884765625
SELU_GAMMA = 1.05070102214813232421875


def _float_unary(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    return [ctx.input_type(0)]


_ACTIVATIONS = {
    "Elu": ([Attr("alpha", "float", 1.0)], 6, "x if x > 0 else alpha * (exp(x) - 1)"),
    "Selu": ([Attr("alpha", "float", SELU_ALPHA), Attr("gamma", "float", SELU_GAMMA)], 6,
             "gamma * (x if x > 0 else alpha * (exp(x) - 1))"),
    "Celu": ([Attr("alpha", "float", 1.0)], 12,
             "max(0, x) + min(0, alpha * (exp(x / alpha) - 1))"),
    "HardSigmoid": ([Attr("alpha", "float", 0.2), Attr("beta", "float", 0.5)], 6,
                    "max(0, min(1, alpha * x + beta))"),
    "HardSwish": ([], 14, "x * max(0, min(1, x / 6 + 1 / 2))"),
    "Softplus": ([], 1, "log(exp(x) + 1)"),
    "Softsign": ([], 1, "x / (1 + |x|)"),
    "ThresholdedRelu": ([Attr("alpha", "float", 1.0)], 10, "x if x > alpha else 0"),
    "Mish": ([], 18, "x * tanh(softplus(x))"),
    "Swish": ([Attr("alpha", "float", 1.0)], 24, "x * sigmoid(alpha * x)"),
}
for _op, (_attrs, _since, _doc) in _ACTIVATIONS.items():
    op_schema(_op, attrs=_attrs, since_version=_since, doc=_doc)(_float_unary)


@op_schema("Shrink", attrs=[Attr("bias", "float", 0.0), Attr("lambd", "float", 0.5)],
           since_version=9, doc="x + bias if x < -lambd, x - bias if x > lambd, else 0")
def _shrink(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES | INT_DTYPES)
    return [ctx.input_type(0)]


@op_schema("PRelu", inputs=2, since_version=16,
           doc="x if x >= 0 else slope * x; slope broadcasts to x")
def _prelu(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(0, 1)
    ctx.require_dtype(0, FLOAT_DTYPES | INT_DTYPES)
    x, slope = ctx.shape(0), ctx.shape(1)
    out = broadcast_shapes(x, slope)
    if x is not None and out is not None and len(out) != len(x):
        raise ShapeError(f"PRelu slope {format_shape(slope)} must broadcast to the input "
                         f"{format_shape(x)}")
    return [TensorType(dtype, x if x is not None else out)]


@op_schema("Hardmax", attrs=[Attr("axis", "int", -1)], since_version=13,
           doc="1 at the first maximum along axis, 0 elsewhere")
def _hardmax(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    if ctx.rank(0) is not None:
        ctx.axis("axis", ctx.rank(0))
    return [ctx.input_type(0)]
