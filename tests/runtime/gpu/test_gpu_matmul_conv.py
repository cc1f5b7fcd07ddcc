"""Gemm, MatMul and Conv on the GPU vs the CPU provider: random shapes, sizes that are not
multiples of the 64x64 tile or the 16-deep K step, every attribute, fused activations, and
int8 DequantizeLinear weights dequantized in the kernel."""

from __future__ import annotations

import numpy as np
import pytest

from tests.runtime.gpu.helpers import Const, check_op, rand

pytestmark = pytest.mark.usefixtures("gpu_context")

ACTIVATIONS = ["Relu", ("Clip", 0.0, 6.0), ("LeakyRelu", 0.1), "Sigmoid", "Tanh"]


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (65, 17, 130), (37, 200, 10),
                                   (128, 64, 64)])
def test_gemm_constant_weight_and_bias(m, k, n):
    check_op("Gemm", [rand(m, k, seed=1), Const(rand(n, k, seed=2)), Const(rand(n, seed=3))],
             {"transB": 1})


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_gemm_transposes_alpha_beta(trans_a, trans_b):
    m, k, n = 19, 33, 21
    a = rand(k, m, seed=4) if trans_a else rand(m, k, seed=4)
    b = rand(n, k, seed=5) if trans_b else rand(k, n, seed=5)
    check_op("Gemm", [a, Const(b), Const(rand(1, n, seed=6))],
             {"transA": trans_a, "transB": trans_b, "alpha": 0.5, "beta": 2.0})


@pytest.mark.parametrize("c_shape", [(), (1,), (9,), (1, 9)])
def test_gemm_bias_shapes(c_shape):
    check_op("Gemm", [rand(4, 6), Const(rand(6, 9, seed=1)), Const(rand(*c_shape, seed=2))])


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_with_a_runtime_weight(trans_b):
    b = rand(11, 70, seed=1) if trans_b else rand(70, 11, seed=1)
    check_op("Gemm", [rand(67, 70), b], {"transB": trans_b})


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gemm_fused_activation(act):
    check_op("Gemm", [rand(17, 30, low=-3, high=3), Const(rand(12, 30, seed=1)),
                      Const(rand(12, seed=2))], {"transB": 1}, meta={"fused_activation": act})


@pytest.mark.parametrize("a_shape,b_shape", [
    ((5, 7), (7, 3)),              # plain
    ((2, 9, 13), (13, 70)),        # batch folds into M
    ((13,), (13, 6)),              # 1-D A
    ((4, 13), (13,)),              # 1-D B
    ((3, 17, 8), (3, 8, 66)),      # batched, both runtime
    ((2, 1, 5, 8), (1, 3, 8, 4)),  # broadcast batch dims
    ((6, 8), (2, 8, 5)),           # 2-D A against a batch of B
])
def test_matmul_shapes(a_shape, b_shape):
    check_op("MatMul", [rand(*a_shape, seed=1), rand(*b_shape, seed=2)])


def test_matmul_constant_weight_with_fused_relu():
    check_op("MatMul", [rand(3, 16, 32), Const(rand(32, 96, seed=3))],
             meta={"fused_activation": "Relu"})


