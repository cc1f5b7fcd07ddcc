"""TopK: the K largest (or smallest) values along an axis and their int64 indices.

Equal values keep their order (the lower index first), as ONNX specifies: a stable sort
gives that for "smallest"; for "largest" the axis is reversed before a stable ascending sort
and the result read backwards.
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.schema.dims import normalize_axis
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def top_k(x: np.ndarray, k: int, axis: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    a = normalize_axis(axis, x.ndim, "TopK axis")
    n = x.shape[a]
    if not 0 <= k <= n:
        raise ShapeError(f"TopK K={k} is out of range for axis {a} of {list(x.shape)}")
    if largest:
        order = np.argsort(np.flip(x, a), axis=a, kind="stable")
        order = (n - 1) - np.flip(order, a)
    else:
        order = np.argsort(x, axis=a, kind="stable")
    indices = np.take(order, np.arange(k), axis=a).astype(np.int64, copy=False)
    return np.take_along_axis(x, indices, axis=a), indices


@cpu_kernel("TopK", since=11)
def top_k_kernel(ctx: KernelContext) -> Kernel:
    axis = int(ctx.attr("axis"))
    largest = bool(ctx.attr("largest"))
    const_k = ctx.const(1)

    def top_k_(x, k):
        count = int((const_k if const_k is not None else k).reshape(-1)[0])
        return top_k(x, count, axis, largest)

    return top_k_
