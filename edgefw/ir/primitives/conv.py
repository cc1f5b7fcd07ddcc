"""2-D convolution (ONNX ``Conv`` semantics) and its gradients, in numpy.

Layout is ONNX's: input NCHW, weights OIHW with ``I = C_in / group``, bias ``(O,)``,
``pads = (top, left, bottom, right)``. The same functions serve the autograd ops (forward and
backward while training) and the runtime's CPU kernels (inference), so they keep the input's
dtype (float32 in, float32 out) and avoid Python loops over pixels or batch items.

This module checks arguments and hands the work to a :class:`~.conv_plan.ConvPlan`, built
once per shape and cached (per thread), which holds the padded buffers, window views and
chunking (see :mod:`.conv_plan` for how the work is laid out and why). Results come back
as ``(N, C, H, W)`` arrays stored batch-minor (see :mod:`.windows`): the next convolution
or pooling reads them without a transposition. Their values are what a C-contiguous array
would hold; ``np.ascontiguousarray`` gives one when a caller needs it.

>>> x = np.ones((1, 1, 4, 4), np.float32)
>>> w = np.ones((1, 1, 3, 3), np.float32)
>>> conv2d(x, w, pads=(1, 1, 1, 1))[0, 0]
array([[4., 6., 6., 4.],
       [6., 9., 9., 6.],
       [6., 9., 9., 6.],
       [4., 6., 6., 4.]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgefw.errors import DTypeError, ShapeError
from edgefw.ir.primitives.conv_plan import ConvGeometry, ConvPlan
from edgefw.ir.primitives.windows import (
    PlanCache,
    conv_output_hw,
    int_tuple,
    release_scratch,
    same_pads,
)

__all__ = [
    "ConvGeometry",
    "ConvPlan",
    "conv2d",
    "conv2d_backward",
    "conv2d_with_columns",
    "conv_geometry",
    "conv_output_hw",
    "conv_plan",
    "release_scratch",
    "same_pads",
]

_PLANS = PlanCache(capacity=32)


def conv_geometry(
    op: str, x_shape: Sequence[int], x_dtype, w_shape: Sequence[int], strides, pads,
    dilations, group
) -> ConvGeometry:
    """Check a convolution's operand shapes and attributes; ShapeError/DTypeError naming
    ``op``.

    >>> conv_geometry("doc", (8, 1, 28, 28), np.float32, (6, 1, 5, 5), (1, 1), (2, 2, 2, 2),
    ...               (1, 1), 1).out_hw
    (28, 28)
    """
    x_shape, w_shape = tuple(x_shape), tuple(w_shape)
    if len(x_shape) != 4:
        raise ShapeError(f"{op}: input must be 4-D NCHW, got shape {x_shape}")
    if len(w_shape) != 4:
        raise ShapeError(f"{op}: weight must be 4-D OIHW, got shape {w_shape}")
    if not np.issubdtype(x_dtype, np.floating):
        raise DTypeError(f"{op}: input must be float16/32/64, got {np.dtype(x_dtype)}")
    try:
        group = int(group)
    except (TypeError, ValueError):
        raise ShapeError(f"{op}: group must be an integer >= 1, got {group!r}") from None
    out_channels, per_group, kh, kw = w_shape
    if group < 1 or out_channels % group or min(w_shape) < 1:
        raise ShapeError(
            f"{op}: weight {w_shape} with group={group}: C_out={out_channels} must be a "
            f"positive multiple of group and every weight dimension positive"
        )
    if x_shape[1] != per_group * group:
        raise ShapeError(
            f"{op}: input {x_shape} has C_in={x_shape[1]} but weight {w_shape} with "
            f"group={group} expects C_in = I*group = {per_group * group}"
        )
    strides = int_tuple(strides, 2, "strides", op, 1)
    pads = int_tuple(pads, 4, "pads", op, 0)
    dilations = int_tuple(dilations, 2, "dilations", op, 1)
    in_hw = (x_shape[2], x_shape[3])
    out_hw = conv_output_hw(in_hw, (kh, kw), strides, pads, dilations, op=op)
    return ConvGeometry(x_shape[0], x_shape[1], in_hw, out_channels, (kh, kw), strides, pads,
                        dilations, group, out_hw)


def conv_plan(op: str, x: np.ndarray, w: np.ndarray, strides, pads, dilations, group
              ) -> ConvPlan:
    """The cached :class:`ConvPlan` for these operands (validated on first use)."""
    def build() -> ConvPlan:
        geometry = conv_geometry(op, x.shape, x.dtype, w.shape, strides, pads, dilations, group)
        return ConvPlan(geometry, x.dtype)

    try:
        key = (x.shape, x.dtype, w.shape, tuple(strides), tuple(pads), tuple(dilations), group)
        hash(key)
    except TypeError:  # unhashable attribute values: let validation say what is wrong
        return build()
    return _PLANS.get(key, build)


def _as_dtype(op: str, name: str, array, dtype: np.dtype) -> np.ndarray:
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DTypeError(f"{op}: {name} must be numeric, got {array.dtype}")
    return array.astype(dtype, copy=False)


def _inputs(op: str, x, w):
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim == 4 and w.ndim == 4 and not np.issubdtype(x.dtype, np.floating):
        raise DTypeError(f"{op}: input must be float16/32/64, got {x.dtype}")
    return x, w


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
    x, plan, weights = _forward_operands(x, w, b, strides, pads, dilations, group)
    if weights is None:
        return np.zeros((0, plan.geometry.out_channels, *plan.geometry.out_hw), x.dtype)
    return plan.forward(x, weights)


def conv2d_with_columns(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    strides: Sequence[int] = (1, 1),
    pads: Sequence[int] = (0, 0, 0, 0),
    dilations: Sequence[int] = (1, 1),
    group: int = 1,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`conv2d` for training: also returns the im2col columns (or None when they are
    too big to keep), which :func:`conv2d_backward` takes to skip recomputing them.

    >>> x = np.ones((2, 1, 4, 4), np.float32); w = np.ones((1, 1, 3, 3), np.float32)
    >>> y, cols = conv2d_with_columns(x, w)
    >>> dx, dw = conv2d_backward(np.ones_like(y), x, w, columns=cols)
    >>> dw.ravel().tolist()
    [8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    """
    x, plan, weights = _forward_operands(x, w, b, strides, pads, dilations, group)
    if weights is None:
        return np.zeros((0, plan.geometry.out_channels, *plan.geometry.out_hw), x.dtype), None
    return plan.forward_keeping_columns(x, weights)


