"""Pooling whose windows tile the input (kernel == stride, no padding, no dilation): the
2x2/2 max pooling of LeNet and VGG-style nets, and its average twin.

Each kernel tap is a strided view of the input, so nothing is copied into a grid. Work
happens in the input's memory order — batch-minor ``(C, H, W, N)`` when that is how the
input is stored (what :func:`~.conv.conv2d` returns), else NCHW — and results come back
in the same order, so a conv -> relu -> pool -> conv chain never transposes.

Windows are reduced in two stages, first along each row (over the kernel columns ``j``)
and then across rows (over ``i``). Ties keep the earlier candidate at both stages, which
gives the row-major first maximum, ``i * kw + j``: the tap :func:`~.pool.max_pool2d`
reports. In batch-minor order the row stage compares runs of ``N`` values and the row
stage over ``i`` whole image rows of ``W * N`` values.

>>> import numpy as np
>>> from edgefw.ir.primitives.pool import pool_shape
>>> x = np.array([[[[1., 3.], [4., 2.]]]])
>>> y, taps = tile_max_with_taps(x, pool_shape("doc", x.shape, (2, 2), (2, 2),
...                                             (0, 0, 0, 0), (1, 1), False))
>>> float(y[0, 0, 0, 0]), int(taps[0, 0, 0, 0])
(4.0, 2)
"""

from __future__ import annotations

import numpy as np

from edgefw.ir.primitives.windows import batch_minor, from_batch_minor

__all__ = [
    "bind_tile_max",
    "tile_max",
    "tile_max_backward",
    "tile_max_with_taps",
    "tile_mean",
    "tile_mean_backward",
]

# Beyond this many taps a uint8 tap index would overflow: pool.py takes the grid path.
MAX_TILE_TAPS = 256


