"""Op schemas: defaults, shape/dtype inference per op family (symbolic batch kept), errors."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import DTypeError, ShapeError, UnsupportedOpError
from edgefw.ir import TensorType, get_schema, infer_types, known_ops


def infer(op, inputs, attrs=None, data=None, num_outputs=1):
    """Inference with inputs given as (dtype, shape) pairs (None for omitted)."""
    types = [None if t is None else TensorType(*t) for t in inputs]
    data = data or [None] * len(inputs)
    return [(t.dtype, t.shape) for t in infer_types(op, types, data, attrs or {}, num_outputs)]


F = "float32"


def test_schema_defaults_and_arity():
    gemm = get_schema("Gemm")
    assert (gemm.min_inputs, gemm.max_inputs) == (2, 3)
    assert gemm.default("transB") == 0 and gemm.default("alpha") == 1.0
    assert get_schema("Conv").default("auto_pad") == "NOTSET"
    assert get_schema("Softmax").default("axis") == -1
    assert get_schema("LeakyRelu").default("alpha") == pytest.approx(0.01)


def test_unknown_op_lists_known_ops():
    with pytest.raises(UnsupportedOpError, match="'FooBar'.*known ops:.*Gemm"):
        get_schema("FooBar")
    assert {"Gemm", "Conv", "QuantizeLinear", "Gelu", "Where"} <= set(known_ops())


def test_gemm_and_matmul_keep_batch():
    assert infer("Gemm", [(F, ("batch", 784)), (F, (128, 784)), (F, (128,))], {"transB": 1}) == [
        (F, ("batch", 128))]
    assert infer("Gemm", [(F, (784, "batch")), (F, (784, 10))], {"transA": 1}) == [
        (F, ("batch", 10))]
    assert infer("MatMul", [(F, ("batch", 4, 8, 16)), (F, (16, 32))]) == [
        (F, ("batch", 4, 8, 32))]
    assert infer("MatMul", [(F, (16,)), (F, (3, 16, 5))]) == [(F, (3, 5))]
    assert infer("MatMul", [(F, (2, 7, 16)), (F, (16,))]) == [(F, (2, 7))]


def test_gemm_and_matmul_shape_errors():
    with pytest.raises(ShapeError, match="inner dims"):
        infer("Gemm", [(F, ("batch", 784)), (F, (128, 700))], {"transB": 1})
    with pytest.raises(ShapeError, match="inner dims"):
        infer("MatMul", [(F, (2, 3)), (F, (4, 5))])
    with pytest.raises(DTypeError, match="share one dtype"):
        infer("MatMul", [(F, (2, 3)), ("float64", (3, 5))])


def test_conv_inference():
    x = (F, ("batch", 3, 32, 32))
    assert infer("Conv", [x, (F, (16, 3, 3, 3)), (F, (16,))], {"pads": [1, 1, 1, 1]}) == [
        (F, ("batch", 16, 32, 32))]
    assert infer("Conv", [x, (F, (8, 3, 5, 5))], {"strides": [2, 2], "dilations": [2, 2]}) == [
        (F, ("batch", 8, 12, 12))]
    assert infer("Conv", [(F, ("batch", 8, 9, 9)), (F, (8, 1, 3, 3))],
                 {"group": 8, "auto_pad": "SAME_UPPER", "strides": [2, 2]}) == [
        (F, ("batch", 8, 5, 5))]
    assert infer("Conv", [(F, ("batch", 4, "h", "w")), (F, (4, 4, 3, 3))]) == [
        (F, ("batch", 4, None, None))]
    assert infer("Conv", [(F, (1, 2, 10)), (F, (3, 2, 3))], {"pads": [1, 1]}) == [
        (F, (1, 3, 10))]


def test_conv_errors_name_what_is_wrong():
    with pytest.raises(ShapeError, match="3 channels but weight .*group 1 expects 4"):
        infer("Conv", [(F, (1, 3, 8, 8)), (F, (2, 4, 3, 3))])
    with pytest.raises(ShapeError, match="not divisible by group"):
        infer("Conv", [(F, (1, 4, 8, 8)), (F, (3, 2, 3, 3))], {"group": 2})
    with pytest.raises(ShapeError, match="does not fit"):
        infer("Conv", [(F, (1, 1, 2, 2)), (F, (1, 1, 5, 5))])


def test_pooling_inference():
    x = (F, ("batch", 6, 28, 28))
    assert infer("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]}) == [
        (F, ("batch", 6, 14, 14))]
    # ceil_mode: 7 -> ceil((7 + 2 - 3) / 2) + 1 = 4
    assert infer("MaxPool", [(F, (1, 1, 7, 7))], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                   "pads": [1, 1, 1, 1], "ceil_mode": 1}) == [
        (F, (1, 1, 4, 4))]
    # The last window would start in the end padding only: dropped (6 -> 3, not 4).
    assert infer("MaxPool", [(F, (1, 1, 6, 6))], {"kernel_shape": [2, 2], "strides": [2, 2],
                                                   "pads": [1, 1, 1, 1], "ceil_mode": 1}) == [
        (F, (1, 1, 4, 4))]
    assert infer("AveragePool", [x], {"kernel_shape": [3, 3]}) == [(F, ("batch", 6, 26, 26))]
    assert infer("GlobalAveragePool", [x]) == [(F, ("batch", 6, 1, 1))]


def test_normalization_inference():
    x = (F, ("batch", 16, 8, 8))
    c = (F, (16,))
    assert infer("BatchNormalization", [x, c, c, c, c]) == [x]
    with pytest.raises(ShapeError, match="scale \\[8\\] must be \\[16\\]"):
        infer("BatchNormalization", [x, (F, (8,)), c, c, c])
    out = infer("LayerNormalization", [(F, ("batch", 10, 64)), (F, (64,)), (F, (64,))],
                num_outputs=3)
    assert out == [(F, ("batch", 10, 64)), (F, ("batch", 10, 1)), (F, ("batch", 10, 1))]
    with pytest.raises(ShapeError, match="does not broadcast"):
        infer("LayerNormalization", [(F, ("batch", 10, 64)), (F, (32,))])


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh", "Gelu", "Erf", "Exp", "Log", "Sqrt",
                                "Abs", "Neg", "Reciprocal", "LeakyRelu", "Softmax", "LogSoftmax",
                                "Identity", "Clip"])
def test_unary_ops_keep_type(op):
    assert infer(op, [(F, ("batch", 10))]) == [(F, ("batch", 10))]


def test_float_only_ops_reject_ints():
    with pytest.raises(DTypeError, match="int64"):
        infer("Sigmoid", [("int64", (3,))])


def test_broadcasting_with_symbols():
    assert infer("Add", [(F, ("batch", 1, 4)), (F, (3, 1))]) == [(F, ("batch", 3, 4))]
    assert infer("Mul", [(F, ("batch", 4)), (F, ("batch", 4))]) == [(F, ("batch", 4))]
    # A symbol broadcast against an int > 1 must equal it.
    assert infer("Sub", [(F, ("n", 4)), (F, (5, 4))]) == [(F, (5, 4))]
    assert infer("Div", [(F, ("a",)), (F, ("b",))]) == [(F, (None,))]
    with pytest.raises(ShapeError, match="do not broadcast"):
        infer("Add", [(F, (2, 3)), (F, (4,))])
    with pytest.raises(DTypeError, match="share one dtype"):
        infer("Add", [(F, (3,)), ("int64", (3,))])
    assert infer("Pow", [(F, ("batch", 3)), ("int64", ())]) == [(F, ("batch", 3))]


def test_logic_ops():
    assert infer("Equal", [("int64", ("batch", 3)), ("int64", (3,))]) == [("bool", ("batch", 3))]
    assert infer("Less", [(F, (2,)), (F, (2,))]) == [("bool", (2,))]
    assert infer("Not", [("bool", (4,))]) == [("bool", (4,))]
    assert infer("Where", [("bool", ("batch", 1)), (F, (1, 5)), (F, ())]) == [(F, ("batch", 5))]
    with pytest.raises(DTypeError, match="condition"):
        infer("Where", [(F, (2,)), (F, (2,)), (F, (2,))])


def test_reduce_inference():
    x = (F, ("batch", 3, 4))
    axes = np.array([2], np.int64)
    i = ("int64", (1,))
    assert infer("ReduceMean", [x, i], data=[None, axes]) == [(F, ("batch", 3, 1))]
    assert infer("ReduceSum", [x, i], {"keepdims": 0}, data=[None, axes]) == [(F, ("batch", 3))]
    assert infer("ReduceMax", [x], {"keepdims": 0}) == [(F, ())]
    assert infer("ReduceMin", [x], {"noop_with_empty_axes": 1}) == [x]
    assert infer("ReduceSum", [x, i]) == [(F, (None, None, None))]  # axes not constant


def test_reshape_keeps_symbolic_batch():
    x = (F, ("batch", 16, 5, 5))
    shape = ("int64", (2,))
    assert infer("Reshape", [x, shape], data=[None, np.array([-1, 400])]) == [(F, ("batch", 400))]
    assert infer("Reshape", [x, shape], data=[None, np.array([0, -1])]) == [(F, ("batch", 400))]
    assert infer("Reshape", [(F, (2, 3, 4)), ("int64", (3,))],
                 data=[None, np.array([4, -1, 2])]) == [(F, (4, 3, 2))]
    # Not constant: the rank is still known from the shape input's length.
    assert infer("Reshape", [x, shape]) == [(F, (None, None))]
    with pytest.raises(ShapeError, match="cannot reshape"):
        infer("Reshape", [(F, (2, 3)), ("int64", (1,))], data=[None, np.array([5])])
    with pytest.raises(ShapeError, match="more than one -1"):
        infer("Reshape", [(F, (2, 3)), shape], data=[None, np.array([-1, -1])])


def test_flatten_transpose_squeeze_unsqueeze():
    x = (F, ("batch", 1, 28, 28))
    assert infer("Flatten", [x]) == [(F, ("batch", 784))]
    assert infer("Flatten", [x], {"axis": 0}) == [(F, (1, None))]
    assert infer("Flatten", [x], {"axis": -2}) == [(F, ("batch", 784))]
    assert infer("Flatten", [x], {"axis": -1}) == [(F, (None, 28))]
    assert infer("Transpose", [x], {"perm": [0, 2, 3, 1]}) == [(F, ("batch", 28, 28, 1))]
    assert infer("Transpose", [(F, (2, 3, 4))]) == [(F, (4, 3, 2))]
    with pytest.raises(ShapeError, match="not a permutation"):
        infer("Transpose", [(F, (2, 3))], {"perm": [0, 0]})
    one = ("int64", (1,))
    assert infer("Squeeze", [x, one], data=[None, np.array([1])]) == [(F, ("batch", 28, 28))]
    with pytest.raises(ShapeError, match="size is not 1"):
        infer("Squeeze", [x, one], data=[None, np.array([2])])
    assert infer("Unsqueeze", [(F, ("batch", 3)), ("int64", (2,))],
                 data=[None, np.array([1, -1])]) == [(F, ("batch", 1, 3, 1))]


def test_concat_split_slice_gather():
    assert infer("Concat", [(F, ("batch", 2, 4)), (F, ("batch", 3, 4))], {"axis": 1}) == [
        (F, ("batch", 5, 4))]
    with pytest.raises(ShapeError, match="differ off the concat axis"):
        infer("Concat", [(F, (2, 2)), (F, (3, 3))], {"axis": 1})
    assert infer("Split", [(F, ("batch", 7))], {"axis": 1}, num_outputs=3) == [
        (F, ("batch", 3)), (F, ("batch", 3)), (F, ("batch", 1))]
    assert infer("Split", [(F, ("batch", 7)), ("int64", (2,))], {"axis": 1},
                 data=[None, np.array([2, 5])], num_outputs=2) == [
        (F, ("batch", 2)), (F, ("batch", 5))]
    i1 = ("int64", (1,))
    data = [None, np.array([1]), np.array([-1]), np.array([1])]
    assert infer("Slice", [(F, ("batch", 10)), i1, i1, i1], data=data) == [(F, ("batch", 8))]
    data = [None, np.array([0]), np.array([2**62]), np.array([0])]
    assert infer("Slice", [(F, ("batch", 10)), i1, i1, i1], data=data) == [(F, ("batch", 10))]
    data = [None, np.array([-1]), np.array([-(2**62)]), np.array([1]), np.array([-2])]
    assert infer("Slice", [(F, (2, 10)), i1, i1, i1, i1], data=data) == [(F, (2, 5))]
    assert infer("Gather", [(F, (100, 16)), ("int64", ("batch", 7))]) == [(F, ("batch", 7, 16))]
    assert infer("Gather", [(F, ("batch", 5, 3)), ("int64", ())], {"axis": 1}) == [
        (F, ("batch", 3))]


def test_pad_shape_expand_cast_constant():
    pads = np.array([0, 0, 1, 1, 0, 0, 2, 2])
    assert infer("Pad", [(F, ("batch", 3, 8, 8)), ("int64", (8,))], data=[None, pads]) == [
        (F, ("batch", 3, 11, 11))]
    with pytest.raises(ShapeError, match="mode"):
        infer("Pad", [(F, (2,)), ("int64", (2,))], {"mode": "mirror"})
    assert infer("Shape", [(F, ("batch", 3, 8))]) == [("int64", (3,))]
    assert infer("Shape", [(F, ("batch", 3, 8))], {"start": 1}) == [("int64", (2,))]
    assert infer("Expand", [(F, (3, 1)), ("int64", (3,))], data=[None, np.array([2, 1, 4])]) == [
        (F, (2, 3, 4))]
    assert infer("Cast", [(F, ("batch", 3))], {"to": 7}) == [("int64", ("batch", 3))]
    assert infer("Constant", [], {"value": np.zeros((2, 3), np.float16)}) == [
        ("float16", (2, 3))]
    assert infer("Constant", [], {"value_ints": [1, 2, 3]}) == [("int64", (3,))]
    assert infer("Dropout", [(F, ("batch", 3))], num_outputs=2) == [
        (F, ("batch", 3)), ("bool", ("batch", 3))]


def test_quantize_dequantize_dtypes():
    x = (F, ("batch", 8, 4, 4))
    scalar = (F, ())
    assert infer("QuantizeLinear", [x, scalar, ("int8", ())]) == [("int8", ("batch", 8, 4, 4))]
    assert infer("QuantizeLinear", [x, scalar]) == [("uint8", ("batch", 8, 4, 4))]
    assert infer("QuantizeLinear", [x, (F, (8,)), ("int8", (8,))], {"axis": 1}) == [
        ("int8", ("batch", 8, 4, 4))]
    with pytest.raises(ShapeError, match="per-axis scale \\[5\\] does not match axis 1"):
        infer("QuantizeLinear", [x, (F, (5,)), ("int8", (5,))])
    assert infer("DequantizeLinear", [("int8", ("batch", 8)), scalar, ("int8", ())]) == [
        (F, ("batch", 8))]
    assert infer("DequantizeLinear", [("int32", (16,)), (F, ())]) == [(F, (16,))]
    with pytest.raises(DTypeError, match="float32"):
        infer("DequantizeLinear", [(F, (3,)), scalar])
