"""Schemas of the recurrent layers RNN, GRU and LSTM (ONNX gate layouts: GRU z/r/h, LSTM
i/o/f/c; layout 0 = [seq, batch, features], 1 = [batch, seq, features])."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import format_shape
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}
RECURRENT_ACTIVATIONS = ("Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu",
                         "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus")
_COMMON = [Attr("activation_alpha", "floats", None), Attr("activation_beta", "floats", None),
           Attr("activations", "strings", None), Attr("clip", "float", None),
           Attr("direction", "string", "forward"), Attr("hidden_size", "int", None),
           Attr("layout", "int", 0)]


def _recurrent(ctx: InferenceContext) -> list[TensorType]:
    what = ctx.schema.op_type
    direction = ctx.attr("direction")
    if direction not in DIRECTIONS:
        raise ShapeError(f"{what} direction must be forward, reverse or bidirectional, got "
                         f"{direction!r}")
    for name in ctx.attr("activations") or []:
        if name not in RECURRENT_ACTIVATIONS:
            raise ShapeError(f"{what} activation {name!r} is not one of "
                             f"{', '.join(RECURRENT_ACTIVATIONS)}")
    ctx.require_dtype(0, FLOAT_DTYPES)
    dtype = ctx.require_same_dtype(0, 1, 2)
    x, w = ctx.shape(0), ctx.shape(1)
    if x is not None and len(x) != 3:
        raise ShapeError(f"{what} input must be 3-D, got {format_shape(x)}")
    dirs = DIRECTIONS[direction]
    hidden = ctx.attr("hidden_size")
    if hidden is None and w is not None and isinstance(w[1], int):
        gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[what]
        hidden = w[1] // gates
    if x is None:
        seq = batch = None
    else:
        seq, batch = (x[1], x[0]) if ctx.attr("layout") else (x[0], x[1])
    if ctx.attr("layout"):
        y, state = (batch, seq, dirs, hidden), (batch, dirs, hidden)
    else:
        y, state = (seq, dirs, batch, hidden), (dirs, batch, hidden)
    return [TensorType(dtype, y), TensorType(dtype, state), TensorType(dtype, state)]


op_schema("RNN", inputs=(3, 6), outputs=(0, 2), attrs=_COMMON, since_version=22,
          doc="Elman RNN: H = f(X W^T + H R^T + Wb + Rb)")(_recurrent)
op_schema("GRU", inputs=(3, 6), outputs=(0, 2),
          attrs=_COMMON + [Attr("linear_before_reset", "int", 0)], since_version=22,
          doc="GRU, gates z, r, h")(_recurrent)
op_schema("LSTM", inputs=(3, 8), outputs=(0, 3),
          attrs=_COMMON + [Attr("input_forget", "int", 0)], since_version=22,
          doc="LSTM, gates i, o, f, c; optional peepholes P")(_recurrent)
