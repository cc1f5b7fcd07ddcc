"""Every IR op, exported in a one-node graph at every opset from 13 to 21 and run by
onnxruntime, against edgefw's runtime on the same graph. Cases whose form exists only from
some opset on must fail below it with an ExportError naming the node and its module."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

import exporter
from edgefw.errors import ExportError, UnsupportedOpError
from edgefw.ir import Graph, known_ops
from tests.exporter.onnx_checks import (
    OPSETS,
    assert_outputs_match,
    assert_shape_inference_agrees,
    run_edgefw,
    run_onnxruntime,
)
from tests.exporter.test_onnx_roundtrip import round_trip_ops

rng = np.random.default_rng(7)
MODULE = "block.op"


def f32(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def pos(*shape: int) -> np.ndarray:
    return rng.uniform(0.5, 3.0, shape).astype(np.float32)


def i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def scalar(value: float, dtype=np.float32) -> np.ndarray:
    return np.array(value, dtype=dtype)


def unit(*shape: int) -> np.ndarray:
    """Inside (-1, 1): the domain of Acos, Asin, Atanh."""
    return rng.uniform(-0.9, 0.9, shape).astype(np.float32)


def i32(*shape: int, high: int = 100) -> np.ndarray:
    return rng.integers(0, high, shape).astype(np.int32)


def u8(*shape: int) -> np.ndarray:
    return rng.integers(0, 256, shape).astype(np.uint8)


def flags(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape) > 0


# (id, op, inputs, attrs, constant input indices, outputs, first opset that can hold it)
CASES = [
    ("abs", "Abs", [f32(3, 4)], {}, (), 1, 13),
    ("add", "Add", [f32(2, 3, 4), f32(4)], {}, (1,), 1, 13),
    ("average_pool", "AveragePool", [f32(1, 2, 6, 6)],
     {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}, (), 1, 13),
    ("average_pool_dilated", "AveragePool", [f32(1, 2, 7, 7)],
     {"kernel_shape": [2, 2], "dilations": [2, 2]}, (), 1, 19),
    ("batch_norm", "BatchNormalization", [f32(2, 3, 4, 4), pos(3), f32(3), f32(3), pos(3)],
     {"epsilon": 1e-3}, (1, 2, 3, 4), 1, 13),
    ("cast_int32", "Cast", [f32(3, 4) * 5], {"to": 6}, (), 1, 13),
    ("cast_half", "Cast", [f32(3, 4)], {"to": 10, "saturate": 1}, (), 1, 13),
    ("clip", "Clip", [f32(3, 4), scalar(-0.5), scalar(0.7)], {}, (1, 2), 1, 13),
    ("clip_max_only", "Clip", [f32(3, 4), None, scalar(0.2)], {}, (2,), 1, 13),
    ("concat", "Concat", [f32(2, 1, 3), f32(2, 4, 3)], {"axis": 1}, (), 1, 13),
    ("constant", "Constant", [], {"value": f32(2, 3)}, (), 1, 13),
    ("conv", "Conv", [f32(2, 4, 7, 7), f32(4, 1, 3, 3), f32(4)],
     {"group": 4, "pads": [1, 1, 1, 1], "strides": [2, 2]}, (1, 2), 1, 13),
    ("dequantize_per_axis", "DequantizeLinear",
     [rng.integers(-128, 128, (4, 3)).astype(np.int8), np.array([0.5, 0.25, 0.1], np.float32),
      np.array([1, 0, -2], np.int8)], {"axis": 1}, (1, 2), 1, 13),
    ("dequantize_int32", "DequantizeLinear",
     [rng.integers(-1000, 1000, (6,)).astype(np.int32), scalar(0.001)], {}, (1,), 1, 13),
    ("div", "Div", [f32(2, 3), pos(2, 3)], {}, (), 1, 13),
    ("dropout_mask", "Dropout", [f32(2, 3)], {}, (), 2, 13),
    ("equal", "Equal", [i64(1, 2, 3), i64(1, 5, 3)], {}, (), 1, 13),
    ("erf", "Erf", [f32(20)], {}, (), 1, 13),
    ("exp", "Exp", [f32(3, 4)], {}, (), 1, 13),
    ("expand", "Expand", [f32(3, 1), i64(2, 3, 4)], {}, (1,), 1, 13),
    ("flatten", "Flatten", [f32(2, 3, 4)], {"axis": 2}, (), 1, 13),
    ("gather", "Gather", [f32(5, 3), np.array([[0, -1], [2, 4]], np.int64)], {}, (1,), 1, 13),
    ("gelu", "Gelu", [f32(4, 5) * 3], {}, (), 1, 13),
    ("gelu_tanh", "Gelu", [f32(4, 5) * 3], {"approximate": "tanh"}, (), 1, 13),
    ("gemm", "Gemm", [f32(3, 5), f32(4, 5), f32(4)], {"transB": 1, "alpha": 0.5}, (1, 2), 1,
     13),
    ("global_average_pool", "GlobalAveragePool", [f32(2, 3, 5, 4)], {}, (), 1, 13),
    ("greater", "Greater", [f32(2, 3), f32(3)], {}, (), 1, 13),
    ("identity", "Identity", [f32(2, 3)], {}, (), 1, 13),
    ("layer_norm", "LayerNormalization", [f32(2, 3, 8), pos(8), f32(8)], {}, (1, 2), 1, 13),
    ("layer_norm_stats", "LayerNormalization", [f32(2, 3, 4), pos(3, 4)],
     {"axis": 1, "epsilon": 1e-3}, (1,), 3, 13),
    ("leaky_relu", "LeakyRelu", [f32(3, 4)], {"alpha": 0.2}, (), 1, 13),
    ("less", "Less", [f32(2, 3), f32(2, 1)], {}, (), 1, 13),
    ("log", "Log", [pos(3, 4)], {}, (), 1, 13),
    ("log_softmax", "LogSoftmax", [f32(2, 7)], {"axis": 0}, (), 1, 13),
    ("matmul", "MatMul", [f32(2, 3, 4), f32(4, 5)], {}, (1,), 1, 13),
    ("max_pool_indices", "MaxPool", [f32(1, 2, 7, 7)],
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, (), 2, 13),
    ("mul", "Mul", [f32(2, 3), f32(2, 3)], {}, (), 1, 13),
    ("neg", "Neg", [f32(3, 4)], {}, (), 1, 13),
    ("not", "Not", [np.array([True, False, True])], {}, (), 1, 13),
    ("pad_constant", "Pad", [f32(2, 3), i64(1, 0, 2, 1), scalar(1.5)], {}, (1, 2), 1, 13),
    ("pad_reflect", "Pad", [f32(1, 2, 4, 4), i64(0, 0, 1, 2, 0, 0, 2, 1)], {"mode": "reflect"},
     (1,), 1, 13),
    ("pad_axes", "Pad", [f32(2, 3, 4), i64(1, 2), None, i64(-1)], {}, (1, 3), 1, 13),
    ("pad_wrap", "Pad", [f32(3, 4), i64(1, 2, 1, 1)], {"mode": "wrap"}, (1,), 1, 19),
    ("pow", "Pow", [pos(3, 4), f32(4)], {}, (), 1, 13),
    ("quantize_uint8", "QuantizeLinear", [f32(2, 3, 4) * 3, scalar(0.02),
                                          np.array(128, np.uint8)], {}, (1, 2), 1, 13),
    ("quantize_per_axis", "QuantizeLinear",
     [f32(2, 3, 4), np.array([0.01, 0.02, 0.05], np.float32), np.array([0, -3, 5], np.int8)],
     {"axis": 1}, (1, 2), 1, 13),
    ("quantize_output_dtype", "QuantizeLinear", [f32(5), scalar(0.05)], {"output_dtype": 3},
     (1,), 1, 13),
    ("reciprocal", "Reciprocal", [pos(3, 4)], {}, (), 1, 13),
    ("reduce_max", "ReduceMax", [f32(2, 3, 4), i64(1)], {}, (1,), 1, 13),
    ("reduce_mean", "ReduceMean", [f32(2, 3, 4), i64(-1, 0)], {"keepdims": 0}, (1,), 1, 13),
    ("reduce_mean_all", "ReduceMean", [f32(2, 3, 4)], {}, (), 1, 13),
    ("reduce_mean_noop", "ReduceMean", [f32(2, 3)], {"noop_with_empty_axes": 1}, (), 1, 13),
    ("reduce_mean_runtime_axes", "ReduceMean", [f32(2, 3, 4), i64(2)], {}, (), 1, 18),
    ("reduce_min", "ReduceMin", [f32(2, 3, 4), i64(0, 2)], {"keepdims": 0}, (1,), 1, 13),
    ("reduce_sum", "ReduceSum", [f32(2, 3, 4), i64(1)], {}, (1,), 1, 13),
    ("reduce_sum_runtime_axes", "ReduceSum", [f32(2, 3, 4), i64(0)], {}, (), 1, 13),
    ("relu", "Relu", [f32(3, 4)], {}, (), 1, 13),
    ("reshape", "Reshape", [f32(2, 3, 4), i64(0, -1)], {}, (1,), 1, 13),
    ("reshape_allowzero", "Reshape", [f32(2, 3, 4), i64(4, 6)], {"allowzero": 1}, (1,), 1, 13),
    ("reshape_allowzero_zero", "Reshape", [np.zeros((0, 3), np.float32), i64(3, 0)],
     {"allowzero": 1}, (1,), 1, 14),
    ("shape", "Shape", [f32(2, 3, 4)], {}, (), 1, 13),
    ("shape_start_end", "Shape", [f32(2, 3, 4, 5)], {"start": 1, "end": -1}, (), 1, 13),
    ("sigmoid", "Sigmoid", [f32(3, 4)], {}, (), 1, 13),
    ("slice", "Slice", [f32(5, 6, 3), i64(-1, 1), i64(-10**9, 10**9), i64(0, 2), i64(-2, 1)],
     {}, (1, 2, 3, 4), 1, 13),
    ("softmax", "Softmax", [f32(2, 3, 5)], {"axis": 1}, (), 1, 13),
    ("split_sizes", "Split", [f32(2, 7), i64(2, 5)], {"axis": 1}, (1,), 2, 13),
    ("split_uneven", "Split", [f32(7, 2)], {"num_outputs": 3}, (), 3, 13),
    ("split_equal", "Split", [f32(2, 6)], {"axis": 1}, (), 3, 13),
    ("sqrt", "Sqrt", [pos(3, 4)], {}, (), 1, 13),
    ("squeeze", "Squeeze", [f32(1, 3, 1, 2), i64(0, -2)], {}, (1,), 1, 13),
    ("sub", "Sub", [f32(2, 1, 4), f32(3, 1)], {}, (), 1, 13),
    ("tanh", "Tanh", [f32(3, 4)], {}, (), 1, 13),
    ("transpose", "Transpose", [f32(2, 3, 4)], {"perm": [1, 2, 0]}, (), 1, 13),
    ("unsqueeze", "Unsqueeze", [f32(3, 2), i64(0, 3)], {}, (1,), 1, 13),
    ("where", "Where", [rng.standard_normal((2, 3)) > 0, f32(2, 3), f32(3)], {}, (), 1, 13),
    # --- the ONNX-conformance op families (elementwise math, activations, indexing...)
    ("acos", "Acos", [unit(3, 4)], {}, (), 1, 13),
    ("acosh", "Acosh", [pos(3, 4) + 1], {}, (), 1, 13),
    ("asin", "Asin", [unit(3, 4)], {}, (), 1, 13),
    ("asinh", "Asinh", [f32(3, 4)], {}, (), 1, 13),
    ("atan", "Atan", [f32(3, 4)], {}, (), 1, 13),
    ("atanh", "Atanh", [unit(3, 4)], {}, (), 1, 13),
    ("cos", "Cos", [f32(3, 4)], {}, (), 1, 13),
    ("cosh", "Cosh", [f32(3, 4)], {}, (), 1, 13),
    ("sin", "Sin", [f32(3, 4)], {}, (), 1, 13),
    ("sinh", "Sinh", [f32(3, 4)], {}, (), 1, 13),
    ("tan", "Tan", [unit(3, 4)], {}, (), 1, 13),
    ("ceil", "Ceil", [f32(3, 4) * 3], {}, (), 1, 13),
    ("floor", "Floor", [f32(3, 4) * 3], {}, (), 1, 13),
    ("round", "Round", [f32(3, 4) * 3], {}, (), 1, 13),
    ("sign", "Sign", [f32(3, 4)], {}, (), 1, 13),
    ("and", "And", [flags(2, 3), flags(3)], {}, (), 1, 13),
    ("or", "Or", [flags(2, 3), flags(2, 3)], {}, (), 1, 13),
    ("xor", "Xor", [flags(2, 3), flags(2, 1)], {}, (), 1, 13),
    ("bit_shift", "BitShift", [i32(2, 3).astype(np.uint8), np.array([1, 2, 3], np.uint8)],
     {"direction": "LEFT"}, (), 1, 13),
    ("bitwise_and", "BitwiseAnd", [i32(2, 3), i32(2, 3)], {}, (), 1, 18),
    ("bitwise_not", "BitwiseNot", [i32(2, 3)], {}, (), 1, 18),
    ("bitwise_or", "BitwiseOr", [i32(2, 3), i32(3)], {}, (), 1, 18),
    ("bitwise_xor", "BitwiseXor", [i32(2, 3), i32(2, 3)], {}, (), 1, 18),
    ("mod", "Mod", [i32(2, 3) - 50, i32(2, 3) + 1], {}, (), 1, 13),
    ("fmod", "Mod", [f32(2, 3) * 5, pos(2, 3)], {"fmod": 1}, (), 1, 13),
    ("greater_or_equal", "GreaterOrEqual", [f32(2, 3), f32(3)], {}, (), 1, 13),
    ("less_or_equal", "LessOrEqual", [f32(2, 3), f32(2, 3)], {}, (), 1, 13),
    ("is_inf", "IsInf", [np.array([1.0, np.inf, -np.inf, np.nan], np.float32)],
     {"detect_negative": 0}, (), 1, 13),
    ("is_nan", "IsNaN", [np.array([1.0, np.inf, np.nan], np.float32)], {}, (), 1, 13),
    ("max", "Max", [f32(2, 3), f32(3), f32(2, 1)], {}, (), 1, 13),
    ("min", "Min", [f32(2, 3), f32(2, 3)], {}, (), 1, 13),
    ("mean", "Mean", [f32(2, 3), f32(3)], {}, (), 1, 13),
    ("sum", "Sum", [f32(2, 3), f32(2, 3), f32(1)], {}, (), 1, 13),
    ("cast_like", "CastLike", [f32(3, 4) * 5, np.zeros(1, np.int32)], {}, (1,), 1, 13),
    ("celu", "Celu", [f32(3, 4)], {"alpha": 1.5}, (), 1, 13),
    ("elu", "Elu", [f32(3, 4)], {"alpha": 0.5}, (), 1, 13),
    ("selu", "Selu", [f32(3, 4)], {}, (), 1, 13),
    ("hard_sigmoid", "HardSigmoid", [f32(3, 4) * 3], {"alpha": 0.3}, (), 1, 13),
    ("hard_swish", "HardSwish", [f32(3, 4) * 4], {}, (), 1, 13),
    ("hardmax", "Hardmax", [f32(2, 5)], {"axis": 0}, (), 1, 13),
    ("mish", "Mish", [f32(3, 4) * 3], {}, (), 1, 13),
    ("swish", "Swish", [f32(3, 4) * 3], {"alpha": 0.5}, (), 1, 13),
    ("prelu", "PRelu", [f32(2, 3, 4), f32(4)], {}, (1,), 1, 13),
    ("shrink", "Shrink", [f32(3, 4)], {"lambd": 0.3, "bias": 0.1}, (), 1, 13),
    ("softplus", "Softplus", [f32(3, 4)], {}, (), 1, 13),
    ("softsign", "Softsign", [f32(3, 4)], {}, (), 1, 13),
    ("thresholded_relu", "ThresholdedRelu", [f32(3, 4)], {"alpha": 0.4}, (), 1, 13),
    ("arg_max", "ArgMax", [f32(3, 4)], {"axis": 1, "keepdims": 0}, (), 1, 13),
    ("arg_min_last", "ArgMin", [np.array([[1, 0, 0], [2, 2, 1]], np.float32)],
     {"axis": 1, "select_last_index": 1}, (), 1, 13),
    ("top_k", "TopK", [f32(3, 5), i64(2)], {"axis": 1}, (1,), 2, 13),
    ("cum_sum", "CumSum", [f32(2, 5), np.array(1, np.int64)], {"exclusive": 1}, (1,), 1, 13),
    ("cum_prod", "CumProd", [f32(2, 5), np.array(1, np.int64)], {}, (1,), 1, 26),
    ("group_norm", "GroupNormalization", [f32(2, 4, 3, 3), pos(4), f32(4)], {"num_groups": 2},
     (1, 2), 1, 13),
    ("instance_norm", "InstanceNormalization", [f32(2, 3, 4, 4), pos(3), f32(3)], {}, (1, 2),
     1, 13),
    ("rms_norm", "RMSNormalization", [f32(2, 3, 8), pos(8)], {"epsilon": 1e-3}, (1,), 1, 13),
    ("lrn", "LRN", [f32(1, 5, 3, 3)], {"size": 3}, (), 1, 13),
    ("lp_norm", "LpNormalization", [f32(2, 5)], {"p": 1}, (), 1, 13),
    ("mean_variance_norm", "MeanVarianceNormalization", [f32(2, 3, 4, 4)], {}, (), 1, 13),
    ("reduce_l1", "ReduceL1", [f32(2, 3, 4), i64(1)], {}, (1,), 1, 13),
    ("reduce_l2", "ReduceL2", [f32(2, 3, 4), i64(-1)], {"keepdims": 0}, (1,), 1, 13),
    ("reduce_log_sum", "ReduceLogSum", [pos(2, 3, 4), i64(0)], {}, (1,), 1, 13),
    ("reduce_log_sum_exp", "ReduceLogSumExp", [f32(2, 3, 4), i64(2)], {}, (1,), 1, 13),
    ("reduce_prod", "ReduceProd", [pos(2, 3, 4), i64(1)], {}, (1,), 1, 13),
    ("reduce_sum_square", "ReduceSumSquare", [f32(2, 3, 4), i64(0, 2)], {}, (1,), 1, 13),
    ("compress", "Compress", [f32(3, 4), np.array([True, False, True])], {"axis": 0}, (1,),
     1, 13),
    ("constant_of_shape", "ConstantOfShape", [i64(2, 3)], {"value": np.array([1.5],
                                                                             np.float32)},
     (0,), 1, 13),
    ("depth_to_space", "DepthToSpace", [f32(1, 8, 2, 3)], {"blocksize": 2, "mode": "CRD"}, (),
     1, 13),
    ("space_to_depth", "SpaceToDepth", [f32(1, 2, 4, 6)], {"blocksize": 2}, (), 1, 13),
    ("eye_like", "EyeLike", [f32(3, 4)], {"k": 1}, (), 1, 13),
    ("gather_elements", "GatherElements", [f32(3, 4), rng.integers(0, 4, (3, 2))], {"axis": 1},
     (1,), 1, 13),
    ("gather_nd", "GatherND", [f32(2, 3, 4), np.array([[0, 1], [1, 2]], np.int64)], {}, (1,),
     1, 13),
    ("scatter_elements", "ScatterElements",
     [f32(3, 3), np.array([[1, 0, 2], [0, 2, 1]], np.int64), f32(2, 3)], {"axis": 0}, (1,), 1,
     13),
    ("scatter_elements_add", "ScatterElements",
     [f32(3, 3), np.array([[1, 0, 2], [1, 2, 1]], np.int64), f32(2, 3)], {"reduction": "add"},
     (1,), 1, 16),
    ("scatter_nd_max", "ScatterND", [f32(4, 3), np.array([[1], [3]], np.int64), f32(2, 3)],
     {"reduction": "max"}, (1,), 1, 18),
    ("non_zero", "NonZero", [np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]], np.float32)], {}, (),
     1, 13),
    ("one_hot", "OneHot", [np.array([0, 3, 1], np.int64), np.array(4, np.int64),
                           np.array([0.0, 2.0], np.float32)], {}, (1, 2), 1, 13),
    ("range", "Range", [scalar(1.0), scalar(4.0), scalar(0.5)], {}, (0, 1, 2), 1, 13),
    ("reverse_sequence", "ReverseSequence", [f32(4, 2, 3), i64(4, 2)], {}, (1,), 1, 13),
    ("size", "Size", [f32(2, 3)], {}, (), 1, 13),
    ("tile", "Tile", [f32(2, 3), i64(2, 1)], {}, (1,), 1, 13),
    ("trilu", "Trilu", [f32(4, 5), np.array(1, np.int64)], {"upper": 0}, (1,), 1, 14),
    ("unique", "Unique", [np.array([2.0, 1.0, 2.0, 3.0, 1.0], np.float32)], {}, (), 4, 13),
    # --- resizing
    ("resize_nearest", "Resize", [f32(1, 2, 3, 4), None, np.array([1, 1, 2, 1.5], np.float32)],
     {}, (2,), 1, 13),
    ("resize_linear_sizes", "Resize", [f32(1, 2, 3, 4), None, None, i64(1, 2, 5, 7)],
     {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, (3,), 1, 13),
    ("resize_axes", "Resize", [f32(1, 2, 3, 4), None, np.array([2, 0.5], np.float32)],
     {"axes": [2, 3], "mode": "linear"}, (2,), 1, 13),
    ("resize_antialias", "Resize", [f32(1, 1, 8, 8), None, np.array([1, 1, 0.5, 0.5],
                                                                     np.float32)],
     {"mode": "linear", "antialias": 1}, (2,), 1, 18),
    ("resize_half_pixel_symmetric", "Resize", [f32(1, 1, 3, 4), None,
                                               np.array([1, 1, 2, 2], np.float32)],
     {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"}, (2,), 1, 19),
    ("upsample_nearest", "Upsample", [f32(1, 2, 2, 3), np.array([1, 1, 2, 3], np.float32)], {},
     (1,), 1, 13),
    ("upsample_linear", "Upsample", [f32(1, 2, 2, 3), np.array([1, 1, 2, 2], np.float32)],
     {"mode": "linear"}, (1,), 1, 13),
    # --- more pooling, linear algebra, transformer blocks, bit casts
    ("global_max_pool", "GlobalMaxPool", [f32(2, 3, 4, 5)], {}, (), 1, 13),
    ("lp_pool", "LpPool", [f32(1, 2, 5, 5)], {"kernel_shape": [2, 2], "strides": [2, 2]}, (),
     1, 13),
    ("lp_pool_ceil", "LpPool", [f32(1, 2, 5, 5)],
     {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "p": 1}, (), 1, 18),
    ("det", "Det", [f32(2, 3, 3)], {}, (), 1, 13),
    ("einsum", "Einsum", [f32(2, 3), f32(3, 4)], {"equation": "ij,jk->ik"}, (), 1, 13),
    ("swiglu", "SwiGLU", [f32(2, 4), f32(2, 4)], {"alpha": 1.5}, (), 1, 13),
    ("rotary_embedding", "RotaryEmbedding", [f32(1, 2, 3, 4), f32(1, 3, 2), f32(1, 3, 2)], {},
     (1, 2), 1, 23),
    ("bit_cast", "BitCast", [f32(2, 3)], {"to": 6}, (), 1, 26),
    # --- losses
    ("nll_loss", "NegativeLogLikelihoodLoss", [f32(3, 5), np.array([1, 0, 4], np.int64)],
     {"reduction": "sum"}, (), 1, 13),
    ("softmax_cross_entropy", "SoftmaxCrossEntropyLoss",
     [f32(3, 5), np.array([1, 0, 4], np.int64), pos(5)], {"ignore_index": 0}, (2,), 2, 13),
    # --- integer and QLinear ops (what onnxruntime's quantization tool emits)
    ("dynamic_quantize", "DynamicQuantizeLinear", [f32(2, 3)], {}, (), 3, 13),
    ("matmul_integer", "MatMulInteger",
     [u8(2, 3), rng.integers(-128, 128, (3, 4)).astype(np.int8), np.array(3, np.uint8),
      np.array(-2, np.int8)], {}, (1, 2, 3), 1, 13),
    ("conv_integer", "ConvInteger", [u8(1, 2, 5, 5), u8(3, 2, 3, 3), np.array(7, np.uint8)],
     {"pads": [1, 1, 1, 1]}, (1, 2), 1, 13),
    ("qlinear_conv", "QLinearConv",
     [u8(1, 2, 5, 5), scalar(0.02), np.array(120, np.uint8),
      rng.integers(-128, 128, (3, 2, 3, 3)).astype(np.int8), np.array([0.01, 0.02, 0.015],
                                                                       np.float32),
      np.zeros(3, np.int8), scalar(0.05), np.array(128, np.uint8),
      rng.integers(-500, 500, (3,)).astype(np.int32)], {"strides": [2, 2]},
     (1, 2, 3, 4, 5, 6, 7, 8), 1, 13),
    ("qlinear_matmul", "QLinearMatMul",
     [u8(2, 3), scalar(0.02), np.array(120, np.uint8), u8(3, 4), scalar(0.03),
      np.array(128, np.uint8), scalar(0.1), np.array(100, np.uint8)], {}, (1, 2, 3, 4, 5, 6, 7),
     1, 13),
]


def one_node_graph(op_type: str, inputs: list, attrs: dict, constants: tuple,
                   num_outputs: int) -> tuple[Graph, dict[str, np.ndarray]]:
    """The op alone in a graph: constant inputs as constants, the others as graph inputs."""
    g = Graph(op_type)
    values, feed = [], {}
    for i, array in enumerate(inputs):
        if array is None:
            values.append(None)
        elif i in constants:
            values.append(g.add_constant(f"{MODULE}.in{i}", array))
        else:
            values.append(g.add_input(f"x{i}", array.dtype.name, array.shape))
            feed[f"x{i}"] = array
    node = g.add_node(op_type, values, attrs, num_outputs=num_outputs, module_path=MODULE)
    g.set_outputs(node.outputs)
    return g, feed


def _params():
    for case_id, op, inputs, attrs, constants, outputs, since in CASES:
        for opset in OPSETS:
            yield pytest.param(op, inputs, attrs, constants, outputs, since, opset,
                               id=f"{case_id}-{opset}")


@pytest.mark.parametrize(("op_type", "inputs", "attrs", "constants", "num_outputs", "since",
                          "opset"), list(_params()))
def test_op_exports_at_opset(op_type, inputs, attrs, constants, num_outputs, since, opset):
    graph, feed = one_node_graph(op_type, inputs, attrs, constants, num_outputs)
    if opset < since:
        with pytest.raises(ExportError) as err:
            exporter.to_onnx(graph, opset=opset, optimize="none")
        message = str(err.value)
        assert f"node '{graph.nodes[0].name}'" in message and f"module '{MODULE}'" in message
        assert f"opset {opset}" in message
        return
    model = exporter.to_onnx(graph, opset=opset, optimize="none")
    assert model.opset_import[0].version == opset
    assert_shape_inference_agrees(model, exact=False)
    try:
        want = run_edgefw(graph, feed, optimization="none")
    except UnsupportedOpError:  # e.g. dilated AveragePool: ONNX's reference evaluator judges
        want = ReferenceEvaluator(model).run(None, feed)
    # Graph optimizations off: onnxruntime computes the written nodes as they are.
    assert_outputs_match(run_onnxruntime(model, feed, optimized=False), want, atol=1e-5,
                         rtol=1e-6)


#: IR ops that no case proves exportable yet, each with the reason. The check below fails
#: when one of them gets covered, so that its entry is removed then.
UNCOVERED_IR_OPS: dict[str, str] = {}


def uncovered_ir_ops(ir_ops: Iterable[str]) -> set[str]:
    """The ops of ``ir_ops`` with neither a case in :data:`CASES` nor an ONNX node test the
    round trip (test_onnx_roundtrip.py) runs: one it loads, exports and compares, or, for an
    op whose form ONNX defines only after opset 21, one whose refusal it asserts."""
    return set(ir_ops) - {case[1] for case in CASES} - round_trip_ops()


def test_every_ir_op_has_a_case():
    """A new IR op needs a case here or a node test in onnx's suite that the round trip runs
    (and a rewrite in exporter/onnx/ if its ONNX form changed between opset 13 and the IR's)."""
    uncovered = uncovered_ir_ops(known_ops())
    assert uncovered == set(UNCOVERED_IR_OPS), (
        f"IR ops without an export case: {sorted(uncovered - set(UNCOVERED_IR_OPS))}; "
        f"covered now (remove from UNCOVERED_IR_OPS): "
        f"{sorted(set(UNCOVERED_IR_OPS) - uncovered)}")


def test_an_op_without_cases_is_uncovered():
    assert uncovered_ir_ops(["Relu", "Attention", "NotAnOnnxOp"]) == {"NotAnOnnxOp"}


_edgefw_rng = np.random.default_rng(11)  # apart from ``rng``: CASES' data stays as it was


def _int8(*shape: int) -> np.ndarray:
    return _edgefw_rng.integers(-128, 128, shape).astype(np.int8)


def _int32(*shape: int) -> np.ndarray:
    return _edgefw_rng.integers(1 << 29, 1 << 30, shape).astype(np.int32)


_ACT_RANGE = {"act_min": -128, "act_max": 127}
#: One valid node of each edgefw-internal op (domain "edgefw"): (inputs, attributes).
EDGEFW_OP_CASES = {
    "QConv": ([_int8(1, 2, 5, 5), _int8(3, 2, 3, 3), _int32(3), -np.ones(3, np.int32)],
              _ACT_RANGE),
    "QGemm": ([_int8(2, 4), _int8(3, 4), _int32(3), -np.ones(3, np.int32)], _ACT_RANGE),
    "QAdd": ([_int8(2, 3), _int8(3)],
             {"a_multiplier": 1 << 30, "a_shift": 0, "b_multiplier": 1 << 30, "b_shift": 0,
              "y_multiplier": 1 << 30, "y_shift": -1, **_ACT_RANGE}),
    "QBatchMatMul": ([_int8(2, 3, 4), _int8(2, 4, 5)],
                     {"multiplier": 1 << 30, "shift": -3, **_ACT_RANGE}),
    "QAveragePool": ([_int8(1, 2, 4, 4)], {"kernel_shape": [2, 2]}),
    "QGlobalAveragePool": ([_int8(1, 2, 4, 4)], {"multiplier": 1 << 30, "shift": 0}),
    "QDynamicGemm": ([np.ones((2, 4), np.float32), _int8(3, 4), np.full(3, 0.1, np.float32)],
                     {}),
    "QDynamicConv": ([np.ones((1, 2, 5, 5), np.float32), _int8(3, 2, 3, 3),
                      np.full(3, 0.1, np.float32)], {}),
    "Dense": ([np.ones((2, 3, 4), np.float32), np.ones((4, 5), np.float32),
               np.ones(5, np.float32)], {}),
}


def test_every_edgefw_op_has_a_refusal_case():
    assert set(known_ops("edgefw")) == set(EDGEFW_OP_CASES)


@pytest.mark.parametrize("op_type", sorted(EDGEFW_OP_CASES))
def test_edgefw_ops_are_never_exported(op_type):
    """The runtime's own integer ops live only in an optimized session's graph: an export
    refuses them, naming the node, instead of writing a file no other runtime reads."""
    inputs, attrs = EDGEFW_OP_CASES[op_type]
    g = Graph(op_type)
    values = [g.add_input("x", inputs[0].dtype.name, inputs[0].shape)]
    values += [g.add_constant(f"{MODULE}.in{i}", a) for i, a in enumerate(inputs[1:], 1)]
    node = g.add_node(op_type, values, attrs, module_path=MODULE, domain="edgefw")
    g.set_outputs(node.outputs)
    with pytest.raises(ExportError) as err:
        exporter.to_onnx(g, opset=17, optimize="none")
    message = str(err.value)
    assert f"node '{node.name}' ({op_type}) in module '{MODULE}'" in message
    assert "domain 'edgefw' is not exported" in message


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize(("case_id", "opset", "expected"), [
    ("gelu", 19, ["Div", "Erf", "Add", "Mul", "Mul"]),
    ("gelu", 20, ["Gelu"]),
    ("layer_norm", 16, ["ReduceMean", "Sub", "Pow", "ReduceMean", "Add", "Sqrt", "Div", "Mul",
                        "Add"]),
    ("layer_norm", 17, ["LayerNormalization"]),
    ("shape_start_end", 14, ["Shape", "Slice"]),
    ("reduce_mean_noop", 17, ["Identity"]),
])
def test_old_opsets_get_the_old_forms(case_id, opset, expected):
    case = next(c for c in CASES if c[0] == case_id)
    graph, _ = one_node_graph(*case[1:6])
    assert _ops(exporter.to_onnx(graph, opset=opset, optimize="none")) == expected


@pytest.mark.parametrize("opset", [13, 17, 18, 21])
def test_axes_inputs_and_attributes(opset):
    graph, _ = one_node_graph(*next(c for c in CASES if c[0] == "reduce_mean")[1:6])
    (node,) = exporter.to_onnx(graph, opset=opset, optimize="none").graph.node
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if opset < 18:
        assert len(node.input) == 1 and attrs["axes"] == [-1, 0]
    else:
        assert len(node.input) == 2 and "axes" not in attrs
    graph, _ = one_node_graph(*next(c for c in CASES if c[0] == "split_uneven")[1:6])
    model = exporter.to_onnx(graph, opset=opset, optimize="none")
    (node,) = model.graph.node
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if opset < 18:  # explicit sizes carry the smaller last part
        assert "num_outputs" not in attrs
        split = next(t for t in model.graph.initializer if t.name == node.input[1])
        assert onnx.numpy_helper.to_array(split).tolist() == [3, 3, 1]
    else:
        assert attrs["num_outputs"] == 3 and len(node.input) == 1
