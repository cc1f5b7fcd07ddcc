"""Schemas of the loss ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import format_shape
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

REDUCTIONS = ("none", "sum", "mean")
_LOSS_ATTRS = [Attr("ignore_index", "int", None), Attr("reduction", "string", "mean")]


def _loss_type(ctx: InferenceContext) -> TensorType:
    """Check scores [N, C, d...] against target [N, d...]; the loss type per reduction."""
    if ctx.attr("reduction") not in REDUCTIONS:
        raise ShapeError(f"{ctx.schema.op_type} reduction must be one of "
                         f"{', '.join(REDUCTIONS)}, got {ctx.attr('reduction')!r}")
    ctx.require_dtype(0, FLOAT_DTYPES)
    ctx.require_dtype(1, {"int32", "int64"}, f"{ctx.schema.op_type} target")
    if ctx.has_input(2):
        ctx.require_same_dtype(0, 2)
    x, target = ctx.shape(0), ctx.shape(1)
    if x is not None and len(x) < 2:
        raise ShapeError(f"{ctx.schema.op_type} input must be [N, C, ...], got {format_shape(x)}")
    if x is not None and target is not None and len(target) != len(x) - 1:
        raise ShapeError(f"{ctx.schema.op_type} target {format_shape(target)} must be the input "
                         f"{format_shape(x)} without its class axis")
    if ctx.attr("reduction") != "none":
        return TensorType(ctx.dtype(0), ())
    if target is None and x is not None:
        target = (x[0],) + tuple(x[2:])
    return TensorType(ctx.dtype(0), target)


@op_schema("NegativeLogLikelihoodLoss", inputs=(2, 3), attrs=_LOSS_ATTRS, since_version=22,
           doc="-input[n, target[n], d...] * weight[target], reduced (none/sum/mean)")
def _nll_loss(ctx: InferenceContext) -> list[TensorType]:
    return [_loss_type(ctx)]


@op_schema("SoftmaxCrossEntropyLoss", inputs=(2, 3), outputs=(1, 2), attrs=_LOSS_ATTRS,
           since_version=13,
           doc="NegativeLogLikelihoodLoss of LogSoftmax(scores, axis=1); optional log_prob")
def _softmax_cross_entropy_loss(ctx: InferenceContext) -> list[TensorType]:
    return [_loss_type(ctx), ctx.input_type(0)]
