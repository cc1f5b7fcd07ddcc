"""Quantized kernels on the GPU: QuantizeLinear / DequantizeLinear, and the integer ops the
QDQ fusion pass makes (QGemm, QConv, QAdd, QAveragePool, QGlobalAveragePool, int8 MaxPool
and data movement) — bit-exact with the CPU provider."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir.passes.qdq_patterns import quantize_multiplier
from runtime.providers.cpu.requantize import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_single,
)
from runtime.providers.gpu.kernels.requantize import requantize_reference
from tests.runtime.gpu.helpers import (
    Const,
    assert_lsb,
    check_op,
    rand,
    run_both,
    single_op_graph,
)


def qrand(*shape: int, dtype=np.int8, seed: int = 0) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.random.default_rng(seed).integers(info.min, info.max + 1, shape).astype(dtype)


def test_requantize_table_matches_the_cpu_fixed_point_arithmetic():
    # Host-side model of the shader's arithmetic (no GPU needed), over every regime:
    # tiny and large multipliers, right shifts up to 31, left shifts, int32 extremes.
    rng = np.random.default_rng(0)
    for real in np.exp(rng.uniform(np.log(1e-7), np.log(8.0), 200)):
        m, shift = quantize_multiplier(float(real))
        x = np.concatenate([rng.integers(-2**31, 2**31, 500), rng.integers(-3000, 3000, 500),
                            [-2**31, 2**31 - 1, 0, -1, 1]])
        if shift > 0:
            x = x >> 8  # keep (x << shift) meaningful
        np.testing.assert_array_equal(requantize_reference(x, m, shift),
                                      multiply_by_quantized_multiplier(x, m, shift))
        # FULLY_CONNECTED's single rounding (QGemm); x * M stays within int64 and the
        # product's rounded quotient within int32 for these accumulators
        x = x >> max(shift, 0)
        np.testing.assert_array_equal(
            requantize_reference(x, m, shift, single_rounding=True),
            multiply_by_quantized_multiplier_single(x, m, shift))


@pytest.mark.usefixtures("gpu_context")
class TestQuantizeDequantize:
    @pytest.mark.parametrize("dtype,zero", [(np.int8, 0), (np.int8, -7), (np.uint8, 128)])
    def test_quantize_linear(self, dtype, zero):
        x = rand(3, 7, 29, low=-3, high=3)
        x.reshape(-1)[:40] = np.arange(40, dtype=np.float32) * 0.05 - 1.0  # exact .5 ties
        check_op("QuantizeLinear", [x, Const(np.float32(0.1)), Const(dtype(zero))])

    @pytest.mark.parametrize("dtype,zero", [(np.int8, 3), (np.uint8, 128)])
    def test_dequantize_linear(self, dtype, zero):
        check_op("DequantizeLinear", [qrand(4, 37, dtype=dtype), Const(np.float32(0.037)),
                                      Const(dtype(zero))])


def _requant_inputs(n: int, seed: int, left_shift: bool = False):
    rng = np.random.default_rng(seed)
    pairs = [quantize_multiplier(float(r)) for r in rng.uniform(2e-4, 2e-2, n)]
    if left_shift:
        pairs[0] = quantize_multiplier(3.7)  # shift > 0: TFLite shifts left first
    multiplier = np.array([p[0] for p in pairs], np.int32)
    shift = np.array([p[1] for p in pairs], np.int32)
    bias = rng.integers(-20000, 20000, n).astype(np.int32)
    return Const(multiplier), Const(shift), Const(bias)


@pytest.mark.usefixtures("gpu_context")
class TestIntegerOps:
    @pytest.mark.parametrize("rows,k,n", [(1, 1, 1), (5, 37, 10), (70, 200, 66)])
    @pytest.mark.parametrize("x_dtype,x_zero,y_zero", [(np.int8, -128, -5),
                                                       (np.uint8, 128, 130)])
    def test_qgemm(self, rows, k, n, x_dtype, x_zero, y_zero):
        info = np.iinfo(x_dtype)
        check_op("QGemm", [qrand(rows, k, dtype=x_dtype), Const(qrand(n, k, seed=1)),
                           *_requant_inputs(n, 2, left_shift=n > 1)],
                 {"x_zero_point": x_zero, "y_zero_point": y_zero,
                  "act_min": int(info.min) + 3, "act_max": int(info.max)},
                 domain="edgefw")

    def test_qgemm_on_the_last_axis_of_a_3d_input(self):
        check_op("QGemm", [qrand(2, 9, 24), Const(qrand(7, 24, seed=1)), *_requant_inputs(7, 3)],
                 {"x_zero_point": 4, "y_zero_point": -3, "act_min": -128, "act_max": 127},
                 domain="edgefw")

    @pytest.mark.parametrize("x_shape,w_shape,attrs", [
        ((2, 3, 9, 11), (8, 3, 3, 3), {"pads": [1, 1, 1, 1]}),              # direct kernel
        ((2, 5, 13, 10), (20, 5, 3, 3), {"pads": [1, 0, 2, 1], "strides": [2, 1]}),  # GEMM
        ((3, 16, 14, 9), (16, 1, 3, 3), {"group": 16, "pads": [1, 1, 1, 1]}),  # depthwise
        ((2, 8, 10, 10), (32, 4, 3, 3), {"group": 2, "pads": [1, 1, 1, 1], "dilations": [1, 2]}),
    ])
    def test_qconv(self, x_shape, w_shape, attrs):
        check_op("QConv", [qrand(*x_shape), Const(qrand(*w_shape, seed=1)),
                           *_requant_inputs(w_shape[0], 4)],
                 {"x_zero_point": -128, "y_zero_point": 3, "act_min": -128, "act_max": 100,
                  **attrs}, domain="edgefw")

    @pytest.mark.parametrize("a_shape,b_shape", [((3, 5, 8), (3, 5, 8)), ((3, 5, 8), (8,)),
                                                 ((3, 1, 8), (1, 5, 1))])
    def test_qadd(self, a_shape, b_shape):
        ma, sa = quantize_multiplier(0.4)
        mb, sb = quantize_multiplier(0.27)
        my, sy = quantize_multiplier(3e-6)
        check_op("QAdd", [qrand(*a_shape), qrand(*b_shape, seed=1)],
                 {"a_zero_point": -3, "b_zero_point": 11, "y_zero_point": -7,
                  "a_multiplier": ma, "a_shift": sa, "b_multiplier": mb, "b_shift": sb,
                  "y_multiplier": my, "y_shift": sy, "left_shift": 20, "act_min": -128,
                  "act_max": 127}, domain="edgefw")

    @pytest.mark.parametrize("attrs", [
        {"kernel_shape": [2, 2], "strides": [2, 2]},
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    ])
    def test_qaverage_pool(self, attrs):
        check_op("QAveragePool", [qrand(2, 3, 9, 10)], attrs, domain="edgefw")

    @pytest.mark.parametrize("dtype", [np.int8, np.uint8])
    def test_qglobal_average_pool(self, dtype):
        m, s = quantize_multiplier(0.83)
        check_op("QGlobalAveragePool", [qrand(3, 6, 7, 7, dtype=dtype)],
                 {"x_zero_point": 5, "y_zero_point": -2 if dtype == np.int8 else 120,
                  "multiplier": m, "shift": s}, domain="edgefw")

    def test_int8_max_pool_and_data_movement(self):
        check_op("MaxPool", [qrand(2, 3, 9, 9)], {"kernel_shape": [3, 3], "strides": [2, 2]})
        check_op("Transpose", [qrand(2, 3, 4, 5)], {"perm": [0, 2, 1, 3]})
        check_op("Concat", [qrand(2, 3), Const(qrand(2, 4, seed=1))], {"axis": 1})
        check_op("Flatten", [qrand(2, 3, 4, dtype=np.uint8)], {"axis": 1})


@pytest.mark.usefixtures("gpu_context")
def test_quantize_dequantize_round_trip_within_one_step():
    scale = np.float32(0.02)
    graph, feed = single_op_graph("QuantizeLinear", [rand(5, 300, low=-2, high=2),
                                                     Const(scale), Const(np.int8(0))])
    got, want, _ = run_both(graph, feed)
    assert_lsb(got[0].astype(np.float32) * scale, want[0].astype(np.float32) * scale,
               float(scale), max_lsb=0)
