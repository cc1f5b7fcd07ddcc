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
whose columns fit in L2 keep the im2col copy in cache for the GEMM that reads it.

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

import numpy as np

from edgefw.ir.primitives.blas import matmul, matmul_nt
from edgefw.ir.primitives.windows import (
    batch_minor,
    check_temporary,
    from_batch_minor,
    strided_view,
)

__all__ = ["ConvGeometry", "ConvPlan"]

# Tap runs shorter than this (out_w * N values) use the full-width column layout.
FULL_WIDTH_MAX_RUN = 48
# A GEMM below this many multiply-adds runs OpenBLAS's unpacked small-matrix kernel.
SMALL_GEMM_MACS = 1_000_000
# Column chunks stay under this many bytes so the GEMM finds them in L2.
CHUNK_BYTES = 512 << 10
# Backward recomputes all columns at once up to this size, else it works in chunks.
BACKWARD_COLUMN_BYTES = 16 << 20
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


class ConvPlan:
    """Buffers, views and chunks for one :class:`ConvGeometry` and dtype (see module docs).

    A plan owns scratch memory, so it must not run in two threads at once; the caches
    that hand plans out are per thread.
    """

    def __init__(self, geometry: ConvGeometry, dtype) -> None:
        g = self.geometry = geometry
        self.dtype = np.dtype(dtype)
        n, c, (h, w) = g.batch, g.in_channels, g.in_hw
        (ho, wo), kw = g.out_hw, g.kernel_hw[1]
        self.depth = g.group_depth  # K/G; the ones row is index `depth`
        self.out_per_group = g.out_channels // g.group
        self.pixels = ho * wo * n
        if g.pointwise:
            self.full_width = False
            return
        pt, pl, pb, pr = g.pads
        self.padded_hw = (h + pt + pb, w + pl + pr)
        hp, wp = self.padded_hw
        self.full_width = g.strides == (1, 1) and wo * n < FULL_WIDTH_MAX_RUN
        tail = (kw - 1) * g.dilations[1] * n if self.full_width else 0
        check_temporary("conv2d", "padded input", (c, hp, wp, n), self.dtype.itemsize)
        self._padded = np.zeros(c * hp * wp * n + tail, self.dtype)
        self._padded4 = self._padded[: c * hp * wp * n].reshape(c, hp, wp, n)
        self._interior = self._padded4[:, pt:pt + h, pl:pl + w, :]
        # One output row's worth of columns, and rows per forward chunk.
        self.row_columns = (wp if self.full_width else wo) * n
        self.chunk_rows = self._rows_per_chunk(self.out_per_group, self.depth + 1)
        chunk_columns = self.chunk_rows * self.row_columns
        check_temporary("conv2d", "im2col columns", (g.group, self.depth + 1, chunk_columns),
                        self.dtype.itemsize)
        self._cols = np.empty((g.group, self.depth + 1, chunk_columns), self.dtype)
        self._cols[:, self.depth, :] = 1
        self._chunks = []  # (first row, rows, columns view to fill, window view to copy)
        for r0 in range(0, ho, self.chunk_rows):
            rows = min(self.chunk_rows, ho - r0)
            self._chunks.append((r0, rows, *self._im2col_views(self._cols, r0, rows,
                                                                self.full_width)))
        if self.full_width:
            self._grid = np.empty((g.out_channels, chunk_columns), self.dtype)
        self._backward_cols: np.ndarray | None = None  # allocated by the first backward
        self._dy_padded: np.ndarray | None = None

    # ------------------------------------------------------------------ layout helpers
    def _rows_per_chunk(self, m: int, k: int) -> int:
        (ho, _), row = self.geometry.out_hw, self.row_columns
        groups, item = self.geometry.group, self.dtype.itemsize
        if groups * m * k * ho * row <= SMALL_GEMM_MACS:
            return ho
        columns = CHUNK_BYTES // (groups * k * item)
        if groups == 1 and m * k * 1024 <= SMALL_GEMM_MACS:
            columns = min(columns, SMALL_GEMM_MACS // (m * k))
        return max(1, min(ho, columns // row))

    def _window(self, r0: int, rows: int, full_width: bool) -> np.ndarray:
        """View of the padded buffer, (G, C/G, kh, kw, ...): every tap's inputs for output
        rows r0..r0+rows, as full-width runs or as (rows, out_w, N) blocks."""
        g = self.geometry
        c, n = g.in_channels, g.batch
        (kh, kw), (dh, dw), (sh, sw) = g.kernel_hw, g.dilations, g.strides
        hp, wp = self.padded_hw
        s_c, s_h, s_w = hp * wp * n, wp * n, n
        if full_width:
            window = strided_view(self._padded, r0 * s_h, (c, kh, kw, rows * s_h),
                                  (s_c, dh * s_h, dw * s_w, 1))
        else:
            wo = g.out_hw[1]
            window = strided_view(self._padded, r0 * sh * s_h, (c, kh, kw, rows, wo, n),
                                  (s_c, dh * s_h, dw * s_w, sh * s_h, sw * s_w, 1))
        return window.reshape(g.group, c // g.group, *window.shape[1:])

    def _im2col_views(self, cols: np.ndarray, r0: int, rows: int, full_width: bool):
        """(destination in ``cols``, source window) for output rows r0..r0+rows."""
        window = self._window(r0, rows, full_width)
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
        if g.pointwise or self.full_width or nbytes > KEEP_COLUMNS_BYTES:
            return self._forward(x, weights, None, None), None
        columns = np.empty(shape, self.dtype)
        columns[:, self.depth] = 1
        return self._forward(x, weights, None, columns), columns

    def _forward(self, x, weights, out, kept: np.ndarray | None) -> np.ndarray:
        g = self.geometry
        ho, wo = g.out_hw
        y = np.empty((g.out_channels, ho, wo, g.batch), self.dtype) if out is None \
            else batch_minor(out)
        y3 = y.reshape(g.group, self.out_per_group, self.pixels)
        if g.pointwise:
            self._forward_pointwise(x, weights, y3)
            return from_batch_minor(y)
        np.copyto(self._interior, batch_minor(x))
        for r0, rows, dst, window in self._chunks:
            columns = rows * self.row_columns
            if kept is None:
                np.copyto(dst, window)
                cols = self._cols[:, :, :columns]
            else:
                start = r0 * self.row_columns
                cols = kept[:, :, start:start + columns]
                np.copyto(_view_as(cols[:, : self.depth], window.shape), window)
            if self.full_width:
                grid = self._grid[:, :columns]
                matmul(weights, cols, out=grid.reshape(y3.shape[0], y3.shape[1], columns))
                wp = self.padded_hw[1]
                grid4 = grid.reshape(g.out_channels, rows, wp, g.batch)
                np.copyto(y[:, r0:r0 + rows], grid4[:, :, :wo])
            else:
                start = r0 * self.row_columns
                matmul(weights, cols, out=y3[:, :, start:start + columns])
        return from_batch_minor(y)

    def _pointwise_input(self, x: np.ndarray) -> np.ndarray:
        """(G, C/G, pixels) operand of a 1x1 conv: the (subsampled) input, batch-minor."""
        g = self.geometry
        xb = batch_minor(x)
        if g.strides != (1, 1):
            xb = xb[:, :: g.strides[0], :: g.strides[1], :]
        return np.ascontiguousarray(xb).reshape(g.group, -1, self.pixels)

    def _forward_pointwise(self, x: np.ndarray, weights: np.ndarray, y3: np.ndarray) -> None:
        matmul(weights[:, :, : self.depth], self._pointwise_input(x), out=y3)
        y3 += weights[:, :, self.depth:]

    # ------------------------------------------------------------------ backward
    def backward(self, dy: np.ndarray, x: np.ndarray, w: np.ndarray, need_dx: bool,
                 need_dw: bool, columns: np.ndarray | None = None
                 ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
        """``(dx, dw, db)`` for output gradient ``dy``; dx is returned batch-minor.

        ``columns``: what :meth:`forward_keeping_columns` returned for this ``x``.
        """
        g = self.geometry
        m, depth = self.out_per_group, self.depth
        dy3 = np.ascontiguousarray(batch_minor(dy)).reshape(g.group, m, self.pixels)
        dx = dw = None
        if g.pointwise:
            xs = self._pointwise_input(x) if need_dw else None
            if need_dw:
                dw = matmul_nt(dy3, xs).reshape(w.shape)
            db = dy3.sum(axis=2).reshape(-1)
            if need_dx:
                dx = self._pointwise_dx(dy3, w)
            return dx, dw, db
        if need_dw:
            if columns is not None:
                dw_full = matmul_nt(dy3, columns)
            else:
                dw_full = self._weight_gradient(dy3, x)
            dw = np.ascontiguousarray(dw_full[:, :, :depth]).reshape(w.shape)
            db = dw_full[:, :, depth].reshape(-1)
        else:
            db = dy3.sum(axis=2).reshape(-1)
        if need_dx:
            if g.strides == (1, 1):
                dx = self._input_gradient_by_rows(dy3, w)
            else:
                dx = self._input_gradient(dy3, w)
        return dx, dw, db

    def _backward_chunks(self):
        """(first row, rows) pieces whose full columns fit in BACKWARD_COLUMN_BYTES."""
        g = self.geometry
        ho, wo = g.out_hw
        row_bytes = g.group * (self.depth + 1) * wo * g.batch * self.dtype.itemsize
        rows = max(1, min(ho, BACKWARD_COLUMN_BYTES // row_bytes))
        return [(r0, min(rows, ho - r0)) for r0 in range(0, ho, rows)]

    def _weight_gradient(self, dy3: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(G, O/G, K/G + 1): weight gradient, with the bias gradient as the last column."""
        g = self.geometry
        wo, n = g.out_hw[1], g.batch
        np.copyto(self._interior, batch_minor(x))
        chunks = self._backward_chunks()
        if self._backward_cols is None:
            columns = chunks[0][1] * wo * n
            self._backward_cols = np.empty((g.group, self.depth + 1, columns), self.dtype)
            self._backward_cols[:, self.depth] = 1
        total = None
        for r0, rows in chunks:
            columns = rows * wo * n
            cols = self._backward_cols[:, :, :columns]
            dst, window = self._im2col_views(self._backward_cols, r0, rows, full_width=False)
            np.copyto(dst, window)
            start = r0 * wo * n
            part = matmul_nt(dy3[:, :, start:start + columns], cols)
            total = part if total is None else total + part
        return total

    def _input_gradient(self, dy3: np.ndarray, w: np.ndarray) -> np.ndarray:
        """col2im of ``W.T @ dy``: one add per kernel tap into a zeroed padded buffer."""
        g = self.geometry
        c, n, (h, wd) = g.in_channels, g.batch, g.in_hw
        wo, (kh, kw) = g.out_hw[1], g.kernel_hw
        (sh, sw), (dh, dw) = g.strides, g.dilations
        pt, pl = g.pads[0], g.pads[1]
        hp, wp = self.padded_hw
        weights_t = w.reshape(g.group, self.out_per_group, self.depth).transpose(0, 2, 1)
        dpadded = np.zeros((c, hp, wp, n), self.dtype)
        for r0, rows in self._backward_chunks():
            start, columns = r0 * wo * n, rows * wo * n
            dcols = matmul(weights_t, dy3[:, :, start:start + columns])
            taps = dcols.reshape(c, kh, kw, rows, wo, n)
            for i in range(kh):
                top = i * dh + r0 * sh
                rows_slice = slice(top, top + (rows - 1) * sh + 1, sh)
                for j in range(kw):
                    cols_slice = slice(j * dw, j * dw + (wo - 1) * sw + 1, sw)
                    window = dpadded[:, rows_slice, cols_slice, :]
                    np.add(window, taps[:, i, j], out=window)
        return from_batch_minor(dpadded[:, pt:pt + h, pl:pl + wd, :])

    def _input_gradient_by_rows(self, dy3: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Stride-1 input gradient with the kernel columns folded into the GEMM.

        ``R[c, i, p, :] = sum_{o, j} W[o, c, i, j] * dy[o, p, : - j]`` is one GEMM of the
        weights (rows (c, i), columns (o, j)) with ``kw`` shifted copies of ``dy`` (one
        ``copyto`` from a zero-bordered buffer); then ``kh`` adds of whole rows place it.
        Against col2im (``W.T @ dy`` then ``kh*kw`` window adds) the GEMM is ``kw*wo/(Wp)``
        bigger but the adds move ``kw`` times less data: 2x faster for LeNet's conv2.
        """
        g = self.geometry
        c, n, (h, wd) = g.in_channels, g.batch, g.in_hw
        (ho, wo), (kh, kw), (dh, dw) = g.out_hw, g.kernel_hw, g.dilations
        pt, pl = g.pads[0], g.pads[1]
        hp, wp = self.padded_hw
        groups, m = g.group, self.out_per_group
        margin = (kw - 1) * dw
        width = wo + 2 * margin
        if self._dy_padded is None:  # zero margins written once, interior per call
            self._dy_padded = np.zeros(g.out_channels * ho * width * n, self.dtype)
        dy_padded = self._dy_padded.reshape(g.out_channels, ho, width, n)
        np.copyto(dy_padded[:, :, margin:margin + wo, :],
                  dy3.reshape(g.out_channels, ho, wo, n))
        # shifted[o, j', p, w, n] = dy[o, p, w - (kw-1-j') * dw, n]: kernel columns reversed.
        shifted = strided_view(self._dy_padded, 0, (g.out_channels, kw, ho, wp * n),
                               (ho * width * n, dw * n, width * n, 1))
        shifted = np.ascontiguousarray(shifted).reshape(groups, m * kw, ho * wp * n)
        flipped = w.reshape(groups, m, c // groups, kh, kw)[..., ::-1]
        flipped = flipped.transpose(0, 2, 3, 1, 4).reshape(groups, c // groups * kh, m * kw)
        rows = matmul(flipped, shifted).reshape(c, kh, ho, wp * n)
        dpadded = np.zeros((c, hp, wp * n), self.dtype)
        for i in range(kh):
            window = dpadded[:, i * dh:i * dh + ho]
            np.add(window, rows[:, i], out=window)
        dpadded = dpadded.reshape(c, hp, wp, n)
        return from_batch_minor(dpadded[:, pt:pt + h, pl:pl + wd, :])

    def _pointwise_dx(self, dy3: np.ndarray, w: np.ndarray) -> np.ndarray:
        g = self.geometry
        c, n, (h, wd), (ho, wo) = g.in_channels, g.batch, g.in_hw, g.out_hw
        weights_t = w.reshape(g.group, self.out_per_group, self.depth).transpose(0, 2, 1)
        dxs = matmul(weights_t, dy3).reshape(c, ho, wo, n)
        if g.strides == (1, 1):
            return from_batch_minor(dxs)
        dx = np.zeros((c, h, wd, n), self.dtype)
        dx[:, :: g.strides[0], :: g.strides[1], :] = dxs
        return from_batch_minor(dx)


def _view_as(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``array`` reshaped without copying (numpy's reshape silently copies when the
    strides do not allow a view; a copy here would be filled and thrown away)."""
    view = array.view()
    view.shape = shape
    return view
