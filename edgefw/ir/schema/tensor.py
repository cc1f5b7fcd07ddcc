"""Schemas of data-movement ops: Reshape, Flatten, Transpose, Squeeze/Unsqueeze, Concat,
Split, Slice, Gather, Pad, Shape, Expand, Constant."""

from __future__ import annotations

import numpy as np

from edgefw.errors import DTypeError, ShapeError
from edgefw.ir.dtypes import from_numpy
from edgefw.ir.schema.dims import (
    Dim,
    Product,
    Shape,
    broadcast_shapes,
    format_shape,
    normalize_axis,
    product_dim,
)
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema

_INT_INDEX = {"int32", "int64"}


def _unknown_dims(rank: int | None) -> Shape | None:
    return None if rank is None else (None,) * rank


def _const_vector_length(ctx: InferenceContext, i: int) -> int | None:
    """Length of 1-D input ``i`` when its shape is static (e.g. a non-constant shape input)."""
    shape = ctx.shape(i)
    if shape is not None and len(shape) == 1 and isinstance(shape[0], int):
        return shape[0]
    return None


@op_schema("Reshape", inputs=2, attrs=[Attr("allowzero", "int", 0)], since_version=14,
           doc="reshape to the shape input; 0 copies the input dim, -1 is inferred")
def _reshape(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, {"int64"}, "Reshape shape")
    dtype, x = ctx.dtype(0), ctx.shape(0)
    target = ctx.const_ints(1)
    if target is None:
        return [TensorType(dtype, _unknown_dims(_const_vector_length(ctx, 1)))]
    if target.count(-1) > 1:
        raise ShapeError(f"Reshape shape {target} has more than one -1")
    out: list[Dim] = []
    for i, d in enumerate(target):
        if d == 0 and not ctx.attr("allowzero"):
            if x is None or i >= len(x):
                if x is None:
                    out.append(None)
                    continue
                raise ShapeError(f"Reshape shape {target}: 0 at index {i} but input is "
                                 f"{format_shape(x)}")
            out.append(x[i])
        elif d < -1:
            raise ShapeError(f"Reshape shape {target} has invalid dim {d}")
        else:
            out.append(d)
    if x is None:
        return [TensorType(dtype, tuple(None if d == -1 else d for d in out))]
    total = Product.of(x)
    if -1 in out:
        known = Product.of(d for d in out if d != -1)
        inferred = product_dim(total / known)
        if known.known and not known.symbols and known.coef == 0:
            raise ShapeError(f"Reshape shape {target} with -1 has a zero dim")
        if total.known and not total.symbols and known.known and not known.symbols \
                and total.coef % known.coef:
            raise ShapeError(f"cannot reshape {format_shape(x)} ({total.coef} elements) "
                             f"to {target}")
        out[out.index(-1)] = inferred
    elif total.known and not total.symbols:
        new = Product.of(out)
        if new.known and not new.symbols and new.coef != total.coef:
            raise ShapeError(f"cannot reshape {format_shape(x)} ({total.coef} elements) to "
                             f"{target} ({new.coef} elements)")
    return [TensorType(dtype, tuple(out))]


@op_schema("Flatten", attrs=[Attr("axis", "int", 1)], since_version=13,
           doc="2-D view: [prod(dims[:axis]), prod(dims[axis:])]")
def _flatten(ctx: InferenceContext) -> list[TensorType]:
    x = ctx.shape(0)
    if x is None:
        return [TensorType(ctx.dtype(0), (None, None))]
    axis = int(ctx.attr("axis"))
    if not -len(x) <= axis <= len(x):
        raise ShapeError(f"Flatten axis {axis} is out of range for rank {len(x)}")
    axis = axis + len(x) if axis < 0 else axis
    outer = product_dim(Product.of(x[:axis]))
    inner = product_dim(Product.of(x[axis:]))
    return [TensorType(ctx.dtype(0), (outer, inner))]


@op_schema("Transpose", attrs=[Attr("perm", "ints", None)], since_version=13,
           doc="permute dims (default: reverse them)")
