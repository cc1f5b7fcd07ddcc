"""TFLite's reference integer arithmetic, transcribed literally for the tests.

Two layers:

- scalar fixed-point helpers on Python ints with C semantics (int32 wrap, division
  truncating toward zero), line by line as in ``tensorflow/lite/kernels/internal/common.h``
  and gemmlowp's ``fixedpoint.h`` — the bit-exact reference for ``requantize.py``;
- numpy reference kernels (conv, depthwise conv, fully connected, add, average pool, mean,
  hybrid fully connected / conv) written as the reference kernels' loops would compute
  them, with the scalar requantization applied element by element. Slow and obvious.

TFLite runs NHWC; these take the IR's NCHW/OIHW and compute the same sums.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


# ------------------------------------------------------------------ scalar C helpers
def wrap32(x: int) -> int:
    return (x + (1 << 31)) % (1 << 32) - (1 << 31)


def c_div(a: int, b: int) -> int:
    """C integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul(int32 a, int32 b)."""
    overflow = a == b == INT32_MIN
    ab_64 = a * b
    nudge = (1 << 30) if ab_64 >= 0 else (1 - (1 << 30))
    ab_x2_high32 = wrap32(c_div(ab_64 + nudge, 1 << 31))
    return INT32_MAX if overflow else ab_x2_high32


def rdbp(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT(int32 x, int exponent)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x: int, quantized_multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier(int32 x, ...), double rounding."""
    left_shift = shift if shift > 0 else 0
    right_shift = 0 if shift > 0 else -shift
    return rdbp(srdhm(wrap32(x * (1 << left_shift)), quantized_multiplier), right_shift)


def mbqm_single(x: int, quantized_multiplier: int, shift: int) -> int:
    """ruy's MultiplyByQuantizedMultiplier (``ruy/apply_multiplier.cc``), which LiteRT's
    FULLY_CONNECTED uses: one rounding of the 64-bit product."""
    total_shift = 31 - shift
    return (x * quantized_multiplier + (1 << (total_shift - 1))) >> total_shift


def mbqm_int64(x: int, quantized_multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier(int64 x, ...) of the 16x8 kernels."""
    reduced = ((quantized_multiplier + (1 << 15)) >> 16) if quantized_multiplier < 0x7FFF0000 \
        else 0x7FFF
    total_shift = 15 - shift
    x = x * reduced + (1 << (total_shift - 1))
    return wrap32(x >> total_shift)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier(double) with std::frexp and std::round."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    v = q * (1 << 31)
    q_fixed = int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def c_round_div(acc: int, count: int) -> int:
    """``acc > 0 ? (acc + count/2) / count : (acc - count/2) / count`` in C."""
    if acc > 0:
        return c_div(acc + count // 2, count)
    return c_div(acc - count // 2, count)


def act_range(dtype: str, zero_point: int, scale: float, activation=None) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: Relu / Relu6 / none in the quantized domain."""
    info = np.iinfo(dtype)
    qmin, qmax = int(info.min), int(info.max)

    def quantize(f: float) -> int:
        v = np.float32(f) / np.float32(scale)
        return zero_point + int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)

    if activation == "Relu":
        return max(qmin, quantize(0.0)), qmax
    if activation == "Relu6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    return qmin, qmax


# ------------------------------------------------------------------ numpy kernels
def _requantize(acc: np.ndarray, mult: list[int], shift: list[int], channel_axis: int,
                zero_point: int, lo: int, hi: int, wide: bool = False,
                single: bool = False) -> np.ndarray:
    out = np.empty(acc.shape, np.int64)
    f = mbqm_int64 if wide else (mbqm_single if single else mbqm)
    for index, a in np.ndenumerate(acc):
        c = index[channel_axis]
        out[index] = min(max(f(int(a), mult[c], shift[c]) + zero_point, lo), hi)
    return out


