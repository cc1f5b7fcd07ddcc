"""2-D pooling (ONNX ``MaxPool``/``AveragePool``/``GlobalAveragePool``, PyTorch's adaptive
average pooling) and their gradients, in numpy.

One vectorised operation per kernel tap, never a loop over pixels or batch. Windows that
tile the input (kernel == stride, no padding, LeNet's 2x2/2) are reduced from strided views
in the input's own memory order (:mod:`.pool_tiles`); every other case goes through a
:class:`~.windows.PolyphaseGrid`, where each tap is one contiguous slice. Padding never wins a
max (it is ``-inf``, or the integer minimum for int8 graphs) and counts toward an average only
with ``count_include_pad``. ``ceil_mode`` keeps a last partial window when it starts inside
the input or its top/left padding, as ONNX and PyTorch do.

>>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
>>> max_pool2d(x, (2, 2), (2, 2))[0, 0]
array([[ 5.,  7.],
       [13., 15.]], dtype=float32)
>>> avg_pool2d(x, (3, 3), (2, 2), pads=(1, 1, 1, 1))[0, 0]
array([[ 2.5,  4. ],
       [ 8.5, 10. ]], dtype=float32)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgefw.errors import DTypeError, ShapeError
from edgefw.ir.primitives.pool_tiles import (
    MAX_TILE_TAPS,
    tile_max,
    tile_max_backward,
    tile_max_with_taps,
    tile_mean,
    tile_mean_backward,
)
from edgefw.ir.primitives.windows import (
    PolyphaseGrid,
    conv_output_hw,
    copy_rows,
    int_tuple,
    scratch,
)

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_onnx_indices",
]


@dataclass(frozen=True)
class _PoolShape:
    x_shape: tuple[int, int, int, int]
    kernel_hw: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    out_hw: tuple[int, int]

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (*self.x_shape[:2], *self.out_hw)

    @property
    def taps(self) -> list[tuple[int, int]]:
        return [(i, j) for i in range(self.kernel_hw[0]) for j in range(self.kernel_hw[1])]

    @property
    def tiles_input(self) -> bool:
        """Windows are the disjoint tiles of the input: taps are plain strided views."""
        (ho, wo), (kh, kw) = self.out_hw, self.kernel_hw
        return (
            self.kernel_hw == self.strides
            and self.dilations == (1, 1)
            and not any(self.pads)
            and ho * kh <= self.x_shape[2]
            and wo * kw <= self.x_shape[3]
        )

    def grid(self) -> PolyphaseGrid:
        return PolyphaseGrid(self.x_shape[2:], self.kernel_hw, self.strides, self.pads,
                             self.dilations, self.out_hw)


def pool_shape(op, x_shape, kernel_hw, strides, pads, dilations, ceil_mode) -> _PoolShape:
    """The checked pooling geometry (output size, whether windows tile the input); cached,
    since training asks for the same few shapes thousands of times (~15 us of checks).

    >>> pool_shape("doc", (1, 1, 28, 28), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False).out_hw
    (14, 14)
    """
    try:
        key = (tuple(x_shape), tuple(kernel_hw), tuple(strides), tuple(pads),
               tuple(dilations), bool(ceil_mode))
        return _cachedpool_shape(op, *key)
    except TypeError:  # unhashable or non-sequence arguments: let the checks say what
        return _checkpool_shape(op, x_shape, kernel_hw, strides, pads, dilations, ceil_mode)


@functools.lru_cache(maxsize=256)
def _cachedpool_shape(op, x_shape, kernel_hw, strides, pads, dilations, ceil_mode):
    return _checkpool_shape(op, x_shape, kernel_hw, strides, pads, dilations, ceil_mode)


def _checkpool_shape(op, x_shape, kernel_hw, strides, pads, dilations, ceil_mode
                      ) -> _PoolShape:
    x_shape = tuple(int(d) for d in x_shape)
    if len(x_shape) != 4:
        raise ShapeError(f"{op}: input must be 4-D NCHW, got shape {x_shape}")
    kernel_hw = int_tuple(kernel_hw, 2, "kernel_hw", op, 1)
    strides = int_tuple(strides, 2, "strides", op, 1)
    pads = int_tuple(pads, 4, "pads", op, 0)
    dilations = int_tuple(dilations, 2, "dilations", op, 1)
    for axis in range(2):
        extent = dilations[axis] * (kernel_hw[axis] - 1) + 1
        if max(pads[axis], pads[axis + 2]) >= extent:
            raise ShapeError(
                f"{op}: pads {pads} must be smaller than the (dilated) kernel {kernel_hw}, "
                f"else a window can lie wholly in the padding"
            )
    out_hw = conv_output_hw(x_shape[2:], kernel_hw, strides, pads, dilations, ceil_mode, op=op)
    return _PoolShape(x_shape, kernel_hw, strides, pads, dilations, out_hw)


def _check_input(op: str, x, floating_only: bool) -> np.ndarray:
    x = np.asarray(x)
    kinds = "f" if floating_only else "fiu"
    if x.dtype.kind not in kinds:
        wanted = "a float" if floating_only else "a float or integer"
        raise DTypeError(f"{op}: input must have {wanted} dtype, got {x.dtype}")
    if x.ndim != 4:
        raise ShapeError(f"{op}: input must be 4-D NCHW, got shape {x.shape}")
    return x


def _check_grad(op: str, name: str, dy, expected: tuple, floating: bool = False) -> np.ndarray:
    dy = np.asarray(dy)
    if dy.shape != tuple(expected):
        raise ShapeError(f"{op}: {name} has shape {dy.shape}, expected {tuple(expected)}")
    if floating and dy.dtype.kind != "f":
        raise DTypeError(f"{op}: {name} must be floating point, got {dy.dtype}")
    return dy


def _lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _index_dtype(taps: int) -> np.dtype:
    return np.dtype(np.uint8 if taps <= 256 else np.int32)


# --------------------------------------------------------------------------- max pooling
def max_pool2d(
    x: np.ndarray,
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """ONNX ``MaxPool`` on NCHW ``x``; float or integer dtypes, kept in the output.

    With ``return_indices`` also returns, per output, the row-major kernel tap
    (``i * kw + j``) that held the first maximum — what :func:`max_pool2d_backward` takes;
    :func:`max_pool2d_onnx_indices` turns it into ONNX's flat ``Indices``. NaNs propagate.

    >>> x = np.array([[[[1., 3.], [4., 2.]]]])
    >>> y, taps = max_pool2d(x, (2, 2), (2, 2), return_indices=True)
    >>> float(y[0, 0, 0, 0]), int(taps[0, 0, 0, 0])
    (4.0, 2)
    """
    x = _check_input("max_pool2d", x, floating_only=False)
    s = pool_shape("max_pool2d", x.shape, kernel_hw, strides, pads, dilations, ceil_mode)
    taps = len(s.taps)
    if x.size == 0:
        y = np.zeros(s.out_shape, x.dtype)
        return (y, np.zeros(s.out_shape, _index_dtype(taps))) if return_indices else y
    if s.tiles_input and taps <= MAX_TILE_TAPS:  # strided views of x, no grid copy
        return tile_max_with_taps(x, s) if return_indices else tile_max(x, s)
    grid = s.grid()
    buf = grid.scatter(x, fill=_lowest(x.dtype))
    block = x.shape[0] * x.shape[1] * grid.hq * grid.wq
    windows = [buf[off:off + block] for off in grid.tap_offsets(block)]
    y = scratch("grid_out", (block,), x.dtype)
    np.copyto(y, windows[0])
    if return_indices:
        index_type = _index_dtype(taps).type
        idx = scratch("pool_idx", (block,), index_type, zero=True)
        tap_where_greater = scratch("pool_tap", (block,), index_type)
        mask = scratch("pool_mask", (block,), bool)
    for tap in range(1, taps):
        if return_indices:
            # idx < tap so far, so max(idx, tap * mask) moves exactly the masked entries to
            # tap: 3 fast passes where copyto(where=) or fancy indexing is 20-30x slower.
            np.greater(windows[tap], y, out=mask)
            np.multiply(mask, index_type(tap), out=tap_where_greater)
            np.maximum(idx, tap_where_greater, out=idx)
        np.maximum(y, windows[tap], out=y)
    y = _crop_copy(grid, y, x.shape)
    return (y, _crop_copy(grid, idx, x.shape)) if return_indices else y


def _crop_copy(grid: PolyphaseGrid, flat: np.ndarray, x_shape) -> np.ndarray:
    out = np.empty((*x_shape[:2], *grid.out_hw), flat.dtype)
    copy_rows(out, grid.crop(flat.reshape(*x_shape[:2], grid.hq, grid.wq)))
    return out


def max_pool2d_backward(
    dy: np.ndarray,
    indices: np.ndarray,
    x_shape: Sequence[int],
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    ceil_mode: bool = False,
) -> np.ndarray:
    """Gradient of :func:`max_pool2d`: each ``dy`` goes to its window's argmax.

    ``indices`` are the taps returned by ``max_pool2d(..., return_indices=True)`` with
    the same window arguments.

    >>> x = np.array([[[[1., 3.], [4., 2.]]]])
    >>> _, taps = max_pool2d(x, (2, 2), (2, 2), return_indices=True)
    >>> max_pool2d_backward(np.ones((1, 1, 1, 1)), taps, x.shape, (2, 2), (2, 2))[0, 0]
    array([[0., 0.],
           [1., 0.]])
    """
    op = "max_pool2d_backward"
    s = pool_shape(op, x_shape, kernel_hw, strides, pads, dilations, ceil_mode)
    dy = _check_grad(op, "dy", dy, s.out_shape, floating=True)
    indices = _check_grad(op, "indices", indices, s.out_shape)
    if indices.dtype.kind not in "iu":
        raise DTypeError(f"{op}: indices must be integer taps from max_pool2d, got {indices.dtype}")
    if s.tiles_input and len(s.taps) <= MAX_TILE_TAPS:
        return tile_max_backward(dy, indices, s)
    grid = s.grid()
    block = s.x_shape[0] * s.x_shape[1] * grid.hq * grid.wq
    # Junk grid positions carry dy = 0, so whatever tap they match adds nothing.
    dy_grid = grid.to_grid(dy, name="grid_out").reshape(-1)
    idx_grid = grid.to_grid(indices, name="pool_idx").reshape(-1)
    dbuf = scratch("grid_grad", (grid.buffer_size(block),), dy.dtype, zero=True)
    mask = scratch("pool_mask", (block,), bool)
    routed = scratch("pool_routed", (block,), dy.dtype)
    for tap, offset in enumerate(grid.tap_offsets(block)):
        window = dbuf[offset:offset + block]
        np.equal(idx_grid, tap, out=mask)
        np.multiply(dy_grid, mask, out=routed)  # add(where=mask) is ~20x slower
        window += routed
    dx = np.zeros(s.x_shape, dy.dtype)
    grid.gather(dbuf, dx)
    return dx


def max_pool2d_onnx_indices(
    indices: np.ndarray,
    x_shape: Sequence[int],
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    ceil_mode: bool = False,
) -> np.ndarray:
    """ONNX ``MaxPool`` ``Indices`` (int64, flat into NCHW, storage_order=0) from taps.

    >>> x = np.array([[[[1., 3.], [4., 2.]]]])
    >>> _, taps = max_pool2d(x, (2, 2), (2, 2), return_indices=True)
    >>> max_pool2d_onnx_indices(taps, x.shape, (2, 2), (2, 2)).ravel()
    array([2])
    """
    op = "max_pool2d_onnx_indices"
    s = pool_shape(op, x_shape, kernel_hw, strides, pads, dilations, ceil_mode)
    taps = _check_grad(op, "indices", indices, s.out_shape).astype(np.int64)
    n, c, h, w = s.x_shape
    (ho, wo), (kw,) = s.out_hw, s.kernel_hw[1:]
    rows = np.arange(ho)[:, None] * s.strides[0] - s.pads[0] + taps // kw * s.dilations[0]
    cols = np.arange(wo)[None, :] * s.strides[1] - s.pads[1] + taps % kw * s.dilations[1]
    planes = np.arange(n * c, dtype=np.int64).reshape(n, c, 1, 1)
    return (planes * h + rows) * w + cols


# --------------------------------------------------------------------------- average pooling
def _window_counts(s: _PoolShape, count_include_pad: bool, axis: int) -> np.ndarray:
    """How many positions of each output's window the average divides by, along one axis."""
    size, k, stride = s.x_shape[2 + axis], s.kernel_hw[axis], s.strides[axis]
    begin, end = s.pads[axis], s.pads[axis + 2]
    starts = np.arange(s.out_hw[axis]) * stride  # in padded coordinates
    if count_include_pad:  # padding counts, the ceil_mode overhang past it does not
        return np.minimum(starts + k, size + begin + end) - starts
    return np.minimum(starts + k, begin + size) - np.maximum(starts, begin)


