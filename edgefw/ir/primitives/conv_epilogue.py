"""A :class:`~.conv_plan.ConvPlan` forward whose float output never reaches memory.

The integer Conv kernel needs each output chunk only long enough to requantize it. Here
every chunk's product goes into a small scratch buffer (it stays in L2) and an
``epilogue(acc, dst)`` turns it into the real output: ``acc`` is the float chunk,
``(C, ...)`` with output channels first, ``dst`` the same-shape view of the
batch-minor ``(C, H, W, N)`` output array it must fill. The epilogue may overwrite ``acc``.

Two more differences from :meth:`ConvPlan.forward`:

- the padded buffer's border can hold any constant (``pad_value``): an integer conv pads
  with the input zero point, so its zero-point correction is the same for every pixel and
  folds into the bias;
- 1x1 convolutions go in column chunks too, their input copied (and converted from int8)
  chunk by chunk next to the ones row, instead of as one big matmul over the whole input;
- every chunk's GEMM runs in pieces under ``SMALL_GEMM_MACS`` multiply-adds whenever a
  piece still has ``MIN_PIECE_COLUMNS`` columns: OpenBLAS's small-matrix kernel is ~2x
  faster on these skinny products (16 x 151 @ 151 x 25600, LeNet's second conv at batch
  256: 1.26 ms in 256-column pieces, 2.7 ms in 1024-column ones), and the plan's own
  pieces stop at 1024 columns. Equal pieces go as one call on stacked ``(pieces, K,
  width)`` views: numpy still makes one BLAS call per piece, but Python makes one call
  (one GIL hand-off when other threads run numpy, and ~10% faster alone);
- the column buffers have rows an odd number of cache lines long: rows 2**k bytes apart
  alias in the caches, and the GEMM pieces reading them ran ~1.4x slower (64 x 33 @ 33 x
  2048 pieces: 0.94 vs 0.68 ms per 12544 columns). The products stay C-contiguous, for
  the epilogue's sake.

    >>> import numpy as np
    >>> from edgefw.ir.primitives.conv import conv_geometry
    >>> x = np.ones((2, 1, 5, 5), np.float32); w = np.ones((3, 1, 3, 3), np.float32)
    >>> geometry = conv_geometry("doc", x.shape, x.dtype, w.shape, (1, 1), (1, 1, 1, 1),
    ...                          (1, 1), 1)
    >>> plan = ConvPlan(geometry, x.dtype)
    >>> def halve(acc, dst): np.multiply(acc, 0.5, out=dst)
    >>> conv = EpilogueConv(plan, plan.prepare_weights(w, None), halve)
    >>> out = np.empty((3, 5, 5, 2), np.float32)
    >>> conv(x, out)[1, 2, 2].tolist()  # (N, C, H, W) view of out
    [3.0, 4.5, 4.5, 4.5, 3.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

from edgefw.ir.primitives.blas import PARALLEL_MIN_MACS, SMALL_GEMM_MACS
from edgefw.ir.primitives.conv_plan import (
    DIRECT_DEPTHWISE_BAND,
    MIN_CHUNK_COLUMNS,
    ConvPlan,
    _view_as,
)
from edgefw.ir.primitives.parallel import parallel_workers, run_split
from edgefw.ir.primitives.windows import batch_minor, from_batch_minor

__all__ = ["EpilogueConv"]

Epilogue = Callable[[np.ndarray, np.ndarray], object]
#: GEMM pieces narrower than this are not worth their call (see the module docs).
MIN_PIECE_COLUMNS = 128


class EpilogueConv:
    """``x -> epilogue(conv(x))`` chunk by chunk, for one plan and its prepared weights.

    Like the plan, an instance owns scratch memory and must not run in two threads at once.
    """

    def __init__(self, plan: ConvPlan, weights: np.ndarray, epilogue: Epilogue,
                 pad_value: float = 0.0) -> None:
        self.plan, self.weights, self.epilogue = plan, weights, epilogue
        g = plan.geometry
        self._scratch: dict[tuple, np.ndarray] = {}
        self._steps: dict[int, dict] = {}  # per worker: its views per chunk or span
        if g.batch == 0:
            return
        # Columns per GEMM piece: small-kernel products, or a whole chunk.
        per_column = plan.out_per_group * (plan.depth + 1)
        self._piece = SMALL_GEMM_MACS // per_column \
            if per_column * MIN_PIECE_COLUMNS <= SMALL_GEMM_MACS else None
        if not g.pointwise:
            # Only the interior is refreshed per call: the border keeps this value.
            plan._padded.fill(pad_value)
            self._threads = plan._threads()
            return
        depth, pixels = plan.depth, plan.pixels
        per_column = (g.group * (depth + 1) + g.out_channels) * plan.dtype.itemsize
        step = max(MIN_CHUNK_COLUMNS, plan.chunk_bytes // per_column)
        self._spans = [(a, min(a + step, pixels)) for a in range(0, pixels, step)]
        self._width = min(step, pixels)
        macs = g.out_channels * (depth + 1) * pixels
        self._threads = 1 if macs < PARALLEL_MIN_MACS else min(parallel_workers(),
                                                                len(self._spans))

    def __call__(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Fill ``out`` (the ``(C, H, W, N)`` output, any dtype the epilogue writes) from
        ``x`` (N, C, H, W); returns the (N, C, H, W) view of ``out``."""
        plan, g = self.plan, self.plan.geometry
        if g.batch == 0:
            return from_batch_minor(out)
        xb = batch_minor(x)
        if g.pointwise:
            self._pointwise(xb, out)
        elif plan.direct_depthwise:
            plan._load_input(xb)
            self._depthwise(out)
        elif self._threads > 1:
            threads = self._threads
            bounds = np.linspace(0, g.in_channels, threads + 1).astype(int)
            run_split([partial(np.copyto, plan._interior[a:b], xb[a:b])
                       for a, b in zip(bounds, bounds[1:])])
            run_split([partial(self._chunks, plan._chunks[k::threads], k, out)
                       for k in range(threads)])
        else:
            plan._load_input(xb)
            self._chunks(plan._chunks, 0, out)
        return from_batch_minor(out)

    def _buffer(self, worker: int, shape: tuple[int, ...], dtype=None, role: str = "acc"
                ) -> np.ndarray:
        """Worker ``worker``'s scratch for ``role``, C-contiguous (numpy's loops over a
        strided array — the clamp, the rounding — run 2-3x slower): ``"acc"`` holds float
        products, ``"finished"`` full-width chunks in the output's dtype before the crop."""
        dtype = self.plan.dtype if dtype is None else np.dtype(dtype)
        key = (worker, role, dtype)
        found = self._scratch.get(key)
        size = math.prod(shape)
        if found is None or found.size < size:
            found = self._scratch[key] = np.empty(size, dtype)
        return found[:size].reshape(shape)

    def _worker_steps(self, worker: int) -> dict[int, tuple]:
        """Worker ``worker``'s views, per chunk (by id): the im2col destination in its
        column buffer (rows an odd number of cache lines long, a ones row last), the GEMM
        calls ``(weights, columns, product)`` and the product for the epilogue."""
        found = self._steps.get(worker)
        if found is not None:
            return found
        plan = self.plan
        g, width = plan.geometry, plan._cols.shape[2]
        cols = self._column_buffer(width)
        if plan.full_width:
            grid = plan._grid if worker == 0 else self._buffer(worker, plan._grid.shape)
            grid = grid.reshape(g.group, plan.out_per_group, -1)
        else:
            self._buffer(worker, (g.group, plan.out_per_group, width))  # the widest, once
        found = {}
        for chunk in plan._chunks:
            target = grid[:, :, :chunk.columns] if plan.full_width else \
                self._buffer(worker, (g.group, plan.out_per_group, chunk.columns))
            found[id(chunk)] = (
                _view_as(cols[:, : plan.depth, : chunk.columns], chunk.window.shape),
                self._products(cols[:, :, :chunk.columns], target), target)
        self._steps[worker] = found
        return found

    def _column_buffer(self, width: int) -> np.ndarray:
        """A fresh ``(G, K/G + 1, width)`` GEMM operand, the ones row last, its rows an odd
        number of cache lines apart (see the module docs)."""
        plan = self.plan
        padded = _padded_width(width, plan.dtype.itemsize)
        cols = np.empty((plan.geometry.group, plan.depth + 1, padded), plan.dtype)
        cols = cols[:, :, :width]
        cols[:, plan.depth] = 1
        return cols

    def _products(self, cols: np.ndarray, target: np.ndarray) -> list[tuple]:
        """The GEMM calls that fill ``target`` from ``cols``: one, or pieces under
        ``SMALL_GEMM_MACS`` multiply-adds — equal ones as one call on (pieces, K, width)
        views (numpy runs a stack one BLAS call at a time, in one call from Python: one GIL
        hand-off, and 10% faster than a call per piece), the rest as one more."""
        columns, w = cols.shape[2], self.weights
        if not self._piece or columns <= self._piece:
            return [(w, cols, target)]
        count = -(-columns // self._piece)
        width = -(-columns // count)
        stacked = columns // width * width
        if cols.shape[0] == 1:  # one group: a stack of pieces
            calls = [(w[0], _stack(cols[0, :, :stacked], width),
                      _stack(target[0, :, :stacked], width))]
        else:
            calls = [(w, cols[:, :, c0:c0 + width], target[:, :, c0:c0 + width])
                     for c0 in range(0, stacked, width)]
        if stacked < columns:
            calls.append((w, cols[:, :, stacked:], target[:, :, stacked:]))
        return calls

    def _chunks(self, chunks, worker: int, out: np.ndarray) -> None:
        """im2col, GEMM into scratch, epilogue into ``out``, per chunk."""
        plan, g = self.plan, self.plan.geometry
        steps = self._worker_steps(worker)
        out2 = out.reshape(g.out_channels, -1)
        wo, n = g.out_hw[1], g.batch
        product = plan._product
        for chunk in chunks:
            destination, calls, target = steps[id(chunk)]
            np.copyto(destination, chunk.window)
            for a, b, c in calls:
                product(a, b, out=c)
            if plan.full_width:
                # The epilogue runs over the whole grid, junk columns included, into a
                # contiguous scratch of the output's dtype, and only then is the grid
                # cropped: clamping and rounding the cropped (strided) view directly was
                # 3-4x slower (13-16 us of a 25-30 us integer conv at batch 1).
                done = self._buffer(worker, (g.out_channels, chunk.columns), out.dtype,
                                    "finished")
                self.epilogue(target.reshape(g.out_channels, -1), done)
                np.copyto(out[:, chunk.r0:chunk.r0 + chunk.rows],
                          done.reshape(g.out_channels, chunk.rows, plan.padded_hw[1], n)[
                              :, :, :wo])
            else:
                self.epilogue(target.reshape(g.out_channels, chunk.columns),
                              out2[:, chunk.start:chunk.start + chunk.columns])

    def _depthwise(self, out: np.ndarray) -> None:
        """The plan's einsum per band of rows, into scratch, then the epilogue."""
        plan, g = self.plan, self.plan.geometry
        c, (kh, kw), taps = g.in_channels, g.kernel_hw, g.kernel_hw[0] * g.kernel_hw[1]
        kernel = self.weights[:, 0, :taps].reshape(c, kh, kw)
        bias = self.weights[:, 0, taps].reshape(c, 1, 1)
        (ho, wo), n = g.out_hw, g.batch
        rows = max(1, DIRECT_DEPTHWISE_BAND // max(1, wo * n))
        band_buffer = self._buffer(0, (c, rows, wo * n))
        merge = g.strides[1] == 1
        for r0 in range(0, ho, rows):
            count = min(rows, ho - r0)
            band = band_buffer[:, :count]
            window = plan._window(r0, count, 0, wo, full_width=False)[:, 0]
            if merge:
                window = _view_as(window, (*window.shape[:4], -1))
                np.einsum("cijrp,cij->crp", window, kernel, out=band)
            else:
                np.einsum("cijrqn,cij->crqn", window, kernel,
                          out=_view_as(band, (c, count, wo, n)))
            np.add(band, bias, out=band)
            self.epilogue(band, _view_as(out[:, r0:r0 + count], band.shape))

    def _pointwise(self, xb: np.ndarray, out: np.ndarray) -> None:
        """1x1: the (subsampled) input in column chunks next to a ones row, GEMM, epilogue."""
        g = self.plan.geometry
        if g.strides != (1, 1):
            xb = xb[:, :: g.strides[0], :: g.strides[1], :]
        source = xb.reshape(g.group, self.plan.depth, -1)  # copies only when strided
        out2 = out.reshape(g.out_channels, -1)
        threads = self._threads
        if threads == 1:
            self._pointwise_spans(self._spans, 0, source, out2)
        else:
            run_split([partial(self._pointwise_spans, self._spans[k::threads], k, source, out2)
                       for k in range(threads)])

    def _pointwise_spans(self, spans, worker: int, source: np.ndarray, out2: np.ndarray
                         ) -> None:
        steps = self._pointwise_steps(worker)
        product = self.plan._product
        for a, b in spans:
            destination, calls, acc = steps[a]
            np.copyto(destination, source[:, :, a:b], casting="unsafe")
            for w, cols, c in calls:
                product(w, cols, out=c)
            self.epilogue(acc, out2[:, a:b])

    def _pointwise_steps(self, worker: int) -> dict[int, tuple]:
        """Worker ``worker``'s views per span (by its start): where the input goes in its
        column buffer (a ones row last), the GEMM calls, the product for the epilogue."""
        found = self._steps.get(worker)
        if found is not None:
            return found
        plan, g = self.plan, self.plan.geometry
        columns = self._column_buffer(self._width)
        acc3 = self._buffer(worker, (g.group, plan.out_per_group, self._width))
        found = {}
        for a, b in self._spans:
            cols, acc = columns[:, :, :b - a], acc3[:, :, :b - a]
            found[a] = (cols[:, :plan.depth], self._products(cols, acc),
                        acc.reshape(g.out_channels, -1))
        self._steps[worker] = found
        return found


def _stack(matrix: np.ndarray, width: int) -> np.ndarray:
    """``(rows, k * width)`` (unit column stride) as ``(k, rows, width)``: k equal pieces."""
    rows, columns = matrix.shape
    return np.lib.stride_tricks.as_strided(
        matrix, (columns // width, rows, width),
        (width * matrix.strides[1], matrix.strides[0], matrix.strides[1]), writeable=True)


def _padded_width(width: int, itemsize: int) -> int:
    """``width`` rounded up so that a row is an odd number of 64-byte cache lines."""
    per_line = max(1, 64 // itemsize)
    lines = -(-width // per_line)
    return (lines + 1 - lines % 2) * per_line
