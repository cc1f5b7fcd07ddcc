"""Scale and zero-point arithmetic, as onnxruntime's quantizer and TFLite compute them.

Affine quantization maps a real ``x`` to ``q = clip(round(x / scale) + zero_point, qmin,
qmax)`` and back to ``(q - zero_point) * scale``. The real range is first extended to
include 0, so that 0 (zero padding, ReLU's floor) is exactly representable:

- asymmetric (activations, int8/uint8): ``scale = (max - min) / (qmax - qmin)``,
  ``zero_point = round(qmin - min / scale)``;
- symmetric (weights; int16 activations in the "16x8" mode): ``scale = max|x| / qmax``
  with ``qmax`` = 127 (int8) or 32767 (int16) and zero point 0 — the restricted range
  [-127, 127] keeps the int8 product symmetric, as TFLite requires of weights.

A zero range (a tensor that is always 0) gets scale 1 and zero point 0, as in
onnxruntime, so nothing divides by zero.

    >>> p = compute_qparams(-1.0, 3.0, "uint8")
    >>> float(p.scale), int(p.zero_point)
    (0.01568627543747425, 64)
    >>> float(compute_qparams(0.0, 0.0, "int8").scale)
    1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefw.errors import QuantizationError

#: Activation dtypes and their (qmin, qmax) for asymmetric use.
ACTIVATION_DTYPES = ("int8", "uint8", "int16")
_FULL_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
               "uint16": (0, 65535)}
#: Symmetric quantization drops the most negative code so that -qmax..qmax is symmetric.
_SYMMETRIC_RANGE = {"int8": (-127, 127), "int16": (-32767, 32767)}
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class QParams:
    """A scale (float32) and zero point (of ``dtype``): scalars per tensor, 1-D per axis."""

    scale: np.ndarray
    zero_point: np.ndarray
    dtype: str
    axis: int | None = None

    @property
    def qmin(self) -> int:
        return qrange(self.dtype)[0]

    @property
    def qmax(self) -> int:
        return qrange(self.dtype)[1]


def check_activation_dtype(dtype: str) -> str:
    """``dtype`` if it is a supported activation dtype, else QuantizationError."""
    if dtype not in ACTIVATION_DTYPES:
        raise QuantizationError(f"unsupported activation dtype {dtype!r}; choose one of "
                                f"{', '.join(ACTIVATION_DTYPES)} (int16 is the 16x8 mode)")
    return dtype


def qrange(dtype: str, symmetric: bool = False) -> tuple[int, int]:
    """``(qmin, qmax)`` of ``dtype``; the restricted symmetric range when ``symmetric``."""
    table = _SYMMETRIC_RANGE if symmetric else _FULL_RANGE
    if dtype not in table:
        kind = "symmetric " if symmetric else ""
        raise QuantizationError(f"no {kind}quantization range for dtype {dtype!r}; "
                                f"supported: {', '.join(table)}")
    return table[dtype]


def is_symmetric_dtype(dtype: str) -> bool:
    """int16 activations are symmetric with zero point 0 (TFLite's 16x8 mode)."""
    return dtype == "int16"


def compute_qparams(rmin: float | np.ndarray, rmax: float | np.ndarray, dtype: str,
                    symmetric: bool = False) -> QParams:
    """Scale and zero point for the real range ``[rmin, rmax]`` (scalars, or arrays for a
    per-channel range) in ``dtype``.

    >>> p = compute_qparams(0.0, 6.0, "int8")
    >>> round(float(p.scale), 6), int(p.zero_point)
    (0.023529, -128)
    >>> p = compute_qparams(np.array([-2.0, 0.0]), np.array([1.0, 0.0]), "int8", symmetric=True)
    >>> p.scale.tolist(), p.zero_point.tolist()
    ([0.015748031437397003, 1.0], [0, 0])
    """
    rmin = np.minimum(np.asarray(rmin, np.float64), 0.0)
    rmax = np.maximum(np.asarray(rmax, np.float64), 0.0)
    if not (np.all(np.isfinite(rmin)) and np.all(np.isfinite(rmax))):
        raise QuantizationError(f"cannot quantize a range that is not finite: [{rmin}, {rmax}]")
    qmin, qmax = qrange(dtype, symmetric)
    if symmetric:
        absmax = np.maximum(-rmin, rmax)
        rmin, rmax = -absmax, absmax
    scale = (rmax - rmin) / float(qmax - qmin)
    zero_range = scale < np.finfo(np.float32).tiny
    scale = np.where(zero_range, 1.0, scale)
    if symmetric:
        zero_point = np.zeros_like(scale)
    else:
        zero_point = np.clip(np.round(qmin - rmin / scale), qmin, qmax)
        zero_point = np.where(zero_range, 0.0, zero_point)
    return QParams(scale.astype(np.float32), zero_point.astype(_np_dtype(dtype)), dtype)


def weight_qparams(weight: np.ndarray, axis: int | None) -> QParams:
    """Symmetric int8 parameters of ``weight``: one scale per slice along ``axis`` (per
    channel), or one for the tensor (``axis`` None). ``scale = max|w| / 127``.

    >>> w = np.array([[0.5, -1.27], [0.1, 0.0]], np.float32)
    >>> [round(float(s), 5) for s in weight_qparams(w, axis=0).scale]
    [0.01, 0.00079]
    """
    w = np.asarray(weight, np.float64)
    if axis is None:
        absmax = np.max(np.abs(w)) if w.size else 0.0
        params = compute_qparams(-absmax, absmax, "int8", symmetric=True)
        return params
    axis = axis % w.ndim
    reduce_axes = tuple(i for i in range(w.ndim) if i != axis)
    absmax = np.max(np.abs(w), axis=reduce_axes) if w.size else np.zeros(w.shape[axis])
    params = compute_qparams(-absmax, absmax, "int8", symmetric=True)
    return QParams(params.scale, params.zero_point, "int8", axis)


def _broadcast(param: np.ndarray, ndim: int, axis: int | None) -> np.ndarray:
    if axis is None or param.ndim == 0:
        return param
    shape = [1] * ndim
    shape[axis % ndim] = param.shape[0]
    return param.reshape(shape)


def quantize_array(x: np.ndarray, params: QParams) -> np.ndarray:
    """``clip(rint(x / scale) + zero_point)`` as ``params.dtype`` — what the runtime's
    QuantizeLinear computes (float32 division, round half to even)."""
    x = np.asarray(x, np.float32)
    scale = _broadcast(params.scale.astype(np.float32), x.ndim, params.axis)
    zero_point = _broadcast(params.zero_point.astype(np.float32), x.ndim, params.axis)
    q = np.rint(x / scale) + zero_point
    qmin, qmax = qrange(params.dtype)
    return np.clip(q, qmin, qmax).astype(_np_dtype(params.dtype))


def dequantize_array(q: np.ndarray, params: QParams) -> np.ndarray:
    """``(q - zero_point) * scale`` in float32."""
    q = np.asarray(q)
    scale = _broadcast(params.scale.astype(np.float32), q.ndim, params.axis)
    zero_point = _broadcast(params.zero_point.astype(np.int64), q.ndim, params.axis)
    return ((q.astype(np.int64) - zero_point).astype(np.float32) * scale).astype(np.float32)


def quantize_bias(bias: np.ndarray, input_scale: float,
                  weight_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The int32 bias and its scale ``input_scale * weight_scale`` (per channel), zero point 0.

    Raises QuantizationError when the bias does not fit int32 (see
    :func:`weight_scale_for_bias`, which avoids that).

    >>> q, s = quantize_bias(np.array([0.5, -0.25]), 0.5, np.array([0.01, 0.1], np.float32))
    >>> q.tolist(), [round(float(x), 4) for x in s]
    ([100, -5], [0.005, 0.05])
    """
    scale = (np.float32(input_scale) * np.asarray(weight_scale, np.float32)).astype(np.float32)
    q = np.rint(np.asarray(bias, np.float64) / scale.astype(np.float64))
    if np.any(np.abs(q) > INT32_MAX):
        raise QuantizationError(f"bias {np.abs(bias).max():.4g} does not fit int32 at scale "
                                f"{scale.min():.4g}")
    return q.astype(np.int32), scale


def weight_scale_for_bias(weight_scale: np.ndarray, bias: np.ndarray,
                          input_scale: float) -> np.ndarray:
    """``weight_scale`` raised where needed so that ``bias / (input_scale * weight_scale)``
    fits int32 (a channel with tiny weights and a large bias), as onnxruntime does."""
    needed = np.abs(np.asarray(bias, np.float64)) / (float(input_scale) * (INT32_MAX - 1))
    scale = np.maximum(np.asarray(weight_scale, np.float64), needed * (1 + 1e-6))
    return scale.astype(np.float32)


def _np_dtype(dtype: str) -> np.dtype:
    return np.dtype(dtype)


__all__ = [
    "ACTIVATION_DTYPES",
    "INT32_MAX",
    "QParams",
    "check_activation_dtype",
    "compute_qparams",
    "dequantize_array",
    "is_symmetric_dtype",
    "qrange",
    "quantize_array",
    "quantize_bias",
    "weight_qparams",
    "weight_scale_for_bias",
]
