"""Ops that move data without arithmetic: Reshape, Flatten, Squeeze, Unsqueeze, Transpose,
Concat, Stack, GetItem (basic and integer-array indexing), Pad, Where."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefw.errors import ShapeError, TraceError
from edgefw.ops.function import Function, SameOpLowering, register, unbroadcast

_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


class _ReshapeLike(Function):
    """Ops whose backward is reshaping the gradient back to the input's shape."""

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g.reshape(self.in_shape)

    def lower(self, e, x, **attrs):
        target = e.dynamic_shape(e.out_shape, x)
        return e.node("Reshape", [x, e.ints(target, "shape")])


@register
class Reshape(_ReshapeLike):
    def forward(self, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        self.in_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ShapeError(f"reshape: cannot reshape {x.shape} into {shape}") from None


@register
class Flatten(_ReshapeLike):
    def forward(self, x: np.ndarray, start_dim: int = 0, end_dim: int = -1) -> np.ndarray:
        self.in_shape = x.shape
        nd = max(x.ndim, 1)
        s, e = start_dim % nd, end_dim % nd
        if s > e:
            raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1 :]) if x.ndim else x.reshape(1)

    def lower(self, e, x, start_dim=0, end_dim=-1):
        rank = len(e.in_shapes[0])
        if rank >= 2 and start_dim % rank == 1 and end_dim % rank == rank - 1:
            return e.node("Flatten", [x], {"axis": 1})
        return super().lower(e, x)


@register
class Squeeze(_ReshapeLike):
    def forward(self, x: np.ndarray, axes: tuple[int, ...] = ()) -> np.ndarray:
        self.in_shape = x.shape
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            raise ShapeError(f"squeeze: axis {bad[0]} of shape {x.shape} is not of size 1")
        return np.squeeze(x, axis=axes)

    def lower(self, e, x, axes=()):
        if not axes:
            return e.node("Identity", [x])
        return e.node("Squeeze", [x, e.ints(list(axes), "axes")])


@register
class Unsqueeze(_ReshapeLike):
    def forward(self, x: np.ndarray, axis: int) -> np.ndarray:
        self.in_shape = x.shape
        if not -x.ndim - 1 <= axis <= x.ndim:
            raise ShapeError(f"unsqueeze: axis {axis} out of range for rank {x.ndim}")
        return np.expand_dims(x, axis)

    def lower(self, e, x, axis):
        return e.node("Unsqueeze", [x, e.ints([axis % len(e.out_shape)], "axes")])