def _transpose(ctx: InferenceContext) -> list[TensorType]:
    x = ctx.shape(0)
    perm = ctx.attr("perm")
    if x is None:
        return [TensorType(ctx.dtype(0), _unknown_dims(None if perm is None else len(perm)))]
    perm = list(perm) if perm is not None else list(range(len(x)))[::-1]
    if sorted(perm) != list(range(len(x))):
        raise ShapeError(f"perm {perm} is not a permutation of the {len(x)} dims of "
                         f"{format_shape(x)}")
    return [TensorType(ctx.dtype(0), tuple(x[p] for p in perm))]


@op_schema("Squeeze", inputs=(1, 2), since_version=13,
           doc="remove the size-1 dims listed in the axes input (all size-1 dims if absent)")
def _squeeze(ctx: InferenceContext) -> list[TensorType]:
    x = ctx.shape(0)
    if ctx.has_input(1):
        axes = ctx.const_ints(1)
        if axes is None or x is None:
            rank = None if x is None or _const_vector_length(ctx, 1) is None \
                else len(x) - _const_vector_length(ctx, 1)
            return [TensorType(ctx.dtype(0), _unknown_dims(rank))]
        axes = {normalize_axis(a, len(x), "Squeeze axis") for a in axes}
        for a in axes:
            if isinstance(x[a], int) and x[a] != 1:
                raise ShapeError(f"cannot squeeze axis {a} of {format_shape(x)}: size is not 1")
        return [TensorType(ctx.dtype(0), tuple(d for i, d in enumerate(x) if i not in axes))]
    if x is None or not all(isinstance(d, int) for d in x):
        return [TensorType(ctx.dtype(0), None)]
    return [TensorType(ctx.dtype(0), tuple(d for d in x if d != 1))]


@op_schema("Unsqueeze", inputs=2, since_version=13,
           doc="insert size-1 dims at the output positions listed in the axes input")
def _unsqueeze(ctx: InferenceContext) -> list[TensorType]:
    x = ctx.shape(0)
    axes = ctx.const_ints(1)
    if axes is None or x is None:
        n_axes = len(axes) if axes is not None else _const_vector_length(ctx, 1)
        rank = None if x is None or n_axes is None else len(x) + n_axes
        return [TensorType(ctx.dtype(0), _unknown_dims(rank))]
    rank = len(x) + len(axes)
    axes_set = {normalize_axis(a, rank, "Unsqueeze axis") for a in axes}
    if len(axes_set) != len(axes):
        raise ShapeError(f"Unsqueeze axes {axes} repeat an axis")
    rest = iter(x)
    out = tuple(1 if i in axes_set else next(rest) for i in range(rank))
    return [TensorType(ctx.dtype(0), out)]


def _merge_dims(a: Dim, b: Dim, what: str) -> Dim:
    if a == b:
        return a
    if isinstance(a, int) and isinstance(b, int):
        raise ShapeError(what)
    return a if isinstance(a, int) else b if isinstance(b, int) else None


@op_schema("Concat", inputs=(1, 2**31 - 1), attrs=[Attr("axis", "int")], since_version=13,
           doc="join along axis; the other dims must match")
def _concat(ctx: InferenceContext) -> list[TensorType]:
    dtype = ctx.require_same_dtype(*range(ctx.num_inputs))
    shapes = [ctx.shape(i) for i in range(ctx.num_inputs)]
    known = [s for s in shapes if s is not None]
    if not known:
        return [TensorType(dtype, None)]
    rank = len(known[0])
    if any(len(s) != rank for s in known):
        raise ShapeError("Concat inputs have different ranks: "
                         + ", ".join(format_shape(s) for s in shapes))
    axis = ctx.axis("axis", rank)
    if len(known) != len(shapes):
        return [TensorType(dtype, tuple(None if i == axis else d
                                        for i, d in enumerate(known[0])))]
    out = list(shapes[0])
    for s in shapes[1:]:
        for i in range(rank):
            if i == axis:
                a, b = out[i], s[i]
                out[i] = a + b if isinstance(a, int) and isinstance(b, int) else None
            else:
                out[i] = _merge_dims(out[i], s[i], "Concat inputs differ off the concat axis: "
                                     + ", ".join(format_shape(x) for x in shapes))
    return [TensorType(dtype, tuple(out))]


@op_schema("Split", inputs=(1, 2), outputs=(1, 2**31 - 1),
           attrs=[Attr("axis", "int", 0), Attr("num_outputs", "int", None)], since_version=18,
           doc="split along axis by the sizes in the split input, or into equal parts")