def _conv_sums(x: np.ndarray, w: np.ndarray, x_zero_point: int, strides, pads, dilations,
               group: int) -> np.ndarray:
    """Integer conv sums ``sum w * (x - x_zp)`` over in-image taps (padding adds nothing)."""
    n, cin, h, wd = x.shape
    cout, per_group, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dilations
    top, left, bottom, right = pads
    ho = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + left + right - dw * (kw - 1) - 1) // sw + 1
    centered = x.astype(np.int64) - x_zero_point
    padded = np.zeros((n, cin, h + top + bottom, wd + left + right), np.int64)
    padded[:, :, top:top + h, left:left + wd] = centered
    out = np.zeros((n, cout, ho, wo), np.int64)
    out_per_group = cout // group
    for o in range(cout):
        g = o // out_per_group
        for i in range(kh):
            for j in range(kw):
                window = padded[:, g * per_group:(g + 1) * per_group,
                                i * dh:i * dh + sh * (ho - 1) + 1:sh,
                                j * dw:j * dw + sw * (wo - 1) + 1:sw]
                out[:, o] += np.einsum("nchw,c->nhw", window, w[o, :, i, j].astype(np.int64))
    return out


def conv_per_channel(x, w, bias, x_zero_point, mult, shift, y_zero_point, lo, hi,
                     strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1,
                     wide=False) -> np.ndarray:
    """reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel (int8 and 16x8)."""
    acc = _conv_sums(x, w, x_zero_point, strides, pads, dilations, group)
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)[None, :, None, None]
    return _requantize(acc, list(mult), list(shift), 1, y_zero_point, lo, hi, wide)


def fully_connected(x, w, bias, x_zero_point, mult, shift, y_zero_point, lo, hi,
                    wide=False) -> np.ndarray:
    """FULLY_CONNECTED (per-channel form); ``w`` is (N, K). int8 requantizes with ruy's
    single rounding (what LiteRT's kernels do, the reference resolver's included), 16x8
    with the int64 multiply."""
    acc = (x.astype(np.int64) - x_zero_point) @ w.astype(np.int64).T
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    return _requantize(acc, list(mult), list(shift), acc.ndim - 1, y_zero_point, lo, hi, wide,
                       single=not wide)


def batch_matmul(a, b, a_zero_point, b_zero_point, mult, shift, y_zero_point, lo, hi
                 ) -> np.ndarray:
    """reference_ops::BatchMatMul on int8: zero-centred products, double-rounding MBQM."""
    acc = (a.astype(np.int64) - a_zero_point) @ (b.astype(np.int64) - b_zero_point)
    out = np.empty(acc.shape, np.int64)
    for index, value in np.ndenumerate(acc):
        out[index] = min(max(mbqm(wrap32(int(value)), mult, shift) + y_zero_point, lo), hi)
    return out


def add_params(s1: float, s2: float, s_out: float, left_shift: int = 20):
    """The ADD kernel's Prepare (8-bit general path)."""
    twice_max = 2 * max(float(np.float32(s1)), float(np.float32(s2)))
    m1 = quantize_multiplier(float(np.float32(s1)) / twice_max)
    m2 = quantize_multiplier(float(np.float32(s2)) / twice_max)
    mo = quantize_multiplier(twice_max / ((1 << left_shift) * float(np.float32(s_out))))
    return m1, m2, mo


def add(a, b, zp_a, zp_b, zp_out, m1, m2, mo, lo, hi, left_shift=20) -> np.ndarray:
    """reference_integer_ops AddFunc, element by element (numpy broadcasting)."""
    a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
    out = np.empty(a.shape, np.int64)
    for index in np.ndindex(a.shape):
        x1 = wrap32((int(a[index]) - zp_a) * (1 << left_shift))
        x2 = wrap32((int(b[index]) - zp_b) * (1 << left_shift))
        s1 = rdbp(srdhm(x1, m1[0]), -m1[1])
        s2 = rdbp(srdhm(x2, m2[0]), -m2[1])
        raw = rdbp(srdhm(wrap32(s1 + s2), mo[0]), -mo[1]) + zp_out
        out[index] = min(max(raw, lo), hi)
    return out


