"""Sliding-window machinery shared by convolution and pooling: argument checks, output
sizes, the batch-minor layout, strided window views, scratch memory and plan caches.

**Batch-minor layout.** Convolution and pooling keep their activations in memory ordered
``(C, H, W, N)`` — the batch innermost — and hand them on as ``(N, C, H, W)``-shaped numpy
views (:func:`batch_minor` undoes the transposition for free). Why: numpy pays a fixed cost
(~10-20 ns) per call of its innermost loop, and with the batch innermost every kernel tap of
an image row is one contiguous run of ``width * N`` values, so an im2col copy makes
``C * kh * kw * rows`` inner-loop calls instead of ``C * kh * kw * N * rows``, the GEMM
``W[O, K] @ cols[K, H*W*N]`` writes its output straight in that layout (no transposition
back), and a 2x2 max pooling compares whole rows. For batch 1 the layout *is* NCHW.
Anything that needs NCHW-contiguous memory (a ``reshape`` to flatten) copies, as numpy
always does for non-contiguous views.

>>> x = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
>>> y = from_batch_minor(np.ascontiguousarray(batch_minor(x)))  # same values, batch-minor
>>> bool(np.array_equal(x, y)), batch_minor(y).flags.c_contiguous
(True, True)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

import numpy as np

from edgefw.errors import ShapeError

__all__ = [
    "PlanCache",
    "PolyphaseGrid",
    "batch_minor",
    "conv_output_hw",
    "copy_rows",
    "from_batch_minor",
    "int_tuple",
    "release_scratch",
    "same_pads",
    "scratch",
    "strided_view",
]

# A temporary this big means absurd shapes or pads (e.g. from a corrupt model file).
TEMPORARY_LIMIT_BYTES = 8 << 30
# Larger scratch arrays are allocated per call: their page faults are then small next to
# the work they serve.
SCRATCH_SLOT_LIMIT_BYTES = 64 << 20


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


def check_temporary(op: str, what: str, shape: Sequence[int], itemsize: int) -> None:
    """ShapeError if an array of ``shape`` would be absurdly large (corrupt pads/shapes)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * itemsize
    if nbytes > TEMPORARY_LIMIT_BYTES:
        raise ShapeError(
            f"{op}: {what} of shape {tuple(shape)} would take {nbytes / 2**30:.1f} GiB "
            f"(limit {TEMPORARY_LIMIT_BYTES >> 30} GiB); check the input size, pads and strides"
        )


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


# --------------------------------------------------------------------------- layout
def batch_minor(x: np.ndarray) -> np.ndarray:
    """The ``(C, H, W, N)`` view of an ``(N, C, H, W)`` array (no copy; contiguous exactly
    when ``x`` is stored batch-minor)."""
    return x.transpose(1, 2, 3, 0)


def from_batch_minor(x_cwhn: np.ndarray) -> np.ndarray:
    """The ``(N, C, H, W)`` view of a ``(C, H, W, N)`` array: how results are handed out."""
    return x_cwhn.transpose(3, 0, 1, 2)


def strided_view(base: np.ndarray, offset: int, shape: Sequence[int],
                 strides: Sequence[int]) -> np.ndarray:
    """A view of the contiguous array ``base`` starting ``offset`` elements in, with element
    ``strides`` (may overlap: a window view). The caller keeps it inside ``base``.

    numpy's ``as_strided`` costs ~3 us a call; plans build their views once, and a
    per-call view goes through here (``ndarray`` constructor, well under 1 us).

    >>> strided_view(np.arange(6.0), 1, (2, 3), (1, 1))
    array([[1., 2., 3.],
           [2., 3., 4.]])
    """
    item = base.itemsize
    return np.ndarray(tuple(shape), base.dtype, buffer=base, offset=offset * item,
                      strides=tuple(s * item for s in strides))


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


# --------------------------------------------------------------------------- memory
class _ThreadSlots(threading.local):
    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}
        self.caches: list[PlanCache] = []


_SLOTS = _ThreadSlots()


def scratch(name: str, shape: Sequence[int], dtype, zero: bool = False) -> np.ndarray:
    """A temporary array kept per thread under ``name`` and reused by the next call.

    Why: padded grids and im2col columns are megabytes; fresh ones cost a page fault per
    4 KiB page every call (glibc hands big blocks back to the kernel). The caller must be
    done with the array before asking for the same ``name`` again, and must never return it.

    >>> a = scratch("doc", (2, 3), np.float32, zero=True)
    >>> a.shape, a.dtype, float(a.sum())
    ((2, 3), dtype('float32'), 0.0)
    """
    dtype = np.dtype(dtype)
    check_temporary("scratch", f"temporary '{name}'", shape, dtype.itemsize)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes > SCRATCH_SLOT_LIMIT_BYTES:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    slot = _SLOTS.buffers.get(name)
    if slot is None or slot.nbytes < nbytes:
        slot = np.empty(max(nbytes, 64), np.uint8)
        _SLOTS.buffers[name] = slot
    array = slot[:nbytes].view(dtype).reshape(shape)
    if zero:
        array.fill(0)
    return array


class PlanCache:
    """Per-thread LRU of plans (objects owning buffers) keyed by shapes and attributes.

    Plans own scratch buffers, so each thread gets its own; :func:`release_scratch` empties
    every cache of the calling thread.

    >>> cache = PlanCache(2)
    >>> cache.get(("k", 1), lambda: [0.0]) is cache.get(("k", 1), lambda: [1.0])
    True
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._local = threading.local()

    def _entries(self) -> OrderedDict:
        entries = getattr(self._local, "entries", None)
        if entries is None:
            entries = self._local.entries = OrderedDict()
            _SLOTS.caches.append(self)
        return entries

    def get(self, key: Hashable, build: Callable[[], object]) -> object:
        entries = self._entries()
        plan = entries.get(key)
        if plan is None:
            plan = entries[key] = build()
            if len(entries) > self.capacity:
                entries.popitem(last=False)
        return plan

    def clear(self) -> None:
        self._entries().clear()


def release_scratch() -> None:
    """Free this thread's scratch arrays and cached plans (e.g. after training)."""
    _SLOTS.buffers.clear()
    for cache in _SLOTS.caches:  # the caches this thread has used (each registers once)
        cache.clear()


# --------------------------------------------------------------------------- tap layout
class PolyphaseGrid:
    """A flat buffer layout in which each kernel tap of a sliding window is one slice.

    Used by the pooling windows that do not tile the input. Padded row ``r`` goes to
    stride phase ``r % stride``, grid row ``r // stride`` (same for columns); each phase
    used by some tap is a ``(lead, hq, wq)`` block of a flat buffer, ``lead`` being the
    outer axes (``N*C``). Output pixel ``(p, q)`` lives at grid position ``(p, q)``, and
    the value that tap ``(i, j)`` contributes to it sits at the same flat position plus a
    constant offset, so ``buf[off : off + block]`` is that tap's window over every output
    at once. Grid positions with ``p >= out_h`` or ``q >= out_w`` are junk: they are
    cropped after the forward, and gradient grids hold zeros there.

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