def _split(ctx: InferenceContext) -> list[TensorType]:
    dtype, x = ctx.dtype(0), ctx.shape(0)
    n = ctx.num_outputs
    if ctx.attr("num_outputs") is not None and int(ctx.attr("num_outputs")) != n:
        raise ShapeError(f"Split num_outputs={ctx.attr('num_outputs')} but the node has {n} "
                         "outputs")
    if x is None:
        return [TensorType(dtype, None)] * n
    axis = ctx.axis("axis", len(x))
    dim = x[axis]
    sizes: list[Dim]
    if ctx.has_input(1):
        split = ctx.const_ints(1)
        if split is None:
            sizes = [None] * n
        else:
            if len(split) != n:
                raise ShapeError(f"Split sizes {split} give {len(split)} parts, node has {n} "
                                 "outputs")
            if isinstance(dim, int) and sum(split) != dim:
                raise ShapeError(f"Split sizes {split} sum to {sum(split)}, axis {axis} of "
                                 f"{format_shape(x)} has {dim}")
            sizes = list(split)
    elif isinstance(dim, int):
        chunk = -(-dim // n)
        sizes = [min(chunk, max(dim - i * chunk, 0)) for i in range(n)]
        if any(s <= 0 for s in sizes):
            raise ShapeError(f"cannot split axis {axis} of size {dim} into {n} parts")
    else:
        sizes = [None] * n
    return [TensorType(dtype, tuple(s if i == axis else d for i, d in enumerate(x)))
            for s in sizes]


def slice_bounds(start: int, end: int, step: int, dim: int) -> tuple[int, int]:
    """ONNX Slice's clamped (start, end) on an axis of length ``dim``; end may be -1 (before
    index 0) when stepping backwards."""
    if step == 0:
        raise ShapeError("Slice step must not be 0")
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        return min(max(start, 0), dim), min(max(end, 0), dim)
    return min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)


