"""Elementwise, normalization, reduction, pooling and data-movement kernels on the GPU vs
the CPU provider, on shapes that are not multiples of the 256-thread workgroup."""

from __future__ import annotations

import numpy as np
import pytest

from tests.runtime.gpu.helpers import Const, check_op, rand

pytestmark = pytest.mark.usefixtures("gpu_context")

SHAPE = (3, 5, 37)  # 555 elements: two full workgroups and a partial one


@pytest.mark.parametrize("op_type,attrs,low,high", [
    ("Relu", {}, -2, 2), ("Sigmoid", {}, -30, 30), ("Tanh", {}, -20, 20), ("Exp", {}, -5, 5),
    ("Log", {}, 0.01, 10), ("Sqrt", {}, 0, 10), ("Neg", {}, -2, 2), ("Abs", {}, -2, 2),
    ("Reciprocal", {}, 0.5, 4), ("Erf", {}, -4, 4), ("LeakyRelu", {"alpha": 0.2}, -2, 2),
    ("Gelu", {}, -8, 8), ("Gelu", {"approximate": "tanh"}, -8, 8),
])
def test_unary(op_type, attrs, low, high):
    check_op(op_type, [rand(*SHAPE, low=low, high=high)], attrs)


@pytest.mark.parametrize("lo,hi", [(-0.5, 0.5), (None, 0.25), (0.0, None)])
def test_clip(lo, hi):
    bounds = [None if b is None else Const(np.float32(b)) for b in (lo, hi)]
    check_op("Clip", [rand(*SHAPE), *bounds])


@pytest.mark.parametrize("a_shape,b_shape", [
    ((3, 5, 37), (3, 5, 37)),     # same shape
    ((3, 5, 37), ()),             # scalar
    ((3, 5, 37), (37,)),          # trailing (a bias)
    ((3, 5, 37), (5, 1)),         # general broadcasting
    ((3, 1, 37), (1, 5, 1)),      # both broadcast
    ((1,), (4, 3)),               # scalar-like first operand
])
@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div"])
def test_binary_broadcasting(op_type, a_shape, b_shape):
    b = rand(*b_shape, seed=2, low=0.5, high=2.0)
    check_op(op_type, [rand(*a_shape, seed=1), b])


def test_binary_with_constants_and_fused_relu():
    check_op("Add", [rand(*SHAPE), Const(rand(37, seed=4))], meta={"fused_activation": "Relu"})
    check_op("Mul", [Const(rand(5, 1, seed=5)), rand(*SHAPE)])


@pytest.mark.parametrize("exponent", [2.0, 3.0, 0.5, -1.0, 1.5, 0.0])
def test_pow_with_constant_exponent(exponent):
    low = 0.1 if exponent in (0.5, 1.5) else -2.0
    check_op("Pow", [rand(*SHAPE, low=low, high=2.0), Const(np.float32(exponent))])


@pytest.mark.parametrize("shape,axis", [((4, 10), -1), ((2, 3, 5, 7), 1), ((3, 300), 1),
                                        ((2, 200, 3), 1), ((5,), 0)])
@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
def test_softmax(op_type, shape, axis):
    check_op(op_type, [rand(*shape, low=-10, high=10)], {"axis": axis})


@pytest.mark.parametrize("shape,axis", [((4, 6, 32), -1), ((3, 5, 7), 1), ((2, 500), -1)])
def test_layer_normalization(shape, axis):
    norm = shape[axis:] if axis >= 0 else shape[axis:]
    check_op("LayerNormalization",
             [rand(*shape, low=-3, high=5), Const(rand(*norm, seed=2)), Const(rand(*norm, seed=3))],
             {"axis": axis, "epsilon": 1e-5})


def test_layer_normalization_without_bias():
    check_op("LayerNormalization", [rand(6, 20), Const(rand(20, seed=2))], {"axis": -1})


def test_batch_normalization():
    c = 5
    params = [Const(rand(c, seed=s, low=0.5, high=1.5)) for s in range(4)]
    check_op("BatchNormalization", [rand(3, c, 7, 6), *params], {"epsilon": 1e-3})