def average_pool(x, kernel, strides, pads, lo, hi) -> np.ndarray:
    """reference_integer_ops::AveragePool: sum of the in-image raw values, rounded division
    by their count."""
    n, c, h, w = x.shape
    kh, kw = kernel
    sh, sw = strides
    top, left, bottom, right = pads
    ho = (h + top + bottom - kh) // sh + 1
    wo = (w + left + right - kw) // sw + 1
    out = np.empty((n, c, ho, wo), np.int64)
    for oy in range(ho):
        for ox in range(wo):
            y0, x0 = oy * sh - top, ox * sw - left
            ys = slice(max(y0, 0), min(y0 + kh, h))
            xs = slice(max(x0, 0), min(x0 + kw, w))
            window = x[:, :, ys, xs].astype(np.int64)
            count = window.shape[2] * window.shape[3]
            sums = window.sum(axis=(2, 3))
            for index in np.ndindex(n, c):
                out[index + (oy, ox)] = min(max(c_round_div(int(sums[index]), count), lo), hi)
    return out


def mean_hw(x, x_zero_point, y_zero_point, s_in, s_out, dtype="int8") -> np.ndarray:
    """reference_integer_ops::Mean over H and W (the MEAN op's int8 path)."""
    mult, shift = quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    n, c, h, w = x.shape
    info = np.iinfo(dtype)
    out = np.empty((n, c, 1, 1), np.int64)
    sums = (x.astype(np.int64) - x_zero_point).sum(axis=(2, 3))
    for index in np.ndindex(n, c):
        acc = mbqm(int(sums[index]), mult, shift)
        acc = c_round_div(acc, h * w) + y_zero_point
        out[index + (0, 0)] = min(max(acc, int(info.min)), int(info.max))
    return out


def asymmetric_quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """tensor_utils::AsymmetricQuantizeFloats for each row of a 2-D float array:
    (int8 values, float32 scaling factors, int32 offsets)."""
    rows = x.reshape(x.shape[0], -1)
    q = np.empty(rows.shape, np.int8)
    scales = np.empty(rows.shape[0], np.float32)
    offsets = np.empty(rows.shape[0], np.int32)
    for r, values in enumerate(rows):
        rmin = float(min(0.0, float(values.min())))
        rmax = float(max(0.0, float(values.max())))
        if rmin == rmax:
            q[r], scales[r], offsets[r] = 0, 1.0, 0
            continue
        scale = (rmax - rmin) / 255.0
        zp_from_min = -128.0 - rmin / scale
        zp_from_max = 127.0 - rmax / scale
        zp_min_error = 128.0 + abs(rmin / scale)
        zp_max_error = 127.0 + abs(rmax / scale)
        zp = zp_from_min if zp_min_error < zp_max_error else zp_from_max
        if zp <= -128.0:
            nudged = -128
        elif zp >= 127.0:
            nudged = 127
        else:
            nudged = int(math.floor(abs(zp) + 0.5)) * (1 if zp >= 0 else -1)
        scales[r] = np.float32(scale)
        offsets[r] = nudged
        inv = np.float32(1.0) / scales[r]
        for k, v in enumerate(values):
            f = np.float32(nudged) + np.float32(v) * inv
            rounded = int(math.floor(abs(float(f)) + 0.5)) * (1 if f >= 0 else -1)
            q[r, k] = min(127, max(-128, rounded))
    return q.reshape(x.shape), scales, offsets


def hybrid_fully_connected(x, w, w_scale, bias) -> np.ndarray:
    """Dynamic-range FULLY_CONNECTED (asymmetric inputs): float out."""
    q, scales, offsets = asymmetric_quantize_rows(x)
    acc = (q.astype(np.int64) - offsets[:, None].astype(np.int64)) @ w.astype(np.int64).T
    y = acc.astype(np.float64) * scales[:, None].astype(np.float64) \
        * np.asarray(w_scale, np.float64)[None, :]
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    return y


def hybrid_conv(x, w, w_scale, bias, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1),
                group=1) -> np.ndarray:
    """Dynamic-range CONV_2D per channel: each image quantized on its own (asymmetric)."""
    q, scales, offsets = asymmetric_quantize_rows(x.reshape(x.shape[0], -1))
    q = q.reshape(x.shape)
    out = []
    for b in range(x.shape[0]):
        acc = _conv_sums(q[b:b + 1], w, int(offsets[b]), strides, pads, dilations, group)
        out.append(acc.astype(np.float64) * float(scales[b])
                   * np.asarray(w_scale, np.float64)[None, :, None, None])
    y = np.concatenate(out)
    if bias is not None:
        y = y + np.asarray(bias, np.float64)[None, :, None, None]
    return y
