"""QConv through the whole path: a hand-built QDQ Conv graph, FuseQDQPass, the CPU kernel.

Each case checks the fused session's integers against a numpy transcription of TFLite's
reference ConvPerChannel / DepthwiseConvPerChannel — exact for 16x8; for int8/uint8 within
one step, rarely (the requantization folded into the float32 GEMM,
``test_chunk_requantizer``) — and against
the simulated QDQ float graph (optimization "basic") within one step of the output scale.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir.primitives import conv2d
from runtime.providers.cpu import requantize
from tests.runtime.integer import tflite_reference as ref
from tests.runtime.integer.qdq_graphs import (
    QDQBuilder,
    multipliers,
    op_types,
    params_for,
    sessions,
)

CASES = {
    # name: (x shape, weight shape, attrs, per_channel, bias, activation, x dtype)
    "per_channel_3x3_pad": ((2, 3, 9, 9), (5, 3, 3, 3), {"pads": [1, 1, 1, 1]}, True, True,
                            None, "int8"),
    "per_tensor_weights": ((2, 3, 8, 8), (4, 3, 3, 3), {}, False, True, None, "int8"),
    "depthwise_stride2_relu6": ((2, 6, 11, 11), (6, 1, 3, 3),
                                {"group": 6, "strides": [2, 2], "pads": [1, 1, 1, 1]}, True,
                                True, ("Clip", 0.0, 6.0), "int8"),
    "depthwise_multiplier2": ((1, 3, 7, 7), (6, 1, 3, 3), {"group": 3, "pads": [1, 1, 1, 1]},
                              True, True, None, "int8"),
    "grouped_relu_node": ((2, 4, 8, 8), (6, 2, 3, 3), {"group": 2}, True, True, "relu_node",
                          "int8"),
    "dilated_asymmetric_pads": ((1, 2, 10, 9), (3, 2, 3, 2),
                                {"dilations": [2, 1], "pads": [2, 0, 1, 1]}, True, False,
                                "Relu", "int8"),
    "uint8_activations": ((2, 3, 8, 8), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}, True, True,
                          None, "uint8"),
    "conv1d": ((2, 3, 16), (4, 3, 5), {"pads": [2, 2], "strides": [2]}, True, True, "Relu",
               "int8"),
    "int16x8": ((2, 3, 8, 8), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}, True, True, None,
                "int16"),
    # 64 images x 8 x 10 x 10 outputs: several chunks (and, forced, the old fast path).
    "batch64_fast_path": ((64, 4, 10, 10), (8, 4, 3, 3), {"pads": [1, 1, 1, 1]}, True, True,
                          None, "int8"),
    "batch64_fast_path_relu6": ((64, 4, 10, 10), (8, 4, 3, 3), {"pads": [1, 1, 1, 1]}, True,
                                True, ("Clip", 0.0, 6.0), "uint8"),
}


def _float_conv(x, w, b, attrs):
    n = x.ndim - 2
    strides = attrs.get("strides", [1] * n)
    dilations = attrs.get("dilations", [1] * n)
    pads = attrs.get("pads", [0] * 2 * n)
    group = attrs.get("group", 1)
    if n == 1:
        y = conv2d(x[:, :, None], w[:, :, None], b, (1, strides[0]), (0, pads[0], 0, pads[1]),
                   (1, dilations[0]), group)
        return y[:, :, 0]
    return conv2d(x, w, b, strides, (pads[0], pads[1], pads[2], pads[3]), dilations, group)


def _reference(x_int, w_q, b_q, xq, yq, w_scale, attrs, clamp, wide):
    """TFLite's ConvPerChannel on the integers (1-D as height-1 2-D)."""
    n = x_int.ndim - 2
    mult, shift = multipliers(xq.scale, w_scale if w_scale.size > 1
                              else np.repeat(w_scale, w_q.shape[0]), yq.scale)
    strides = attrs.get("strides", [1] * n)
    dilations = attrs.get("dilations", [1] * n)
    pads = attrs.get("pads", [0] * 2 * n)
    if n == 1:
        x_int, w_q = x_int[:, :, None], w_q[:, :, None]
        strides, dilations, pads = [1, strides[0]], [1, dilations[0]], [0, pads[0], 0, pads[1]]
    y = ref.conv_per_channel(x_int, w_q, b_q, xq.zero_point, mult, shift, yq.zero_point,
                             clamp[0], clamp[1], strides, pads, dilations,
                             attrs.get("group", 1), wide)
    return y[:, :, 0] if n == 1 else y


