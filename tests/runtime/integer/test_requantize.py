"""Fixed-point requantization (runtime/providers/cpu/requantize.py) against a literal
transcription of TFLite's / gemmlowp's C++ (tflite_reference.py): bit-exact."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from edgefw.errors import QuantizationError
from runtime.providers.cpu import requantize as rq
from tests.runtime.integer import tflite_reference as ref

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def test_docstring_examples():
    for module in (rq,):
        assert doctest.testmod(module).failed == 0


def test_quantize_multiplier_matches_tflite():
    rng = np.random.default_rng(0)
    reals = np.concatenate([10.0 ** rng.uniform(-9, 2, 3000),
                            [0.0, 0.5, 1.0, 0.75, 1 - 2**-40, 2**-31, 2**-33, 1.5 * 2**-32, 100.0]])
    for real in reals:
        assert rq.quantize_multiplier(float(real)) == ref.quantize_multiplier(float(real)), real
    m, shift = rq.quantize_multiplier(1 - 2**-40)  # mantissa rounds up to 2**31
    assert (m, shift) == (1 << 30, 1)


def test_quantize_multiplier_rejects_bad_scales():
    for bad in (-0.5, float("nan"), float("inf"), 2.0**40):
        with pytest.raises(QuantizationError):
            rq.quantize_multiplier(bad)
    with pytest.raises(QuantizationError, match=r"\(0, 1\)"):
        rq.quantize_multiplier_smaller_than_one_exp(1.0)


def _random_int32(rng, n):
    x = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    return np.concatenate([x, [0, 1, -1, INT32_MIN, INT32_MAX, INT32_MIN + 1]])


def test_srdhm_and_rounding_divide_by_pot_bit_exact():
    rng = np.random.default_rng(1)
    a = _random_int32(rng, 4000)
    b = np.concatenate([rng.integers(INT32_MIN, INT32_MAX, a.size - 3, endpoint=True),
                        [INT32_MIN, INT32_MAX, 1 << 30]])
    got = rq.saturating_rounding_doubling_high_mul(a, b)
    assert [int(v) for v in got] == [ref.srdhm(int(x), int(y)) for x, y in zip(a, b, strict=True)]
    assert int(rq.saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN)) == INT32_MAX
    exponents = rng.integers(0, 32, a.size)
    got = rq.rounding_divide_by_pot(a, exponents)
    want = [ref.rdbp(int(x), int(e)) for x, e in zip(a, exponents, strict=True)]
    assert [int(v) for v in got] == want
    # ties round half away from zero
    assert [int(v) for v in rq.rounding_divide_by_pot(np.array([5, -5, 6, -6, 7]), 1)] == \
        [3, -3, 3, -3, 4]


def test_multiply_by_quantized_multiplier_bit_exact_including_left_shifts():
    rng = np.random.default_rng(2)
    x = _random_int32(rng, 5000)
    m = rng.integers(0, 1 << 31, x.size)
    shift = rng.integers(-31, 8, x.size)
    got = rq.multiply_by_quantized_multiplier(x, m, shift)
    want = [ref.mbqm(int(a), int(b), int(c)) for a, b, c in zip(x, m, shift, strict=True)]
    assert [int(v) for v in got] == want


def _near_ties(m: int, shift: int, count: int, span: int = 1 << 17) -> np.ndarray:
    """Accumulators whose ``x * M + D`` lies closest to a multiple of ``2**S``: the values
    a float evaluation is most likely to round to the wrong side."""
    total, d_pos, _, _ = (int(v) for v in rq.closed_form(m, shift))
    x = np.arange(-span, span, dtype=np.int64)
    remainder = (x * m + d_pos) % (1 << total)
    low = np.argpartition(remainder, count)[:count]
    high = np.argpartition(remainder, remainder.size - count)[-count:]
    return np.concatenate([x[low], x[high]])


def test_closed_form_equals_the_two_roundings():
    rng = np.random.default_rng(3)
    cases = [(int(m), -int(s)) for m, s in zip(rng.integers(0, 1 << 31, 40),
                                               rng.integers(0, 32, 40), strict=True)]
    cases += [(1 << 30, -4), (1 << 30, 0), (0, -5), ((1 << 31) - 1, -31), (1 << 30, -31)]
    for m, shift in cases:
        x = np.concatenate([_random_int32(rng, 300), _near_ties(m, shift, 50, 1 << 16)])
        want = np.array([ref.mbqm(int(v), m, shift) for v in x])
        assert np.array_equal(rq.apply_multiplier(x, m, shift), want), (m, shift)


def test_single_rounding_of_fully_connected_bit_exact():
    """ruy's one rounding (LiteRT's FULLY_CONNECTED): the function, the closed form and the
    requantizer's float64 and float32 paths, left shifts included."""
    rng = np.random.default_rng(12)
    x = _random_int32(rng, 4000) >> 4
    m = rng.integers(1 << 30, 1 << 31, x.size)
    shift = rng.integers(-31, 4, x.size)
    got = rq.multiply_by_quantized_multiplier_single(x, m, shift)
    want = [ref.mbqm_single(int(a), int(b), int(c)) for a, b, c in zip(x, m, shift, strict=True)]
    assert [int(v) for v in got] == want
    total, d_pos, d_neg, _ = rq.closed_form(m, shift, single_rounding=True)
    assert np.array_equal(d_pos, d_neg)
    assert np.array_equal((x * m + d_pos) >> total, got)
    # not gemmlowp's double rounding: the two disagree near ties
    right = shift <= 0
    assert np.any(got[right] != rq.multiply_by_quantized_multiplier(x[right], m[right],
                                                                   shift[right]))


