"""The folded float32 requantizer of the integer Conv/Gemm kernels: how far from TFLite's
integers.

It is not exact (see ``runtime/providers/cpu/chunk_requantizer.py``): these tests measure
and bound its disagreement — with the exact closed form of TFLite's reference
``MultiplyByQuantizedMultiplier`` on whole float32 GEMMs with the requantization folded
into the operands, and through whole convolutions with LiteRT's interpreter (its default
int8 kernels and its reference kernels) on exported int8 ``.tflite`` files.
docs/qdq_contract.md states the same bound: one step, on about 1e-4 of the values.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir import Graph
from runtime.providers.cpu.chunk_requantizer import MAX_ERROR_STEPS, FoldedRequantizer
from runtime.providers.cpu.requantize import (
    apply_multiplier,
    multiply_by_quantized_multiplier_single,
    quantize_multiplier,
)

# Measured 2e-5 to 6e-5 of the in-range values (those the clamp does not decide) on these
# GEMMs; bounded with a margin.
MAX_MISMATCH_RATE = 2e-4


def _gemm_case(rng: np.random.Generator, dtype: str, relu: bool, depth: int,
               channels: int = 8, columns: int = 6000):
    """Weights, inputs, bias and TFLite parameters of a layer whose outputs spread over
    about +-200 steps (so that most land in range)."""
    info = np.iinfo(dtype)
    w = rng.integers(-127, 128, (channels, depth))
    x_zp = int(rng.integers(info.min, info.max + 1))
    x = rng.integers(info.min, info.max + 1, (depth, columns))
    bias = rng.integers(-5000, 5000, channels)
    acc = w @ (x - x_zp) + bias[:, None]
    real = 200.0 / np.abs(acc).max(axis=1)
    if rng.random() < 0.3:
        real[0] = min(0.75, 4 * real[0])  # a smaller right shift
    pairs = [quantize_multiplier(r) for r in real]
    multiplier = np.array([m for m, _ in pairs])
    shift = np.array([s for _, s in pairs])
    zero_point = int(rng.integers(info.min, info.max + 1))
    act_min = zero_point if relu else int(info.min)
    return w, x, x_zp, bias, acc, multiplier, shift, zero_point, act_min, int(info.max)


def _folded_gemm(requantizer: FoldedRequantizer, w, x, x_zp, bias, dtype) -> np.ndarray:
    """What the kernels compute: raw inputs and a ones row times the folded operands."""
    weight, b = requantizer.fold(w, bias - x_zp * w.sum(axis=1))
    operand = np.concatenate([weight, b[:, None]], axis=1).astype(np.float32)
    columns = np.concatenate([x, np.ones((1, x.shape[1]))]).astype(np.float32)
    return requantizer(operand @ columns, np.empty((w.shape[0], x.shape[1]), dtype))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("single_rounding", [False, True])
def test_within_one_step_of_the_exact_closed_form(dtype, relu, single_rounding):
    rng = np.random.default_rng(7 + relu + 2 * (dtype == "uint8") + 4 * single_rounding)
    mismatched = in_range = 0
    for depth in (9, 75, 150, 400):
        w, x, x_zp, bias, acc, multiplier, shift, zero_point, lo, hi = _gemm_case(
            rng, dtype, relu, depth)
        requantizer = FoldedRequantizer(multiplier, shift, zero_point=zero_point, act_min=lo,
                                        act_max=hi, dtype=dtype,
                                        single_rounding=single_rounding)
        exact = multiply_by_quantized_multiplier_single if single_rounding \
            else apply_multiplier
        raw = exact(acc, multiplier[:, None], shift[:, None]) + zero_point
        want = np.clip(raw, lo, hi)
        got = _folded_gemm(requantizer, w, x, x_zp, bias, dtype)
        steps = np.abs(got.astype(np.int64) - want)
        assert steps.max() <= 1
        clamped = (raw < lo) | (raw > hi)
        assert np.array_equal(got[clamped], want[clamped])
        mismatched += int(np.count_nonzero(steps))
        in_range += int(np.count_nonzero(~clamped))
    assert mismatched / in_range <= MAX_MISMATCH_RATE, mismatched / in_range


def test_the_sign_dependent_rounding_is_kept():
    """Below the zero point gemmlowp's second rounding goes the other way: without the
    extra pass ~2**-right_shift of those values would be one step high (here ~3%)."""
    rng = np.random.default_rng(1)
    w, x, x_zp, bias, acc, multiplier, shift, zero_point, lo, hi = _gemm_case(
        rng, "int8", False, 75)
    shift[:] = -4  # a small right shift: a wide band where the two roundings differ
    requantizer = FoldedRequantizer(multiplier, shift, zero_point=zero_point, act_min=lo,
                                    act_max=hi, dtype="int8")
    want = np.clip(apply_multiplier(acc, multiplier[:, None], shift[:, None]) + zero_point,
                   lo, hi)
    got = _folded_gemm(requantizer, w, x, x_zp, bias, "int8")
    assert np.mean(got != want) <= MAX_MISMATCH_RATE


def test_error_bound_covers_the_float_error():
    """error_steps (what the kernels check before folding) bounds the real error."""
    rng = np.random.default_rng(2)
    w, x, x_zp, bias, acc, multiplier, shift, zero_point, lo, hi = _gemm_case(
        rng, "int8", False, 400)
    requantizer = FoldedRequantizer(multiplier, shift, zero_point=zero_point, act_min=lo,
                                    act_max=hi, dtype="int8")
    offset = bias - x_zp * w.sum(axis=1)
    weight, b = requantizer.fold(w, offset)
    operand = np.concatenate([weight, b[:, None]], axis=1)
    columns = np.concatenate([x, np.ones((1, x.shape[1]))])
    real = operand @ columns  # float64: the exact value to ~1e-12
    approx = operand.astype(np.float32) @ columns.astype(np.float32)
    terms = np.abs(w).sum(axis=1) * 128 + np.abs(offset)
    bound = requantizer.error_steps(terms, w.shape[1] + 1)
    assert 0 < np.abs(approx - real).max() <= bound < MAX_ERROR_STEPS


def test_any_layout_and_channel_axis():
    """Strided outputs (the plan's batch-minor tensors, a Gemm's transposed one) and the
    channels on axis 1 give the same integers as a contiguous (C, ...) array."""
    rng = np.random.default_rng(3)
    multiplier = np.array([quantize_multiplier(r)[0] for r in (0.01, 0.02, 0.003, 0.04)])
    requantizer = FoldedRequantizer(multiplier, [-6, -5, -8, -4], zero_point=3,
                                    act_min=-128, act_max=127, dtype="int8")
    values = rng.uniform(-300, 300, (4, 20_000)).astype(np.float32)
    flat = requantizer(values.copy(), np.empty(values.shape, np.int8))
    strided_out = np.empty((20_000, 4), np.int8).T
    requantizer(values.copy(), strided_out)
    np.testing.assert_array_equal(strided_out, flat)
    by_axis1 = requantizer(np.ascontiguousarray(values.T), np.empty((20_000, 4), np.int8),
                           channel_axis=1)
    np.testing.assert_array_equal(by_axis1.T, flat)
    small = requantizer(values[:, :100].copy(), np.empty((4, 100), np.int8))  # np.rint path
    np.testing.assert_array_equal(small, flat[:, :100])


def test_refuses_what_it_cannot_do():
    assert not FoldedRequantizer.supports([-3, 1], "int8")  # a multiplier above 1
    assert FoldedRequantizer.supports([-3, 1], "int8", single_rounding=True)
    assert not FoldedRequantizer.supports([-3], "int16")
    with pytest.raises(ValueError):
        FoldedRequantizer([1 << 30], [-3], zero_point=0, act_min=-32768, act_max=32767,
                          dtype="int16")


def _conv_graph(depthwise: bool) -> Graph:
    rng = np.random.default_rng(11 + depthwise)
    g = Graph("conv_layer")
    x = g.add_input("input", "float32", ("batch", 8, 12, 12))
    w = rng.normal(0, 0.2, (8, 1, 3, 3) if depthwise else (16, 8, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.3, w.shape[0]).astype(np.float32)
    conv = g.add_node("Conv", [x, w, b], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                          "group": 8 if depthwise else 1}, name="conv")
    g.set_outputs([conv.output])
    return g


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("resolver", ["AUTO", "BUILTIN_REF"])
def test_conv_layer_against_litert(depthwise, resolver):
    """Every output of an int8 Conv (no activation: the clamp hides nothing) against LiteRT
    on the exported file: within one step, on a bounded share of the values."""
    pytest.importorskip("ai_edge_litert")
    from exporter.tflite import to_tflite
    from tests.exporter.tflite.qdq_graphs import quantize_static_qdq
    from tests.exporter.tflite.tflite_checks import output_scale, run_edgefw, run_tflite

    x = np.random.default_rng(5).uniform(-1, 1, (64, 8, 12, 12)).astype(np.float32)
    q = quantize_static_qdq(_conv_graph(depthwise), {"input": x})
    data = to_tflite(q, optimize="none")
    (got,) = run_tflite(data, {"input": x}, resolver=resolver)
    (want,) = run_edgefw(q, {"input": x})
    steps = np.rint(np.abs(got - want) / output_scale(q))
    assert steps.max() <= 1
    # TFLite's optimized kernels round differently from its reference ones (XNNPACK, ruy):
    # measured 0 to 1e-4 against the reference kernels, 6e-4 to 1.1e-3 against the
    # default ones (as much as the exact requantizer: their own rounding dominates).
    assert np.mean(steps > 0) <= (MAX_MISMATCH_RATE if resolver == "BUILTIN_REF" else 5e-3)