class _Order:
    """An NCHW array seen in its memory order, with slicing by (rows, cols)."""

    def __init__(self, x: np.ndarray) -> None:
        xb = batch_minor(x)
        self.minor = x.shape[0] > 1 and xb.flags.c_contiguous
        self.array = xb if self.minor else x

    def view(self, array: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        if self.minor:
            return array[:, rows, cols, :]
        return array[:, :, rows, cols]

    def shape(self, nchw: tuple[int, ...]) -> tuple[int, ...]:
        """An NCHW shape in this memory order."""
        return (*nchw[1:], nchw[0]) if self.minor else tuple(nchw)

    def to_nchw(self, array: np.ndarray) -> np.ndarray:
        return from_batch_minor(array) if self.minor else array

    def of(self, nchw_array: np.ndarray) -> np.ndarray:
        """Another NCHW array (a gradient) seen in this order (no copy)."""
        return batch_minor(nchw_array) if self.minor else nchw_array


def _row_views(order: _Order, s) -> list[np.ndarray]:
    """Per kernel column j: (.., ho*kh rows, wo, ..) view of every j-th input column."""
    (ho, wo), (kh, kw) = s.out_hw, s.kernel_hw
    rows = slice(0, ho * kh)
    return [order.view(order.array, rows, slice(j, j + wo * kw, kw)) for j in range(kw)]


def _across_rows(order: _Order, array: np.ndarray, kh: int) -> list[np.ndarray]:
    return [order.view(array, slice(i, None, kh), slice(None)) for i in range(kh)]


def _running_max(views: list[np.ndarray], with_argmax: bool):
    """Elementwise max of ``views`` and, if asked, the first index holding it (bool for two
    views, else uint8)."""
    best = np.array(views[0])
    chosen = None
    for k in range(1, len(views)):
        if with_argmax:
            mask = np.greater(views[k], best)
            if chosen is None:
                chosen = mask  # k == 1: the index is the mask itself
            else:
                if chosen.dtype == bool:
                    chosen = chosen.view(np.uint8)
                np.maximum(chosen, mask.view(np.uint8) * np.uint8(k), out=chosen)
        np.maximum(best, views[k], out=best)
    if with_argmax and chosen is None:
        chosen = np.zeros(best.shape, np.uint8)
    return best, chosen


def tile_max(x: np.ndarray, s) -> np.ndarray:
    """Max pooling of ``x`` over tiles (inference: no argmax)."""
    order = _Order(x)
    row_max, _ = _running_max(_row_views(order, s), with_argmax=False)
    y, _ = _running_max(_across_rows(order, row_max, s.kernel_hw[0]), with_argmax=False)
    return order.to_nchw(y)


def bind_tile_max(s, dtype, out: np.ndarray | None = None):
    """``x -> tile_max(x)`` for one static shape with the scratch row buffer and the output
    (an NCHW-shaped C-contiguous array, filled in the input's memory order) bound once:
    the runtime's path, two ``np.maximum`` calls for a 2x2 pooling."""
    (n, c, _, w), (ho, wo), (kh, kw) = s.x_shape, s.out_hw, s.kernel_hw
    everything = slice(None)
    row_taps = [slice(i, i + ho * kh, kh) for i in range(kh)]
    col_taps = [slice(j, j + wo * kw, kw) for j in range(kw)]
    # Per memory order: (row buffer, output, (H, W) position of the spatial axes' slices).
    orders = {}
    for minor in (False, True):
        if minor:
            rows = np.empty((c, ho, w, n), dtype)
            y = None if out is None else out.reshape(c, ho, wo, n)
            row_index = [(everything, t) for t in row_taps]
            col_index = [(everything, everything, t) for t in col_taps]
        else:
            rows = np.empty((n, c, ho, w), dtype)
            y = out
            row_index = [(everything, everything, t) for t in row_taps]
            col_index = [(everything, everything, everything, t) for t in col_taps]
        orders[minor] = (rows, y, row_index, col_index)

    def maximum_of(source: np.ndarray, index: list, target: np.ndarray) -> None:
        if len(index) == 1:
            np.copyto(target, source[index[0]])
            return
        np.maximum(source[index[0]], source[index[1]], out=target)
        for tap in index[2:]:
            np.maximum(target, source[tap], out=target)

    def tile_max_bound(x: np.ndarray) -> np.ndarray:
        minor = n > 1 and x.strides[0] == x.itemsize and batch_minor(x).flags.c_contiguous
        rows, y, row_index, col_index = orders[minor]
        a = batch_minor(x) if minor else x
        if y is None:
            y = np.empty((c, ho, wo, n) if minor else (n, c, ho, wo), dtype)
        # Across rows first: whole rows of w*N (or w) values per comparison.
        maximum_of(a, row_index, rows)
        maximum_of(rows, col_index, y)
        return from_batch_minor(y) if minor else y

    return tile_max_bound


def tile_max_with_taps(x: np.ndarray, s) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling over tiles and the row-major tap of each window's first maximum."""
    order = _Order(x)
    kh, kw = s.kernel_hw
    row_max, j_best = _running_max(_row_views(order, s), with_argmax=True)
    y, i_best = _running_max(_across_rows(order, row_max, kh), with_argmax=True)
    j_rows = _across_rows(order, j_best, kh)
    if kh == 1:
        j_chosen = j_rows[0]
    elif kh == 2 and kw == 2:  # i_best ? j1 : j0 on bools, branch-free (np.where
        # branches per element and mispredicts on random data)
        j_chosen = np.bitwise_xor(j_rows[0], j_rows[1])
        j_chosen &= i_best
        j_chosen ^= j_rows[0]
    else:
        j_chosen = np.choose(i_best.view(np.uint8), j_rows)
    taps = np.multiply(i_best, np.uint8(kw), dtype=np.uint8)
    np.add(taps, j_chosen, out=taps, casting="unsafe")
    return order.to_nchw(y), order.to_nchw(taps)


def tile_max_backward(dy: np.ndarray, taps: np.ndarray, s) -> np.ndarray:
    """Gradient of :func:`tile_max_with_taps`, in the memory order of ``taps``."""
    order = _Order(taps)
    dx = np.zeros(order.shape(s.x_shape), dy.dtype)
    dy_o, taps_o = order.of(dy), order.of(taps)
    (ho, wo), (kh, kw) = s.out_hw, s.kernel_hw
    mask = np.empty(taps_o.shape, bool)
    for i in range(kh):
        for j in range(kw):
            np.equal(taps_o, i * kw + j, out=mask)
            window = order.view(dx, slice(i, i + ho * kh, kh), slice(j, j + wo * kw, kw))
            np.multiply(dy_o, mask, out=window)
    return order.to_nchw(dx)


def tile_mean(x: np.ndarray, s) -> np.ndarray:
    """Average pooling of a floating ``x`` over tiles."""
    order = _Order(x)
    kh, kw = s.kernel_hw
    views = _row_views(order, s)
    row_sum = np.array(views[0])
    for view in views[1:]:
        row_sum += view
    rows = _across_rows(order, row_sum, kh)
    y = np.array(rows[0])
    for view in rows[1:]:
        y += view
    y *= x.dtype.type(1.0 / (kh * kw))
    return order.to_nchw(y)


def tile_mean_backward(dy: np.ndarray, s) -> np.ndarray:
    """Gradient of :func:`tile_mean`, in the memory order of ``dy``."""
    order = _Order(dy)
    (ho, wo), (kh, kw) = s.out_hw, s.kernel_hw
    dx = np.zeros(order.shape(s.x_shape), dy.dtype)
    share = order.of(dy) * dy.dtype.type(1.0 / (kh * kw))
    for i in range(kh):
        for j in range(kw):
            window = order.view(dx, slice(i, i + ho * kh, kh), slice(j, j + wo * kw, kw))
            np.copyto(window, share)
    return order.to_nchw(dx)
