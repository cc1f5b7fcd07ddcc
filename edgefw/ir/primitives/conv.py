"""2-D convolution (ONNX ``Conv`` semantics) and its gradients, in numpy.

Layout is ONNX's: input NCHW, weights OIHW with ``I = C_in / group``, bias ``(O,)``,
``pads = (top, left, bottom, right)``. The same functions serve the autograd ops (forward and
backward while training) and the runtime's CPU kernels (inference), so they keep the input's
dtype (float32 in, float32 out) and avoid Python loops over pixels or batch items.

How the work is laid out, and why. numpy pays a fixed cost (~20 ns) for every call of its
innermost loop, so the textbook im2col/col2im, which slices the NCHW tensor once per kernel
tap and makes one inner-loop call per output *row*, spends more time in that overhead than
in arithmetic (col2im alone took several times the GEMM). :class:`PolyphaseGrid` instead
copies the padded input once into a flat buffer, split by stride phase, in which every
kernel tap reads one *contiguous* slice. im2col becomes ``kh*kw`` memcpy-like copies, col2im
``kh*kw`` contiguous adds, and the depthwise convolution ``kh*kw`` multiply-adds over whole
channels. The price is a few junk grid columns/rows computed and thrown away.

>>> x = np.ones((1, 1, 4, 4), np.float32)
>>> w = np.ones((1, 1, 3, 3), np.float32)
>>> conv2d(x, w, pads=(1, 1, 1, 1))[0, 0]
array([[4., 6., 6., 4.],
       [6., 9., 9., 6.],
       [6., 9., 9., 6.],
       [4., 6., 6., 4.]], dtype=float32)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgefw.errors import DTypeError, ShapeError

__all__ = [
    "PolyphaseGrid",
    "conv2d",
    "conv2d_backward",
    "conv_output_hw",
    "release_scratch",
    "same_pads",
    "scratch",
]


# --------------------------------------------------------------------------- scratch memory
class _ScratchSlots(threading.local):
    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}


_SCRATCH = _ScratchSlots()
# Larger temporaries are allocated per call: their page faults are then small next to the work.
SCRATCH_SLOT_LIMIT_BYTES = 64 << 20
# A temporary this big means absurd shapes or pads (e.g. from a corrupt model file).
TEMPORARY_LIMIT_BYTES = 8 << 30


def scratch(name: str, shape: Sequence[int], dtype, zero: bool = False) -> np.ndarray:
    """A temporary array kept per thread under ``name`` and reused by the next call.

    Why: im2col columns and padded grids are megabytes; fresh ones cost a page fault per
    4 KiB page every call (glibc hands big blocks back to the kernel), which measured 3-4x
    the arithmetic of a LeNet conv backward. The caller must be done with the array before
    asking for the same ``name`` again, and must never return it.

    >>> a = scratch("doc", (2, 3), np.float32, zero=True)
    >>> a.shape, a.dtype, float(a.sum())
    ((2, 3), dtype('float32'), 0.0)
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > TEMPORARY_LIMIT_BYTES:
        raise ShapeError(
            f"temporary '{name}' of shape {tuple(shape)} would take {nbytes / 2**30:.1f} GiB "
            f"(limit {TEMPORARY_LIMIT_BYTES >> 30} GiB); check the input size, pads and strides"
        )
    if nbytes > SCRATCH_SLOT_LIMIT_BYTES:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    slot = _SCRATCH.buffers.get(name)
    if slot is None or slot.nbytes < nbytes:
        slot = np.empty(max(nbytes, 64), np.uint8)
        _SCRATCH.buffers[name] = slot
    array = slot[:nbytes].view(dtype).reshape(shape)
    if zero:
        array.fill(0)
    return array


def release_scratch() -> None:
    """Free this thread's scratch arrays (e.g. after training, before deployment work)."""
    _SCRATCH.buffers.clear()


