"""Schemas of more elementwise ops: trigonometry, rounding, sign and float tests, logical and
bitwise ops, the other comparisons, Mod, BitShift, the variadic Min/Max/Mean/Sum, CastLike."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES, INT_DTYPES, from_onnx, to_numpy
from edgefw.ir.schema.dims import broadcast_shapes
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

NUMERIC = FLOAT_DTYPES | INT_DTYPES
SIGNED_NUMERIC = FLOAT_DTYPES | {"int8", "int16", "int32", "int64"}
VARIADIC = (1, 2**31 - 1)


def _unary(allowed: frozenset[str]):
    def infer(ctx: InferenceContext) -> list[TensorType]:
        ctx.require_dtype(0, allowed)
        return [ctx.input_type(0)]

    return infer


_FLOAT_UNARY = {
    "Sin": "sin(x)", "Cos": "cos(x)", "Tan": "tan(x)",
    "Asin": "arcsin(x)", "Acos": "arccos(x)", "Atan": "arctan(x)",
    "Sinh": "sinh(x)", "Cosh": "cosh(x)", "Asinh": "arcsinh(x)", "Acosh": "arccosh(x)",
    "Atanh": "arctanh(x)",
    "Floor": "largest integer <= x", "Ceil": "smallest integer >= x",
    "Round": "nearest integer, halves to even",
}
for _op, _doc in _FLOAT_UNARY.items():
    op_schema(_op, doc=_doc)(_unary(FLOAT_DTYPES))

op_schema("Sign", since_version=13, doc="-1, 0 or 1 by the sign of x")(_unary(NUMERIC))
op_schema("BitwiseNot", since_version=18, doc="~x (integers)")(_unary(INT_DTYPES))


@op_schema("IsNaN", since_version=20, doc="x != x -> bool")
def _is_nan(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    return [TensorType("bool", ctx.shape(0))]


@op_schema("IsInf", attrs=[Attr("detect_negative", "int", 1), Attr("detect_positive", "int", 1)],
           since_version=20, doc="x is +inf / -inf (as selected) -> bool")
def _is_inf(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    return [TensorType("bool", ctx.shape(0))]


def _binary(allowed: frozenset[str], result: str | None = None):
    """Broadcasting binary op over one shared dtype in ``allowed``; output ``result`` dtype
    (None: the inputs')."""
    def infer(ctx: InferenceContext) -> list[TensorType]:
        dtype = ctx.require_same_dtype(0, 1)
        ctx.require_dtype(0, allowed)
        return [TensorType(result or dtype, broadcast_shapes(ctx.shape(0), ctx.shape(1)))]

    return infer


for _op, _doc in {"And": "a and b", "Or": "a or b", "Xor": "a xor b"}.items():
    op_schema(_op, inputs=2, since_version=7, doc=_doc + " (bool, numpy broadcasting)")(
        _binary(frozenset({"bool"}))
    )
for _op, _doc in {"BitwiseAnd": "a & b", "BitwiseOr": "a | b", "BitwiseXor": "a ^ b"}.items():
    op_schema(_op, inputs=2, since_version=18, doc=_doc + " (integers, numpy broadcasting)")(
        _binary(INT_DTYPES)
    )
for _op, _doc in {"GreaterOrEqual": "a >= b", "LessOrEqual": "a <= b"}.items():
    op_schema(_op, inputs=2, since_version=16, doc=_doc + " -> bool (numpy broadcasting)")(
        _binary(NUMERIC | {"bool"}, "bool")
    )

op_schema("Mod", inputs=2, attrs=[Attr("fmod", "int", 0)], since_version=13,
          doc="remainder: sign of the divisor (fmod=0, integers) or of the dividend (fmod=1)")(
    _binary(NUMERIC)
)


@op_schema("BitShift", inputs=2, attrs=[Attr("direction", "string")], since_version=28,
           doc="x << y (direction LEFT) or x >> y (RIGHT, arithmetic for signed x); shifts "
               "outside [0, bits) give 0 (or -1 for negative x shifted right)")
def _bit_shift(ctx: InferenceContext) -> list[TensorType]:
    if ctx.attr("direction") not in ("LEFT", "RIGHT"):
        raise ShapeError(f"BitShift direction must be LEFT or RIGHT, got "
                         f"{ctx.attr('direction')!r}")
    return _binary(INT_DTYPES)(ctx)


def _variadic(ctx: InferenceContext) -> list[TensorType]:
    indices = range(ctx.num_inputs)
    dtype = ctx.require_same_dtype(*indices)
    ctx.require_dtype(0, NUMERIC)
    return [TensorType(dtype, broadcast_shapes(*(ctx.shape(i) for i in indices)))]


for _op, _doc in {"Min": "elementwise minimum", "Max": "elementwise maximum",
                  "Mean": "elementwise mean", "Sum": "elementwise sum"}.items():
    op_schema(_op, inputs=VARIADIC, since_version=13,
              doc=_doc + " of all inputs (numpy broadcasting)")(_variadic)


@op_schema("CastLike", inputs=2, attrs=[Attr("saturate", "int", 1)], since_version=19,
           doc="input cast to the dtype of target_type (whose values are ignored)")
def _cast_like(ctx: InferenceContext) -> list[TensorType]:
    return [TensorType(ctx.dtype(1), ctx.shape(0))]


@op_schema("BitCast", attrs=[Attr("to", "int")], since_version=26,
           doc="the input's bits reinterpreted as the dtype whose ONNX code is `to` (same width)")
def _bit_cast(ctx: InferenceContext) -> list[TensorType]:
    target = from_onnx(ctx.attr("to"))
    source = ctx.dtype(0)
    if source is not None and to_numpy(source).itemsize != to_numpy(target).itemsize:
        raise ShapeError(f"BitCast from {source} to {target}: the widths differ")
    return [TensorType(target, ctx.shape(0))]
