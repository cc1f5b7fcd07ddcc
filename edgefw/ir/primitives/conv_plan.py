"""How one convolution configuration is computed: a :class:`ConvPlan` per shape.

Everything that depends only on the shapes is decided once, when the plan is built: the
padded input buffer (its zero border is written once, only the interior is refreshed
per call), the im2col column buffer with a constant row of ones (so the GEMM adds the bias
and the weight gradient's last column is the bias gradient), the window views that read
every kernel tap out of the padded buffer with one ``copyto``, and how the columns are cut
into chunks. A forward is then: copy the input in, and per chunk one ``copyto`` and one
GEMM written straight into the output.

Layout: activations are batch-minor, ``(C, H, W, N)`` in memory (see
:mod:`.windows`), so every tap of an image row is one contiguous run of ``W * N`` values
and ``W[O, K] @ cols[K, H*W*N]`` yields the output in that same layout. With groups the
product is batched: ``(G, O/G, K/G + 1) @ (G, K/G + 1, pixels)`` (depthwise: G = C).

Two ways to lay out the columns:

- *exact*: one column per output pixel; each tap row is a run of ``out_w * N`` values.
- *full width* (stride 1, short rows — batch 1): every padded column is computed as if it
  were an output and the ``kw - 1`` junk columns per row are cropped afterwards; a tap is
  then a single run over all rows, so the copy makes ``C*kh*kw`` inner-loop calls
  instead of ``C*kh*kw*out_h`` (3-4x faster for a 28x28 image).

Chunks: a product with few output rows (``O/G``) and many columns runs 2-3x faster in
pieces of under ~1M multiply-adds (OpenBLAS's unpacked small-matrix kernel), and pieces
whose columns fit in L2 keep the im2col copy in cache for the GEMM that reads it; a fused
clamp (ReLU, ReLU6) is applied to each chunk's output while it is still in cache. Big
convolutions share their chunks between threads (:mod:`.parallel`). A depthwise
convolution over long rows (batch 256) skips im2col: one ``einsum`` per band of rows sums
the taps straight from the padded input. Gradients are in :mod:`.conv_gradients`.

>>> import numpy as np
>>> from edgefw.ir.primitives.conv import conv_geometry
>>> x = np.ones((2, 1, 5, 5), np.float32); w = np.ones((3, 1, 3, 3), np.float32)
>>> geometry = conv_geometry("doc", x.shape, x.dtype, w.shape, (1, 1), (1, 1, 1, 1), (1, 1), 1)
>>> plan = ConvPlan(geometry, x.dtype)
>>> y = plan.forward(x, plan.prepare_weights(w, np.arange(3, dtype=np.float32)))
>>> y.shape, y[1, 2, 2].tolist()
((2, 3, 5, 5), [8.0, 11.0, 11.0, 11.0, 8.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from edgefw.ir.primitives.blas import (
    MIN_GEMM_PIECE,
    PARALLEL_MIN_MACS,
    SMALL_GEMM_MACS,
    matmul_for,
)
from edgefw.ir.primitives.elementwise import clamp_ufunc
from edgefw.ir.primitives.parallel import parallel_workers, run_split
from edgefw.ir.primitives.windows import (
    batch_minor,
    check_temporary,
    copy_rows,
    from_batch_minor,
    strided_view,
)

__all__ = ["ConvGeometry", "ConvPlan"]

# Tap runs shorter than this (out_w * N values) use the full-width column layout.
FULL_WIDTH_MAX_RUN = 48
# Column chunks stay under this many bytes so the GEMM finds them in L2 (but hold at least
# MIN_CHUNK_COLUMNS columns, so per-chunk call overhead stays small).
CHUNK_BYTES = 512 << 10
MIN_CHUNK_COLUMNS = 2048
# Plans that run beside other threads (``concurrent=True``: batch tiles) take chunks this
# big instead, in L3: every numpy call that releases the GIL while another thread runs
# numpy pays a hand-off (~5-10 us here), and 4x bigger chunks are ~4x fewer calls
# (LeNet's two convs at batch 128: ~180 -> ~70 hand-offs; its int8 tiles 1.17x -> ~1.0x
# float's time at 2 threads, float's ~5% faster).
CONCURRENT_CHUNK_BYTES = 2 << 20
# Depthwise convolutions with output rows (out_w * N values) at least this long sum their
# taps directly (einsum) in bands of about DIRECT_DEPTHWISE_BAND values per channel.
DIRECT_DEPTHWISE_MIN_RUN = 512
DIRECT_DEPTHWISE_BAND = 8192
# Forwards with at least this many im2col values are split between threads too.
PARALLEL_MIN_COLUMNS = 1 << 22
# Training keeps a forward's columns for the backward up to this size (else recomputes).
KEEP_COLUMNS_BYTES = 64 << 20


@dataclass(frozen=True)
class ConvGeometry:
    """Validated shapes and attributes of one convolution (see ``conv.conv_geometry``)."""

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
    def group_depth(self) -> int:
        """Rows of one group's im2col columns: ``C/G * kh * kw``."""
        return self.in_channels // self.group * self.kernel_hw[0] * self.kernel_hw[1]