def matmul_nt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.swapaxes(-1, -2)`` for (G, X, K) and (G, Y, K) with a long K, e.g. weight grads.

    OpenBLAS is 3x slower than it could be on a small X*Y output with K in the tens of
    thousands; summing K-chunks of 2048 as a batched matmul restores the speed.
    """
    groups, rows, depth = a.shape
    cols = b.shape[1]
    chunk = 2048
    if rows * cols > 1024 or depth < 4 * chunk:
        return np.matmul(a, b.transpose(0, 2, 1))
    n_chunks, full = depth // chunk, depth // chunk * chunk
    a_chunks = a[:, :, :full].reshape(groups, rows, n_chunks, chunk).transpose(0, 2, 1, 3)
    b_chunks = b[:, :, :full].reshape(groups, cols, n_chunks, chunk).transpose(0, 2, 3, 1)
    out = np.matmul(a_chunks, b_chunks).sum(axis=1)
    if full < depth:
        out += np.matmul(a[:, :, full:], b[:, :, full:].transpose(0, 2, 1))
    return out


# --------------------------------------------------------------------------- arguments
def int_tuple(value: Sequence[int], length: int, name: str, op: str, minimum: int) -> tuple:
    """``value`` as a tuple of ``length`` ints, each ``>= minimum``, else a ShapeError."""
    try:
        items = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ShapeError(f"{op}: {name} must be {length} integers, got {value!r}") from None
    if len(items) != length or any(v < minimum for v in items):
        raise ShapeError(f"{op}: {name} must be {length} integers >= {minimum}, got {value!r}")
    return items


def conv_output_hw(
    in_hw: Sequence[int],
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    ceil_mode: bool = False,
    op: str = "conv2d",
) -> tuple[int, int]:
    """Output height and width of a sliding-window op (Conv, MaxPool, AveragePool).

    With ``ceil_mode`` a partial last window is kept, but only if it starts inside the
    input or its top/left padding (the ONNX/PyTorch rule). Raises :class:`ShapeError` when
    the (dilated) kernel does not fit the padded input.

    >>> conv_output_hw((28, 28), (5, 5), (1, 1), (2, 2, 2, 2), (1, 1))
    (28, 28)
    >>> conv_output_hw((5, 5), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), ceil_mode=True)
    (3, 3)
    """
    in_hw = int_tuple(in_hw, 2, "input size", op, 0)
    kernel_hw = int_tuple(kernel_hw, 2, "kernel_hw", op, 1)
    strides = int_tuple(strides, 2, "strides", op, 1)
    pads = int_tuple(pads, 4, "pads", op, 0)
    dilations = int_tuple(dilations, 2, "dilations", op, 1)
    out = []
    for axis in range(2):
        size, stride, begin = in_hw[axis], strides[axis], pads[axis]
        padded = size + begin + pads[axis + 2]
        extent = dilations[axis] * (kernel_hw[axis] - 1) + 1
        span = padded - extent
        if span < 0 or size == 0:
            raise ShapeError(
                f"{op}: kernel {kernel_hw[0]}x{kernel_hw[1]} with dilations {dilations} "
                f"does not fit input {in_hw[0]}x{in_hw[1]} padded by {pads} (empty output)"
            )
        n_out = (-(-span // stride) if ceil_mode else span // stride) + 1
        if ceil_mode and (n_out - 1) * stride >= size + begin:
            n_out -= 1  # that window would start in the bottom/right padding
        out.append(n_out)
    return out[0], out[1]


def same_pads(
    in_hw: Sequence[int],
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    upper: bool = True,
) -> tuple[int, int, int, int]:
    """Pads of ONNX ``auto_pad=SAME_UPPER`` (``upper``) or ``SAME_LOWER``.

    The output is ``ceil(in / stride)``; an odd total pad puts the extra row/column at the
    end (SAME_UPPER) or the beginning (SAME_LOWER). Returns ``(top, left, bottom, right)``.

    >>> same_pads((28, 28), (3, 3), (2, 2), (1, 1))
    (0, 0, 1, 1)
    """
    in_hw = int_tuple(in_hw, 2, "input size", "same_pads", 0)
    kernel_hw = int_tuple(kernel_hw, 2, "kernel_hw", "same_pads", 1)
    strides = int_tuple(strides, 2, "strides", "same_pads", 1)
    dilations = int_tuple(dilations, 2, "dilations", "same_pads", 1)
    begin, end = [], []
    for axis in range(2):
        n_out = -(-in_hw[axis] // strides[axis])
        extent = dilations[axis] * (kernel_hw[axis] - 1) + 1
        total = max((n_out - 1) * strides[axis] + extent - in_hw[axis], 0)
        small, large = total // 2, total - total // 2
        begin.append(small if upper else large)
        end.append(large if upper else small)
    return begin[0], begin[1], end[0], end[1]


def copy_rows(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src`` for same-shape arrays, moving whole contiguous rows at a time.

    Padding or cropping an NCHW tensor is a copy of N*C*H short rows, and numpy pays its
    per-inner-loop cost per row. Viewed as one opaque (void) item per row, the inner loop
    runs over rows instead: about 2x faster for 14x14 feature maps.
    """
    row_bytes = src.shape[-1] * src.itemsize
    contiguous_rows = (
        src.ndim > 1 and src.size > 0 and src.dtype == dst.dtype
        and src.strides[-1] == src.itemsize and dst.strides[-1] == dst.itemsize
    )
    if contiguous_rows:
        row = np.dtype((np.void, row_bytes))
        dst.view(row)[...] = src.view(row)
    else:
        dst[...] = src