def _inverse_divisor(s: _PoolShape, count_include_pad: bool, dtype) -> np.ndarray:
    counts_h = _window_counts(s, count_include_pad, 0)
    counts_w = _window_counts(s, count_include_pad, 1)
    return (1.0 / (counts_h[:, None] * counts_w[None, :])).astype(dtype)


def avg_pool2d(
    x: np.ndarray,
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int] = (0, 0, 0, 0),
    ceil_mode: bool = False,
    count_include_pad: bool = False,
) -> np.ndarray:
    """ONNX ``AveragePool`` on NCHW float ``x`` (dtype kept).

    >>> x = np.ones((1, 1, 3, 3), np.float32)
    >>> avg_pool2d(x, (2, 2), (2, 2), pads=(1, 1, 1, 1), count_include_pad=True)[0, 0]
    array([[0.25, 0.5 ],
           [0.5 , 1.  ]], dtype=float32)
    """
    x = _check_input("avg_pool2d", x, floating_only=True)
    s = pool_shape("avg_pool2d", x.shape, kernel_hw, strides, pads, (1, 1), ceil_mode)
    if s.tiles_input:
        return tile_mean(x, s)
    grid = s.grid()
    block = x.shape[0] * x.shape[1] * grid.hq * grid.wq
    buf = grid.scatter(x, name="grid_in")
    offsets = grid.tap_offsets(block)
    acc = scratch("grid_out", (block,), x.dtype)
    np.copyto(acc, buf[offsets[0]:offsets[0] + block])
    for offset in offsets[1:]:
        acc += buf[offset:offset + block]
    y = _crop_copy(grid, acc, x.shape)
    y *= _inverse_divisor(s, count_include_pad, x.dtype)
    return y