@pytest.mark.parametrize("op_type", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("axes,keepdims", [([-1], 1), ([1], 0), ([0, 2], 1), (None, 0),
                                           ([1, 2], 0)])
def test_reduce(op_type, axes, keepdims):
    inputs = [rand(4, 6, 23)] + ([Const(np.array(axes, np.int64))] if axes is not None else [])
    check_op(op_type, inputs, {"keepdims": keepdims})


@pytest.mark.parametrize("shape,axes", [((3, 700), [1]), ((2, 300, 3), [1])])
def test_long_reductions_use_a_workgroup_per_output(shape, axes):
    check_op("ReduceSum", [rand(*shape), Const(np.array(axes, np.int64))], {"keepdims": 1})
    check_op("ReduceMax", [rand(*shape), Const(np.array(axes, np.int64))], {"keepdims": 0})


@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (3, 64, 1, 1), (2, 3, 20, 20), (2, 4, 11)])
def test_global_average_pool(shape):
    check_op("GlobalAveragePool", [rand(*shape)])


POOL_CASES = [
    ((2, 3, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ((2, 3, 9, 11), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 10, 7), {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1}),
    ((2, 2, 9, 9), {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((2, 3, 13), {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
]


@pytest.mark.parametrize("shape,attrs", POOL_CASES)
def test_max_pool(shape, attrs):
    check_op("MaxPool", [rand(*shape)], attrs)


def test_max_pool_with_dilations():
    check_op("MaxPool", [rand(2, 3, 12, 12)], {"kernel_shape": [3, 3], "dilations": [2, 2]})


@pytest.mark.parametrize("shape,attrs", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool(shape, attrs, count_include_pad):
    check_op("AveragePool", [rand(*shape)], {**attrs, "count_include_pad": count_include_pad})


@pytest.mark.parametrize("shape,perm", [((2, 3, 4), None), ((2, 3, 4, 5), [0, 2, 1, 3]),
                                        ((5, 2, 3, 4, 8), [2, 0, 3, 1, 4]), ((7, 300), [1, 0])])
def test_transpose(shape, perm):
    check_op("Transpose", [rand(*shape)], {} if perm is None else {"perm": perm})


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1], [4], [1], [1]),
    ([0, 2], [3, -1], [0, 2], [2, 1]),
    ([-1], [-100], [2], [-2]),          # negative step, clamped end
    ([1, 0, 0], [2, 5, 100], None, None),
])
def test_slice(starts, ends, axes, steps):
    inputs = [rand(3, 6, 9), Const(np.array(starts, np.int64)), Const(np.array(ends, np.int64))]
    if axes is not None:
        inputs.append(Const(np.array(axes, np.int64)))
        inputs.append(Const(np.array(steps, np.int64)))
    check_op("Slice", inputs)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_concat_with_a_constant(axis):
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for s in shapes[1:]:
        s[axis] += 1
    check_op("Concat", [rand(*shapes[0], seed=1), Const(rand(*shapes[1], seed=2)),
                        rand(*shapes[2], seed=3)], {"axis": axis})


def test_split():
    check_op("Split", [rand(4, 9, 5), Const(np.array([2, 3, 4], np.int64))], {"axis": 1},
             num_outputs=3)
    check_op("Split", [rand(6, 4)], {"axis": 0, "num_outputs": 3}, num_outputs=3)


def test_expand():
    check_op("Expand", [rand(3, 1, 5), Const(np.array([2, 3, 4, 5], np.int64))])


@pytest.mark.parametrize("op_type,extra,attrs", [
    ("Reshape", [Const(np.array([0, -1], np.int64))], {}),
    ("Flatten", [], {"axis": 2}),
    ("Squeeze", [Const(np.array([1], np.int64))], {}),
    ("Unsqueeze", [Const(np.array([0, 3], np.int64))], {}),
    ("Identity", [], {}),
])
def test_views(op_type, extra, attrs):
    x = rand(4, 1, 3, 5) if op_type == "Squeeze" else rand(4, 2, 3, 5)
    check_op(op_type, [x, *extra], attrs)


@pytest.mark.parametrize("op_type", ["Sum", "Mean", "Max", "Min"])
@pytest.mark.parametrize("shapes", [[(3, 5)], [(3, 5), (5,)], [(2, 1, 4), (3, 1), (1, 3, 4), (4,)]])
def test_variadic(op_type, shapes):
    check_op(op_type, [rand(*s, seed=k) for k, s in enumerate(shapes)])
