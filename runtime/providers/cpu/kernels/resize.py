"""Resize and Upsample, one axis at a time (interpolation is separable).

For each resized axis, every output position gets a source coordinate (the coordinate
transformation mode), then a window of taps with weights (nearest: 1 of 2, linear: 2,
cubic: 4; antialiasing widens linear/cubic when downsampling), gathered with edge clamping
and summed. This is the computation of ONNX's reference implementation, vectorised.
"""

from __future__ import annotations

import math

import numpy as np

from edgefw.errors import ShapeError
from edgefw.ir.schema.creation import MAX_ELEMENTS
from edgefw.ir.schema.resize import resize_plan
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def source_coordinates(mode: str, out_len: int, in_len: int, scale: float,
                       roi: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Source coordinate of each output position, and (tf_crop_and_resize only) which ones
    fall outside the input and take the extrapolation value."""
    y = np.arange(out_len, dtype=np.float64)
    virtual = scale * in_len  # the output length before rounding
    if mode == "align_corners":
        return (np.zeros(out_len) if virtual == 1 else y * (in_len - 1) / (virtual - 1)), None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "tf_crop_and_resize":
        lo, hi = roi if roi is not None else (0.0, 1.0)
        if virtual == 1:
            x = np.full(out_len, (hi - lo) * (in_len - 1) / 2)
        else:
            x = y * (hi - lo) * (in_len - 1) / (virtual - 1)
        x = x + lo * (in_len - 1)
        return x, (x < 0) | (x > in_len - 1)
    if mode == "pytorch_half_pixel":
        return (np.full(out_len, -0.5) if virtual == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / virtual)
        return offset + (y + 0.5) / scale - 0.5, None
    return (y + 0.5) / scale - 0.5, None  # half_pixel


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with coefficient ``a``."""
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def tap_weights(mode: str, ratio: np.ndarray, scale: float, nearest_mode: str, cubic_a: float,
                antialias: bool) -> np.ndarray:
    """[out, taps] weights for each output position's fractional offset ``ratio`` in (0, 1]
    (1 when the source coordinate is an integer)."""
    r = ratio[:, None]
    if mode == "nearest":
        exact = ratio[:, None] == 1
        if nearest_mode == "round_prefer_floor":
            right = r > 0.5
        elif nearest_mode == "round_prefer_ceil":
            right = r >= 0.5
        else:
            right = np.full_like(r, nearest_mode == "ceil", dtype=bool)
        right = right | exact
        return np.concatenate([~right, right], axis=1).astype(np.float64)
    if not antialias or scale >= 1:
        if mode == "linear":
            return np.concatenate([1 - r, r], axis=1)
        offsets = np.array([-1.0, 0.0, 1.0, 2.0])
        return _cubic(offsets[None, :] - r, cubic_a)
    # Antialiasing (downsampling): the filter is stretched by 1/scale and renormalised.
    support = 1.0 if mode == "linear" else 2.0
    start = int(math.floor(-support / scale) + 1)
    taps = np.arange(start, 2 - start)
    t = (taps[None, :] - r) * scale
    w = np.clip(1 - np.abs(t), 0, 1) if mode == "linear" else _cubic(t, cubic_a)
    return w / w.sum(axis=1, keepdims=True)


def resize_axis(x: np.ndarray, axis: int, out_len: int, scale: float, *, mode: str,
                coordinate_mode: str, nearest_mode: str, cubic_a: float, antialias: bool,
                exclude_outside: bool, extrapolation: float,
                roi: tuple[float, float] | None) -> np.ndarray:
    """``x`` (float64) resized along ``axis`` to ``out_len``."""
    in_len = x.shape[axis]
    if out_len == 0 or in_len == 0:
        shape = list(x.shape)
        shape[axis] = out_len
        return np.zeros(shape, dtype=x.dtype)
    coords, outside = source_coordinates(coordinate_mode, out_len, in_len, scale, roi)
    base = np.floor(coords)
    ratio = np.where(coords == base, 1.0, coords - base)
    weights = tap_weights(mode, ratio, scale, nearest_mode, cubic_a, antialias)
    n = weights.shape[1]
    # The n taps nearest the coordinate (ties to the left), as the reference picks them.
    pad = int(math.ceil(n / 2))
    shifted = coords + pad
    p = np.floor(shifted).astype(np.int64)
    frac = shifted - p
    if n % 2 == 0:
        offset = np.where(frac == 0, -(n // 2), -(n // 2) + 1)
    else:
        offset = np.where(frac <= 0.5, -((n - 1) // 2), -((n - 1) // 2) + 1)
    index = (p + offset)[:, None] + np.arange(n)[None, :] - pad
    if exclude_outside:
        weights = np.where((index < 0) | (index >= in_len), 0.0, weights)
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    gathered = np.take(x, np.clip(index, 0, in_len - 1), axis=axis)
    shape = (1,) * axis + weights.shape + (1,) * (x.ndim - axis - 1)
    y = (gathered * weights.reshape(shape)).sum(axis=axis + 1)
    if outside is not None and outside.any():
        mask = outside.reshape((1,) * axis + (out_len,) + (1,) * (x.ndim - axis - 1))
        y = np.where(mask, extrapolation, y)
    return y


def _cast(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(y), info.min, info.max).astype(dtype)
    return y.astype(dtype, copy=False)


@cpu_kernel("Resize", since=19)
def resize(ctx: KernelContext) -> Kernel:
    options = {
        "mode": ctx.attr("mode"),
        "coordinate_mode": ctx.attr("coordinate_transformation_mode"),
        "nearest_mode": ctx.attr("nearest_mode"),
        "cubic_a": float(ctx.attr("cubic_coeff_a")),
        "antialias": bool(ctx.attr("antialias")),
        "exclude_outside": bool(ctx.attr("exclude_outside")),
        "extrapolation": float(ctx.attr("extrapolation_value")),
    }
    axes_attr = ctx.attr("axes")
    policy = ctx.attr("keep_aspect_ratio_policy")

    def resize_(x, roi=None, scales=None, sizes=None):
        rank = x.ndim
        axes = list(range(rank)) if axes_attr is None else [a + rank if a < 0 else a
                                                            for a in axes_attr]
        given_scales = None if scales is None or scales.size == 0 else \
            [float(s) for s in scales.reshape(-1)]
        given_sizes = None if sizes is None or sizes.size == 0 else \
            [int(s) for s in sizes.reshape(-1)]
        out_shape, factors = resize_plan(x.shape, None if given_sizes else given_scales,
                                         given_sizes, axes_attr, policy)
        if math.prod(out_shape) > MAX_ELEMENTS:
            raise ShapeError(f"Resize output {out_shape} is absurdly large")
        rois: dict[int, tuple[float, float]] = {}
        if roi is not None and roi.size:
            values = [float(v) for v in roi.reshape(-1)]
            half = len(values) // 2
            for i, a in enumerate(axes if half == len(axes) else range(rank)):
                rois[a] = (values[i], values[i + half])
        y = x.astype(np.float64)
        for a in axes:
            scale = float(factors[a])
            if math.isclose(scale, 1.0) and out_shape[a] == y.shape[a] and rois.get(
                    a, (0.0, 1.0)) == (0.0, 1.0):
                continue  # identity along this axis
            y = resize_axis(y, a, int(out_shape[a]), scale, roi=rois.get(a), **options)
        return _cast(y, x.dtype)

    return resize_


@cpu_kernel("Upsample", since=9)
def upsample(ctx: KernelContext) -> Kernel:
    mode = ctx.attr("mode")

    def upsample_(x, scales):
        factors = [float(s) for s in scales.reshape(-1)]
        out_shape, _ = resize_plan(x.shape, factors, None, None, "stretch")
        y = x.astype(np.float64)
        for a, (scale, n) in enumerate(zip(factors, out_shape, strict=True)):
            if scale != 1.0 or n != x.shape[a]:
                y = resize_axis(y, a, int(n), scale, mode=mode, coordinate_mode="asymmetric",
                                nearest_mode="floor", cubic_a=-0.75, antialias=False,
                                exclude_outside=False, extrapolation=0.0, roi=None)
        return _cast(y, x.dtype)

    return upsample_
