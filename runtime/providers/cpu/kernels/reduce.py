"""ReduceSum, ReduceMean, ReduceMax, ReduceMin with axes as an input (newest form)."""

from __future__ import annotations

import numpy as np

from edgefw.ir.passes.mark_sequential_sums_pass import SEQUENTIAL_SUMS
from edgefw.ir.schema.reduce import reduced_axes
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel

_REDUCERS = {
    "ReduceSum": (np.sum, 13),
    "ReduceMean": (np.mean, 18),
    "ReduceMax": (np.max, 18),
    "ReduceMin": (np.min, 18),
}


def _lowest(dtype: np.dtype):
    if dtype.kind == "b":
        return False
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _highest(dtype: np.dtype):
    if dtype.kind == "b":
        return True
    return np.inf if dtype.kind == "f" else np.iinfo(dtype).max


_EMPTY_IDENTITY = {np.max: _lowest, np.min: _highest}


def _ordered_mean(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray | None:
    """The mean over trailing ``axes`` of a float array, summed left to right and divided by
    the count, as TFLite's MEAN does — for quantized graphs only, see
    ``edgefw.ir.passes.MarkSequentialSumsPass`` (numpy's pairwise sum rounds differently: a
    QUANTIZE after a LayerNorm's MEAN would then flip an int8 step now and then). None when the
    axes are not the trailing ones."""
    if x.dtype.kind != "f" or x.size == 0 or not axes \
            or tuple(sorted(axes)) != tuple(range(x.ndim - len(axes), x.ndim)):
        return None
    first = x.ndim - len(axes)
    rows = x.reshape(x.shape[:first] + (-1,))
    total = np.add.accumulate(rows, axis=-1)[..., -1]
    y = np.divide(total, x.dtype.type(rows.shape[-1]))
    return y.reshape(x.shape[:first] + (1,) * len(axes)) if keepdims else y


def _register(op_type: str, reducer, since: int) -> None:
    @cpu_kernel(op_type, since=since)
    def build(ctx: KernelContext) -> Kernel:
        keepdims = bool(ctx.attr("keepdims"))
        noop = int(ctx.attr("noop_with_empty_axes"))
        dtype = ctx.output_dtype()
        const_axes = ctx.const(1) if ctx.has_input(1) else np.zeros(0, np.int64)
        # a quantized graph's float mean sums in TFLite's order (MarkSequentialSumsPass)
        sequential = reducer is np.mean and bool(ctx.node.meta.get(SEQUENTIAL_SUMS))

        def reduce_(x, axes=None):
            given = const_axes if const_axes is not None else axes
            listed = [] if given is None else [int(a) for a in given.reshape(-1)]
            which = reduced_axes(x.ndim, listed, noop)
            if not which and not listed and noop:
                return x.copy()
            if x.size == 0 and reducer in _EMPTY_IDENTITY:
                # max/min of an empty set: the identity (-inf / +inf, or the dtype's bounds).
                shape = np.sum(x, axis=tuple(which), keepdims=keepdims).shape
                return np.full(shape, _EMPTY_IDENTITY[reducer](x.dtype), dtype=dtype)
            y = _ordered_mean(x, tuple(which), keepdims) if sequential else None
            if y is None:
                y = reducer(x, axis=tuple(which), keepdims=keepdims)
            return np.asarray(y).astype(dtype, copy=False)

        return reduce_

    build.__name__ = op_type.lower()


for _op, (_fn, _since) in _REDUCERS.items():
    _register(_op, _fn, _since)
