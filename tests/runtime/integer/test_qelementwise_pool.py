"""QAdd, QAveragePool, QGlobalAveragePool and the integer data movement of DropQDQPairPass,
each from a hand-built QDQ graph: exact against TFLite's reference kernels, within one step
of the simulated QDQ float graph."""

from __future__ import annotations

import numpy as np
import pytest

from tests.runtime.integer import tflite_reference as ref
from tests.runtime.integer.qdq_graphs import Q, QDQBuilder, op_types, params_for, sessions


@pytest.mark.parametrize("dtype, shapes, activation", [
    ("int8", ((4, 3, 5, 5), (4, 3, 5, 5)), None),
    ("int8", ((4, 3, 5, 5), (1, 3, 1, 1)), "Relu"),      # broadcast
    ("uint8", ((6, 10), (6, 10)), None),
    ("int16", ((6, 10), (6, 10)), None),
])
def test_qadd(dtype, shapes, activation):
    rng = np.random.default_rng(7)
    a = rng.uniform(-2.0, 1.0, shapes[0]).astype(np.float32)
    b = rng.uniform(-0.5, 3.0, shapes[1]).astype(np.float32)
    if dtype == "uint8":
        a, b = np.abs(a), np.abs(b)
    aq = params_for(float(a.min()), float(a.max()), dtype)
    bq = params_for(float(b.min()), float(b.max()), dtype)
    s = a + b
    yq = params_for(0.0 if activation else float(s.min()), float(s.max()), dtype)
    builder = QDQBuilder("add")
    g = builder.g
    ad = builder.quantized_input("a", shapes[0], aq)
    bd = builder.quantized_input("b", shapes[1], bq)
    add = g.add_node("Add", [ad, bd], name="add")
    if activation:
        add.meta["fused_activation"] = activation
    builder.quantized_output(add.output, yq)
    basic, fused = sessions(g)
    assert "QAdd" in op_types(fused)
    feeds = {"a": a, "b": b}
    got = fused.run(None, feeds)[0]
    simulated = basic.run(None, feeds)[0]
    left_shift = 15 if dtype == "int16" else 20
    m1, m2, mo = ref.add_params(aq.scale, bq.scale, yq.scale, left_shift)
    lo, hi = ref.act_range(dtype, yq.zero_point, yq.scale, activation)
    want = ref.add(aq.quantize(a), bq.quantize(b), aq.zero_point, bq.zero_point,
                   yq.zero_point, m1, m2, mo, lo, hi, left_shift)
    np.testing.assert_array_equal(got, want.astype(dtype))
    assert np.max(np.abs(got.astype(np.int64) - simulated.astype(np.int64))) <= 1


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [2, 2], "strides": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
])
def test_qaverage_pool_same_params(attrs):
    rng = np.random.default_rng(8)
    x = rng.uniform(-1.0, 3.0, (3, 4, 9, 9)).astype(np.float32)
    xq = params_for(float(x.min()), float(x.max()))
    builder = QDQBuilder("avgpool")
    xd = builder.quantized_input("x", x.shape, xq)
    pool = builder.g.add_node("AveragePool", [xd], attrs, name="pool")
    builder.quantized_output(pool.output, xq)
    basic, fused = sessions(builder.g)
    assert "QAveragePool" in op_types(fused)
    got = fused.run(None, {"x": x})[0]
    simulated = basic.run(None, {"x": x})[0]
    assert got.shape == simulated.shape
    if not attrs.get("ceil_mode"):
        want = ref.average_pool(xq.quantize(x), attrs["kernel_shape"], attrs["strides"],
                                attrs.get("pads", [0, 0, 0, 0]), -128, 127)
        np.testing.assert_array_equal(got, want.astype(np.int8))
    assert np.max(np.abs(got.astype(np.int64) - simulated.astype(np.int64))) <= 1


def test_qaverage_pool_with_different_output_params_stays_float():
    builder = QDQBuilder("avgpool")
    xd = builder.quantized_input("x", (1, 2, 4, 4), Q(0.05, 3))
    pool = builder.g.add_node("AveragePool", [xd], {"kernel_shape": [2, 2]}, name="pool")
    builder.quantized_output(pool.output, Q(0.02, 3))
    _, fused = sessions(builder.g)
    assert "AveragePool" in op_types(fused) and "QAveragePool" not in op_types(fused)