def slice_length(start: int, end: int, step: int) -> int:
    return max(0, -(-(end - start) // step)) if step > 0 else max(0, -(-(start - end) // -step))


@op_schema("Slice", inputs=(3, 5), since_version=13,
           doc="data[starts:ends:steps] on the listed axes (all inputs, ONNX clamping)")
def _slice(ctx: InferenceContext) -> list[TensorType]:
    dtype, x = ctx.dtype(0), ctx.shape(0)
    starts, ends = ctx.const_ints(1), ctx.const_ints(2)
    axes = ctx.const_ints(3) if ctx.has_input(3) else None
    steps = ctx.const_ints(4) if ctx.has_input(4) else None
    if x is None:
        return [TensorType(dtype, None)]
    if starts is None or ends is None or (ctx.has_input(3) and axes is None) or (
        ctx.has_input(4) and steps is None
    ):
        return [TensorType(dtype, (None,) * len(x))]
    if axes is None:
        axes = list(range(len(starts)))
    steps = steps or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ShapeError(f"Slice starts {starts}, ends {ends}, axes {axes}, steps {steps} "
                         "differ in length")
    out = list(x)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        a = normalize_axis(axis, len(x), "Slice axis")
        dim = x[a]
        if isinstance(dim, int):
            lo, hi = slice_bounds(start, end, step, dim)
            out[a] = slice_length(lo, hi, step)
        elif not (start == 0 and step == 1 and end >= 2**31 - 1):
            out[a] = None
    return [TensorType(dtype, tuple(out))]


@op_schema("Gather", inputs=2, attrs=[Attr("axis", "int", 0)], since_version=13,
           doc="take indices along axis (negative indices count from the end)")
def _gather(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, _INT_INDEX, "Gather indices")
    x, idx = ctx.shape(0), ctx.shape(1)
    if x is None or idx is None:
        return [TensorType(ctx.dtype(0), None)]
    axis = ctx.axis("axis", len(x))
    return [TensorType(ctx.dtype(0), tuple(x[:axis]) + tuple(idx) + tuple(x[axis + 1:]))]


PAD_MODES = ("constant", "reflect", "edge", "wrap")


@op_schema("Pad", inputs=(2, 4), attrs=[Attr("mode", "string", "constant")], since_version=18,
           doc="pad by the pads input [begin..., end...] (constant, reflect, edge, wrap)")
def _pad(ctx: InferenceContext) -> list[TensorType]:
    if ctx.attr("mode") not in PAD_MODES:
        raise ShapeError(f"Pad mode {ctx.attr('mode')!r} is not one of {', '.join(PAD_MODES)}")
    ctx.require_dtype(1, {"int64"}, "Pad pads")
    dtype, x = ctx.dtype(0), ctx.shape(0)
    if ctx.has_input(2) and ctx.dtype(2) not in (None, dtype):
        raise DTypeError(f"Pad constant_value has dtype {ctx.dtype(2)}, data has {dtype}")
    pads = ctx.const_ints(1)
    if x is None:
        return [TensorType(dtype, None)]
    axes = list(range(len(x)))
    if ctx.has_input(3):
        given = ctx.const_ints(3)
        if given is None:
            return [TensorType(dtype, (None,) * len(x))]
        axes = [normalize_axis(a, len(x), "Pad axis") for a in given]
    if pads is None:
        return [TensorType(dtype, (None,) * len(x))]
    if len(pads) != 2 * len(axes):
        raise ShapeError(f"Pad pads has {len(pads)} values, expected {2 * len(axes)} for "
                         f"{format_shape(x)}")
    out = list(x)
    for j, a in enumerate(axes):
        begin, end = pads[j], pads[j + len(axes)]
        if isinstance(x[a], int):
            out[a] = x[a] + begin + end
            if out[a] < 0:
                raise ShapeError(f"Pad {pads} crops axis {a} of {format_shape(x)} below zero")
        elif begin or end:
            out[a] = None
    return [TensorType(dtype, tuple(out))]


@op_schema("Shape", attrs=[Attr("start", "int", 0), Attr("end", "int", None)], since_version=15,
           doc="the input's shape as an int64 vector (optionally dims start:end)")
def _shape(ctx: InferenceContext) -> list[TensorType]:
    x = ctx.shape(0)
    if x is None:
        return [TensorType("int64", (None,))]
    start, end = shape_op_range(len(x), ctx.attr("start"), ctx.attr("end"))
    return [TensorType("int64", (max(end - start, 0),))]


def shape_op_range(rank: int, start: int, end: int | None) -> tuple[int, int]:
    """Clamped [start, end) of the Shape op."""
    end = rank if end is None else end
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return start, end


@op_schema("Expand", inputs=2, since_version=13,
           doc="broadcast the input to the shape input (numpy broadcasting both ways)")
def _expand(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(1, {"int64"}, "Expand shape")
    target = ctx.const_ints(1)
    if target is None:
        n = _const_vector_length(ctx, 1)
        rank = None if n is None or ctx.rank(0) is None else max(n, ctx.rank(0))
        return [TensorType(ctx.dtype(0), _unknown_dims(rank))]
    return [TensorType(ctx.dtype(0), broadcast_shapes(ctx.shape(0), tuple(target)))]


_CONSTANT_ATTRS = ("value", "value_float", "value_floats", "value_int", "value_ints")


def constant_value(attrs: dict) -> np.ndarray:
    """The tensor a Constant node holds, from whichever value_* attribute it sets."""
    given = [name for name in attrs if name in _CONSTANT_ATTRS]
    if len(given) != 1:
        raise ShapeError(f"Constant must set exactly one of {', '.join(_CONSTANT_ATTRS)}; "
                         f"got {given or 'none'}")
    name = given[0]
    value = attrs[name]
    if name == "value":
        if not isinstance(value, np.ndarray):
            raise DTypeError(f"Constant value must be a numpy array, got {type(value).__name__}")
        return value
    dtype = np.float32 if name.startswith("value_float") else np.int64
    return np.asarray(value, dtype=dtype)


@op_schema("Constant", inputs=0, attrs=[Attr(n, k, None) for n, k in zip(
    _CONSTANT_ATTRS, ("tensor", "float", "floats", "int", "ints"), strict=True)],
    since_version=13, doc="a tensor held in an attribute")
def _constant(ctx: InferenceContext) -> list[TensorType]:
    value = constant_value(dict(ctx.attrs))
    return [TensorType(from_numpy(value.dtype), tuple(int(d) for d in value.shape))]