def avg_pool2d_backward(
    dy: np.ndarray,
    x_shape: Sequence[int],
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int] = (0, 0, 0, 0),
    ceil_mode: bool = False,
    count_include_pad: bool = False,
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d`: each ``dy`` spread evenly over its window.

    >>> avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2), (2, 2), (2, 2))[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    op = "avg_pool2d_backward"
    s = pool_shape(op, x_shape, kernel_hw, strides, pads, (1, 1), ceil_mode)
    dy = _check_grad(op, "dy", dy, s.out_shape, floating=True)
    if s.tiles_input:
        return tile_mean_backward(dy, s)
    grid = s.grid()
    block = s.x_shape[0] * s.x_shape[1] * grid.hq * grid.wq
    dy_grid = grid.to_grid(dy * _inverse_divisor(s, count_include_pad, dy.dtype), name="grid_out")
    dy_grid = dy_grid.reshape(-1)
    dbuf = scratch("grid_grad", (grid.buffer_size(block),), dy.dtype, zero=True)
    for offset in grid.tap_offsets(block):
        window = dbuf[offset:offset + block]
        window += dy_grid
    dx = np.zeros(s.x_shape, dy.dtype)
    grid.gather(dbuf, dx)
    return dx


def global_avg_pool2d(x: np.ndarray) -> np.ndarray:
    """ONNX ``GlobalAveragePool``: (N, C, H, W) -> (N, C, 1, 1), dtype kept.

    >>> global_avg_pool2d(np.arange(8.0).reshape(1, 2, 2, 2)).ravel()
    array([1.5, 5.5])
    """
    x = _check_input("global_avg_pool2d", x, floating_only=True)
    if x.shape[2] * x.shape[3] == 0:
        raise ShapeError(f"global_avg_pool2d: input {x.shape} has no pixels to average")
    return x.mean(axis=(2, 3), keepdims=True)


def global_avg_pool2d_backward(dy: np.ndarray, x_shape: Sequence[int]) -> np.ndarray:
    """Gradient of :func:`global_avg_pool2d`.

    >>> global_avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2))[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    x_shape = tuple(int(d) for d in x_shape)
    op = "global_avg_pool2d_backward"
    if len(x_shape) != 4 or x_shape[2] * x_shape[3] == 0:
        raise ShapeError(f"{op}: x_shape must be 4-D NCHW with pixels, got {x_shape}")
    dy = _check_grad(op, "dy", dy, (*x_shape[:2], 1, 1), floating=True)
    share = dy * dy.dtype.type(1.0 / (x_shape[2] * x_shape[3]))
    return np.broadcast_to(share, x_shape).copy()


# --------------------------------------------------------------------------- adaptive pooling
def _adaptive_matrix(size: int, out: int, dtype) -> np.ndarray:
    """(out, size) matrix averaging PyTorch's windows [floor(i*size/out), ceil((i+1)*size/out))."""
    i = np.arange(out)
    starts = i * size // out
    ends = -((-(i + 1) * size) // out)
    positions = np.arange(size)
    inside = (positions >= starts[:, None]) & (positions < ends[:, None])
    return (inside / (ends - starts)[:, None]).astype(dtype)


def _adaptive_args(op: str, x_shape, output_hw) -> tuple[int, int]:
    if len(x_shape) != 4 or x_shape[2] * x_shape[3] == 0:
        raise ShapeError(f"{op}: input must be 4-D NCHW with pixels, got shape {tuple(x_shape)}")
    return int_tuple(output_hw, 2, "output_hw", op, 1)


def adaptive_avg_pool2d(x: np.ndarray, output_hw: Sequence[int]) -> np.ndarray:
    """PyTorch ``AdaptiveAvgPool2d``: average over windows that split H and W into
    ``output_hw`` nearly equal, possibly overlapping parts. Computed as ``A_h @ x @ A_w.T``.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> adaptive_avg_pool2d(x, (2, 2))[0, 0]
    array([[2., 3.],
           [5., 6.]])
    """
    x = _check_input("adaptive_avg_pool2d", x, floating_only=True)
    oh, ow = _adaptive_args("adaptive_avg_pool2d", x.shape, output_hw)
    rows = _adaptive_matrix(x.shape[2], oh, x.dtype)
    cols = _adaptive_matrix(x.shape[3], ow, x.dtype)
    return np.matmul(rows, np.matmul(x, cols.T))


def adaptive_avg_pool2d_backward(dy: np.ndarray, x_shape: Sequence[int]) -> np.ndarray:
    """Gradient of :func:`adaptive_avg_pool2d` (``output_hw`` is ``dy``'s spatial size).

    >>> adaptive_avg_pool2d_backward(np.ones((1, 1, 1, 2)), (1, 1, 1, 3))[0, 0]
    array([[0.5, 1. , 0.5]])
    """
    op = "adaptive_avg_pool2d_backward"
    x_shape = tuple(int(d) for d in x_shape)
    dy = np.asarray(dy)
    if dy.ndim != 4:
        raise ShapeError(f"{op}: dy must be 4-D NCHW, got shape {dy.shape}")
    oh, ow = _adaptive_args(op, x_shape, dy.shape[2:])
    dy = _check_grad(op, "dy", dy, (*x_shape[:2], oh, ow), floating=True)
    rows = _adaptive_matrix(x_shape[2], oh, dy.dtype)
    cols = _adaptive_matrix(x_shape[3], ow, dy.dtype)
    return np.matmul(rows.T, np.matmul(dy, cols))