@pytest.mark.parametrize("case", sorted(CASES))
def test_qconv_matches_tflite_reference_and_simulated_qdq(case, monkeypatch):
    if "fast_path" in case:  # big batches take the float fast path: force it at test size
        monkeypatch.setattr(requantize, "FAST_PATH_MIN_ELEMENTS", 1)
    x_shape, w_shape, attrs, per_channel, with_bias, activation, dtype = CASES[case]
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    x = rng.uniform(-1.0, 2.0, x_shape).astype(np.float32)
    if dtype == "uint8":
        x = np.abs(x)
    w = rng.normal(0, 0.3, w_shape).astype(np.float32)
    b = rng.normal(0, 0.5, w_shape[0]).astype(np.float32) if with_bias else None
    y_float = _float_conv(x, w, b, attrs)
    lo, hi = float(y_float.min()), float(y_float.max())
    if activation is not None:
        lo = 0.0
    xq = params_for(float(x.min()), float(x.max()), dtype)
    yq = params_for(lo, hi if activation is None else min(hi, 6.0) + 0.5, dtype)

    builder = QDQBuilder(case)
    g = builder.g
    xd = builder.quantized_input("x", ("batch",) + x_shape[1:], xq)
    wd, w_q, w_scale = builder.weight(w, 0 if per_channel else None)
    inputs = [xd, wd]
    b_q = None
    if b is not None:
        bd, b_q = builder.bias(b, np.float32(xq.scale) * w_scale)
        inputs.append(bd)
    conv = g.add_node("Conv", inputs, attrs, name="conv")
    y = conv.output
    if activation == "relu_node":
        y = g.add_node("Relu", [y], name="relu").output
    elif activation is not None:
        conv.meta["fused_activation"] = activation
    builder.quantized_output(y, yq)

    basic, fused = sessions(g)
    assert "QConv" in op_types(fused) and "Conv" not in op_types(fused)
    simulated = basic.run(None, {"x": x})[0]
    got = fused.run(None, {"x": x})[0]
    assert got.dtype == np.dtype(dtype) and got.shape == simulated.shape

    mark = "Relu" if activation in ("relu_node", "Relu") else (
        "Relu6" if activation is not None else None)
    clamp = ref.act_range(dtype, yq.zero_point, yq.scale, mark)
    wide = dtype == "int16"
    bias_ref = None if b_q is None else b_q.astype(np.int64)
    want = _reference(xq.quantize(x), w_q, bias_ref, xq, yq, w_scale, attrs, clamp, wide)
    steps = np.abs(got.astype(np.int64) - want)
    if wide:
        np.testing.assert_array_equal(got, want.astype(dtype))
    else:  # within one step; ~1e-5 of the values differ (test_chunk_requantizer): at these
        # sizes (a few hundred values) a single one can
        assert steps.max() <= 1 and np.count_nonzero(steps) <= 1 + 1e-3 * steps.size, (
            steps.max(), np.count_nonzero(steps), steps.size)
    assert np.max(np.abs(got.astype(np.int64) - simulated.astype(np.int64))) <= 1


@pytest.mark.parametrize("case", ["depthwise_stride2_relu6", "conv1d", "per_channel_3x3_pad"])
def test_shape_generic_kernel_matches_the_planned_one(case):
    """The plan a session builds from declared (symbolic) shapes uses the generic conv2d
    kernel with the exact requantizer; plans for concrete shapes use the ConvPlan kernel
    with the folded one: within one step, on a small share of the values."""
    x_shape, w_shape, attrs, *_ = CASES[case]
    rng = np.random.default_rng(3)
    builder = QDQBuilder(case)
    xq, yq = params_for(-1.0, 2.0), params_for(-3.0, 3.0)
    xd = builder.quantized_input("x", ("batch",) + x_shape[1:], xq)
    wd, _, _ = builder.weight(rng.normal(0, 0.3, w_shape).astype(np.float32), 0)
    y = builder.g.add_node("Conv", [xd, wd], attrs).output
    builder.quantized_output(y, yq)
    _, fused = sessions(builder.g)
    generic_plan = fused.plan  # built from the declared shapes, before any run
    x = rng.uniform(-1.0, 2.0, x_shape).astype(np.float32)
    planned = fused.run(None, {"x": x})[0]
    steps = np.abs(generic_plan.run(x)[0].astype(np.int64) - planned)
    assert steps.max() <= 1 and np.count_nonzero(steps) <= 1 + 1e-3 * steps.size