def _forward_operands(x, w, b, strides, pads, dilations, group):
    """(x, plan, prepared weights or None for an empty batch), with every check made."""
    x, w = _inputs("conv2d", x, w)
    plan = conv_plan("conv2d", x, w, strides, pads, dilations, group)
    g = plan.geometry
    w = _as_dtype("conv2d", "weight", w, x.dtype)
    if b is not None:
        b = _as_dtype("conv2d", "bias", b, x.dtype)
        if b.shape != (g.out_channels,):
            raise ShapeError(f"conv2d: bias must have shape ({g.out_channels},), got {b.shape}")
    return x, plan, (None if g.batch == 0 else plan.prepare_weights(w, b))


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
    need_db: bool = False,
    columns: np.ndarray | None = None,
) -> tuple[np.ndarray | None, ...]:
    """Gradients ``(dx, dw)`` of :func:`conv2d` given the output gradient ``dy``
    (``(dx, dw, db)`` with ``need_db``; ``db`` comes free with ``dw``).

    Pass ``need_dx=False`` for a layer whose input needs no gradient (the first conv of a
    network) to skip col2im, and the ``columns`` of :func:`conv2d_with_columns` for this
    ``x`` to skip im2col. ``dx`` is stored batch-minor like :func:`conv2d`'s output.

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
    op = "conv2d_backward"
    x, w = _inputs(op, x, w)
    plan = conv_plan(op, x, w, strides, pads, dilations, group)
    g = plan.geometry
    w = _as_dtype(op, "weight", w, x.dtype)
    dy = _as_dtype(op, "dy", dy, x.dtype)
    expected = (g.batch, g.out_channels, *g.out_hw)
    if dy.shape != expected:
        raise ShapeError(
            f"{op}: dy has shape {dy.shape}, expected {expected} for input {x.shape} and "
            f"weight {w.shape}"
        )
    if g.batch == 0:
        dx = np.zeros(x.shape, x.dtype) if need_dx else None
        dw = np.zeros(w.shape, x.dtype) if need_dw else None
        db = np.zeros(g.out_channels, x.dtype)
    else:
        if columns is not None:
            expected_columns = (g.group, plan.depth + 1, plan.pixels)
            if columns.shape != expected_columns or columns.dtype != x.dtype:
                raise ShapeError(f"{op}: columns of shape {columns.shape} ({columns.dtype}) do "
                                 f"not come from conv2d_with_columns on this input; expected "
                                 f"{expected_columns} ({x.dtype})")
        dx, dw, db = plan.backward(dy, x, w, need_dx, need_dw, columns)
    return (dx, dw, db) if need_db else (dx, dw)
