"""Schemas of edgefw's internal float fused ops (domain ``"edgefw"``).

Runtime-only passes (see :func:`~edgefw.ir.passes.passes_for_level` with
``integer_kernels=True``) rewrite the session's copy of a graph into these; exporters write
the ONNX ops they came from and never see them.

=========  ======================================================================
op         computes
=========  ======================================================================
``Dense``  ``x[..., K] @ w[K, N] + b[N]`` for any rank of ``x`` (ONNX's Gemm is 2-D
           only): a transformer's projection as one kernel, MatMul + Add in ONNX
=========  ======================================================================

    >>> from edgefw.ir import TensorType, infer_types
    >>> infer_types("Dense", [TensorType("float32", ("batch", 16, 64)),
    ...              TensorType("float32", (64, 192)), TensorType("float32", (192,))],
    ...             [None] * 3, {}, domain="edgefw")
    [TensorType(dtype='float32', shape=('batch', 16, 192))]
"""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import format_shape
from edgefw.ir.schema.registry import InferenceContext, TensorType, op_schema

DOMAIN = "edgefw"


@op_schema("Dense", domain=DOMAIN, inputs=3,
           doc="x[..., K] @ w[K, N] + b[N] (MatMul + bias Add, any rank of x)")
def _dense(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_dtype(0, FLOAT_DTYPES, "input")
    ctx.require_same_dtype(0, 1, 2)
    x, w, b = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if w is not None and len(w) != 2:
        raise ShapeError(f"Dense weight must be [K, N], got {format_shape(w)}")
    if x is not None and len(x) < 1:
        raise ShapeError(f"Dense input must have at least one axis, got {format_shape(x)}")
    n = w[1] if w is not None else None
    if b is not None and (len(b) != 1 or (isinstance(b[0], int) and isinstance(n, int)
                                          and b[0] != n)):
        raise ShapeError(f"Dense bias must be [{n}], got {format_shape(b)}")
    if x is not None and w is not None and isinstance(x[-1], int) and isinstance(w[0], int) \
            and x[-1] != w[0]:
        raise ShapeError(f"Dense: input {format_shape(x)} has K={x[-1]} but weight "
                         f"{format_shape(w)} has K={w[0]}")
    return [TensorType(dtype, None if x is None else tuple(x[:-1]) + (n,))]
