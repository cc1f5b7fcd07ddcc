"""Schemas of the network ops: Gemm, MatMul, Conv, pooling, normalization, Softmax."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import (
    Dim,
    Shape,
    broadcast_shapes,
    format_shape,
    pool_output_dim,
    resolve_pads,
)
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


def _dims_match(a: Dim, b: Dim) -> bool:
    """False only when both dims are ints that differ (symbols may stand for anything)."""
    return not (isinstance(a, int) and isinstance(b, int) and a != b)


def _require_rank(ctx: InferenceContext, i: int, ranks: tuple[int, ...], what: str) -> Shape | None:
    shape = ctx.shape(i)
    if shape is not None and len(shape) not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ShapeError(f"{what} must have rank {expected}, got {format_shape(shape)}")
    return shape


@op_schema(
    "Gemm",
    inputs=(2, 3),
    attrs=[
        Attr("alpha", "float", 1.0),
        Attr("beta", "float", 1.0),
        Attr("transA", "int", 0),
        Attr("transB", "int", 0),
    ],
    since_version=13,
    doc="alpha * A' @ B' + beta * C, with A' = A.T if transA, B' = B.T if transB",
)
def _gemm(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(0, 1, 2)
    ctx.require_dtype(0, FLOAT_DTYPES | {"int32", "int64", "uint32", "uint64"})
    a = _require_rank(ctx, 0, (2,), "Gemm input A")
    b = _require_rank(ctx, 1, (2,), "Gemm input B")
    m = k_a = k_b = n = None
    if a is not None:
        m, k_a = (a[1], a[0]) if ctx.attr("transA") else (a[0], a[1])
    if b is not None:
        k_b, n = (b[1], b[0]) if ctx.attr("transB") else (b[0], b[1])
    if not _dims_match(k_a, k_b):
        raise ShapeError(
            f"Gemm inner dims differ: A {format_shape(a)} (transA={ctx.attr('transA')}) "
            f"and B {format_shape(b)} (transB={ctx.attr('transB')})"
        )
    if ctx.has_input(2) and ctx.shape(2) is not None:
        # C must broadcast to (M, N) unidirectionally.
        c = ctx.shape(2)
        if len(c) > 2:
            raise ShapeError(f"Gemm input C {format_shape(c)} must have rank <= 2")
        full = (1,) * (2 - len(c)) + tuple(c)
        for got, want in zip(full, (m, n), strict=True):
            if got != 1 and not _dims_match(got, want):
                raise ShapeError(
                    f"Gemm input C {format_shape(c)} does not broadcast to "
                    f"{format_shape((m, n))}"
                )
    return [TensorType(dtype, (m, n))]


@op_schema("MatMul", inputs=2, since_version=13, doc="numpy.matmul semantics")
def _matmul(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(0, 1)
    a, b = ctx.shape(0), ctx.shape(1)
    if a is None or b is None:
        return [TensorType(dtype, None)]
    if len(a) == 0 or len(b) == 0:
        raise ShapeError("MatMul inputs must have rank >= 1")
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if not _dims_match(a2[-1], b2[-2]):
        raise ShapeError(
            f"MatMul inner dims differ: {format_shape(a)} @ {format_shape(b)}"
        )
    batch = broadcast_shapes(a2[:-2], b2[:-2])
    out = tuple(batch) + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return [TensorType(dtype, out)]


def _window_attrs(ctx: InferenceContext, n_spatial: int) -> tuple[list[int], list[int]]:
    strides = list(ctx.attr("strides") or [1] * n_spatial)
    dilations = list(ctx.attr("dilations") or [1] * n_spatial)
    for name, values in (("strides", strides), ("dilations", dilations)):
        if len(values) != n_spatial:
            raise ShapeError(f"{name} has {len(values)} values, expected {n_spatial}")
        if any(v < 1 for v in values):
            raise ShapeError(f"{name} must be >= 1, got {values}")
    return strides, dilations


def _windowed_output(
    ctx: InferenceContext, x: Shape, kernel: list[int], channels: Dim, ceil_mode: bool = False
) -> Shape:
    n_spatial = len(x) - 2
    if len(kernel) != n_spatial:
        raise ShapeError(
            f"kernel_shape {kernel} has {len(kernel)} dims but the input {format_shape(x)} "
            f"has {n_spatial} spatial dims"
        )
    strides, dilations = _window_attrs(ctx, n_spatial)
    spatial = x[2:]
    pads = resolve_pads(ctx.attr("auto_pad"), ctx.attr("pads"), spatial, kernel, strides, dilations)
    if pads is None:
        if ctx.attr("auto_pad") in ("SAME_UPPER", "SAME_LOWER"):
            out_spatial = tuple(
                -(-d // s) if isinstance(d, int) else None
                for d, s in zip(spatial, strides, strict=True)
            )
            return (x[0], channels) + out_spatial
        return (x[0], channels) + (None,) * n_spatial
    out_spatial = tuple(
        pool_output_dim(spatial[i], kernel[i], strides[i], pads[i][0], pads[i][1],
                        dilations[i], ceil_mode)
        for i in range(n_spatial)
    )
    return (x[0], channels) + out_spatial


_CONV_ATTRS = [
    Attr("auto_pad", "string", "NOTSET"),
    Attr("dilations", "ints", None),
    Attr("group", "int", 1),
    Attr("kernel_shape", "ints", None),
    Attr("pads", "ints", None),
    Attr("strides", "ints", None),
]


@op_schema(
    "Conv",
    inputs=(2, 3),
    attrs=_CONV_ATTRS,
    since_version=11,
    doc="N-d convolution, NCHW; weight [M, C/group, k...]",
)
def _conv(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(0, 1, 2)
    ctx.require_dtype(0, FLOAT_DTYPES)
    x, w = ctx.shape(0), ctx.shape(1)
    if x is not None and len(x) < 3:
        raise ShapeError(f"Conv input must be [N, C, spatial...], got {format_shape(x)}")
    if w is None:
        return [TensorType(dtype, None if x is None else (x[0],) + (None,) * (len(x) - 1))]
    if x is not None and len(w) != len(x):
        raise ShapeError(f"Conv weight {format_shape(w)} and input {format_shape(x)} ranks differ")
    group = int(ctx.attr("group"))
    if group < 1:
        raise ShapeError(f"group must be >= 1, got {group}")
    if isinstance(w[0], int) and w[0] % group:
        raise ShapeError(f"Conv output channels {w[0]} are not divisible by group {group}")
    if x is not None and isinstance(x[1], int) and isinstance(w[1], int) and x[1] != w[1] * group:
        raise ShapeError(
            f"Conv input has {x[1]} channels but weight {format_shape(w)} with group {group} "
            f"expects {w[1] * group}"
        )
    if ctx.has_input(2) and ctx.shape(2) is not None and not (
        len(ctx.shape(2)) == 1 and _dims_match(ctx.shape(2)[0], w[0])
    ):
        raise ShapeError(f"Conv bias {format_shape(ctx.shape(2))} must be [{w[0]}]")
    kernel = list(ctx.attr("kernel_shape") or w[2:])
    if list(w[2:]) != kernel and all(isinstance(d, int) for d in w[2:]):
        raise ShapeError(f"kernel_shape {kernel} does not match weight {format_shape(w)}")
    if x is None:
        return [TensorType(dtype, None)]
    if not all(isinstance(k, int) for k in kernel):
        return [TensorType(dtype, (x[0], w[0]) + (None,) * (len(x) - 2))]
    return [TensorType(dtype, _windowed_output(ctx, x, kernel, w[0]))]


def _pool(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES | {"int8", "uint8"})
    x = ctx.shape(0)
    kernel = list(ctx.attr("kernel_shape"))
    if x is None:
        return [TensorType(ctx.dtype(0), None), TensorType("int64", None)]
    if len(x) < 3:
        raise ShapeError(f"{ctx.schema.op_type} input must be [N, C, spatial...], got "
                         f"{format_shape(x)}")
    out = _windowed_output(ctx, x, kernel, x[1], bool(ctx.attr("ceil_mode")))
    return [TensorType(ctx.dtype(0), out), TensorType("int64", out)]


_POOL_ATTRS = [
    Attr("auto_pad", "string", "NOTSET"),
    Attr("ceil_mode", "int", 0),
    Attr("dilations", "ints", None),
    Attr("kernel_shape", "ints"),
    Attr("pads", "ints", None),
    Attr("strides", "ints", None),
]

op_schema(
    "MaxPool",
    outputs=(1, 2),
    attrs=_POOL_ATTRS + [Attr("storage_order", "int", 0)],
    since_version=12,
    doc="max over sliding windows; optional Indices output (int64, flat NCHW)",
)(_pool)
op_schema(
    "AveragePool",
    attrs=_POOL_ATTRS + [Attr("count_include_pad", "int", 0)],
    since_version=19,
    doc="mean over sliding windows",
)(_pool)


@op_schema("GlobalAveragePool", doc="mean over all spatial dims, kept as size 1")
def _global_average_pool(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    if len(x) < 3:
        raise ShapeError(f"GlobalAveragePool input must be [N, C, spatial...], got "
                         f"{format_shape(x)}")
    return [TensorType(ctx.dtype(0), (x[0], x[1]) + (1,) * (len(x) - 2))]


@op_schema(
    "BatchNormalization",
    inputs=5,
    attrs=[
        Attr("epsilon", "float", 1e-5),
        Attr("momentum", "float", 0.9),
        Attr("training_mode", "int", 0),
    ],
    since_version=15,
    doc="inference form: (x - mean) / sqrt(var + epsilon) * scale + bias, per channel",
)
def _batch_norm(ctx: InferenceContext) -> list[TensorType]:
    if ctx.attr("training_mode"):
        raise ShapeError("BatchNormalization with training_mode=1 is not supported (inference IR)")
    ctx.require_dtype(0, FLOAT_DTYPES)
    x = ctx.shape(0)
    if x is not None and len(x) < 2:
        raise ShapeError(f"BatchNormalization input must be [N, C, ...], got {format_shape(x)}")
    for i, name in enumerate(("scale", "bias", "mean", "var"), start=1):
        p = ctx.shape(i)
        if p is not None and (len(p) != 1 or (x is not None and not _dims_match(p[0], x[1]))):
            channels = "C" if x is None else x[1]
            raise ShapeError(f"BatchNormalization {name} {format_shape(p)} must be [{channels}]")
    return [ctx.input_type(0)]


@op_schema(
    "LayerNormalization",
    inputs=(2, 3),
    outputs=(1, 3),
    attrs=[Attr("axis", "int", -1), Attr("epsilon", "float", 1e-5), Attr("stash_type", "int", 1)],
    since_version=17,
    doc="normalize over dims axis..rank-1, then * scale + bias; optional Mean, InvStdDev",
)
def _layer_norm(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(0, 1, 2)
    ctx.require_dtype(0, FLOAT_DTYPES)
    x = ctx.shape(0)
    if x is None:
        return [TensorType(dtype, None), TensorType("float32", None), TensorType("float32", None)]
    axis = ctx.axis("axis", len(x))
    normalized = x[axis:]
    for i in (1, 2):
        if ctx.has_input(i) and ctx.shape(i) is not None:
            try:
                b = broadcast_shapes(normalized, ctx.shape(i))
            except ShapeError:
                b = None
            if b is None or len(b) != len(normalized) or not all(
                _dims_match(p, q) for p, q in zip(b, normalized, strict=True)
            ):
                raise ShapeError(
                    f"LayerNormalization input {i} {format_shape(ctx.shape(i))} does not "
                    f"broadcast to the normalized dims {format_shape(normalized)}"
                )
    stats = tuple(x[:axis]) + (1,) * (len(x) - axis)
    return [TensorType(dtype, x), TensorType("float32", stats), TensorType("float32", stats)]


def _softmax(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    x = ctx.shape(0)
    if x is not None:
        ctx.axis("axis", len(x))
    return [ctx.input_type(0)]


op_schema("Softmax", attrs=[Attr("axis", "int", -1)], since_version=13,
          doc="exp(x) / sum(exp(x)) along axis")(_softmax)
op_schema("LogSoftmax", attrs=[Attr("axis", "int", -1)], since_version=13,
          doc="log of Softmax along axis")(_softmax)
