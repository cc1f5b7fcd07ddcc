"""Schemas of GlobalMaxPool, LpPool and MaxUnpool (MaxPool/AveragePool/GlobalAveragePool
are in nn.py)."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import format_shape
from edgefw.ir.schema.nn import _POOL_ATTRS, _pool
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


@op_schema("GlobalMaxPool", since_version=1, doc="max over all spatial dims, kept as size 1")
def _global_max_pool(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if len(x) < 3:
        raise ShapeError(f"GlobalMaxPool input must be [N, C, spatial...], got {format_shape(x)}")
    return [TensorType(ctx.dtype(0), (x[0], x[1]) + (1,) * (len(x) - 2))]


@op_schema("LpPool", attrs=_POOL_ATTRS + [Attr("p", "int", 2)], since_version=18,
           doc="(sum of |x|^p over sliding windows)^(1/p); padding counts as 0")
def _lp_pool(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    if int(ctx.attr("p")) < 1:
        raise ShapeError(f"LpPool p must be positive, got {ctx.attr('p')}")
    return _pool(ctx)[:1]


def max_unpool_shape(spatial: list[int], kernel: list[int], strides: list[int] | None,
                     pads: list[int] | None) -> list[int]:
    """The spatial size MaxUnpool infers: (in - 1) * stride - pad_begin - pad_end + kernel."""
    n = len(kernel)
    strides = strides or [1] * n
    pads = pads or [0] * (2 * n)
    return [(spatial[i] - 1) * strides[i] - pads[i] - pads[i + n] + kernel[i] for i in range(n)]


@op_schema("MaxUnpool", inputs=(2, 3),
           attrs=[Attr("kernel_shape", "ints"), Attr("pads", "ints", None),
                  Attr("strides", "ints", None)], since_version=11,
           doc="scatter MaxPool's values back to their (flat NCHW) indices, zeros elsewhere")
def _max_unpool(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, {"int64"}, "MaxUnpool indices")
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if ctx.has_input(2):
        given = ctx.const_ints(2)
        return [TensorType(ctx.dtype(0), tuple(given) if given is not None else
                           (None,) * len(x))]
    if not all(isinstance(d, int) for d in x[2:]):
        return [TensorType(ctx.dtype(0), (x[0], x[1]) + (None,) * (len(x) - 2))]
    spatial = max_unpool_shape(list(x[2:]), list(ctx.attr("kernel_shape")), ctx.attr("strides"),
                               ctx.attr("pads"))
    return [TensorType(ctx.dtype(0), (x[0], x[1]) + tuple(spatial))]