# --------------------------------------------------------------------------- tap layout
class PolyphaseGrid:
    """A flat buffer layout in which each kernel tap of a sliding window is one slice.

    Padded row ``r`` goes to stride phase ``r % stride``, grid row ``r // stride`` (same for
    columns); each phase used by some tap is a ``(lead, hq, wq)`` block of a flat buffer,
    ``lead`` being whatever outer axes the caller keeps (``C*N`` for conv, ``N*C`` for
    pooling). Output pixel ``(p, q)`` lives at grid position ``(p, q)``, and the value that
    tap ``(i, j)`` contributes to it sits at the same flat position plus a constant offset,
    so ``buf[off : off + block]`` is that tap's window over every output at once. Grid
    positions with ``p >= out_h`` or ``q >= out_w`` are junk: they are cropped after the
    forward, and gradient grids hold zeros there so that col2im adds nothing through them.

    >>> grid = PolyphaseGrid((4, 4), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), (4, 4))
    >>> grid.hq, grid.wq, grid.tap_offsets(block=36)[:4]
    (6, 6, [0, 1, 2, 6])
    """

    def __init__(
        self,
        in_hw: tuple[int, int],
        kernel_hw: tuple[int, int],
        strides: tuple[int, int],
        pads: tuple[int, int, int, int],
        dilations: tuple[int, int],
        out_hw: tuple[int, int],
    ) -> None:
        self.in_hw, self.strides, self.out_hw = in_hw, strides, out_hw
        self.begin_pads = (pads[0], pads[1])
        # (phase, shift) of every kernel row / column.
        taps = [
            [((k * dilations[a]) % strides[a], (k * dilations[a]) // strides[a])
             for k in range(kernel_hw[a])]
            for a in range(2)
        ]
        grid_size = []
        for a in range(2):
            last_input_row = (pads[a] + in_hw[a] - 1) // strides[a]
            grid_size.append(max(out_hw[a] + taps[a][-1][1], last_input_row + 1))
        self.hq, self.wq = grid_size
        self.phases = sorted({(ph, pw) for ph, _ in taps[0] for pw, _ in taps[1]})
        index = {phase: k for k, phase in enumerate(self.phases)}
        self._taps = [
            (index[(ph, pw)], sh * self.wq + sw) for ph, sh in taps[0] for pw, sw in taps[1]
        ]
        # The last block's tap slices run past its end by at most the largest shift.
        self.tail = taps[0][-1][1] * self.wq + taps[1][-1][1]

    def buffer_size(self, block: int) -> int:
        """Length of a flat buffer holding every used phase of ``block``-sized blocks."""
        return len(self.phases) * block + self.tail

    def tap_offsets(self, block: int) -> list[int]:
        """Start of each tap's slice (row-major over the kernel) in a buffer of blocks."""
        return [phase * block + shift for phase, shift in self._taps]

    def _phase_slices(self):
        for k, (ph, pw) in enumerate(self.phases):
            dst, src = [], []
            for a, phase in enumerate((ph, pw)):
                stride, begin = self.strides[a], self.begin_pads[a]
                first = (phase - begin) % stride  # first input row of this phase
                count = len(range(first, self.in_hw[a], stride))
                start = (begin + first) // stride
                dst.append(slice(start, start + count))
                src.append(slice(first, None, stride))
            yield k, dst, src

    def _block(self, buf: np.ndarray, k: int, lead: tuple[int, int]) -> np.ndarray:
        block = lead[0] * lead[1] * self.hq * self.wq
        return buf[k * block:(k + 1) * block].reshape(*lead, self.hq, self.wq)

    def scatter(self, src: np.ndarray, fill: float = 0, name: str = "grid_in") -> np.ndarray:
        """A scratch buffer holding ``src`` (lead0, lead1, H, W); padding and junk = ``fill``."""
        lead = src.shape[:2]
        buf = scratch(name, (self.buffer_size(lead[0] * lead[1] * self.hq * self.wq),), src.dtype)
        buf.fill(fill)
        for k, dst, src_idx in self._phase_slices():
            copy_rows(self._block(buf, k, lead)[:, :, dst[0], dst[1]],
                      src[:, :, src_idx[0], src_idx[1]])
        return buf

    def gather(self, buf: np.ndarray, out: np.ndarray) -> None:
        """Write the input-position entries of ``buf`` into ``out`` (lead0, lead1, H, W).

        Input positions that no tap reads (whole unused phases) are left untouched, so
        ``out`` should start as zeros when it receives a gradient.
        """
        for k, dst, src_idx in self._phase_slices():
            block = self._block(buf, k, out.shape[:2])
            copy_rows(out[:, :, src_idx[0], src_idx[1]], block[:, :, dst[0], dst[1]])

    def to_grid(self, values: np.ndarray, fill: float = 0, name: str = "grid_out") -> np.ndarray:
        """``values`` (lead0, lead1, out_h, out_w) on a scratch (lead0, lead1, hq, wq) grid."""
        grid = scratch(name, (*values.shape[:2], self.hq, self.wq), values.dtype)
        grid.fill(fill)
        copy_rows(self.crop(grid), values)
        return grid

    def crop(self, grid: np.ndarray) -> np.ndarray:
        """The (lead0, lead1, out_h, out_w) view of the valid outputs of a grid."""
        return grid[:, :, : self.out_hw[0], : self.out_hw[1]]


# --------------------------------------------------------------------------- conv
@dataclass(frozen=True)
class _ConvShape:
    batch: int
    in_channels: int
    in_hw: tuple[int, int]
    out_channels: int
    kernel_hw: tuple[int, int]
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]
    dilations: tuple[int, int]
    group: int
    out_hw: tuple[int, int]

    @property
    def pointwise(self) -> bool:
        """A 1x1 kernel without padding: a plain matmul over (subsampled) pixels."""
        return self.kernel_hw == (1, 1) and not any(self.pads)

    @property
    def depthwise(self) -> bool:
        return self.group == self.in_channels and self.group > 1

    def grid(self) -> PolyphaseGrid:
        return PolyphaseGrid(
            self.in_hw, self.kernel_hw, self.strides, self.pads, self.dilations, self.out_hw
        )


