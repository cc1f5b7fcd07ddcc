"""NCHW -> NHWC: how the exporter stores the IR's NCHW values in TFLite's NHWC layout.

TFLite's convolution and pooling kernels take NHWC feature maps; the IR, following ONNX, is
NCHW. Instead of wrapping every Conv in a pair of transposes, the exporter stores each value
in the layout that suits its producer and records the *stored permutation* ``perm``:

    stored = np.transpose(logical, perm)          # NHWC storage of NCHW: perm (0, 2, 3, 1)

Layout-agnostic ops (elementwise, activations, concat, pad, slice, softmax, reductions)
read and write whatever layout their input has, with axes renumbered; an IR ``Transpose``
writes no op at all, it only changes the recorded permutation (:func:`after_transpose`).
A TRANSPOSE is written only where an op needs a layout its input does not have, and the
permutation it applies is the composition (:func:`transpose_between`), so transposes that
cancel out vanish. Constant operands are permuted when written, at no cost at run time.

Weights change layout once, at export: Conv OIHW -> OHWI (:func:`conv_weights_ohwi`),
depthwise (C*M, 1, H, W) -> (1, H, W, C*M) (:func:`depthwise_weights_1hwc`), and a
Flatten of NHWC feature maps keeps the NCHW order of features by permuting the columns
of the FULLY_CONNECTED weights that read it (:func:`nhwc_flatten_order`).

    >>> transpose_between((0, 2, 3, 1), (0, 1, 2, 3))   # NHWC storage back to NCHW
    (0, 3, 1, 2)
    >>> after_transpose((0, 2, 3, 1), (0, 2, 3, 1))     # Transpose(NCHW->NHWC) of NHWC data
    (0, 1, 2, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Perm = tuple[int, ...]

#: Stored permutation of an NCHW value kept as NHWC.
NHWC: Perm = (0, 2, 3, 1)


def identity(rank: int) -> Perm:
    return tuple(range(rank))


def is_identity(perm: Sequence[int]) -> bool:
    return tuple(perm) == tuple(range(len(perm)))


def inverse(perm: Sequence[int]) -> Perm:
    out = [0] * len(perm)
    for i, p in enumerate(perm):
        out[p] = i
    return tuple(out)


def transpose_between(have: Sequence[int], want: Sequence[int]) -> Perm:
    """The TRANSPOSE ``perm`` turning data stored with ``have`` into data stored with
    ``want`` (both stored permutations of the same logical value)."""
    have_inv = inverse(have)
    return tuple(have_inv[w] for w in want)


def after_transpose(stored: Sequence[int], transpose_perm: Sequence[int]) -> Perm:
    """The stored permutation of ``y = Transpose(x, transpose_perm)`` if y keeps x's
    data unmoved (x stored with ``stored``)."""
    t_inv = inverse(transpose_perm)
    return tuple(t_inv[p] for p in stored)


def stored_axis(perm: Sequence[int], axis: int) -> int:
    """Where logical ``axis`` (non-negative) sits in the stored data."""
    return inverse(perm)[axis]


def stored_shape(logical: Sequence, perm: Sequence[int]) -> tuple:
    return tuple(logical[p] for p in perm)


def permute_constant(array: np.ndarray, perm: Sequence[int], rank: int) -> np.ndarray:
    """A constant operand broadcast against a value of ``rank`` dims stored with ``perm``:
    pad its shape with leading 1s (numpy broadcasting), then permute."""
    array = np.asarray(array)
    if is_identity(perm) or array.ndim == 0:
        return array
    array = array.reshape((1,) * (rank - array.ndim) + array.shape)
    return np.ascontiguousarray(np.transpose(array, perm))


def drop_axes(perm: Sequence[int], axes: Sequence[int]) -> Perm:
    """The stored permutation after logical ``axes`` are removed (squeeze, reduce)."""
    removed = set(axes)
    kept = [p for p in perm if p not in removed]
    remaining = sorted(kept)
    return tuple(remaining.index(p) for p in kept)


def conv_weights_ohwi(weights: np.ndarray) -> np.ndarray:
    """ONNX Conv weights (O, I, H, W) as TFLite CONV_2D filters (O, H, W, I)."""
    return np.ascontiguousarray(np.transpose(weights, (0, 2, 3, 1)))


def depthwise_weights_1hwc(weights: np.ndarray) -> np.ndarray:
    """ONNX depthwise weights (C*M, 1, H, W) as TFLite DEPTHWISE_CONV_2D filters
    (1, H, W, C*M); output channel ``c*M + m`` stays at the same index."""
    return np.ascontiguousarray(np.transpose(weights, (1, 2, 3, 0)))


def nhwc_flatten_order(channels: int, height: int, width: int) -> np.ndarray:
    """For the flattening of NHWC data: ``order[i]`` is the NCHW-flattened feature index
    found at NHWC-flattened position ``i``.

    >>> nhwc_flatten_order(2, 1, 2).tolist()   # NHWC features (h,w,c): c0w0 c1w0 c0w1 c1w1
    [0, 2, 1, 3]
    """
    nchw_index = np.arange(channels * height * width).reshape(channels, height, width)
    return np.transpose(nchw_index, (1, 2, 0)).reshape(-1)


__all__ = [
    "NHWC",
    "Perm",
    "after_transpose",
    "conv_weights_ohwi",
    "depthwise_weights_1hwc",
    "drop_axes",
    "identity",
    "inverse",
    "is_identity",
    "nhwc_flatten_order",
    "permute_constant",
    "stored_axis",
    "stored_shape",
    "transpose_between",
]