@dataclass
class _Chunk:
    """A forward chunk: output rows r0..r0+rows (or part of one row), i.e. output columns
    start..start+columns, its im2col window and destination, and its GEMM pieces."""

    r0: int
    rows: int
    start: int
    columns: int
    window: np.ndarray
    pieces: list[tuple[int, int]]


class ConvPlan:
    """Buffers, views and chunks for one :class:`ConvGeometry` and dtype (see module docs).

    A plan owns scratch memory, so it must not run in two threads at once; the caches
    that hand plans out are per thread.
    """

    def __init__(self, geometry: ConvGeometry, dtype, concurrent: bool = False) -> None:
        g = self.geometry = geometry
        self.dtype = np.dtype(dtype)
        #: Column bytes per chunk (see CONCURRENT_CHUNK_BYTES).
        self.chunk_bytes = CONCURRENT_CHUNK_BYTES if concurrent else CHUNK_BYTES
        n, c, (h, w) = g.batch, g.in_channels, g.in_hw
        (ho, wo), kw = g.out_hw, g.kernel_hw[1]
        self.depth = g.group_depth  # K/G; the ones row is index `depth`
        self.out_per_group = g.out_channels // g.group
        self.pixels = ho * wo * n
        # np.matmul itself for products OpenBLAS keeps on one thread (no policy overhead).
        self._product = matmul_for(g.group * self.out_per_group * self.depth * self.pixels)
        self.full_width = self.direct_depthwise = False
        if n == 0:  # nothing to compute
            return
        if g.pointwise:  # a matmul over the (subsampled) input, with a ones row for the bias
            check_temporary("conv2d", "1x1 input", (g.group, self.depth + 1, self.pixels),
                            self.dtype.itemsize)
            self._pointwise_buffer = np.empty((g.group, self.depth + 1, self.pixels),
                                              self.dtype)
            self._pointwise_buffer[:, self.depth] = 1
            self._pointwise_dst = _view_as(self._pointwise_buffer[:, : self.depth],
                                           (g.group, self.depth, ho, wo, n))
            return
        pt, pl, pb, pr = g.pads
        self.padded_hw = (h + pt + pb, w + pl + pr)
        hp, wp = self.padded_hw
        self.full_width = g.strides == (1, 1) and wo * n < FULL_WIDTH_MAX_RUN
        # Depthwise (one output per channel) over long rows: taps summed straight from the
        # padded input, no im2col (see _forward_depthwise).
        self.direct_depthwise = (g.group == c == g.out_channels and c > 1
                                 and wo * n >= DIRECT_DEPTHWISE_MIN_RUN)
        tail = (kw - 1) * g.dilations[1] * n if self.full_width else 0
        check_temporary("conv2d", "padded input", (c, hp, wp, n), self.dtype.itemsize)
        self._padded = np.zeros(c * hp * wp * n + tail, self.dtype)
        self._padded4 = self._padded[: c * hp * wp * n].reshape(c, hp, wp, n)
        self._interior = self._padded4[:, pt:pt + h, pl:pl + w, :]
        self._interior_rows = _view_as(self._interior, (c, h, w * n))  # (W, N) merge
        # One output row's worth of columns; the forward's column chunks and GEMM pieces.
        self.row_columns = (wp if self.full_width else wo) * n
        self._chunks = self._plan_chunks()
        chunk_columns = max(chunk.columns for chunk in self._chunks)
        widest = max(c1 - c0 for chunk in self._chunks for c0, c1 in chunk.pieces)
        self._product = matmul_for(g.group * self.out_per_group * (self.depth + 1) * widest)
        check_temporary("conv2d", "im2col columns", (g.group, self.depth + 1, chunk_columns),
                        self.dtype.itemsize)
        self._cols = np.empty((g.group, self.depth + 1, chunk_columns), self.dtype)
        self._cols[:, self.depth, :] = 1
        self._columns_by_worker = {0: (self._cols, {
            id(c): _view_as(self._cols[:, : self.depth, : c.columns], c.window.shape)
            for c in self._chunks})}
        if self.full_width:
            self._grid = np.empty((g.out_channels, chunk_columns), self.dtype)
        self._backward_cols: np.ndarray | None = None  # allocated by the first backward
        self._dy_padded: np.ndarray | None = None

    # ------------------------------------------------------------------ layout helpers
    def _plan_chunks(self) -> list[_Chunk]:
        """Cut the output columns (rows x out_w x N) into im2col chunks of whole rows, or of
        parts of one row when a row alone is over budget, and each chunk into GEMM pieces."""
        g = self.geometry
        (ho, wo), n, row = g.out_hw, g.batch, self.row_columns
        m, k, item = self.out_per_group, self.depth + 1, self.dtype.itemsize
        piece = None  # GEMM columns per call, None: the whole chunk
        if g.group == 1 and m * k * MIN_GEMM_PIECE <= SMALL_GEMM_MACS < m * k * ho * row:
            piece = SMALL_GEMM_MACS // (m * k)
        budget = max(MIN_CHUNK_COLUMNS, self.chunk_bytes // (g.group * k * item))
        if g.group * m * k * ho * row <= SMALL_GEMM_MACS or ho * row <= budget:
            spans = [(0, ho, 0, wo)]
        elif row <= 2 * budget or self.full_width:  # whole rows: no small leftover chunks
            rows = max(1, budget // row)
            spans = [(r0, min(rows, ho - r0), 0, wo) for r0 in range(0, ho, rows)]
        else:  # a row in equal parts
            parts = -(-row // budget)
            step = -(-wo // parts)
            spans = [(r0, 1, q0, min(wo, q0 + step)) for r0 in range(ho)
                     for q0 in range(0, wo, step)]
        chunks = []
        for r0, rows, q0, q1 in spans:
            window = self._window(r0, rows, q0, q1, self.full_width)
            columns = window[0, 0, 0, 0].size
            start = r0 * row + q0 * n
            bounds = list(range(0, columns, piece or columns)) + [columns]
            chunks.append(_Chunk(r0, rows, start, columns, window, list(zip(bounds, bounds[1:]))))
        return chunks

    def _window(self, r0: int, rows: int, q0: int, q1: int, full_width: bool) -> np.ndarray:
        """View of the padded buffer, (G, C/G, kh, kw, ...): every tap's inputs for output
        rows r0..r0+rows (columns q0..q1), as full-width runs or as (rows, q, N) blocks."""
        g = self.geometry
        c, n = g.in_channels, g.batch
        (kh, kw), (dh, dw), (sh, sw) = g.kernel_hw, g.dilations, g.strides
        hp, wp = self.padded_hw
        s_c, s_h, s_w = hp * wp * n, wp * n, n
        if full_width:
            window = strided_view(self._padded, r0 * s_h, (c, kh, kw, rows * s_h),
                                  (s_c, dh * s_h, dw * s_w, 1))
        else:
            window = strided_view(self._padded, r0 * sh * s_h + q0 * sw * s_w,
                                  (c, kh, kw, rows, q1 - q0, n),
                                  (s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w, 1))
        return window.reshape(g.group, c // g.group, *window.shape[1:])

    def _im2col_views(self, cols: np.ndarray, r0: int, rows: int):
        """(destination in ``cols``, source window): exact columns of output rows
        r0..r0+rows, for the backward."""
        window = self._window(r0, rows, 0, self.geometry.out_hw[1], full_width=False)
        columns = window[0, 0, 0, 0].size
        return _view_as(cols[:, : self.depth, :columns], window.shape), window

    # ------------------------------------------------------------------ weights
    def prepare_weights(self, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        """(G, O/G, K/G + 1) GEMM operand: the weights with the bias as a last column."""
        g = self.geometry
        prepared = np.empty((g.group, self.out_per_group, self.depth + 1), self.dtype)
        prepared[:, :, : self.depth] = w.reshape(g.group, self.out_per_group, self.depth)
        prepared[:, :, self.depth] = 0 if b is None else b.reshape(g.group, -1)
        return prepared

    # ------------------------------------------------------------------ forward
    def forward(self, x: np.ndarray, weights: np.ndarray, out: np.ndarray | None = None
                ) -> np.ndarray:
        """Conv of ``x`` (N, C, H, W, any strides) with prepared ``weights``.

        Returns an (N, O, out_h, out_w) array stored batch-minor; ``out``, if given, must
        be such an array (for batch 1: any C-contiguous one) and is filled and returned.
        """
        return self._forward(x, weights, out, None)

    def forward_keeping_columns(self, x: np.ndarray, weights: np.ndarray
                                ) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`forward`, plus the im2col columns for :meth:`backward` (which then skips
        recomputing them) when the columns are exact and at most KEEP_COLUMNS_BYTES."""
        g = self.geometry
        shape = (g.group, self.depth + 1, self.pixels)
        nbytes = int(np.prod(shape)) * self.dtype.itemsize
        if g.pointwise or self.full_width or self.direct_depthwise \
                or nbytes > KEEP_COLUMNS_BYTES:
            return self._forward(x, weights, None, None), None
        columns = np.empty(shape, self.dtype)
        columns[:, self.depth] = 1
        return self._forward(x, weights, None, columns), columns

    def _forward(self, x, weights, out, kept: np.ndarray | None, clip=None) -> np.ndarray:
        """The forward; ``clip``, a ``(ufunc, low, high)`` clamp, is applied to each chunk
        of the output while it is in cache (pointwise convolutions: to the whole)."""
        g = self.geometry
        ho, wo = g.out_hw
        y = np.empty((g.out_channels, ho, wo, g.batch), self.dtype) if out is None \
            else batch_minor(out)
        y3 = y.reshape(g.group, self.out_per_group, self.pixels)
        if g.pointwise:
            self._forward_pointwise(x, weights, y3)
            return from_batch_minor(y)
        xb = batch_minor(x)
        if self.direct_depthwise:
            self._load_input(xb)
            self._forward_depthwise(weights, y, clip)
            return from_batch_minor(y)
        threads = self._threads()
        if threads > 1:
            bounds = np.linspace(0, g.in_channels, threads + 1).astype(int)
            run_split([partial(np.copyto, self._interior[a:b], xb[a:b])
                       for a, b in zip(bounds, bounds[1:])])
            run_split([partial(self._run_chunks, self._chunks[k::threads], k, weights, y, y3,
                               kept, clip) for k in range(threads)])
        else:
            self._load_input(xb)
            self._run_chunks(self._chunks, 0, weights, y, y3, kept, clip)
        return from_batch_minor(y)

    def _load_input(self, xb: np.ndarray) -> None:
        """Copy the (C, H, W, N) input into the padded buffer's interior; one opaque item
        per image row when the input is stored that way (numpy then loops over rows, not
        values: 1.5-2x faster at batch 1)."""
        if xb.flags.c_contiguous:
            g = self.geometry
            copy_rows(self._interior_rows, xb.reshape(g.in_channels, g.in_hw[0], -1))
        else:
            np.copyto(self._interior, xb)

    def _forward_depthwise(self, weights: np.ndarray, y: np.ndarray, clip=None) -> None:
        """Depthwise conv as one ``einsum`` per band of output rows over the strided window
        view: numpy's sum-of-products loop adds the ``kh*kw`` taps of a row while it sits
        in cache, where im2col writes and rereads ``kh*kw`` copies of the input (1.9 vs
        2.4-3.7 ms for 32 channels of 14x14 at batch 256). The bias is added per band."""
        g = self.geometry
        c, (kh, kw), taps = g.in_channels, g.kernel_hw, g.kernel_hw[0] * g.kernel_hw[1]
        kernel = weights[:, 0, :taps].reshape(c, kh, kw)
        bias = weights[:, 0, taps].reshape(c, 1, 1, 1)
        ho = g.out_hw[0]
        rows = max(1, DIRECT_DEPTHWISE_BAND // max(1, g.out_hw[1] * g.batch))
        merge = g.strides[1] == 1  # (q, n) is one run: einsum's inner loop spans it
        for r0 in range(0, ho, rows):
            band = y[:, r0:r0 + rows]
            window = self._window(r0, band.shape[1], 0, g.out_hw[1], full_width=False)[:, 0]
            if merge:
                window = _view_as(window, (*window.shape[:4], -1))
                np.einsum("cijrp,cij->crp", window, kernel, out=_view_as(band, (
                    c, band.shape[1], -1)))
            else:
                np.einsum("cijrqn,cij->crqn", window, kernel, out=band)
            np.add(band, bias, out=band)
            if clip is not None:
                clip[0](band, clip[1], clip[2], out=band)

    def _threads(self) -> int:
        """Threads for this forward: several only for big convolutions in several chunks
        (by multiply-adds, or by im2col volume for the memory-bound depthwise ones)."""
        g = self.geometry
        if self.full_width or len(self._chunks) < 2:
            return 1
        columns = self.pixels * g.group * (self.depth + 1)
        if columns * self.out_per_group < PARALLEL_MIN_MACS and columns < PARALLEL_MIN_COLUMNS:
            return 1
        return min(parallel_workers(), len(self._chunks))

    def _run_chunks(self, chunks: list[_Chunk], worker: int, weights, y, y3, kept,
                    clip=None) -> None:
        """im2col and GEMMs of ``chunks`` with worker ``worker``'s column buffer."""
        g = self.geometry
        cols_buffer, destinations = self._worker_columns(worker)
        out3 = self._grid.reshape(y3.shape[0], y3.shape[1], -1) if self.full_width else y3
        for chunk in chunks:
            if kept is None:
                np.copyto(destinations[id(chunk)], chunk.window)
                cols = cols_buffer
            else:
                cols = kept[:, :, chunk.start:chunk.start + chunk.columns]
                np.copyto(_view_as(cols[:, : self.depth], chunk.window.shape), chunk.window)
            base = 0 if self.full_width else chunk.start
            for c0, c1 in chunk.pieces:
                self._product(weights, cols[:, :, c0:c1], out=out3[:, :, base + c0:base + c1])
            if clip is not None and not self.full_width:
                done = out3[:, :, base:base + chunk.columns]
                clip[0](done, clip[1], clip[2], out=done)
            if self.full_width:
                grid4 = self._grid[:, :chunk.columns].reshape(
                    g.out_channels, chunk.rows, self.padded_hw[1], g.batch)
                target = y[:, chunk.r0:chunk.r0 + chunk.rows]
                if clip is None:
                    np.copyto(target, grid4[:, :, : g.out_hw[1]])
                else:  # crop and clamp in one pass
                    clip[0](grid4[:, :, : g.out_hw[1]], clip[1], clip[2], out=target)

    def _worker_columns(self, worker: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Worker ``worker``'s column buffer and its im2col destination view per chunk."""
        found = self._columns_by_worker.get(worker)
        if found is None:
            cols = np.empty_like(self._cols)
            cols[:, self.depth, :] = 1
            found = (cols, {id(c): _view_as(cols[:, : self.depth, : c.columns], c.window.shape)
                            for c in self._chunks})
            self._columns_by_worker[worker] = found
        return found

    def _pointwise_input(self, x: np.ndarray) -> np.ndarray:
        """(G, C/G, pixels) operand of a 1x1 conv: the (subsampled) input, batch-minor."""
        g = self.geometry
        xb = batch_minor(x)
        if g.strides != (1, 1):
            xb = xb[:, :: g.strides[0], :: g.strides[1], :]
        return np.ascontiguousarray(xb).reshape(g.group, -1, self.pixels)

    def _forward_pointwise(self, x: np.ndarray, weights: np.ndarray, y3: np.ndarray) -> None:
        g = self.geometry
        xb = batch_minor(x)
        if g.strides != (1, 1):
            xb = xb[:, :: g.strides[0], :: g.strides[1], :]
        # Copying the input next to a ones row is cheaper than adding the bias afterwards
        # (the input has fewer channels than the output, or as many).
        np.copyto(self._pointwise_dst, xb.reshape(self._pointwise_dst.shape))
        if g.group == 1:  # 2-D operands: a big product can be split (blas)
            self._product(weights[0], self._pointwise_buffer[0], out=y3[0])
        else:
            self._product(weights, self._pointwise_buffer, out=y3)

    def bind(self, weights: np.ndarray, out: np.ndarray | None = None,
             clamp: tuple[float | None, float | None] | None = None):
        """``x -> forward(x)`` with the prepared ``weights``, the output array and a
        clamp activation (ReLU: ``(0, None)``, ReLU6: ``(0, 6)``) bound once: the runtime's
        path, where at batch 1 every Python line and numpy call counts. A single-chunk
        convolution is four numpy calls: input copy, im2col copy, GEMM, and the clamp,
        which for full-width columns is also the crop into ``out``.
        """
        g = self.geometry
        clip = None if clamp is None else clamp_ufunc(clamp[0], clamp[1], self.dtype)
        if g.pointwise and g.batch == 1 and g.group == 1 and g.strides == (1, 1) \
                and out is not None and out.flags.c_contiguous:
            return self._bind_pointwise_image(weights, out, clip)
        single = (g.batch > 0 and not g.pointwise and len(self._chunks) == 1
                  and len(self._chunks[0].pieces) == 1 and self._threads() == 1)
        if out is None or not single:
            pointwise = g.pointwise

            def run_general(x: np.ndarray) -> np.ndarray:
                y = self._forward(x, weights, out, None, clip)
                if clip is not None and pointwise:
                    clip[0](y, clip[1], clip[2], out=y)
                return y

            return run_general
        chunk, product = self._chunks[0], self._product
        cols = self._cols[:, :, :chunk.columns]
        dst, window = self._columns_by_worker[0][1][id(chunk)], chunk.window
        y = batch_minor(out)
        if self.full_width:
            grid = self._grid[:, :chunk.columns]
            target = grid.reshape(g.group, self.out_per_group, chunk.columns)
            valid = grid.reshape(g.out_channels, chunk.rows, self.padded_hw[1],
                                 g.batch)[:, :, : g.out_hw[1]]
        else:
            target = y.reshape(g.group, self.out_per_group, self.pixels)
            valid = y

        load = self._load_input

        def run_single_chunk(x: np.ndarray) -> np.ndarray:
            load(batch_minor(x))
            np.copyto(dst, window)
            product(weights, cols, out=target)
            if clip is not None:
                clip[0](valid, clip[1], clip[2], out=y)
            elif valid is not y:
                np.copyto(y, valid)
            return out

        return run_single_chunk

    def _bind_pointwise_image(self, weights: np.ndarray, out: np.ndarray, clip):
        """A 1x1 convolution of one image: three numpy calls (copy next to the ones row,
        GEMM into ``out``, clamp) and no layout bookkeeping — at batch 1 the general path's
        Python costs as much as the product (MobileNet's pointwise layers: ~8 -> ~4 us)."""
        depth, pixels = self.depth, self.pixels
        operand = self._pointwise_buffer[0]
        inputs = operand[:depth]
        w = weights[0]
        y = out.reshape(self.geometry.out_channels, pixels)
        product = self._product

        def run_pointwise_image(x: np.ndarray) -> np.ndarray:
            np.copyto(inputs, x.reshape(depth, pixels))
            product(w, operand, out=y)
            if clip is not None:
                clip[0](y, clip[1], clip[2], out=y)
            return out

        return run_pointwise_image

    # ------------------------------------------------------------------ backward
    def backward(self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, need_dx: bool,
                 need_dw: bool, columns: np.ndarray | None = None
                 ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """``(dx, dw, db)`` for output gradient ``dy``; dx is returned batch-minor.

        ``columns``: what :meth:`forward_keeping_columns` returned for this ``x``. The
        work is in :mod:`.conv_gradients`.
        """
        from edgefw.ir.primitives.conv_gradients import conv_backward

        return conv_backward(self, dy, x, w, need_dx, need_dw, columns)


def _view_as(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` reshaped without copying (numpy's reshape silently copies when the
    strides do not allow a view; a copy here would be filled and thrown away)."""
    view = array.view()
    view.shape = shape
    return view
