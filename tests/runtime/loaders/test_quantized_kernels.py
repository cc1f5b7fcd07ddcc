"""onnxruntime's integer ops (QLinearConv, QLinearMatMul, MatMulInteger, ConvInteger,
DynamicQuantizeLinear): schemas, and kernels exact against onnxruntime, the ONNX
reference evaluator where onnxruntime lacks a mode, and hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

from edgefw.errors import DTypeError, ShapeError
from edgefw.ir import TensorType, infer_types
from runtime import InferenceSession
from tests.runtime.onnx_reference import check_op, one_op_graph, onnx_model

RNG = np.random.default_rng(7)


def u8(*shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def s8(*shape):
    return RNG.integers(-128, 128, shape, dtype=np.int8)


def f32(value):
    return np.asarray(value, np.float32)


def scales(n, lo=0.001, hi=0.02):
    return RNG.uniform(lo, hi, n).astype(np.float32)


def exact(op, inputs, attrs=None, constants=(), num_outputs=1):
    return check_op(op, inputs, attrs or {}, constants=constants, num_outputs=num_outputs,
                    rtol=0, atol=0)


def run_ours(op, inputs, attrs=None, constants=()):
    graph = one_op_graph(op, inputs, attrs or {}, constants)
    feed = {f"in{i}": a for i, a in enumerate(inputs) if a is not None and i not in constants}
    return InferenceSession(graph, optimization="none").run(None, feed), graph, feed


def ours_and_reference(op, inputs, attrs=None, constants=()):
    """edgefw vs the ONNX reference evaluator (for modes onnxruntime does not implement)."""
    ours, graph, feed = run_ours(op, inputs, attrs, constants)
    model = onnx_model(op, inputs, attrs or {}, constants, [v.dtype for v in graph.outputs])
    return ours, ReferenceEvaluator(model).run(None, feed)


# ----------------------------------------------------------------------- kernels
QLINEAR_CONV_CASES = {
    "u8_x_s8_w_bias_pads": ([u8(2, 3, 9, 9), f32(0.02), np.uint8(128), s8(4, 3, 3, 3), f32(0.01),
                             np.int8(0), f32(0.05), np.uint8(120),
                             RNG.integers(-500, 500, 4).astype(np.int32)], {"pads": [1] * 4}),
    "per_channel_depthwise": ([u8(2, 4, 9, 9), f32(0.02), np.uint8(128), s8(4, 1, 3, 3),
                               scales(4), np.zeros(4, np.int8), f32(0.05), np.uint8(120)],
                              {"pads": [1] * 4, "group": 4}),
    "strided_grouped_dilated": ([u8(1, 4, 11, 11), f32(0.03), np.uint8(3), s8(6, 2, 3, 3),
                                 scales(6), np.zeros(6, np.int8), f32(0.2), np.uint8(7)],
                                {"group": 2, "strides": [2, 2], "dilations": [2, 1]}),
    "conv1d_u8_weights": ([u8(2, 3, 11), f32(0.02), np.uint8(128), u8(4, 3, 3), f32(0.01),
                           np.uint8(128), f32(0.5), np.uint8(120)], {"strides": [2]}),
    "s8_everything_saturates": ([s8(1, 3, 6, 6), f32(0.5), np.int8(-3), s8(4, 3, 3, 3),
                                 f32(0.25), np.int8(0), f32(0.01), np.int8(5)],
                                {"auto_pad": "SAME_UPPER"}),
}


@pytest.mark.parametrize("case", list(QLINEAR_CONV_CASES))
def test_qlinear_conv_exact(case):
    inputs, attrs = QLINEAR_CONV_CASES[case]
    inputs = [np.asarray(a) for a in inputs]
    exact("QLinearConv", inputs, attrs, constants=range(1, len(inputs)))


def test_qlinear_conv_runtime_weights():
    inputs = [u8(1, 3, 6, 6), f32(0.02), np.asarray(np.uint8(100)), s8(2, 3, 3, 3), f32(0.01),
              np.asarray(np.int8(0)), f32(0.05), np.asarray(np.uint8(120))]
    exact("QLinearConv", inputs)


QLINEAR_MATMUL_CASES = {
    "u8_s8": [u8(3, 16), f32(0.02), np.uint8(128), s8(16, 5), f32(0.01), np.int8(0), f32(0.05),
              np.uint8(120)],
    "batched_per_column": [u8(2, 3, 16), f32(0.02), np.uint8(128), s8(16, 5), scales(5),
                           np.zeros(5, np.int8), f32(0.05), np.uint8(120)],
    "large_k_float64_path": [s8(4, 700), f32(0.02), np.int8(3), s8(700, 5), f32(0.01),
                             np.int8(0), f32(0.05), np.int8(-5)],
    "u8_weights": [u8(3, 8), f32(0.1), np.uint8(10), u8(8, 4), f32(0.1), np.uint8(200),
                   f32(0.7), np.uint8(0)],
}


@pytest.mark.parametrize("case", list(QLINEAR_MATMUL_CASES))
def test_qlinear_matmul_exact(case):
    inputs = [np.asarray(a) for a in QLINEAR_MATMUL_CASES[case]]
    exact("QLinearMatMul", inputs, constants=range(1, 8))
    exact("QLinearMatMul", inputs, constants=())  # every operand given at run time


def test_qlinear_matmul_rounds_half_to_even_and_saturates():
    a = np.array([[1, 3, 5, 7, -1, -3, 127, -128]], np.int8).T  # acc = a * 1
    inputs = [a, f32(0.5), np.int8(0), np.ones((1, 1), np.int8), f32(1.0), np.int8(0),
              f32(1.0), np.int8(100)]
    (y,) = exact("QLinearMatMul", [np.asarray(v) for v in inputs], constants=range(1, 8))
    # acc * 0.5: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, -0.5 -> 0, -1.5 -> -2, 63.5 -> 64,
    # -64; plus the zero point 100, saturated to int8 (164 -> 127)
    np.testing.assert_array_equal(y.ravel(), [100, 102, 102, 104, 100, 98, 127, 36])


def test_qlinear_matmul_per_row_matches_reference():
    inputs = [u8(3, 6), scales(3).reshape(3, 1), u8(3).reshape(3, 1), s8(6, 4), scales(4),
              np.zeros(4, np.int8), f32(0.05), np.asarray(np.uint8(128))]
    ours, ref = ours_and_reference("QLinearMatMul", inputs, constants=range(1, 8))
    np.testing.assert_array_equal(ours[0], ref[0])


MATMUL_INTEGER_CASES = {
    "u8_u8_zero_points": ([u8(3, 16), u8(16, 5), np.uint8(100), np.uint8(7)], (1, 2, 3)),
    "s8_no_zero_points_k700": ([s8(2, 3, 700), s8(700, 5)], (1,)),
    "per_column_b": ([u8(3, 16), s8(16, 5), np.uint8(100), s8(5)], (1, 2, 3)),
    "runtime_everything": ([u8(3, 16), u8(16, 5), np.uint8(100), np.uint8(7)], ()),
    "vector_times_matrix": ([u8(16), s8(16, 5), np.uint8(3)], (1, 2)),
}


@pytest.mark.parametrize("case", list(MATMUL_INTEGER_CASES))
def test_matmul_integer_exact(case):
    inputs, constants = MATMUL_INTEGER_CASES[case]
    exact("MatMulInteger", [np.asarray(a) for a in inputs], constants=constants)


def test_matmul_integer_per_row_a_and_int32_wraparound():
    a, b, a_zp, b_zp = u8(4, 6), s8(6, 3), u8(4), s8(3)
    ours, ref = ours_and_reference("MatMulInteger", [a, b, a_zp.reshape(4, 1), b_zp],
                                   constants=(1, 2, 3))
    np.testing.assert_array_equal(ours[0], ref[0])
    # the [M] vector form of a per-row zero point, by hand
    ours, _, _ = run_ours("MatMulInteger", [a, b, a_zp, b_zp], constants=(1, 2, 3))
    expected = (a.astype(np.int64) - a_zp[:, None]) @ (b.astype(np.int64) - b_zp)
    np.testing.assert_array_equal(ours[0], expected)
    # 40000 terms of 255 * 255 overflow int32; the spec allows only 32-bit wraparound.
    k = 40000
    a, b = np.full((1, k), 255, np.uint8), np.full((k, 1), 255, np.uint8)
    (y,) = exact("MatMulInteger", [a, b], constants=(1,))
    assert y[0, 0] == np.int64(k * 255 * 255).astype(np.int32)


def test_conv_integer_exact_and_per_channel_reference():
    exact("ConvInteger", [u8(2, 3, 9, 9), u8(4, 3, 3, 3), np.asarray(np.uint8(100)),
                          np.asarray(np.uint8(7))], {"pads": [1, 1, 1, 1], "strides": [2, 2]},
          constants=(1, 2, 3))
    exact("ConvInteger", [u8(1, 2, 7, 7), u8(3, 2, 3, 3)], {})
    inputs = [u8(2, 4, 9, 9), u8(4, 2, 3, 3), np.asarray(np.uint8(100)), u8(4)]
    ours, ref = ours_and_reference("ConvInteger", inputs, {"group": 2}, constants=(1, 2, 3))
    np.testing.assert_array_equal(ours[0], ref[0])


@pytest.mark.parametrize("data", [
    RNG.standard_normal((3, 7)), np.zeros((3, 7)), np.abs(RNG.standard_normal((2, 5))) + 1,
    -np.abs(RNG.standard_normal((2, 5))) - 1, np.array([-1.0, 0.0, 2.0, 0.5, 1e-3]),
], ids=["mixed", "zeros", "positive", "negative", "small"])
def test_dynamic_quantize_linear_exact(data):
    x = data.astype(np.float32)
    y, scale, zero_point = exact("DynamicQuantizeLinear", [x], num_outputs=3)
    expected_scale = (max(0.0, float(x.max())) - min(0.0, float(x.min()))) / 255
    assert scale == pytest.approx(expected_scale if expected_scale else 1.0, rel=1e-6)
    assert y.dtype == np.uint8 and zero_point.dtype == np.uint8 and zero_point.shape == ()


# ----------------------------------------------------------------------- schemas
def test_schema_inference_keeps_symbolic_dims():
    t = TensorType
    out = infer_types("QLinearConv", [t("uint8", ("batch", 3, 8, 8)), t("float32", ()),
                                      t("uint8", ()), t("int8", (4, 3, 3, 3)),
                                      t("float32", (4,)), t("int8", (4,)), t("float32", ()),
                                      t("int8", ())], [None] * 8, {"pads": [1, 1, 1, 1]})
    assert out == [t("int8", ("batch", 4, 8, 8))]
    out = infer_types("QLinearMatMul", [t("uint8", ("batch", "seq", 16)), t("float32", ()),
                                        t("uint8", ()), t("int8", (16, 5)), t("float32", (5,)),
                                        t("int8", (5,)), t("float32", ()), t("uint8", ())],
                      [None] * 8, {})
    assert out == [t("uint8", ("batch", "seq", 5))]
    out = infer_types("ConvInteger", [t("uint8", (1, 2, 5)), t("int8", (3, 2, 3))], [None] * 2,
                      {})
    assert out == [t("int32", (1, 3, 3))]
    out = infer_types("DynamicQuantizeLinear", [t("float32", ("n", 4))], [None], {},
                      num_outputs=3)
    assert out == [t("uint8", ("n", 4)), t("float32", ()), t("uint8", ())]


def test_schema_errors():
    t = TensorType
    with pytest.raises(DTypeError, match="zero point"):
        infer_types("MatMulInteger", [t("uint8", (2, 3)), t("int8", (3, 4)), t("int8", ())],
                    [None] * 3, {})
    with pytest.raises(DTypeError, match="float32"):
        infer_types("DynamicQuantizeLinear", [t("float16", (2,))], [None], {}, num_outputs=3)
    with pytest.raises(ShapeError, match="per output channel"):
        infer_types("QLinearConv", [t("uint8", (1, 3, 8, 8)), t("float32", ()), t("uint8", ()),
                                    t("int8", (4, 3, 3, 3)), t("float32", (5,)),
                                    t("int8", (5,)), t("float32", ()), t("uint8", ())],
                    [None] * 8, {})
    with pytest.raises(ShapeError, match="scalar"):
        infer_types("QLinearConv", [t("uint8", (1, 3, 8, 8)), t("float32", (3,)),
                                    t("uint8", ()), t("int8", (4, 3, 3, 3)), t("float32", ()),
                                    t("int8", ()), t("float32", ()), t("uint8", ())],
                    [None] * 8, {})
    with pytest.raises(ShapeError, match="inner dims"):
        infer_types("QLinearMatMul", [t("uint8", (2, 3)), t("float32", ()), t("uint8", ()),
                                      t("int8", (4, 5)), t("float32", ()), t("int8", ()),
                                      t("float32", ()), t("uint8", ())], [None] * 8, {})
