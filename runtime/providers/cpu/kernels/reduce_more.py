"""ReduceL1, ReduceL2, ReduceLogSum, ReduceLogSumExp, ReduceProd, ReduceSumSquare (axes as
an input), ArgMax and ArgMin.

With ``noop_with_empty_axes`` and no axes, ONNX reduces over no axis at all, which leaves the
elementwise part (|x|, x^2, log x ...): numpy's ``axis=()`` does exactly that.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgefw.ir.schema.dims import normalize_axis
from edgefw.ir.schema.reduce import reduced_axes
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel

Reducer = Callable[[np.ndarray, tuple[int, ...], bool], np.ndarray]


def _log_sum_exp(x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    if x.size == 0:
        shape = np.sum(x, axis=axes, keepdims=keepdims).shape
        return np.full(shape, -np.inf, dtype=x.dtype)
    # Shift by the (finite) maximum so exp cannot overflow; infinities pass through.
    finite = np.where(np.isinf(x), -np.inf, x)
    peak = np.max(finite, axis=axes, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0).astype(x.dtype, copy=False)
    total = np.sum(np.exp(x - peak), axis=axes, keepdims=True)
    y = np.log(total) + peak
    return y if keepdims else np.squeeze(y, axis=axes)


_REDUCERS: dict[str, Reducer] = {
    "ReduceL1": lambda x, axes, keep: np.sum(np.abs(x), axis=axes, keepdims=keep),
    "ReduceL2": lambda x, axes, keep: np.sqrt(np.sum(np.square(x), axis=axes, keepdims=keep)),
    "ReduceLogSum": lambda x, axes, keep: np.log(np.sum(x, axis=axes, keepdims=keep)),
    "ReduceLogSumExp": _log_sum_exp,
    "ReduceProd": lambda x, axes, keep: np.prod(x, axis=axes, keepdims=keep),
    "ReduceSumSquare": lambda x, axes, keep: np.sum(np.square(x), axis=axes, keepdims=keep),
}


def _register(op_type: str, reducer: Reducer) -> None:
    @cpu_kernel(op_type, since=18)
    def build(ctx: KernelContext) -> Kernel:
        keepdims = bool(ctx.attr("keepdims"))
        noop = int(ctx.attr("noop_with_empty_axes"))
        dtype = ctx.output_dtype()
        const_axes = ctx.const(1) if ctx.has_input(1) else np.zeros(0, np.int64)

        def reduce_(x, axes=None):
            given = const_axes if const_axes is not None else axes
            listed = [] if given is None else [int(a) for a in given.reshape(-1)]
            which = tuple(reduced_axes(x.ndim, listed, noop))
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                y = reducer(x, which, keepdims)
            return np.asarray(y).astype(dtype, copy=False)

        return reduce_

    build.__name__ = op_type.lower()


for _op, _reducer in _REDUCERS.items():
    _register(_op, _reducer)


def _register_arg(op_type: str, arg: Callable) -> None:
    @cpu_kernel(op_type, since=13)
    def build(ctx: KernelContext) -> Kernel:
        axis = int(ctx.attr("axis"))
        keepdims = bool(ctx.attr("keepdims"))
        last = bool(ctx.attr("select_last_index"))

        def arg_reduce(x):
            a = normalize_axis(axis, x.ndim, f"{op_type} axis")
            if last:  # the last extremum: search the reversed axis, map the index back
                index = x.shape[a] - 1 - arg(np.flip(x, a), axis=a)
            else:
                index = arg(x, axis=a)
            index = np.asarray(index, dtype=np.int64)
            return np.expand_dims(index, a) if keepdims else index

        return arg_reduce

    build.__name__ = op_type.lower()


_register_arg("ArgMax", np.argmax)
_register_arg("ArgMin", np.argmin)
