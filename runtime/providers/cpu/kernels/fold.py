"""Col2Im and ConvTranspose: both sum sliding windows back into an image ("fold").

``fold`` loops over the kernel offsets only: within one offset, different window positions
land on different image positions, so a plain fancy-indexed ``+=`` is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.schema.conv_transpose import conv_transpose_geometry
from edgefw.ir.schema.creation import MAX_ELEMENTS
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def fold(cols: np.ndarray, image: Sequence[int], kernel: Sequence[int], blocks: Sequence[int],
         strides: Sequence[int], dilations: Sequence[int], pads_begin: Sequence[int]
         ) -> np.ndarray:
    """cols [N, C, prod(kernel), prod(blocks)] summed into an image [N, C, *image]: window
    position l and kernel offset k land at l * stride - pad + k * dilation (if inside)."""
    if math.prod(image) * cols.shape[0] * cols.shape[1] > MAX_ELEMENTS:
        raise ShapeError(f"image {list(image)} is absurdly large")
    out = np.zeros(cols.shape[:2] + (math.prod(image),), dtype=cols.dtype)
    block_pos = np.indices(blocks).reshape(len(blocks), -1)  # [dims, L]
    for k, offset in enumerate(np.ndindex(*kernel)):
        coords = [block_pos[i] * strides[i] - pads_begin[i] + offset[i] * dilations[i]
                  for i in range(len(image))]
        inside = np.ones(block_pos.shape[1], bool)
        for c, size in zip(coords, image, strict=True):
            inside &= (c >= 0) & (c < size)
        flat = np.ravel_multi_index(tuple(c[inside] for c in coords), image)
        out[:, :, flat] += cols[:, :, k, inside]
    return out.reshape(cols.shape[:2] + tuple(image))


@cpu_kernel("Col2Im", since=18)
def col2im(ctx: KernelContext) -> Kernel:
    def col2im_(x, image_shape, block_shape):
        image = [int(d) for d in image_shape.reshape(-1)]
        kernel = [int(d) for d in block_shape.reshape(-1)]
        n = len(image)
        strides = ctx.attr("strides") or [1] * n
        dilations = ctx.attr("dilations") or [1] * n
        pads = ctx.attr("pads") or [0] * (2 * n)
        blocks = [(image[i] + pads[i] + pads[i + n] - dilations[i] * (kernel[i] - 1) - 1)
                  // strides[i] + 1 for i in range(n)]
        size = math.prod(kernel)
        if x.shape[1] % size or x.shape[2] != math.prod(blocks) or min(blocks) < 1:
            raise ShapeError(f"Col2Im input {list(x.shape)} does not fit image {image}, block "
                             f"{kernel} ({blocks} windows)")
        cols = x.reshape(x.shape[0], x.shape[1] // size, size, x.shape[2])
        return fold(cols, image, kernel, blocks, strides, dilations, pads[:n])

    return col2im_


@cpu_kernel("ConvTranspose", since=11)
def conv_transpose(ctx: KernelContext) -> Kernel:
    group = int(ctx.attr("group"))

    def conv_transpose_(x, w, b=None):
        n = x.ndim - 2
        kernel = list(w.shape[2:])
        strides = ctx.attr("strides") or [1] * n
        dilations = ctx.attr("dilations") or [1] * n
        out_spatial, begins = conv_transpose_geometry(
            x.shape[2:], kernel, strides, dilations, ctx.attr("output_padding") or [0] * n,
            ctx.attr("pads"), ctx.attr("output_shape"), ctx.attr("auto_pad"))
        channels_in, per_group = w.shape[0], w.shape[1]
        if x.shape[1] != channels_in or channels_in % group:
            raise ShapeError(f"ConvTranspose input {list(x.shape)} does not fit weight "
                             f"{list(w.shape)} with group {group}")
        batch, blocks = x.shape[0], list(x.shape[2:])
        xg = x.reshape(batch, group, channels_in // group, -1)
        wg = w.reshape(group, channels_in // group, per_group, -1)
        # cols[n, g, m, k, l] = sum_c w[g, c, m, k] * x[n, g, c, l]
        cols = np.einsum("gcmk,ngcl->ngmkl", wg, xg, optimize=True)
        cols = cols.reshape(batch, group * per_group, wg.shape[-1], xg.shape[-1])
        y = fold(cols, out_spatial, kernel, blocks, strides, dilations, begins)
        if b is not None:
            y += b.reshape((1, -1) + (1,) * n)
        return y.astype(x.dtype, copy=False)

    return conv_transpose_
