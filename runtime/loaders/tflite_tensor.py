"""Lowering rules for TFLite's shape and data-movement ops and reductions: RESHAPE, SHAPE,
STRIDED_SLICE, SLICE, PACK, UNPACK, CONCATENATION, SPLIT(_V), SQUEEZE, EXPAND_DIMS,
TRANSPOSE, GATHER, PAD(V2), MIRROR_PAD, TILE, BROADCAST_TO, MEAN/SUM/REDUCE_*, ARG_MAX/MIN.

SHAPE, STRIDED_SLICE, PACK, CONCATENATION and CAST of small integer vectors are also
evaluated symbolically (``@evaluates``), so Keras' dynamic-batch flatten
``RESHAPE(x, PACK(STRIDED_SLICE(SHAPE(x), 0, 1), 64))`` becomes ``Reshape(x, [0, 64])``:
the batch dim is copied and stays the symbol ``"batch"``. Their nodes are written only if
a tensor they compute is read as a tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefw.ir.dtypes import to_onnx
from runtime.loaders.tflite_lowering import (
    MAX_KNOWN_ELEMENTS,
    Lowering,
    Operator,
    evaluates,
    inverse_perm,
    lowers,
)

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def _axis(ctx: Lowering, axis: Any, rank: int, what: str = "axis") -> int:
    if not isinstance(axis, (int, np.integer)) or not -rank <= int(axis) < max(rank, 1):
        raise ctx.fail(f"{what} {axis} is out of range for rank {rank}")
    return int(axis) % max(rank, 1)


def _ints(ctx: Lowering, t: int | None, what: str) -> list[int]:
    """A constant (or known) integer vector, as a list (a scalar gives one element)."""
    known = ctx.known(t)
    if known is None:
        raise ctx.unsupported(f"the {what} must be a constant")
    known = known if isinstance(known, list) else [known]
    if not all(isinstance(k, int) for k in known):
        raise ctx.unsupported(f"the {what} {known} is not known while loading")
    return known


def _int64(values: list[int]) -> np.ndarray:
    return np.asarray(values, np.int64).reshape(-1)


# ----------------------------------------------------------------------- RESHAPE
@lowers("RESHAPE", options="ReshapeOptions")
def reshape(ctx: Lowering, op: Operator) -> None:
    x = ctx.value(op.input(0))
    y_t, shape_t = op.outputs[0], op.input(1)
    # As TFLite: the shape input when it is a 1-D int32 tensor, else the new_shape option.
    if shape_t is not None and ctx.tensor(shape_t).dtype == "int32" \
            and len(ctx.tensor(shape_t).shape) == 1:
        target = ctx.known(shape_t)
    else:
        shape_t, new_shape = None, op.option("new_shape")
        if new_shape is None:
            raise ctx.fail("has neither a 1-D int32 shape input nor new_shape")
        target = [int(d) for d in new_shape]
    if target is not None and any(isinstance(d, int) and d < -1 for d in target):
        raise ctx.fail(f"new shape {target} has a dim below -1")
    shape, attrs = _reshape_constant(x.shape, target)
    if shape is None:  # computed at run time: the shape tensor feeds the Reshape
        if shape_t is None:
            raise ctx.fail(f"cannot reshape {ctx.dims(op.input(0))} to {target}")
        shape = ctx.node("Cast", [ctx.value(shape_t)], {"to": to_onnx("int64")}).output
    y = ctx.node("Reshape", [x, shape], attrs, output=y_t).output
    ctx.define(y_t, y)


def _reshape_constant(x_shape: tuple | None, target: list | None):
    """(IR Reshape's constant shape, attributes), or (None, None) when the target has more
    than one dim unknown while loading. A symbol equal to the input's dim at the same
    position is copied (ONNX's 0); one other unknown dim becomes -1."""
    if target is None or len(target) > MAX_KNOWN_ELEMENTS:
        return None, None
    entries, unknown, copies = [], 0, False
    for i, d in enumerate(target):
        if isinstance(d, int) and d >= -1:
            entries.append(d)
            unknown += d == -1
        elif isinstance(d, str) and x_shape is not None and i < len(x_shape) \
                and x_shape[i] == d:
            entries.append(0)
            copies = True
        else:
            entries.append(-1)
            unknown += 1
    literal_zero = any(d == 0 for d in target if isinstance(d, int))
    if unknown > 1 or (literal_zero and copies):
        return None, None
    return _int64(entries), ({"allowzero": 1} if literal_zero else None)


# ---------------------------------------------------------- shape computations
@evaluates("SHAPE")
def shape_known(ctx: Lowering, op: Operator) -> dict | None:
    dims = ctx.dims(op.input(0))
    return {op.outputs[0]: list(dims)} if len(dims) <= MAX_KNOWN_ELEMENTS else None


@lowers("SHAPE", options="ShapeOptions")
def shape(ctx: Lowering, op: Operator) -> None:
    x, perm = ctx.stored(op.input(0))
    y = ctx.node("Shape", [x]).output
    if perm != tuple(range(len(perm))):
        y = ctx.node("Gather", [y, _int64(inverse_perm(perm))], {"axis": 0}).output
    out = ctx.tensor(op.outputs[0]).dtype
    y = ctx.node("Cast", [y], {"to": to_onnx(out)}, output=op.outputs[0]).output
    ctx.define(op.outputs[0], y)


def _slice_spec(ctx: Lowering, op: Operator, rank: int):
    """Per axis (begin, end, stride, shrink) of a STRIDED_SLICE; None ends mean 'to the
    end' and None begins 'from the start', as in Python slices."""
    if op.option("ellipsis_mask") or op.option("new_axis_mask") or op.option("offset"):
        raise ctx.unsupported("STRIDED_SLICE with ellipsis_mask, new_axis_mask or offset is "
                              "not supported")
    begin = _ints(ctx, op.input(1), "begin")
    end = _ints(ctx, op.input(2), "end")
    strides = _ints(ctx, op.input(3), "strides") if op.input(3) is not None else [1] * len(begin)
    if not len(begin) == len(end) == len(strides) <= rank:
        raise ctx.fail(f"begin {begin}, end {end} and strides {strides} must have one entry "
                       f"per sliced axis (input rank {rank})")
    bmask, emask, shrink = (int(op.option(f)) for f in ("begin_mask", "end_mask",
                                                         "shrink_axis_mask"))
    spec = []
    for axis in range(len(begin)):
        stride = strides[axis]
        if stride == 0:
            raise ctx.fail("a stride is 0")
        if shrink >> axis & 1:
            spec.append((begin[axis], None if begin[axis] == -1 else begin[axis] + 1, 1, True))
            continue
        spec.append((None if bmask >> axis & 1 else begin[axis],
                     None if emask >> axis & 1 else end[axis], stride, False))
    return spec


@evaluates("STRIDED_SLICE")
def strided_slice_known(ctx: Lowering, op: Operator) -> dict | None:
    values = ctx.known(op.input(0))
    if not isinstance(values, list):
        return None
    spec = _slice_spec(ctx, op, 1)
    if len(spec) != 1:
        return None
    begin, end, stride, shrink = spec[0]
    if shrink:
        if not -len(values) <= begin < len(values):
            raise ctx.fail(f"index {begin} is out of range for {len(values)} values")
        return {op.outputs[0]: values[begin]}
    return {op.outputs[0]: values[slice(begin, end, stride)]}


@lowers("STRIDED_SLICE", options="StridedSliceOptions")
def strided_slice(ctx: Lowering, op: Operator) -> None:
    x = ctx.value(op.input(0))
    spec = _slice_spec(ctx, op, ctx.rank(op.input(0)))
    starts, ends, steps = [], [], []
    for begin, end, stride, _ in spec:
        starts.append(begin if begin is not None else (0 if stride > 0 else INT64_MAX))
        ends.append(end if end is not None else (INT64_MAX if stride > 0 else INT64_MIN))
        steps.append(stride)
    axes = list(range(len(spec)))
    shrink = [axis for axis, s in enumerate(spec) if s[3]]
    y_t = op.outputs[0]
    y = ctx.node("Slice", [x, _int64(starts), _int64(ends), _int64(axes), _int64(steps)],
                 output=None if shrink else y_t).output
    if shrink:
        y = ctx.node("Squeeze", [y, _int64(shrink)], output=y_t).output
    ctx.define(y_t, y)


@lowers("SLICE")
def slice_(ctx: Lowering, op: Operator) -> None:
    x = ctx.value(op.input(0))
    begin, size = _ints(ctx, op.input(1), "begin"), _ints(ctx, op.input(2), "size")
    if len(begin) != len(size) or len(begin) != ctx.rank(op.input(0)):
        raise ctx.fail(f"begin {begin} and size {size} need one entry per input axis")
    ends = [INT64_MAX if s == -1 else b + s for b, s in zip(begin, size, strict=True)]
    y = ctx.node("Slice", [x, _int64(begin), _int64(ends), _int64(list(range(len(begin))))],
                 output=op.outputs[0]).output
    ctx.define(op.outputs[0], y)


@evaluates("PACK")
def pack_known(ctx: Lowering, op: Operator) -> dict | None:
    values = [ctx.known(t) for t in op.inputs]
    if op.option("axis") != 0 or any(v is None or isinstance(v, list) for v in values):
        return None
    return {op.outputs[0]: values}


@lowers("PACK", options="PackOptions")
def pack(ctx: Lowering, op: Operator) -> None:
    if not op.inputs:
        raise ctx.fail("has no inputs")
    axis = _axis(ctx, op.option("axis"), ctx.rank(op.inputs[0]) + 1)
    parts = [ctx.node("Unsqueeze", [ctx.value(t), _int64([axis])]).output for t in op.inputs]
    y = ctx.node("Concat", parts, {"axis": axis}, output=op.outputs[0]).output
    ctx.define(op.outputs[0], y)


@lowers("UNPACK", options="UnpackOptions")
def unpack(ctx: Lowering, op: Operator) -> None:
    rank = ctx.rank(op.input(0))
    axis = _axis(ctx, op.option("axis"), rank)
    parts = ctx.node("Split", [ctx.value(op.input(0))],
                     {"axis": axis, "num_outputs": len(op.outputs)},
                     num_outputs=len(op.outputs)).outputs
    for t, part in zip(op.outputs, parts, strict=True):
        ctx.define(t, ctx.node("Squeeze", [part, _int64([axis])], output=t).output)


@evaluates("CONCATENATION")
def concatenation_known(ctx: Lowering, op: Operator) -> dict | None:
    values = [ctx.known(t) for t in op.inputs]
    if op.option("axis") not in (0, -1) or op.option("fused_activation_function") \
            or not all(isinstance(v, list) for v in values):
        return None
    return {op.outputs[0]: [x for v in values for x in v]}


@lowers("CONCATENATION", options="ConcatenationOptions")
def concatenation(ctx: Lowering, op: Operator) -> None:
    if not op.inputs:
        raise ctx.fail("has no inputs")
    stored = [ctx.stored(t) for t in op.inputs]
    perm = stored[0][1]
    if any(p != perm for _, p in stored):
        perm = tuple(range(len(perm)))
    axis = _axis(ctx, op.option("axis"), len(perm))
    parts = [ctx.value(t, perm) for t in op.inputs]
    y = ctx.node("Concat", parts, {"axis": list(perm).index(axis)}).output
    ctx.define(op.outputs[0], ctx.activate(y, ctx.activation()), perm)


@evaluates("CAST")
def cast_known(ctx: Lowering, op: Operator) -> dict | None:
    values = ctx.known(op.input(0))
    if values is None or ctx.tensor(op.outputs[0]).dtype not in ("int32", "int64"):
        return None
    return {op.outputs[0]: values}


# ----------------------------------------------------------- data movement
@lowers("SPLIT", options="SplitOptions")
def split(ctx: Lowering, op: Operator) -> None:
    axis_t, x_t = op.input(0), op.input(1)
    x, perm = ctx.stored(x_t)
    axis = _axis(ctx, _ints(ctx, axis_t, "axis")[0], len(perm))
    _split(ctx, op, x, perm, axis, None)


@lowers("SPLIT_V", options="SplitVOptions")
def split_v(ctx: Lowering, op: Operator) -> None:
    x, perm = ctx.stored(op.input(0))
    sizes = _ints(ctx, op.input(1), "size_splits")
    axis = _axis(ctx, _ints(ctx, op.input(2), "axis")[0], len(perm))
    if sizes.count(-1) == 1:
        total = ctx.dims(op.input(0))[axis]
        if not isinstance(total, int):
            raise ctx.unsupported("SPLIT_V with -1 on an axis of unknown size")
        sizes[sizes.index(-1)] = total - (sum(sizes) + 1)
    _split(ctx, op, x, perm, axis, sizes)


def _split(ctx: Lowering, op: Operator, x, perm, axis: int, sizes: list[int] | None) -> None:
    stored_axis = list(perm).index(axis)
    count = len(op.outputs)
    if sizes is not None and (len(sizes) != count or min(sizes, default=0) < 0):
        raise ctx.fail(f"size_splits {sizes} do not fit {count} outputs")
    inputs = [x] if sizes is None else [x, _int64(sizes)]
    attrs = {"axis": stored_axis} if sizes is not None else {"axis": stored_axis,
                                                             "num_outputs": count}
    parts = ctx.node("Split", inputs, attrs, num_outputs=count).outputs
    for t, part in zip(op.outputs, parts, strict=True):
        ctx.define(t, part, perm)


@lowers("SQUEEZE", options="SqueezeOptions")
def squeeze(ctx: Lowering, op: Operator) -> None:
    dims = ctx.dims(op.input(0))
    axes = op.option("squeeze_dims")
    if axes is None or len(axes) == 0:
        if not all(isinstance(d, int) for d in dims):
            raise ctx.unsupported(f"SQUEEZE of all size-1 dims of {list(dims)} needs known dims")
        axes = [i for i, d in enumerate(dims) if d == 1]
    axes = sorted({_axis(ctx, int(a), len(dims)) for a in axes})
    y = ctx.node("Squeeze", [ctx.value(op.input(0)), _int64(axes)], output=op.outputs[0]).output
    ctx.define(op.outputs[0], y)


@lowers("EXPAND_DIMS")
def expand_dims(ctx: Lowering, op: Operator) -> None:
    rank = ctx.rank(op.input(0))
    axis = _axis(ctx, _ints(ctx, op.input(1), "axis")[0], rank + 1)
    y = ctx.node("Unsqueeze", [ctx.value(op.input(0)), _int64([axis])],
                 output=op.outputs[0]).output
    ctx.define(op.outputs[0], y)


@lowers("TRANSPOSE")
def transpose(ctx: Lowering, op: Operator) -> None:
    x, perm = ctx.stored(op.input(0))
    order = [_axis(ctx, a, len(perm)) for a in _ints(ctx, op.input(1), "perm")]
    if sorted(order) != list(range(len(perm))):
        raise ctx.fail(f"perm {order} is not a permutation of {len(perm)} axes")
    # The stored data already is the output in another layout: no node at all.
    inverse = inverse_perm(order)
    out_perm = tuple(inverse[p] for p in perm)
    ctx.define(op.outputs[0], x, out_perm)


@lowers("GATHER", options="GatherOptions")
def gather(ctx: Lowering, op: Operator) -> None:
    if op.option("batch_dims"):
        raise ctx.unsupported("GATHER with batch_dims is not supported")
    axis = _axis(ctx, op.option("axis"), ctx.rank(op.input(0)))
    y = ctx.node("Gather", [ctx.value(op.input(0)), ctx.value(op.input(1))], {"axis": axis},
                 output=op.outputs[0]).output
    ctx.define(op.outputs[0], y)


@lowers("PAD", "PADV2", "MIRROR_PAD")
def pad(ctx: Lowering, op: Operator) -> None:
    x, perm = ctx.stored(op.input(0))
    paddings = ctx.constant(op.input(1))
    if paddings is None or paddings.shape != (len(perm), 2) or paddings.dtype.kind not in "iu":
        raise ctx.fail(f"paddings must be a constant integer [{len(perm)}, 2] tensor")
    if np.any(paddings < 0):
        raise ctx.fail(f"negative paddings {paddings.tolist()}")
    stored = paddings[list(perm)]
    pads = _int64(stored[:, 0].tolist() + stored[:, 1].tolist())
    attrs, inputs = None, [x, pads]
    if op.name == "MIRROR_PAD":
        if op.option("mode") != 0:
            raise ctx.unsupported("MIRROR_PAD SYMMETRIC is not supported (REFLECT is)")
        attrs = {"mode": "reflect"}
    elif op.name == "PADV2" and op.input(2) is not None:
        inputs.append(ctx.value(op.input(2)))
    elif ctx.is_quantized(op.input(0)) and x.dtype != "float32":
        inputs.append(np.asarray(ctx.tensor(op.outputs[0]).quant.zero_point[0], x.dtype))
    y = ctx.node("Pad", inputs, attrs, output=op.outputs[0]).output
    ctx.define(op.outputs[0], y, perm)


@lowers("TILE")
def tile(ctx: Lowering, op: Operator) -> None:
    multiples = ctx.node("Cast", [ctx.value(op.input(1))], {"to": to_onnx("int64")}).output
    y = ctx.node("Tile", [ctx.value(op.input(0)), multiples], output=op.outputs[0]).output
    ctx.define(op.outputs[0], y)


@lowers("BROADCAST_TO")
def broadcast_to(ctx: Lowering, op: Operator) -> None:
    target = _ints(ctx, op.input(1), "shape")
    y = ctx.node("Expand", [ctx.value(op.input(0)), _int64(target)], output=op.outputs[0]).output
    ctx.define(op.outputs[0], y)


# -------------------------------------------------------------------- reductions
_REDUCTIONS = {"MEAN": "ReduceMean", "SUM": "ReduceSum", "REDUCE_MAX": "ReduceMax",
               "REDUCE_MIN": "ReduceMin", "REDUCE_PROD": "ReduceProd"}


def _reduce(ctx: Lowering, op: Operator) -> None:
    x, perm = ctx.stored(op.input(0))
    axes = sorted({_axis(ctx, a, len(perm)) for a in _ints(ctx, op.input(1), "axes")})
    keep = bool(op.option("keep_dims"))
    y_t = op.outputs[0]
    if not axes:  # TFLite reduces over no axis: the input unchanged
        ctx.define(y_t, ctx.node("Identity", [x], output=y_t).output, perm)
        return
    stored_axes = sorted(list(perm).index(a) for a in axes)
    y = ctx.node(_REDUCTIONS[op.name], [x, _int64(stored_axes)], {"keepdims": int(keep)},
                 output=y_t).output
    if keep:
        ctx.define(y_t, y, perm)
        return
    remaining = [a for a in perm if a not in axes]
    ctx.define(y_t, y, tuple(sorted(remaining).index(a) for a in remaining))


for _name in _REDUCTIONS:
    lowers(_name, options="ReducerOptions")(_reduce)


@lowers("ARG_MAX", "ARG_MIN")
def arg_max_min(ctx: Lowering, op: Operator) -> None:
    x, perm = ctx.stored(op.input(0))
    axis = _axis(ctx, _ints(ctx, op.input(1), "axis")[0], len(perm))
    y = ctx.node("ArgMax" if op.name == "ARG_MAX" else "ArgMin", [x],
                 {"axis": list(perm).index(axis), "keepdims": 0}).output
    out = ctx.tensor(op.outputs[0]).dtype
    y = ctx.node("Cast", [y], {"to": to_onnx(out)}, output=op.outputs[0]).output
    ctx.define(op.outputs[0], y, tuple(sorted(a for a in perm if a != axis).index(a)
                                       for a in perm if a != axis))


__all__ = ["INT64_MAX", "INT64_MIN", "reshape", "shape", "strided_slice"]
