"""Every CPU kernel against onnxruntime on small random inputs (one-node models)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.runtime.onnx_reference import check_op

rng = np.random.default_rng(1234)


def f32(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def pos(*shape: int) -> np.ndarray:
    return rng.uniform(0.5, 3.0, shape).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# (id, op_type, inputs, attrs, constant input indices, number of outputs)
CASES = [
    # --- Gemm / MatMul
    ("gemm_const_transB", "Gemm", [f32(3, 5), f32(4, 5), f32(4)], {"transB": 1}, (1, 2), 1),
    ("gemm_runtime_all", "Gemm", [f32(5, 3), f32(5, 4), f32(3, 4)],
     {"transA": 1, "alpha": 0.5, "beta": 2.0}, (), 1),
    ("gemm_no_bias", "Gemm", [f32(2, 6), f32(6, 3)], {}, (1,), 1),
    ("gemm_const_alpha_beta_rowbias", "Gemm", [f32(2, 6), f32(3, 6), f32(2, 1)],
     {"transB": 1, "alpha": 1.5, "beta": -0.5}, (1, 2), 1),
    ("matmul_batched", "MatMul", [f32(2, 3, 4), f32(4, 5)], {}, (), 1),
    ("matmul_const_b", "MatMul", [f32(2, 3, 4), f32(4, 5)], {}, (1,), 1),
    ("matmul_vector_left", "MatMul", [f32(4), f32(4, 5)], {}, (), 1),
    ("matmul_broadcast", "MatMul", [f32(2, 1, 3, 4), f32(3, 4, 2)], {}, (), 1),
    # --- Conv
    ("conv_3x3_pad1", "Conv", [f32(2, 3, 7, 7), f32(4, 3, 3, 3), f32(4)], {"pads": [1, 1, 1, 1]},
     (1, 2), 1),
    ("conv_stride_dilation", "Conv", [f32(1, 2, 9, 8), f32(3, 2, 3, 2)],
     {"strides": [2, 1], "dilations": [2, 1], "pads": [1, 0, 2, 1]}, (1,), 1),
    ("conv_grouped", "Conv", [f32(2, 4, 6, 6), f32(6, 2, 3, 3), f32(6)], {"group": 2}, (1, 2), 1),
    ("conv_depthwise", "Conv", [f32(2, 4, 6, 6), f32(4, 1, 3, 3), f32(4)],
     {"group": 4, "pads": [1, 1, 1, 1], "strides": [2, 2]}, (1, 2), 1),
    ("conv_same_upper", "Conv", [f32(1, 2, 7, 6), f32(3, 2, 3, 3)],
     {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, (1,), 1),
    ("conv_pointwise", "Conv", [f32(2, 5, 4, 4), f32(3, 5, 1, 1), f32(3)], {}, (1, 2), 1),
    ("conv_1d", "Conv", [f32(2, 3, 10), f32(4, 3, 3), f32(4)], {"pads": [1, 1], "strides": [2]},
     (1, 2), 1),
    ("conv_runtime_weight", "Conv", [f32(1, 2, 5, 5), f32(3, 2, 3, 3), f32(3)], {}, (), 1),
    # --- pooling
    ("maxpool_2x2", "MaxPool", [f32(2, 3, 6, 6)], {"kernel_shape": [2, 2], "strides": [2, 2]}, (),
     1),
    ("maxpool_ceil_pad", "MaxPool", [f32(1, 2, 7, 7)],
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}, (), 1),
    ("maxpool_dilated", "MaxPool", [f32(1, 2, 8, 8)],
     {"kernel_shape": [2, 2], "dilations": [2, 2]}, (), 1),
    ("maxpool_1d", "MaxPool", [f32(2, 3, 9)], {"kernel_shape": [3], "strides": [2]}, (), 1),
    ("maxpool_indices", "MaxPool", [f32(2, 3, 7, 7)],
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, (), 2),
    ("maxpool_1d_indices", "MaxPool", [f32(2, 3, 9)], {"kernel_shape": [2], "strides": [2]}, (),
     2),
    ("avgpool_exclude_pad", "AveragePool", [f32(1, 2, 6, 6)],
     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, (), 1),
    ("avgpool_include_pad", "AveragePool", [f32(1, 2, 6, 6)],
     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}, (), 1),
    ("avgpool_ceil", "AveragePool", [f32(1, 2, 7, 7)],
     {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}, (), 1),
    ("global_avgpool", "GlobalAveragePool", [f32(2, 3, 5, 4)], {}, (), 1),
    ("global_avgpool_1d", "GlobalAveragePool", [f32(2, 3, 5)], {}, (), 1),
    # --- normalization
    ("batchnorm_const", "BatchNormalization",
     [f32(2, 3, 4, 4), pos(3), f32(3), f32(3), pos(3)], {"epsilon": 1e-3}, (1, 2, 3, 4), 1),
    ("batchnorm_runtime", "BatchNormalization", [f32(2, 3, 5), pos(3), f32(3), f32(3), pos(3)],
     {}, (), 1),
    ("layernorm_last", "LayerNormalization", [f32(2, 3, 8), pos(8), f32(8)], {}, (1, 2), 1),
    ("layernorm_axis1_stats", "LayerNormalization", [f32(2, 3, 4), pos(3, 4)],
     {"axis": 1, "epsilon": 1e-3}, (1,), 3),
    # --- activations
    ("relu", "Relu", [f32(3, 4)], {}, (), 1),
    ("leaky_relu", "LeakyRelu", [f32(3, 4)], {"alpha": 0.1}, (), 1),
    ("leaky_relu_big_alpha", "LeakyRelu", [f32(3, 4)], {"alpha": 2.5}, (), 1),
    ("clip_both", "Clip", [f32(3, 4), np.float32(-0.5), np.float32(0.7)], {}, (1, 2), 1),
    ("clip_max_only", "Clip", [f32(3, 4), None, np.float32(0.2)], {}, (2,), 1),
    ("clip_runtime_bounds", "Clip", [f32(3, 4), np.array(-0.1, np.float32),
                                     np.array(0.3, np.float32)], {}, (), 1),
    ("clip_none", "Clip", [f32(3, 4)], {}, (), 1),
    ("sigmoid", "Sigmoid", [f32(3, 4) * 10], {}, (), 1),
    ("tanh", "Tanh", [f32(3, 4)], {}, (), 1),
    ("gelu_exact", "Gelu", [f32(4, 5) * 3], {}, (), 1),
    ("gelu_tanh", "Gelu", [f32(4, 5) * 3], {"approximate": "tanh"}, (), 1),
    ("erf", "Erf", [f32(50) * 2], {}, (), 1),
    ("softmax_last", "Softmax", [f32(2, 3, 5)], {}, (), 1),
    ("softmax_axis1", "Softmax", [f32(2, 3, 5)], {"axis": 1}, (), 1),
    ("log_softmax", "LogSoftmax", [f32(2, 7)], {}, (), 1),
    # --- unary math
    ("exp", "Exp", [f32(3, 4)], {}, (), 1),
    ("log", "Log", [pos(3, 4)], {}, (), 1),
    ("sqrt", "Sqrt", [pos(3, 4)], {}, (), 1),
    ("abs", "Abs", [f32(3, 4)], {}, (), 1),
    ("neg", "Neg", [f32(3, 4)], {}, (), 1),
    ("neg_int", "Neg", [np.array([-3, 0, 7], np.int32)], {}, (), 1),
    ("reciprocal", "Reciprocal", [pos(3, 4)], {}, (), 1),
    ("pow", "Pow", [pos(3, 4), f32(4)], {}, (), 1),
    ("pow_scalar_exponent", "Pow", [f32(3, 4), np.array(2.0, np.float32)], {}, (1,), 1),
    # --- binary with broadcasting
    ("add_broadcast", "Add", [f32(2, 3, 4), f32(4)], {}, (), 1),
    ("sub_broadcast", "Sub", [f32(2, 1, 4), f32(3, 1)], {}, (), 1),
    ("mul_const", "Mul", [f32(2, 3), np.array(0.5, np.float32)], {}, (1,), 1),
    ("div", "Div", [f32(2, 3), pos(2, 3)], {}, (), 1),
    ("div_int_truncates", "Div", [np.array([7, -7, 7, -7, 6], np.int32),
                                  np.array([2, 2, -2, -2, 3], np.int32)], {}, (), 1),
    ("add_int64", "Add", [np.array([[1, 2]], np.int64), np.array([[3], [4]], np.int64)], {}, (),
     1),
    ("equal", "Equal", [np.array([1, 2, 3], np.int64), np.array([1, 5, 3], np.int64)], {}, (), 1),
    ("less", "Less", [f32(2, 3), f32(3)], {}, (), 1),
    ("greater", "Greater", [f32(2, 3), f32(2, 1)], {}, (), 1),
    ("not", "Not", [np.array([True, False, True])], {}, (), 1),
    ("where", "Where", [rng.standard_normal((2, 3)) > 0, f32(2, 3), f32(3)], {}, (), 1),
    # --- reductions
    ("reduce_sum_axis", "ReduceSum", [f32(2, 3, 4), i64(1)], {}, (1,), 1),
    ("reduce_sum_all", "ReduceSum", [f32(2, 3, 4)], {"keepdims": 0}, (), 1),
    ("reduce_sum_noop", "ReduceSum", [f32(2, 3)], {"noop_with_empty_axes": 1}, (), 1),
    ("reduce_mean", "ReduceMean", [f32(2, 3, 4), i64(-1, 0)], {"keepdims": 0}, (1,), 1),
    ("reduce_mean_runtime_axes", "ReduceMean", [f32(2, 3, 4), i64(2)], {}, (), 1),
    ("reduce_max", "ReduceMax", [f32(2, 3, 4), i64(1)], {}, (1,), 1),
    ("reduce_min", "ReduceMin", [f32(2, 3, 4), i64(0, 2)], {"keepdims": 0}, (1,), 1),
    # --- shape manipulation
    ("reshape_zero_minus1", "Reshape", [f32(2, 3, 4), i64(0, -1)], {}, (1,), 1),
    ("reshape_runtime_shape", "Reshape", [f32(2, 3, 4), i64(4, -1)], {}, (), 1),
    ("flatten_axis0", "Flatten", [f32(2, 3, 4)], {"axis": 0}, (), 1),
    ("flatten_axis2", "Flatten", [f32(2, 3, 4)], {"axis": 2}, (), 1),
    ("flatten_neg", "Flatten", [f32(2, 3, 4)], {"axis": -1}, (), 1),
    ("transpose_default", "Transpose", [f32(2, 3, 4)], {}, (), 1),
    ("transpose_perm", "Transpose", [f32(2, 3, 4)], {"perm": [1, 2, 0]}, (), 1),
    ("squeeze_axes", "Squeeze", [f32(1, 3, 1, 2), i64(0, -2)], {}, (1,), 1),
    ("squeeze_all", "Squeeze", [f32(1, 3, 1, 2)], {}, (), 1),
    ("unsqueeze", "Unsqueeze", [f32(3, 2), i64(0, 3)], {}, (1,), 1),
    ("concat", "Concat", [f32(2, 1, 3), f32(2, 4, 3), f32(2, 2, 3)], {"axis": 1}, (), 1),
    ("concat_const_part", "Concat", [f32(2, 3), f32(1, 3)], {"axis": 0}, (1,), 1),
    ("split_sizes", "Split", [f32(2, 7), i64(2, 5)], {"axis": 1}, (1,), 2),
    ("split_equal_uneven", "Split", [f32(7, 2)], {"num_outputs": 3}, (), 3),
    ("slice_basic", "Slice", [f32(5, 6), i64(1, 0), i64(4, 5)], {}, (1, 2), 1),
    ("slice_axes_steps", "Slice", [f32(5, 6, 3), i64(-1, 1), i64(-10**9, 10**9), i64(0, 2),
                                   i64(-2, 1)], {}, (1, 2, 3, 4), 1),
    ("slice_negative_clamp", "Slice", [f32(5, 4), i64(-10), i64(-20), i64(0), i64(-1)], {},
     (1, 2, 3, 4), 1),
    ("slice_runtime", "Slice", [f32(5, 6), i64(1), i64(-1), i64(1)], {}, (), 1),
    ("gather_axis0", "Gather", [f32(5, 3), np.array([[0, -1], [2, 4]], np.int64)], {}, (1,), 1),
    ("gather_axis1_scalar", "Gather", [f32(2, 5, 3), np.array(-2, np.int64)], {"axis": 1}, (), 1),
    ("pad_constant", "Pad", [f32(2, 3), i64(1, 0, 2, 1), np.array(1.5, np.float32)], {}, (1, 2),
     1),
    ("pad_reflect", "Pad", [f32(1, 2, 4, 4), i64(0, 0, 1, 2, 0, 0, 2, 1)], {"mode": "reflect"},
     (1,), 1),
    ("pad_edge", "Pad", [f32(3, 4), i64(2, 1, 1, 2)], {"mode": "edge"}, (1,), 1),
    ("pad_wrap", "Pad", [f32(3, 4), i64(1, 2, 1, 1)], {"mode": "wrap"}, (1,), 1),
    ("pad_negative_crops", "Pad", [f32(4, 5), i64(-1, 2, 1, -2)], {}, (1,), 1),
    ("pad_axes", "Pad", [f32(2, 3, 4), i64(1, 2), None, i64(-1)], {}, (1, 3), 1),
    ("identity", "Identity", [f32(2, 3)], {}, (), 1),
    ("dropout", "Dropout", [f32(2, 3)], {}, (), 1),
    ("dropout_mask", "Dropout", [f32(2, 3)], {}, (), 2),
    ("cast_to_int", "Cast", [f32(3, 4) * 5], {"to": 6}, (), 1),
    ("cast_to_float", "Cast", [np.array([1, -2, 3], np.int64)], {"to": 1}, (), 1),
    ("cast_to_bool", "Cast", [np.array([0.0, 1.5, -2.0], np.float32)], {"to": 9}, (), 1),
    ("cast_to_half", "Cast", [f32(3, 4)], {"to": 10}, (), 1),
    ("shape", "Shape", [f32(2, 3, 4)], {}, (), 1),
    ("shape_slice", "Shape", [f32(2, 3, 4)], {"start": 1, "end": -1}, (), 1),
    ("expand", "Expand", [f32(3, 1), i64(2, 3, 4)], {}, (1,), 1),
    ("constant_tensor", "Constant", [], {"value": f32(2, 3)}, (), 1),
    ("constant_floats", "Constant", [], {"value_floats": [1.0, 2.5]}, (), 1),
    # --- quantization
    ("quantize_uint8", "QuantizeLinear", [f32(2, 3, 4) * 3, np.array(0.02, np.float32),
                                          np.array(128, np.uint8)], {}, (1, 2), 1),
    ("quantize_int8_per_axis", "QuantizeLinear",
     [f32(2, 3, 4), np.array([0.01, 0.02, 0.05], np.float32), np.array([0, -3, 5], np.int8)],
     {"axis": 1}, (1, 2), 1),
    ("quantize_default_zero_point", "QuantizeLinear", [f32(5), np.array(0.1, np.float32)], {},
     (1,), 1),
    ("dequantize_uint8", "DequantizeLinear", [rng.integers(0, 256, (2, 5)).astype(np.uint8),
                                              np.array(0.1, np.float32),
                                              np.array(120, np.uint8)], {}, (1, 2), 1),
    ("dequantize_int8_per_axis", "DequantizeLinear",
     [rng.integers(-128, 128, (4, 3)).astype(np.int8), np.array([0.5, 0.25, 0.1], np.float32),
      np.array([1, 0, -2], np.int8)], {"axis": 1}, (1, 2), 1),
    ("dequantize_int32_bias", "DequantizeLinear",
     [rng.integers(-1000, 1000, (6,)).astype(np.int32), np.array(0.001, np.float32)], {}, (1,),
     1),
]


@pytest.mark.parametrize(
    ("op_type", "inputs", "attrs", "constants", "num_outputs"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_kernel_matches_onnxruntime(op_type, inputs, attrs, constants, num_outputs):
    inputs = [None if a is None else np.asarray(a) for a in inputs]
    check_op(op_type, inputs, attrs, constants=constants, num_outputs=num_outputs)


def test_quantize_rounds_half_to_even_and_saturates():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 1000.0, -1000.0], np.float32)
    (q,) = check_op("QuantizeLinear", [x, np.array(1.0, np.float32), np.array(0, np.int8)],
                    constants=(1, 2))
    np.testing.assert_array_equal(q, [0, 2, 2, 0, -2, 127, -128])


def test_every_schema_op_is_covered_by_a_case():
    from runtime.conformance import load_node_cases
    from runtime.providers.cpu import supported_ops

    covered = {case[1] for case in CASES}
    # Ops added for ONNX conformance are checked against the ONNX backend node tests instead
    # (tests/runtime/conformance: one per op by default, every one with -m slow).
    covered |= {c.op_type for c in load_node_cases(supported_ops())}
    assert set(supported_ops()) <= covered, sorted(set(supported_ops()) - covered)