@pytest.mark.parametrize("dtype, shape", [("int8", (5, 6, 7, 7)), ("uint8", (5, 6, 7, 7)),
                                          ("int8", (1, 2, 200, 200))])  # int64 path
def test_qglobal_average_pool(dtype, shape):
    rng = np.random.default_rng(9)
    x = rng.uniform(-1.0, 6.0, shape).astype(np.float32)
    if dtype == "uint8":
        x = np.abs(x)
    xq = params_for(float(x.min()), float(x.max()), dtype)
    means = x.mean(axis=(2, 3))
    yq = params_for(float(means.min()), float(means.max()), dtype)
    builder = QDQBuilder("gap")
    xd = builder.quantized_input("x", x.shape, xq)
    pool = builder.g.add_node("GlobalAveragePool", [xd], name="pool")
    builder.quantized_output(pool.output, yq)
    basic, fused = sessions(builder.g)
    assert "QGlobalAveragePool" in op_types(fused)
    got = fused.run(None, {"x": x})[0]
    want = ref.mean_hw(xq.quantize(x), xq.zero_point, yq.zero_point, xq.scale, yq.scale, dtype)
    np.testing.assert_array_equal(got, want.astype(dtype))
    simulated = basic.run(None, {"x": x})[0]
    assert np.max(np.abs(got.astype(np.int64) - simulated.astype(np.int64))) <= 1


def test_data_movement_runs_on_integers_when_params_are_equal():
    rng = np.random.default_rng(10)
    x = rng.uniform(-1.0, 1.0, (2, 3, 6, 6)).astype(np.float32)
    xq = Q(0.01, -5)
    builder = QDQBuilder("movement")
    g = builder.g
    xd = builder.quantized_input("x", ("batch", 3, 6, 6), xq)
    pooled = builder.qdq(g.add_node("MaxPool", [xd], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                      "pads": [1, 1, 1, 1]}).output, xq)
    moved = builder.qdq(g.add_node("Transpose", [pooled], {"perm": [0, 2, 3, 1]}).output, xq)
    both = builder.qdq(g.add_node("Concat", [moved, moved], {"axis": 3}).output, xq)
    flat = g.add_node("Flatten", [both]).output
    builder.quantized_output(flat, xq)
    basic, fused = sessions(g)
    assert op_types(fused) == ["QuantizeLinear", "MaxPool", "Transpose", "Concat", "Flatten"]
    got = fused.run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, basic.run(None, {"x": x})[0])
    assert got.dtype == np.int8


def test_data_movement_with_different_params_stays_float():
    builder = QDQBuilder("movement")
    xd = builder.quantized_input("x", (2, 3, 4, 4), Q(0.01, 0))
    flat = builder.g.add_node("Flatten", [xd]).output
    builder.quantized_output(flat, Q(0.02, 0))  # a real rescale: not a no-op
    _, fused = sessions(builder.g)
    assert op_types(fused) == ["QuantizeLinear", "DequantizeLinear", "Flatten", "QuantizeLinear"]


def test_pixel_sums_of_batch_minor_input_in_slabs():
    """A conv's batch-minor int8 output is summed through the kernel's float32 slab:
    channel counts that are not a multiple of the slab, the slab reused, then another batch."""
    from runtime.providers.cpu.kernels.qpool import _SUM_CHANNELS, _pixel_sums

    rng = np.random.default_rng(11)
    scratch: dict = {}
    for n, c in ((9, 2 * _SUM_CHANNELS + 5), (9, 2 * _SUM_CHANNELS + 5), (4, 3)):
        stored = rng.integers(-128, 128, (c, 7, 7, n)).astype(np.int8)
        x = stored.transpose(3, 0, 1, 2)  # (N, C, H, W) view, batch-minor in memory
        got = _pixel_sums(x, 49, 128, scratch)
        np.testing.assert_array_equal(got, x.reshape(n, c, 49).sum(axis=2))
    assert len(scratch) == 2
