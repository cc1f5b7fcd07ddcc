"""GatherElements, ScatterElements (and the deprecated Scatter), GatherND, ScatterND,
TensorScatter, NonZero, Compress and Unique.

Indices may be negative (counting from the end); any index outside its axis raises a
ShapeError naming the axis and the range, never numpy's bare IndexError.
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel

_REDUCE_UFUNCS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def normalized_indices(indices: np.ndarray, dim: int | np.ndarray, what: str) -> np.ndarray:
    """``indices`` with negative entries wrapped; ShapeError if any falls outside [-dim, dim)."""
    idx = indices.astype(np.int64, copy=False)
    if idx.size and (np.any(idx < -dim) or np.any(idx >= dim)):
        raise ShapeError(f"{what} has indices outside [-{dim}, {dim}): "
                         f"min {int(idx.min())}, max {int(idx.max())}")
    return np.where(idx < 0, idx + dim, idx)


@cpu_kernel("GatherElements", since=13)
def gather_elements(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))

    def gather_elements_(data, indices):
        a = normalize_axis(axis, data.ndim, "GatherElements axis")
        idx = normalized_indices(indices, data.shape[a], f"GatherElements (axis {a})")
        return np.take_along_axis(data, idx, axis=a)

    return gather_elements_


def _full_index(idx: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """Index arrays addressing data[..., idx[...], ...]: position along every other axis."""
    grids = list(np.indices(idx.shape, sparse=True))
    grids[axis] = idx
    return tuple(grids)


@cpu_kernel("ScatterElements", since=18)
@cpu_kernel("Scatter", since=9)
def scatter_elements(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    reduction = ctx.attr("reduction") if ctx.node.op_type == "ScatterElements" else "none"

    def scatter_elements_(data, indices, updates):
        a = normalize_axis(axis, data.ndim, "ScatterElements axis")
        if indices.shape != updates.shape:
            raise ShapeError(f"ScatterElements indices {list(indices.shape)} and updates "
                             f"{list(updates.shape)} differ")
        idx = normalized_indices(indices, data.shape[a], f"ScatterElements (axis {a})")
        if any(i > d for i, d in zip(idx.shape, data.shape, strict=True)):
            raise ShapeError(f"ScatterElements indices {list(idx.shape)} exceed data "
                             f"{list(data.shape)}")
        out = data.copy()
        where = _full_index(idx, a)
        if reduction == "none":
            out[where] = updates
        else:
            _REDUCE_UFUNCS[reduction].at(out, where, updates)
        return out

    return scatter_elements_


def _nd_index(data: np.ndarray, indices: np.ndarray, batch_dims: int, what: str
              ) -> tuple[tuple[np.ndarray, ...], tuple[int, ...]]:
    """(index arrays into ``data`` reshaped to [batch, ...], shape of the gathered slices)."""
    m = indices.shape[-1]
    b = batch_dims
    if b + m > data.ndim or indices.shape[:b] != data.shape[:b]:
        raise ShapeError(f"{what} indices {list(indices.shape)} do not fit data "
                         f"{list(data.shape)} with batch_dims {b}")
    batch = int(np.prod(data.shape[:b], dtype=np.int64))
    flat = indices.reshape(batch, -1, m)
    dims = np.array(data.shape[b:b + m], dtype=np.int64)
    flat = normalized_indices(flat, dims, what)
    index = (np.arange(batch)[:, None],) + tuple(flat[..., j] for j in range(m))
    return index, tuple(data.shape[b + m:])


@cpu_kernel("GatherND", since=13)
def gather_nd(ctx: KernelContext) -> Kernel:
    batch_dims = int(ctx.attr("batch_dims"))

    def gather_nd_(data, indices):
        index, tail = _nd_index(data, indices, batch_dims, "GatherND")
        batch = int(np.prod(data.shape[:batch_dims], dtype=np.int64))
        gathered = data.reshape((batch,) + data.shape[batch_dims:])[index]
        return gathered.reshape(indices.shape[:-1] + tail)

    return gather_nd_


@cpu_kernel("ScatterND", since=18)
def scatter_nd(ctx: KernelContext) -> Kernel:
    reduction = ctx.attr("reduction")

    def scatter_nd_(data, indices, updates):
        index, tail = _nd_index(data, indices, 0, "ScatterND")
        expected = indices.shape[:-1] + tail
        if updates.shape != expected:
            raise ShapeError(f"ScatterND updates {list(updates.shape)} must be {list(expected)} "
                             f"for indices {list(indices.shape)} and data {list(data.shape)}")
        out = data.copy()
        view = out.reshape((1,) + data.shape)
        values = updates.reshape((1, -1) + tail)
        if reduction == "none":
            view[index] = values
        else:
            _REDUCE_UFUNCS[reduction].at(view, index, values)
        return out

    return scatter_nd_


@cpu_kernel("TensorScatter", since=24)
def tensor_scatter(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    circular = ctx.attr("mode") == "circular"

    def tensor_scatter_(cache, update, write_indices=None):
        a = normalize_axis(axis, cache.ndim, "TensorScatter axis")
        length, steps, batch = cache.shape[a], update.shape[a], cache.shape[0]
        starts = np.zeros(batch, np.int64) if write_indices is None else \
            write_indices.reshape(-1).astype(np.int64)
        if starts.size != batch or steps > length:
            raise ShapeError(f"TensorScatter write_indices {starts.tolist()} / update "
                             f"{list(update.shape)} do not fit cache {list(cache.shape)}")
        positions = starts[:, None] + np.arange(steps)[None, :]  # [batch, steps]
        if circular:
            positions %= length
        elif positions.size and (positions.min() < 0 or positions.max() >= length):
            raise ShapeError(f"TensorScatter writes past the cache length {length} "
                             f"(write_indices {starts.tolist()}, {steps} steps)")
        out = cache.copy()
        moved = np.moveaxis(out, a, 1)  # [batch, length, ...] view of out
        moved[np.arange(batch)[:, None], positions] = np.moveaxis(update, a, 1)
        return out

    return tensor_scatter_


@cpu_kernel("NonZero", since=9)
def non_zero(ctx: KernelContext) -> Kernel:
    def non_zero_(x):
        if x.ndim == 0:  # numpy refuses 0-d nonzero; ONNX gives a [0, n] result
            return np.zeros((0, int(bool(x))), dtype=np.int64)
        return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)

    return non_zero_


@cpu_kernel("Compress", since=9)
def compress(ctx: KernelContext) -> Kernel:
    axis = ctx.attr("axis")

    def compress_(x, condition):
        cond = condition.reshape(-1).astype(bool, copy=False)
        if axis is None:
            source, a = x.reshape(-1), 0
        else:
            source, a = x, normalize_axis(int(axis), x.ndim, "Compress axis")
        if cond.size > source.shape[a]:
            raise ShapeError(f"Compress condition has {cond.size} entries, axis {a} of "
                             f"{list(source.shape)} only {source.shape[a]}")
        return np.compress(cond, source, axis=a)

    return compress_


@cpu_kernel("Unique", since=11)
def unique(ctx: KernelContext) -> Kernel:
    axis = ctx.attr("axis")
    keep_sorted = bool(ctx.attr("sorted"))
    n_outputs = len(ctx.node.outputs)

    def unique_(x):
        a = None if axis is None else normalize_axis(int(axis), x.ndim, "Unique axis")
        values, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True,
                                                   return_counts=True, axis=a)
        inverse = inverse.reshape(-1)
        if not keep_sorted:  # order of first occurrence instead of sorted order
            order = np.argsort(first, kind="stable")
            values = np.take(values, order, axis=0 if a is None else a)
            first, counts = first[order], counts[order]
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            inverse = rank[inverse]
        outs = (values, first.astype(np.int64), inverse.astype(np.int64),
                counts.astype(np.int64))
        return outs[0] if n_outputs == 1 else outs[:n_outputs]

    return unique_
