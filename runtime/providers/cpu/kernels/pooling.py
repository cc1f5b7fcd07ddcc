"""MaxPool, AveragePool and GlobalAveragePool on the shared numpy pooling primitives."""

from __future__ import annotations

import numpy as np

from edgefw.errors import UnsupportedOpError
from edgefw.ir.primitives import avg_pool2d, global_avg_pool2d, max_pool2d, max_pool2d_onnx_indices
from edgefw.ir.primitives.pool import pool_shape
from edgefw.ir.primitives.pool_tiles import bind_tile_max
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.kernels.conv import as_2d, pads_for, spatial_rank, window_params
from runtime.providers.cpu.registry import cpu_kernel


def _pool_kernel(ctx: KernelContext, pool) -> Kernel:
    """Shared attribute handling; ``pool(x4, kernel, strides, pads, dilations)`` does 2-D."""
    x_shape = ctx.input_shape(0)
    n = spatial_rank(ctx, ctx.node.op_type, None if x_shape is None else len(x_shape))
    kernel = [int(k) for k in ctx.attr("kernel_shape")]
    strides, dilations = window_params(ctx, kernel)
    static_pads = pads_for(ctx, x_shape[2:], kernel, strides, dilations)

    def pool_(x):
        pads = static_pads if static_pads is not None else pads_for(
            ctx, x.shape[2:], kernel, strides, dilations)
        pads2, st2, dl2, k2 = as_2d(pads, strides, dilations, kernel)
        x4 = x if n == 2 else x[:, :, None, :]
        y = pool(x4, k2, st2, pads2, dl2)
        if n == 2:
            return y
        if isinstance(y, tuple):
            return tuple(part.reshape(part.shape[:2] + part.shape[3:]) for part in y)
        return y[:, :, 0, :]

    return pool_


def _bound_tile_max(ctx: KernelContext, ceil_mode: bool) -> Kernel | None:
    """A prebuilt 2-D max pooling over tiles (kernel == stride, no pads) for a static float
    input shape, writing into the planner's buffer; None when that does not apply."""
    x_shape = ctx.static_input_shape(0)
    dtype = ctx.output_dtype()
    if x_shape is None or len(x_shape) != 4 or dtype.kind not in "fiu":
        return None
    kernel = [int(k) for k in ctx.attr("kernel_shape")]
    strides, dilations = window_params(ctx, kernel)
    pads = pads_for(ctx, x_shape[2:], kernel, strides, dilations)
    if pads is None:
        return None
    s = pool_shape("MaxPool", x_shape, kernel, strides, pads, dilations, ceil_mode)
    if not s.tiles_input:
        return None
    return bind_tile_max(s, dtype, ctx.output_buffer())


@cpu_kernel("MaxPool", since=12)
def max_pool(ctx: KernelContext) -> Kernel:
    ceil_mode = bool(ctx.attr("ceil_mode"))
    if len(ctx.node.outputs) == 1:
        bound = _bound_tile_max(ctx, ceil_mode)
        if bound is not None:
            return bound
        return _pool_kernel(ctx, lambda x, k, s, p, d: max_pool2d(x, k, s, p, d, ceil_mode))
    if ctx.attr("storage_order"):
        raise UnsupportedOpError("MaxPool Indices with storage_order=1 (column-major) are not "
                                 "supported by the CPU provider")

    def with_indices(x, k, s, p, d):
        y, taps = max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True)
        # Flat NCHW indices; for 1-D pooling (H == 1) they equal the flat NCW ones.
        return y, max_pool2d_onnx_indices(taps, x.shape, k, s, p, d, ceil_mode)

    return _pool_kernel(ctx, with_indices)


@cpu_kernel("AveragePool", since=19)
def average_pool(ctx: KernelContext) -> Kernel:
    ceil_mode = bool(ctx.attr("ceil_mode"))
    count_include_pad = bool(ctx.attr("count_include_pad"))
    dilations = ctx.attr("dilations")
    if dilations and any(int(d) != 1 for d in dilations):
        raise UnsupportedOpError("AveragePool with dilations is not supported by the CPU provider")
    return _pool_kernel(
        ctx, lambda x, k, s, p, d: avg_pool2d(x, k, s, p, ceil_mode, count_include_pad)
    )


@cpu_kernel("GlobalAveragePool")
def global_average_pool(ctx: KernelContext) -> Kernel:
    static = _static_global_average_pool(ctx)

    def global_average_pool_(x):
        if static is not None and x.flags.c_contiguous:
            return static(x)
        if x.ndim == 4 and x.dtype.kind == "f" and x.shape[2] * x.shape[3] > 0:
            # A ufunc reduction and a scale: np.mean's wrapper costs ~3 us at batch 1.
            total = np.add.reduce(x, axis=(2, 3), keepdims=True)
            return np.multiply(total, x.dtype.type(1.0 / (x.shape[2] * x.shape[3])), out=total)
        if x.ndim == 4:
            return global_avg_pool2d(x)
        return np.mean(x, axis=tuple(range(2, x.ndim)), keepdims=True, dtype=x.dtype)

    return global_average_pool_


def _static_global_average_pool(ctx: KernelContext) -> Kernel | None:
    """GlobalAveragePool of a static-shape float32/64 NCHW input as one matrix-vector product
    into the output buffer: ``x.reshape(N * C, H * W) @ (1 / HW)``. numpy's reduction over
    two short trailing axes costs ~5 us for (1, 64, 7, 7); BLAS's gemv ~1 us, and it
    streams at batch 256 too. For C-contiguous inputs only: a convolution's batch-minor
    output (``(C, H, W, N)`` in memory) would be copied by the reshape (1.8 ms for
    MobileNet's (256, 64, 7, 7)), where the ufunc reduction reads it in place."""
    shape = ctx.static_input_shape(0)
    dtype = ctx.output_dtype()
    if shape is None or len(shape) < 3 or dtype not in (np.float32, np.float64):
        return None
    rows, area = shape[0] * shape[1], int(np.prod(shape[2:], dtype=np.int64))
    if rows == 0 or area == 0:
        return None
    average = np.full((area, 1), 1.0 / area, dtype)
    out = ctx.output_buffer()
    out_2d = None if out is None else out.reshape(rows, 1)

    def global_average_pool_gemv(x):
        y = np.matmul(x.reshape(rows, area), average, out=out_2d)
        return y.reshape(shape[:2] + (1,) * (len(shape) - 2)) if out is None else out

    return global_average_pool_gemv

