"""GlobalMaxPool, and LpPool over N-D windows (strided sliding-window views)."""

from __future__ import annotations

import numpy as np

from edgefw.ir.schema.dims import pool_output_dim, resolve_pads
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


@cpu_kernel("GlobalMaxPool")
def global_max_pool(ctx: KernelContext) -> Kernel:
    def global_max_pool_(x):
        return np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)

    return global_max_pool_


def pooling_windows(x: np.ndarray, kernel: list[int], strides: list[int], dilations: list[int],
                    pads: list[tuple[int, int]], ceil_mode: bool, fill: float) -> np.ndarray:
    """A view [N, C, *out, *kernel] of every (dilated) window of ``x`` padded with ``fill``."""
    n = len(kernel)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations, strict=True)]
    widths = [(0, 0), (0, 0)]
    for i in range(n):
        size = x.shape[2 + i]
        out = pool_output_dim(size, kernel[i], strides[i], pads[i][0], pads[i][1], dilations[i],
                              ceil_mode)
        # ceil_mode may need windows that run past the end padding: pad a little more.
        needed = (out - 1) * strides[i] + spans[i] - (size + pads[i][0] + pads[i][1])
        widths.append((pads[i][0], pads[i][1] + max(needed, 0)))
    padded = np.pad(x, widths, constant_values=fill)
    view = np.lib.stride_tricks.sliding_window_view(padded, spans, axis=tuple(range(2, 2 + n)))
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides) + tuple(
        slice(None, None, d) for d in dilations)
    view = view[index]
    # Drop windows past the computed output length (the extra ceil_mode padding can add one).
    outs = [pool_output_dim(x.shape[2 + i], kernel[i], strides[i], pads[i][0], pads[i][1],
                            dilations[i], ceil_mode) for i in range(n)]
    return view[(slice(None), slice(None)) + tuple(slice(0, o) for o in outs)]


@cpu_kernel("LpPool", since=18)
def lp_pool(ctx: KernelContext) -> Kernel:
    kernel = [int(k) for k in ctx.attr("kernel_shape")]
    n = len(kernel)
    strides = [int(s) for s in (ctx.attr("strides") or [1] * n)]
    dilations = [int(d) for d in (ctx.attr("dilations") or [1] * n)]
    ceil_mode = bool(ctx.attr("ceil_mode"))
    p = float(ctx.attr("p"))

    def lp_pool_(x):
        pads = resolve_pads(ctx.attr("auto_pad"), ctx.attr("pads"), x.shape[2:], kernel, strides,
                            dilations)
        windows = pooling_windows(np.abs(x), kernel, strides, dilations, pads, ceil_mode, 0.0)
        total = np.sum(np.power(windows, p), axis=tuple(range(-n, 0)))
        return np.power(total, 1.0 / p).astype(x.dtype, copy=False)

    return lp_pool_
