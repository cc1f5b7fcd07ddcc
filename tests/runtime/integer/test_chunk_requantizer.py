"""The float32 chunk requantizer of the integer Conv kernel: how far from TFLite's integers.

It is not exact (see ``runtime/providers/cpu/chunk_requantizer.py``): these tests measure
and bound its disagreement — with the exact closed form of TFLite's reference
``MultiplyByQuantizedMultiplier``, and through whole convolutions with LiteRT's interpreter
(its default int8 kernels and its reference kernels) on exported int8 ``.tflite`` files.
docs/qdq_contract.md states the same bound: one step, on about 4e-5 of the values.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir import Graph
from runtime.providers.cpu.chunk_requantizer import ChunkRequantizer
from runtime.providers.cpu.requantize import apply_multiplier, quantize_multiplier

# Measured ~4e-5 of the in-range values (those the clamp does not decide); bounded with a
# margin. The exact fast path the Conv kernel used before gave 0.
MAX_MISMATCH_RATE = 2e-4


def _case(rng: np.random.Generator, dtype: str, relu: bool, channels: int = 8):
    real = rng.uniform(1e-4, 0.05, channels)
    if rng.random() < 0.3:
        real[0] = 0.75  # right shift 0: no second rounding
    pairs = [quantize_multiplier(r) for r in real]
    multiplier = np.array([m for m, _ in pairs])
    shift = np.array([s for _, s in pairs])
    info = np.iinfo(dtype)
    zero_point = int(rng.integers(info.min, info.max + 1))
    act_min = zero_point if relu else int(info.min)
    # accumulators spread over about +-300 output steps: most of them land in range
    acc = np.rint(rng.uniform(-300, 300, (channels, 20_000)) / real[:, None])
    return multiplier, shift, zero_point, act_min, int(info.max), acc.astype(np.float32)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("relu", [False, True])
def test_within_one_step_of_the_exact_closed_form(dtype, relu):
    rng = np.random.default_rng(7 + relu + 2 * (dtype == "uint8"))
    mismatched = in_range = 0
    for _ in range(6):
        multiplier, shift, zero_point, lo, hi, acc = _case(rng, dtype, relu)
        requantizer = ChunkRequantizer(multiplier, shift, zero_point=zero_point, act_min=lo,
                                       act_max=hi, dtype=dtype)
        raw = apply_multiplier(acc.astype(np.int64), multiplier[:, None], shift[:, None]) \
            + zero_point
        want = np.clip(raw, lo, hi)
        got = requantizer(acc.copy(), np.empty(acc.shape, dtype))
        steps = np.abs(got.astype(np.int64) - want)
        assert steps.max() <= 1
        assert np.array_equal(got[(raw < lo) | (raw > hi)], want[(raw < lo) | (raw > hi)])
        mismatched += int(np.count_nonzero(steps))
        in_range += int(np.count_nonzero((raw >= lo) & (raw <= hi)))
    assert mismatched / in_range <= MAX_MISMATCH_RATE, mismatched / in_range


def test_any_layout_and_channel_axis():
    """Strided chunks (the conv plan's cropped full-width grid) and channels on axis 1
    (the shape-generic kernel) give the same integers as a contiguous (C, ...) chunk."""
    rng = np.random.default_rng(3)
    multiplier, shift, zero_point, lo, hi, acc = _case(rng, "int8", False, channels=4)
    requantizer = ChunkRequantizer(multiplier, shift, zero_point=zero_point, act_min=lo,
                                   act_max=hi, dtype="int8")
    flat = requantizer(acc.copy(), np.empty(acc.shape, np.int8))
    grid = np.zeros((4, 100, 250), np.float32)
    grid[:, :, :200] = acc.reshape(4, 100, 200)
    strided_out = np.empty((4, 100, 200), np.int8)
    requantizer(grid[:, :, :200], strided_out)
    np.testing.assert_array_equal(strided_out.reshape(4, -1), flat)
    by_axis1 = requantizer(np.ascontiguousarray(acc.T[None]), np.empty((1,) + acc.T.shape,
                                                                       np.int8), 2)
    np.testing.assert_array_equal(by_axis1[0].T, flat)


def test_refuses_what_it_cannot_do():
    assert not ChunkRequantizer.supports([-3, 1], "int8")  # a multiplier above 1
    assert not ChunkRequantizer.supports([-3], "int16")
    with pytest.raises(ValueError):
        ChunkRequantizer([1 << 30], [-3], zero_point=0, act_min=-32768, act_max=32767,
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
    # measured 2e-5 against the reference kernels, 6e-4 to 1.1e-3 against the default ones
    # (as much as the exact requantizer before it: their own rounding dominates).
    assert np.mean(steps > 0) <= (MAX_MISMATCH_RATE if resolver == "BUILTIN_REF" else 5e-3)