def _conv_shape(
    op: str, x: np.ndarray, w: np.ndarray, strides, pads, dilations, group
) -> _ConvShape:
    if x.ndim != 4:
        raise ShapeError(f"{op}: input must be 4-D NCHW, got shape {x.shape}")
    if w.ndim != 4:
        raise ShapeError(f"{op}: weight must be 4-D OIHW, got shape {w.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise DTypeError(f"{op}: input must be float16/32/64, got {x.dtype}")
    try:
        group = int(group)
    except (TypeError, ValueError):
        raise ShapeError(f"{op}: group must be an integer >= 1, got {group!r}") from None
    out_channels, per_group, kh, kw = w.shape
    if group < 1 or out_channels % group or min(w.shape) < 1:
        raise ShapeError(
            f"{op}: weight {w.shape} with group={group}: C_out={out_channels} must be a "
            f"positive multiple of group and every weight dimension positive"
        )
    if x.shape[1] != per_group * group:
        raise ShapeError(
            f"{op}: input {x.shape} has C_in={x.shape[1]} but weight {w.shape} with "
            f"group={group} expects C_in = I*group = {per_group * group}"
        )
    strides = int_tuple(strides, 2, "strides", op, 1)
    pads = int_tuple(pads, 4, "pads", op, 0)
    dilations = int_tuple(dilations, 2, "dilations", op, 1)
    in_hw = (x.shape[2], x.shape[3])
    out_hw = conv_output_hw(in_hw, (kh, kw), strides, pads, dilations, op=op)
    return _ConvShape(x.shape[0], x.shape[1], in_hw, out_channels, (kh, kw), strides, pads,
                      dilations, group, out_hw)


def _as_dtype(op: str, name: str, array, dtype: np.dtype) -> np.ndarray:
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DTypeError(f"{op}: {name} must be numeric, got {array.dtype}")
    return array.astype(dtype, copy=False)


def _grouped_weight(w: np.ndarray, s: _ConvShape) -> np.ndarray:
    """OIHW -> (G, O/G, kh*kw*I): columns ordered (tap, channel) like the im2col rows."""
    g, (kh, kw) = s.group, s.kernel_hw
    per_group = w.shape[1]
    w = w.reshape(g, s.out_channels // g, per_group, kh * kw).transpose(0, 1, 3, 2)
    return w.reshape(g, s.out_channels // g, kh * kw * per_group)


def _im2col(buf: np.ndarray, grid: PolyphaseGrid, s: _ConvShape, pixels: int) -> np.ndarray:
    """(G, kh*kw*I, pixels) columns: one contiguous copy per kernel tap."""
    block = s.in_channels * pixels
    taps = s.kernel_hw[0] * s.kernel_hw[1]
    cols = scratch("cols", (s.group, taps, block // s.group), buf.dtype)
    for tap, offset in enumerate(grid.tap_offsets(block)):
        cols[:, tap] = buf[offset:offset + block].reshape(s.group, -1)
    return cols.reshape(s.group, -1, pixels)


def _col2im(cols: np.ndarray, grid: PolyphaseGrid, s: _ConvShape, pixels: int) -> np.ndarray:
    """Inverse of :func:`_im2col`: sum every tap's columns back into a grid buffer."""
    block = s.in_channels * pixels
    buf = scratch("grid_grad", (grid.buffer_size(block),), cols.dtype, zero=True)
    cols = cols.reshape(s.group, -1, block // s.group)
    for tap, offset in enumerate(grid.tap_offsets(block)):
        window = buf[offset:offset + block].reshape(s.group, -1)
        np.add(window, cols[:, tap], out=window)
    return buf


def _depthwise_forward(buf, w, grid: PolyphaseGrid, s: _ConvShape, pixels: int):
    """Per-tap multiply-adds over whole channels: (C, mult, pixels), no im2col, no GEMM."""
    channels = s.in_channels
    mult = s.out_channels // channels
    block = channels * pixels
    taps = w.reshape(channels, mult, -1)
    acc = scratch("grid_out", (channels, mult, pixels), buf.dtype)
    product = scratch("product", (channels, mult, pixels), buf.dtype)
    for tap, offset in enumerate(grid.tap_offsets(block)):
        window = buf[offset:offset + block].reshape(channels, 1, pixels)
        if tap == 0:
            np.multiply(window, taps[:, :, tap, None], out=acc)
        else:
            np.multiply(window, taps[:, :, tap, None], out=product)
            acc += product
    return acc


def _depthwise_backward_dx(dy_grid, w, grid: PolyphaseGrid, s: _ConvShape, pixels: int):
    channels = s.in_channels
    mult = s.out_channels // channels
    block = channels * pixels
    taps = w.reshape(channels, mult, -1)
    dy_grid = dy_grid.reshape(channels, mult, pixels)
    buf = scratch("grid_grad", (grid.buffer_size(block),), dy_grid.dtype, zero=True)
    product = scratch("product", (channels, pixels), dy_grid.dtype)
    for tap, offset in enumerate(grid.tap_offsets(block)):
        window = buf[offset:offset + block].reshape(channels, pixels)
        if mult == 1:
            np.multiply(dy_grid[:, 0], taps[:, 0, tap, None], out=product)
        else:
            np.matmul(taps[:, None, :, tap], dy_grid, out=product[:, None, :])
        window += product
    return buf


def _depthwise_backward_dw(dy_grid, buf, grid: PolyphaseGrid, s: _ConvShape, pixels: int):
    """(C, mult, taps): one batched matrix-vector product per tap, no im2col copy."""
    channels = s.in_channels
    mult = s.out_channels // channels
    block = channels * pixels
    dy_grid = dy_grid.reshape(channels, mult, pixels)
    dw = np.empty((channels, mult, s.kernel_hw[0] * s.kernel_hw[1]), dy_grid.dtype)
    for tap, offset in enumerate(grid.tap_offsets(block)):
        window = buf[offset:offset + block].reshape(channels, pixels, 1)
        np.matmul(dy_grid, window, out=dw[:, :, tap:tap + 1])
    return dw


def _pointwise_input(x: np.ndarray, s: _ConvShape) -> np.ndarray:
    """(N, G, I, pixels) view/copy of the pixels a 1x1 kernel sees."""
    if s.strides != (1, 1):
        x = x[:, :, :: s.strides[0], :: s.strides[1]]
    x = np.ascontiguousarray(x)
    return x.reshape(s.batch, s.group, s.in_channels // s.group, -1)


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    group: int = 1,
) -> np.ndarray:
    """ONNX ``Conv``: (N, C_in, H, W) * (C_out, C_in/group, kh, kw) -> (N, C_out, Ho, Wo).

    ``w`` and ``b`` are cast to ``x``'s dtype, which the output keeps.

    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> conv2d(x, np.ones((2, 1, 2, 2), np.float32), b=np.array([0, 100]), strides=(2, 2))
    array([[[[ 10.,  18.],
             [ 42.,  50.]],
    <BLANKLINE>
            [[110., 118.],
             [142., 150.]]]], dtype=float32)
    """
    x = np.asarray(x)
    w = np.asarray(w)
    s = _conv_shape("conv2d", x, w, strides, pads, dilations, group)
    w = _as_dtype("conv2d", "weight", w, x.dtype)
    if b is not None:
        b = _as_dtype("conv2d", "bias", b, x.dtype)
        if b.shape != (s.out_channels,):
            raise ShapeError(f"conv2d: bias must have shape ({s.out_channels},), got {b.shape}")
    n, (ho, wo) = s.batch, s.out_hw
    if n == 0:
        return np.zeros((0, s.out_channels, ho, wo), x.dtype)

    if s.pointwise:
        weights = w.reshape(s.group, s.out_channels // s.group, -1)
        y = np.matmul(weights, _pointwise_input(x, s)).reshape(n, s.out_channels, ho, wo)
        if b is not None:
            y += b[:, None, None]
        return y

    grid = s.grid()
    pixels = n * grid.hq * grid.wq
    # (C, N) order: a tap's slice then covers whole channels, the rows of one GEMM operand.
    buf = grid.scatter(x.transpose(1, 0, 2, 3))
    if s.depthwise:
        y_grid = _depthwise_forward(buf, w, grid, s, pixels)
    else:
        cols = _im2col(buf, grid, s, pixels)
        weights = _grouped_weight(w, s)
        y_grid = scratch("grid_out", (s.group, weights.shape[1], pixels), x.dtype)
        np.matmul(weights, cols, out=y_grid)
    y_grid = y_grid.reshape(s.out_channels, n, grid.hq, grid.wq)
    if b is not None:
        y_grid += b[:, None, None, None]  # over the whole grid: one contiguous pass per channel
    y = np.empty((n, s.out_channels, ho, wo), x.dtype)
    copy_rows(y.transpose(1, 0, 2, 3), grid.crop(y_grid))
    return y


def conv2d_backward(
    dy: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    group: int = 1,
    need_dx: bool = True,
    need_dw: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Gradients ``(dx, dw)`` of :func:`conv2d` given the output gradient ``dy``.

    The bias gradient is ``dy.sum(axis=(0, 2, 3))``; pass ``need_dx=False`` for a layer
    whose input needs no gradient (the first conv of a network) to skip col2im.

    >>> x = np.ones((1, 1, 3, 3)); w = np.ones((1, 1, 2, 2))
    >>> dx, dw = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> dx[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> dw[0, 0]
    array([[4., 4.],
           [4., 4.]])
    """
    x = np.asarray(x)
    w = np.asarray(w)
    s = _conv_shape("conv2d_backward", x, w, strides, pads, dilations, group)
    w = _as_dtype("conv2d_backward", "weight", w, x.dtype)
    dy = _as_dtype("conv2d_backward", "dy", dy, x.dtype)
    n, (ho, wo) = s.batch, s.out_hw
    if dy.shape != (n, s.out_channels, ho, wo):
        raise ShapeError(
            f"conv2d_backward: dy has shape {dy.shape}, expected {(n, s.out_channels, ho, wo)} "
            f"for input {x.shape} and weight {w.shape}"
        )
    groups, out_per_group = s.group, s.out_channels // s.group
    if n == 0:
        return (np.zeros(x.shape, x.dtype) if need_dx else None,
                np.zeros(w.shape, x.dtype) if need_dw else None)
    dx = dw = None

    if s.pointwise:
        dy_mat = dy.reshape(n, groups, out_per_group, -1)
        if need_dw:
            xs = _pointwise_input(x, s)
            dw = np.matmul(dy_mat, xs.transpose(0, 1, 3, 2)).sum(axis=0).reshape(w.shape)
        if need_dx:
            weights = w.reshape(groups, out_per_group, -1)
            dxs = np.matmul(weights.transpose(0, 2, 1), dy_mat).reshape(n, -1, ho, wo)
            if s.strides == (1, 1):
                dx = dxs
            else:
                dx = np.zeros(x.shape, x.dtype)
                dx[:, :, :: s.strides[0], :: s.strides[1]] = dxs
        return dx, dw

    grid = s.grid()
    pixels = n * grid.hq * grid.wq
    dy_grid = grid.to_grid(dy.transpose(1, 0, 2, 3)).reshape(groups, out_per_group, pixels)
    if need_dw and s.depthwise:
        dw = _depthwise_backward_dw(dy_grid, grid.scatter(x.transpose(1, 0, 2, 3)), grid, s, pixels)
        dw = dw.reshape(w.shape)
    elif need_dw:
        cols = _im2col(grid.scatter(x.transpose(1, 0, 2, 3)), grid, s, pixels)
        dw_cols = matmul_nt(cols, dy_grid)  # (G, taps*I, O/G)
        kh, kw = s.kernel_hw
        dw = dw_cols.reshape(groups, kh, kw, -1, out_per_group).transpose(0, 4, 3, 1, 2)
        dw = np.ascontiguousarray(dw).reshape(w.shape)
    if need_dx:
        if s.depthwise:
            dbuf = _depthwise_backward_dx(dy_grid, w, grid, s, pixels)
        else:
            weights = _grouped_weight(w, s).transpose(0, 2, 1)
            dcols = scratch("cols", (groups, weights.shape[1], pixels), x.dtype)
            dbuf = _col2im(np.matmul(weights, dy_grid, out=dcols), grid, s, pixels)
        dx = np.zeros(x.shape, x.dtype)
        grid.gather(dbuf, dx.transpose(1, 0, 2, 3))
    return dx, dw
