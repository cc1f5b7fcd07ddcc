"""LRN: local response normalization across channels (AlexNet, GoogLeNet).

    y = x / (bias + alpha / size * sum_{c' near c} x[c']^2) ^ beta

with the window [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to the channels. The
window sums come from one cumulative sum over the padded channel axis, so the cost does not
grow with ``size``.
"""

from __future__ import annotations

import numpy as np

from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def channel_window_sums(x: np.ndarray, size: int) -> np.ndarray:
    """For each channel c, the sum of x over channels [c - (size-1)//2, c + size//2]."""
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    widths = [(0, 0), (before + 1, after)] + [(0, 0)] * (x.ndim - 2)
    running = np.cumsum(np.pad(x, widths), axis=1, dtype=np.float64)
    channels = x.shape[1]
    return running[:, size:size + channels] - running[:, :channels]


@cpu_kernel("LRN")
def lrn(ctx: KernelContext) -> Kernel:
    size = int(ctx.attr("size"))
    alpha, beta, bias = float(ctx.attr("alpha")), float(ctx.attr("beta")), float(ctx.attr("bias"))
    dtype = ctx.output_dtype()

    def lrn_(x):
        sums = channel_window_sums(np.square(x, dtype=np.float64), size)
        scale = np.power(bias + (alpha / size) * sums, -beta)
        return (x * scale).astype(dtype, copy=False)

    return lrn_