@pytest.mark.parametrize("elements", [300, 1 << 18])
def test_single_rounding_requantizer_paths_are_bit_exact(elements, monkeypatch):
    rng = np.random.default_rng(13)
    channels = 6
    m = rng.integers(1 << 30, 1 << 31, channels)
    m[0] = 1 << 30
    shift = -rng.integers(0, 14, channels)
    offset = rng.integers(-3000, 3000, channels)
    requantize = rq.AccumulatorRequantizer(m, shift, offset, zero_point=-3, act_min=-128,
                                           act_max=127, dtype="int8", acc_bound=1 << 20,
                                           single_rounding=True)
    acc = rng.integers(-(1 << 20), 1 << 20, (elements // channels, channels))
    for c in range(channels):
        total = 31 - int(shift[c])
        x = np.arange(-(1 << 16), 1 << 16, dtype=np.int64)
        remainder = (x * int(m[c]) + (1 << (total - 1))) % (1 << total)
        ties = x[np.argsort(remainder)[: min(200, acc.shape[0])]]
        acc[: ties.size, c] = ties - offset[c]
    got = requantize(acc.astype(np.float32))
    if elements >= rq.FAST_PATH_MIN_ELEMENTS:
        assert requantize.exact_fixups > 0
    for i in range(0, acc.shape[0], max(1, acc.shape[0] // 400)):
        for c in range(channels):
            want = min(max(ref.mbqm_single(int(acc[i, c] + offset[c]), int(m[c]),
                                           int(shift[c])) - 3, -128), 127)
            assert got[i, c] == want, (i, c)


def test_int64_multiply_of_16x8_kernels_bit_exact():
    rng = np.random.default_rng(4)
    x = rng.integers(-(1 << 47), 1 << 47, 3000)
    m = np.concatenate([rng.integers(1 << 30, 1 << 31, x.size - 2), [0x7FFF0000, (1 << 31) - 1]])
    shift = rng.integers(-31, 8, x.size)
    got = rq.multiply_by_quantized_multiplier_int64(x, m, shift)
    want = [ref.mbqm_int64(int(a), int(b), int(c)) for a, b, c in zip(x, m, shift, strict=True)]
    assert [int(v) for v in got] == want


def test_rounding_divide_matches_c_expression():
    acc = np.arange(-60, 61)
    for count in (1, 2, 3, 4, 9, 49):
        assert [int(v) for v in rq.rounding_divide(acc, count)] == \
            [ref.c_round_div(int(a), count) for a in acc]


# ------------------------------------------------------------ AccumulatorRequantizer
def _scalar_reference(acc, offset, m, shift, zero_point, lo, hi, wide=False):
    f = ref.mbqm_int64 if wide else ref.mbqm
    return min(max(f(int(acc) + int(offset), int(m), int(shift)) + zero_point, lo), hi)


@pytest.mark.parametrize("dtype, zero_point, clamp", [
    ("int8", -3, (-128, 127)),     # no clamp: negative SRDHM results matter
    ("int8", -128, (-128, 127)),   # ReLU6-style output range
    ("int8", 5, (5, 127)),         # fused Relu
    ("uint8", 131, (0, 255)),
    ("uint8", 0, (0, 200)),
])
@pytest.mark.parametrize("layout", ["nchw", "chwn"])
def test_fast_path_is_bit_exact(dtype, zero_point, clamp, layout):
    rng = np.random.default_rng(5)
    channels, spatial, batch = 6, (5, 7), 700
    m = rng.integers(1 << 30, 1 << 31, channels)
    m[0] = 1 << 30                       # power-of-two scale: exact ties are common
    shift = -rng.integers(0, 14, channels)
    shift[1] = 0
    offset = rng.integers(-3000, 3000, (1, channels) + spatial)
    requantize = rq.AccumulatorRequantizer(
        m[None, :, None, None], shift[None, :, None, None], offset, zero_point=zero_point,
        act_min=clamp[0], act_max=clamp[1], dtype=dtype, acc_bound=1 << 20)
    assert requantize._fast is not None
    acc = rng.integers(-(1 << 20), 1 << 20, (batch, channels) + spatial)
    # Plant accumulators at the hardest spots of each channel.
    for c in range(channels):
        ties = _near_ties(int(m[c]), int(shift[c]), 40)
        acc[: ties.size // 4, c, 0, :4] = (ties[: (ties.size // 4) * 4].reshape(-1, 4)
                                          - offset[0, c, 0, :4])
    acc = acc.astype(np.float32)
    if layout == "chwn":
        acc = np.ascontiguousarray(acc.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    assert acc.size >= rq.FAST_PATH_MIN_ELEMENTS, acc.size
    got = requantize(acc)
    assert requantize.exact_fixups > 0  # the planted near-ties went through the exact path
    assert got.dtype == np.dtype(dtype) and got.shape == acc.shape
    assert np.array_equal(got, requantize.exact(acc.astype(np.int64)))
    for _ in range(300):
        n, c, h, w = (int(rng.integers(0, s)) for s in acc.shape)
        want = _scalar_reference(acc[n, c, h, w], offset[0, c, h, w], m[c], shift[c],
                                 zero_point, *clamp)
        assert got[n, c, h, w] == want
    ties_n = min(10, batch)
    for n in range(ties_n):
        for c in range(channels):
            want = [_scalar_reference(acc[n, c, 0, w], offset[0, c, 0, w], m[c], shift[c],
                                      zero_point, *clamp) for w in range(4)]
            assert list(got[n, c, 0, :4]) == want


@pytest.mark.parametrize("act_min", [-128, -100])
def test_small_float64_path_is_bit_exact(act_min):
    rng = np.random.default_rng(15)
    channels = 5
    m = rng.integers(1 << 30, 1 << 31, channels)
    m[0] = 1 << 30
    shift = -rng.integers(0, 20, channels)
    offset = rng.integers(-5000, 5000, channels)
    requantize = rq.AccumulatorRequantizer(m, shift, offset, zero_point=-100,
                                           act_min=act_min, act_max=127, dtype="int8",
                                           acc_bound=1 << 20)
    assert requantize._small is not None
    acc = rng.integers(-(1 << 20), 1 << 20, (300, channels))
    for c in range(channels):
        ties = _near_ties(int(m[c]), int(shift[c]), 100)
        acc[: ties.size, c] = ties - offset[c]
    got = requantize(acc.astype(np.float32))  # below FAST_PATH_MIN_ELEMENTS: float64 path
    want = [[_scalar_reference(a, offset[c], m[c], shift[c], -100, act_min, 127)
             for c, a in enumerate(row)] for row in acc]
    assert got.tolist() == want


def test_writes_into_given_output_and_small_inputs_take_the_exact_path():
    requantize = rq.AccumulatorRequantizer([1 << 30, 1 << 30], [-1, -2], [0, 10],
                                           zero_point=0, act_min=-128, act_max=127,
                                           dtype="int8", acc_bound=1000)
    acc = np.array([[3.0, 6.0], [-3.0, -14.0]], np.float32)
    out = np.empty((2, 2), np.int8)
    assert requantize(acc, out) is out
    # 3/4 -> 1, (6+10)/8 -> 2, -3/4 -> -1 (half away), (-14+10)/8 = -0.5 -> -1
    assert out.tolist() == [[1, 2], [-1, -1]]


def test_wide_requantizer_uses_the_int64_multiply():
    rng = np.random.default_rng(6)
    m = rng.integers(1 << 30, 1 << 31, 4)
    shift = -rng.integers(10, 20, 4)
    acc = rng.integers(-(1 << 40), 1 << 40, (50, 4))
    requantize = rq.AccumulatorRequantizer(m, shift, [0, 7, -7, 100], zero_point=0,
                                           act_min=-32768, act_max=32767, dtype="int16",
                                           acc_bound=2.0**41, wide=True)
    got = requantize(acc.astype(np.float64))
    for (i, c), value in np.ndenumerate(got):
        assert value == _scalar_reference(acc[i, c], [0, 7, -7, 100][c], m[c], shift[c], 0,
                                          -32768, 32767, wide=True)


def test_fast_path_declines_when_float32_cannot_be_trusted():
    # A multiplier near 1 and a bias of a million: float32 cannot hold acc * M + bias to
    # within the detection window, so the exact path must be used (and still be right).
    m = (1 << 31) - 1
    requantize = rq.AccumulatorRequantizer([m], [0], [1_000_000], zero_point=0, act_min=-128,
                                           act_max=127, dtype="int8", acc_bound=2.0**21)
    assert requantize._fast is None
    acc = np.arange(-1_000_200, -999_800, dtype=np.float32).reshape(-1, 1).repeat(50, 1)
    got = requantize(acc)
    assert [int(v) for v in got[:, 0]] == [min(max(ref.mbqm(int(a) + 1_000_000, m, 0), -128),
                                                127) for a in acc[:, 0]]
