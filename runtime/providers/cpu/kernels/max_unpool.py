"""MaxUnpool: MaxPool's values written back at their flat indices, zeros elsewhere."""

from __future__ import annotations

import math

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.schema.creation import MAX_ELEMENTS
from edgefw.ir.schema.pooling import max_unpool_shape
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("MaxUnpool", since=11)
def max_unpool(ctx: KernelContext) -> Kernel:
    kernel = [int(k) for k in ctx.attr("kernel_shape")]

    def max_unpool_(x, indices, output_shape=None):
        spatial = max_unpool_shape(list(x.shape[2:]), kernel, ctx.attr("strides"),
                                   ctx.attr("pads"))
        inferred = list(x.shape[:2]) + spatial
        shape = inferred if output_shape is None else [int(d) for d in output_shape.reshape(-1)]
        if len(shape) != x.ndim or math.prod(shape) > MAX_ELEMENTS or indices.shape != x.shape:
            raise ShapeError(f"MaxUnpool of {list(x.shape)} (indices {list(indices.shape)}) to "
                             f"{shape} is not possible")
        flat = np.zeros(math.prod(inferred), dtype=x.dtype)
        idx = indices.reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= flat.size):
            raise ShapeError(f"MaxUnpool indices must be in [0, {flat.size})")
        flat[idx] = x.reshape(-1)
        y = np.zeros(shape, dtype=x.dtype)
        region = tuple(slice(0, min(a, b)) for a, b in zip(inferred, shape, strict=True))
        y[region] = flat.reshape(inferred)[region]
        return y

    return max_unpool_