@register
class Transpose(Function):
    def forward(self, x: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
        if sorted(perm) != list(range(x.ndim)):
            raise ShapeError(f"transpose: {perm} is not a permutation of {x.ndim} axes")
        self.inverse = tuple(np.argsort(perm))
        return x.transpose(perm)

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g.transpose(self.inverse)

    def lower(self, e, x, perm):
        return e.node("Transpose", [x], {"perm": [int(p) for p in perm]})


@register
class Concat(Function):
    def forward(self, *xs: np.ndarray, axis: int = 0) -> np.ndarray:
        self.axis = axis
        self.splits = np.cumsum([x.shape[axis] for x in xs])[:-1]
        try:
            return np.concatenate(xs, axis=axis)
        except ValueError as exc:
            shapes = [x.shape for x in xs]
            raise ShapeError(f"concat along axis {axis}: shapes {shapes} do not fit") from exc

    def backward(self, g: np.ndarray):
        return tuple(np.split(g, self.splits, axis=self.axis))

    def lower(self, e, *xs, axis=0):
        return e.node("Concat", list(xs), {"axis": axis % len(e.out_shape)})


@register
class Stack(Function):
    def forward(self, *xs: np.ndarray, axis: int = 0) -> np.ndarray:
        self.axis = axis
        shapes = {x.shape for x in xs}
        if len(shapes) != 1:
            raise ShapeError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
        return np.stack(xs, axis=axis)

    def backward(self, g: np.ndarray):
        return tuple(np.moveaxis(g, self.axis, 0))

    def lower(self, e, *xs, axis=0):
        axes = e.ints([axis % len(e.out_shape)], "axes")
        return e.node("Concat", [e.node("Unsqueeze", [x, axes]) for x in xs],
                      {"axis": axis % len(e.out_shape)})


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(
        isinstance(i, int | slice | type(None) | type(Ellipsis)) or np.ndim(i) == 0
        and not isinstance(i, np.ndarray | bool | np.bool_)
        for i in items
    )


@register
class GetItem(Function):
    """``x[index]``: slicing is scattered back by assignment, integer arrays with add.at."""

    def forward(self, x: np.ndarray, index: Any) -> np.ndarray:
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        try:
            return np.asarray(x[index])
        except IndexError as exc:
            raise ShapeError(f"index {index!r} is invalid for shape {x.shape}: {exc}") from None

    def backward(self, g: np.ndarray) -> np.ndarray:
        out = np.zeros(self.shape, dtype=g.dtype)
        if _is_basic(self.index):
            out[self.index] = g
        else:
            np.add.at(out, self.index, g)
        return out

    def lower(self, e, x, index):
        return lower_index(e, x, index, e.in_shapes[0])


def lower_index(e, x, index, shape: tuple[int, ...]):
    """numpy indexing as Slice, then Gather (one integer array), Squeeze (integers) and
    Unsqueeze (None)."""
    items = list(index) if isinstance(index, tuple) else [index]
    if sum(i is Ellipsis for i in items) > 1:
        raise TraceError("an index can only have a single ellipsis")
    named = sum(i is not None and i is not Ellipsis for i in items)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (len(shape) - named)
    items += [slice(None)] * (len(shape) - sum(i is not None for i in items))
    starts, ends, axes, steps, squeeze, unsqueeze, gathers = [], [], [], [], [], [], []
    axis = out_axis = 0
    for item in items:
        if item is None:
            unsqueeze.append(out_axis)
            out_axis += 1
            continue
        if isinstance(item, slice):
            step = 1 if item.step is None else int(item.step)
            if (item.start, item.stop, step) != (None, None, 1):
                default_start, default_end = (0, _INT64_MAX) if step > 0 else (-1, _INT64_MIN)
                starts.append(default_start if item.start is None else int(item.start))
                ends.append(default_end if item.stop is None else int(item.stop))
                axes.append(axis)
                steps.append(step)
            out_axis += 1
        elif isinstance(item, np.ndarray) and item.dtype.kind == "b" or isinstance(item, bool):
            raise TraceError("boolean mask indexing has a data-dependent shape and cannot be "
                             "traced; use where() instead")
        elif np.ndim(item) == 0:
            k = int(item)
            starts.append(k)
            ends.append(k + 1 if k != -1 else _INT64_MAX)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        else:
            gathers.append((axis, np.asarray(item, dtype=np.int64)))
            out_axis += np.ndim(item)
        axis += 1
    if len(gathers) > 1:
        raise TraceError("indexing with more than one integer array cannot be traced")
    y = x
    if axes:
        y = e.node("Slice", [y, e.ints(starts, "starts"), e.ints(ends, "ends"),
                             e.ints(axes, "axes"), e.ints(steps, "steps")])
    for gather_axis, idx in gathers:
        y = e.node("Gather", [y, e.const(idx, "indices")], {"axis": gather_axis})
    if squeeze:
        # An integer-array index of rank r turns one axis into r axes.
        moved = [s + sum(np.ndim(i) - 1 for a, i in gathers if a < s) for s in squeeze]
        y = e.node("Squeeze", [y, e.ints(moved, "axes")])
    if unsqueeze:
        y = e.node("Unsqueeze", [y, e.ints(unsqueeze, "axes")])
    if y is x:
        y = e.node("Identity", [x])
    return y


@register
class Pad(Function):
    """Pad with ``pads = ((before, after), ...)`` per axis; constant, reflect or edge."""

    def forward(self, x: np.ndarray, pads: tuple, mode: str = "constant", value: float = 0.0):
        self.shape, self.pads, self.mode = x.shape, pads, mode
        if len(pads) != x.ndim or any(b < 0 or a < 0 for b, a in pads):
            raise ShapeError(f"pad: need one non-negative (before, after) per axis of {x.shape}")
        if mode == "constant":
            return np.pad(x, pads, mode="constant", constant_values=value)
        if mode not in ("reflect", "edge"):
            raise ShapeError(f"pad: mode {mode!r} is not one of constant, reflect, edge")
        if mode == "reflect" and any(max(p) >= n for p, n in zip(pads, x.shape)):
            raise ShapeError(f"pad: reflect padding {pads} must be smaller than shape {x.shape}")
        # Non-constant padding is a gather along each axis; its backward is a scatter-add.
        self.index = np.ix_(*[np.pad(np.arange(n), p, mode=mode) for n, p in zip(x.shape, pads)])
        return x[self.index]

    def backward(self, g: np.ndarray) -> np.ndarray:
        if self.mode == "constant":
            return g[tuple(slice(b, b + n) for (b, _), n in zip(self.pads, self.shape))]
        out = np.zeros(self.shape, dtype=g.dtype)
        np.add.at(out, self.index, g)
        return out

    def lower(self, e, x, pads, mode="constant", value=0.0):
        flat = [b for b, _ in pads] + [a for _, a in pads]
        inputs = [x, e.ints(flat, "pads")]
        if mode == "constant":
            inputs.append(e.const(np.asarray(value, dtype=np.dtype(x.dtype)), "value"))
        return e.node("Pad", inputs, {"mode": mode})


@register
class Where(SameOpLowering, Function):
    """``where(cond, a, b)``; ``cond`` is a boolean tensor and gets no gradient."""

    def forward(self, cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        self.cond, self.shapes = cond.astype(bool, copy=False), (a.shape, b.shape)
        return np.where(self.cond, a, b)

    def backward(self, g: np.ndarray):
        _, ga, gb = self.needs_input_grad
        zero = g.dtype.type(0)
        return (
            None,
            unbroadcast(np.where(self.cond, g, zero), self.shapes[0]) if ga else None,
            unbroadcast(np.where(self.cond, zero, g), self.shapes[1]) if gb else None,
        )