CONV_CASES = [
    # (x shape, w shape, attrs)
    ((2, 3, 9, 11), (8, 3, 3, 3), {"pads": [1, 1, 1, 1]}),                  # direct (8 < 16)
    ((2, 5, 13, 10), (20, 5, 3, 3), {"pads": [1, 0, 2, 1], "strides": [2, 1]}),  # GEMM
    ((1, 16, 12, 12), (32, 16, 1, 1), {}),                                  # pointwise
    ((2, 6, 15, 15), (17, 6, 5, 5), {"dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    ((2, 8, 10, 10), (20, 4, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),       # grouped GEMM
    ((3, 16, 14, 9), (16, 1, 3, 3), {"group": 16, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((2, 4, 7, 7), (8, 1, 3, 3), {"group": 4}),                             # depth multiplier 2
    ((2, 3, 11, 13), (18, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((2, 1, 28, 28), (6, 1, 5, 5), {"pads": [2, 2, 2, 2]}),                 # LeNet's first
]


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv(x_shape, w_shape, attrs, with_bias):
    bias = Const(rand(w_shape[0], seed=3)) if with_bias else None
    check_op("Conv", [rand(*x_shape, seed=1), Const(rand(*w_shape, seed=2)), bias], attrs)


def test_conv_1d():
    check_op("Conv", [rand(2, 4, 19), Const(rand(18, 4, 3, seed=2)), Const(rand(18, seed=3))],
             {"pads": [1, 1], "strides": [2]})


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("w_shape,group", [((20, 6, 3, 3), 1), ((6, 1, 3, 3), 6)])
def test_conv_fused_activation(act, w_shape, group):
    check_op("Conv", [rand(2, 6, 9, 9, low=-2, high=2), Const(rand(*w_shape, seed=2)),
                      Const(rand(w_shape[0], seed=3))], {"pads": [1, 1, 1, 1], "group": group},
             meta={"fused_activation": act})


def _int8_weight_graph(op_type: str, x: np.ndarray, w_q: np.ndarray, scale: np.ndarray,
                       zero: np.ndarray, axis: int, attrs: dict, bias: np.ndarray | None):
    """x -> op(x, DequantizeLinear(w_q, scale, zero), bias)."""
    from edgefw.ir import Graph

    g = Graph("qdq_weight")
    xv = g.add_input("x", "float32", x.shape)
    w = g.add_node("DequantizeLinear", [w_q, scale, zero], {"axis": axis}, name="w_dq").output
    inputs = [xv, w] + ([bias] if bias is not None else [])
    g.set_outputs([g.add_node(op_type, inputs, attrs, name="op").output])
    return g


@pytest.mark.parametrize("op_type,w_shape,axis,attrs", [
    ("Gemm", (37, 50), 0, {"transB": 1}),
    ("Gemm", (50, 37), 1, {}),
    ("MatMul", (50, 37), 1, {}),
    ("Conv", (24, 5, 3, 3), 0, {"pads": [1, 1, 1, 1]}),
    ("Conv", (5, 1, 3, 3), 0, {"pads": [1, 1, 1, 1], "group": 5}),
])
@pytest.mark.parametrize("dtype,per_channel", [(np.int8, True), (np.int8, False),
                                               (np.uint8, True)])
def test_int8_dequantized_weights_are_unpacked_in_the_kernel(op_type, w_shape, axis, attrs,
                                                             dtype, per_channel):
    from runtime import InferenceSession
    from tests.runtime.gpu.helpers import assert_close

    rng = np.random.default_rng(0)
    info = np.iinfo(dtype)
    w_q = rng.integers(info.min, info.max + 1, w_shape).astype(dtype)
    channels = w_shape[axis]
    scale = (rng.random(channels) * 0.02 + 0.001).astype(np.float32) if per_channel \
        else np.float32(0.01)
    zero = (np.full(channels, 3 if dtype == np.uint8 else 0, dtype) if per_channel
            else dtype(3 if dtype == np.uint8 else 0))
    x = rng.standard_normal((6, 50) if op_type != "Conv" else (2, 5, 8, 7)).astype(np.float32)
    g = _int8_weight_graph(op_type, x, w_q, scale, zero, axis, attrs, None)
    gpu = InferenceSession(g, providers=["gpu", "cpu"], optimization="none")
    cpu = InferenceSession(g, providers=["cpu"], optimization="none")
    assert set(gpu.get_provider_assignment().values()) == {"gpu"}
    assert_close(gpu.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0])
    provider = gpu._providers[0]
    # The weight went up packed (1 byte per weight), not as float32.
    assert provider.buffers.constant_bytes < w_q.size * 2 + 4096
