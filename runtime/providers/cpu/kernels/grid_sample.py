"""AffineGrid and GridSample (nearest / linear / cubic, zeros / border / reflection padding,
N-D), vectorised over every output position.

Coordinates are computed in float32, as ONNX's reference does, so nearest rounding and
reflection agree with it at ties.
"""

from __future__ import annotations

import itertools

import numpy as np

from edgefw.errors import ShapeError
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel

_CUBIC_A = -0.75


def base_coordinates(size: int, align_corners: bool) -> np.ndarray:
    """The normalized [-1, 1] coordinates of ``size`` pixel centres (or corners)."""
    if align_corners:
        return np.linspace(-1.0, 1.0, size) if size > 1 else np.array([-1.0])
    return (2 * np.arange(size) + 1) / size - 1


@cpu_kernel("AffineGrid", since=20)
def affine_grid(ctx: KernelContext) -> Kernel:
    align = bool(ctx.attr("align_corners"))
    dtype = ctx.output_dtype()

    def affine_grid_(theta, size):
        dims = [int(d) for d in size.reshape(-1)]
        spatial = dims[2:]
        if theta.shape[1:] != (len(spatial), len(spatial) + 1) or theta.shape[0] != dims[0]:
            raise ShapeError(f"AffineGrid theta {list(theta.shape)} does not fit size {dims}")
        axes = [base_coordinates(s, align) for s in spatial]
        mesh = np.meshgrid(*axes, indexing="ij")  # one array per spatial dim (D, H, W order)
        # Homogeneous points (x, y[, z], 1): the last spatial dim is the first coordinate.
        points = np.stack([*mesh[::-1], np.ones(spatial)], axis=-1).reshape(-1, len(spatial) + 1)
        grid = np.einsum("nij,pj->npi", theta.astype(np.float64), points)
        return grid.reshape([dims[0], *spatial, len(spatial)]).astype(dtype)

    return affine_grid_


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect coordinates off the borders [lo, hi] until inside."""
    span = hi - lo
    if span <= 0:
        return np.full_like(x, lo)
    below, above = x < lo, x > hi
    dist = np.where(below, lo - x, np.where(above, x - hi, 0)).astype(x.dtype)
    flips = np.floor(dist / x.dtype.type(span))
    rest = dist - flips * x.dtype.type(span)
    even = flips % 2 == 0
    from_below = np.where(even, lo + rest, hi - rest)
    from_above = np.where(even, hi - rest, lo + rest)
    return np.where(below, from_below, np.where(above, from_above, x)).astype(x.dtype)


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    a = _CUBIC_A
    t1, t2, t3 = t + 1, 1 - t, 2 - t
    return [((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a,
            ((a + 2) * t - (a + 3)) * t * t + 1,
            ((a + 2) * t2 - (a + 3)) * t2 * t2 + 1,
            ((a * t3 - 5 * a) * t3 + 8 * a) * t3 - 4 * a]


def _taps(x: np.ndarray, mode: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(integer index, weight) pairs of one coordinate axis."""
    if mode == "nearest":
        return [(x.astype(np.int64), np.ones_like(x))]
    base = np.floor(x)
    t = x - base
    i0 = base.astype(np.int64)
    if mode == "linear":
        return [(i0, 1 - t), (i0 + 1, t)]
    return [(i0 + k - 1, w) for k, w in enumerate(_cubic_weights(t))]


@cpu_kernel("GridSample", since=16)
def grid_sample(ctx: KernelContext) -> Kernel:
    align = bool(ctx.attr("align_corners"))
    mode, padding = ctx.attr("mode"), ctx.attr("padding_mode")

    def grid_sample_(x, grid):
        n_dims = x.ndim - 2
        dims = x.shape[2:]
        if grid.shape[0] != x.shape[0] or grid.shape[-1] != n_dims:
            raise ShapeError(f"GridSample grid {list(grid.shape)} does not fit input "
                             f"{list(x.shape)}")
        per_axis = []
        for i, d in enumerate(dims):
            g = grid[..., n_dims - 1 - i].astype(np.float32)  # grid lists W first
            c = ((g + 1) / 2 * (d - 1)) if align else (((g + 1) * d - 1) / 2)
            c = c.astype(np.float32)
            lo, hi = (0.0, d - 1.0) if align else (-0.5, d - 0.5)
            if mode == "nearest":
                c = np.rint(c)
            if padding == "border":
                c = np.where((c < lo) | (c > hi), np.clip(c, 0, d - 1), c)
            elif padding == "reflection":
                c = _reflect(c, lo, hi)
            taps = []
            for index, weight in _taps(c.astype(np.float32), mode):
                if padding == "zeros":  # taps outside the image read 0
                    weight = weight * ((index >= 0) & (index < d))
                elif padding == "reflection":
                    index = _reflect(index.astype(np.float32), lo, hi).astype(np.int64)
                taps.append((np.clip(index, 0, d - 1), weight))
            per_axis.append(taps)
        batch = np.arange(x.shape[0]).reshape((-1,) + (1,) * (grid.ndim - 2))
        moved = np.moveaxis(x, 1, -1)  # [N, spatial..., C]
        y = np.zeros(grid.shape[:-1] + (x.shape[1],), np.float64)
        for combo in itertools.product(*per_axis):
            weight = np.prod([w for _, w in combo], axis=0)
            y += moved[(batch,) + tuple(i for i, _ in combo)] * weight[..., None]
        return np.moveaxis(y, -1, 1).astype(x.dtype)

    return grid_sample_
