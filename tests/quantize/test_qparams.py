"""Scale/zero-point arithmetic against hand values and onnxruntime's quantizer."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import QuantizationError
from quantize.qparams import (
    check_activation_dtype,
    compute_qparams,
    dequantize_array,
    quantize_array,
    quantize_bias,
    weight_qparams,
    weight_scale_for_bias,
)


@pytest.mark.parametrize("rmin, rmax, dtype, scale, zero_point", [
    # range containing 0: scale = 4/255; zp = round(qmin + 1 / scale) = qmin + 64 (63.75 up)
    (-1.0, 3.0, "int8", 4 / 255, -64),
    (-1.0, 3.0, "uint8", 4 / 255, 64),
    # all positive: the range is extended down to 0, so 0 is the lowest code
    (2.0, 6.0, "int8", 6 / 255, -128),
    (2.0, 6.0, "uint8", 6 / 255, 0),
    # all negative: extended up to 0, so 0 is the highest code
    (-6.0, -2.0, "int8", 6 / 255, 127),
    (-6.0, -2.0, "uint8", 6 / 255, 255),
    # zero range: scale 1 and zero point 0 instead of a division by zero
    (0.0, 0.0, "int8", 1.0, 0),
    (0.0, 0.0, "uint8", 1.0, 0),
])
def test_asymmetric_params_match_hand_values(rmin, rmax, dtype, scale, zero_point):
    p = compute_qparams(rmin, rmax, dtype)
    assert p.scale.dtype == np.float32 and p.zero_point.dtype == np.dtype(dtype)
    assert float(p.scale) == pytest.approx(scale, rel=1e-6)
    assert int(p.zero_point) == zero_point


def test_symmetric_int16_has_zero_point_0_and_uses_max_abs():
    p = compute_qparams(-1.0, 3.0, "int16", symmetric=True)
    assert float(p.scale) == pytest.approx(3.0 / 32767, rel=1e-6)
    assert int(p.zero_point) == 0 and p.zero_point.dtype == np.int16


def test_zero_maps_exactly_to_the_zero_point():
    for lo, hi in [(-0.3, 5.1), (0.2, 1.7), (-9.0, -0.1), (-1e-3, 2e-3)]:
        for dtype in ("int8", "uint8"):
            p = compute_qparams(lo, hi, dtype)
            assert quantize_array(np.zeros(1), p)[0] == p.zero_point
            assert dequantize_array(quantize_array(np.zeros(1), p), p)[0] == 0.0


def test_matches_onnxruntime_compute_scale_zp():
    from onnxruntime.quantization.quant_utils import compute_scale_zp

    r = np.random.default_rng(0)
    for _ in range(50):
        lo, hi = sorted(r.normal(0, 3, 2))
        for dtype, (qmin, qmax) in [("int8", (-128, 127)), ("uint8", (0, 255))]:
            zp, scale = compute_scale_zp(np.float32(lo), np.float32(hi),
                                         np.array(qmin, dtype), np.array(qmax, dtype))
            ours = compute_qparams(np.float32(lo), np.float32(hi), dtype)
            assert float(ours.scale) == pytest.approx(float(scale), rel=1e-6)
            assert int(ours.zero_point) == int(zp)
        zp, scale = compute_scale_zp(np.float32(lo), np.float32(hi), np.array(-127, np.int8),
                                     np.array(127, np.int8), symmetric=True)
        ours = compute_qparams(np.float32(lo), np.float32(hi), "int8", symmetric=True)
        assert float(ours.scale) == pytest.approx(float(scale), rel=1e-6)
        assert int(ours.zero_point) == int(zp) == 0


def test_weight_params_per_channel_and_per_tensor():
    w = np.array([[0.5, -1.27, 0.2], [0.1, 0.0, -0.05], [0.0, 0.0, 0.0]], np.float32)
    per_channel = weight_qparams(w, axis=0)
    assert per_channel.axis == 0 and per_channel.dtype == "int8"
    np.testing.assert_allclose(per_channel.scale, [1.27 / 127, 0.1 / 127, 1.0], rtol=1e-6)
    assert per_channel.zero_point.tolist() == [0, 0, 0]
    q = quantize_array(w, per_channel)
    assert q.dtype == np.int8 and q[0].tolist() == [50, -127, 20] and q[2].tolist() == [0, 0, 0]
    assert np.abs(q).max() <= 127  # the restricted symmetric range
    per_tensor = weight_qparams(w, axis=None)
    assert per_tensor.axis is None and float(per_tensor.scale) == pytest.approx(1.27 / 127)
    columns = weight_qparams(w, axis=1)
    np.testing.assert_allclose(columns.scale, [0.5 / 127, 1.27 / 127, 0.2 / 127], rtol=1e-6)


def test_quantize_dequantize_round_trip_and_saturation():
    p = compute_qparams(-1.0, 1.0, "int8")
    x = np.linspace(-1.0, 1.0, 1001, dtype=np.float32)
    err = np.abs(dequantize_array(quantize_array(x, p), p) - x)
    assert err.max() <= float(p.scale) / 2 + 1e-7
    assert quantize_array(np.array([100.0, -100.0]), p).tolist() == [127, -128]
    # round half to even, as QuantizeLinear does
    unit = compute_qparams(0.0, 255.0, "uint8")
    assert quantize_array(np.array([0.5, 1.5, 2.5]), unit).tolist() == [0, 2, 2]


def test_int32_bias_scale_is_input_scale_times_weight_scale():
    weight_scale = np.array([0.01, 0.02], np.float32)
    q, scale = quantize_bias(np.array([0.5, -0.3]), 0.1, weight_scale)
    assert q.dtype == np.int32 and scale.dtype == np.float32
    np.testing.assert_array_equal(scale, np.float32(0.1) * weight_scale)
    assert q.tolist() == [500, -150]


def test_bias_that_overflows_int32_raises_unless_the_weight_scale_is_raised():
    tiny = np.array([1e-12], np.float32)
    with pytest.raises(QuantizationError, match="int32"):
        quantize_bias(np.array([10.0]), 1e-3, tiny)
    raised = weight_scale_for_bias(tiny, np.array([10.0]), 1e-3)
    q, _ = quantize_bias(np.array([10.0]), 1e-3, raised)
    assert abs(int(q[0])) <= 2**31 - 1
    # scales that already fit are kept
    kept = weight_scale_for_bias(np.array([0.5], np.float32), np.array([1.0]), 0.1)
    assert kept.tolist() == [0.5]


def test_unsupported_activation_dtype_is_a_clear_error():
    with pytest.raises(QuantizationError, match="int4.*int8, uint8, int16"):
        check_activation_dtype("int4")
    with pytest.raises(QuantizationError, match="non-finite|not finite"):
        compute_qparams(0.0, np.inf, "int8")
