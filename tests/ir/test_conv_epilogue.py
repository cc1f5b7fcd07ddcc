"""EpilogueConv (the integer Conv kernel's chunked forward) against a naive convolution of
the input padded with ``pad_value``: every forward mode of the plan (full-width and exact
columns, several chunks, threads, direct depthwise, pointwise with strides and groups),
GEMMs in small pieces (one stacked call and a remainder), the bigger chunks of a plan that
runs beside other threads, int8 inputs, and an epilogue that writes another dtype."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from edgefw.ir.primitives import conv_epilogue, conv_plan
from edgefw.ir.primitives.conv import ConvPlan, conv_geometry
from edgefw.ir.primitives.conv_epilogue import EpilogueConv
from edgefw.ir.primitives.windows import batch_minor, from_batch_minor
from tests.ir.test_conv_plan import naive_conv

CASES = {
    # name: (N, (C_in, C_out, group), H=W, kernel, strides, pads)
    "full_width_batch1": (1, (3, 5, 1), 9, (3, 3), (1, 1), (1, 1, 1, 1)),
    "exact_columns_chunks": (24, (3, 6, 1), 12, (3, 3), (1, 1), (1, 1, 1, 1)),
    "strided_asymmetric": (20, (2, 4, 1), 11, (3, 2), (2, 1), (2, 0, 1, 1)),
    "grouped": (16, (4, 6, 2), 8, (3, 3), (1, 1), (1, 1, 1, 1)),
    "direct_depthwise": (64, (6, 6, 6), 10, (3, 3), (1, 1), (1, 1, 1, 1)),
    "direct_depthwise_stride2": (128, (4, 4, 4), 10, (3, 3), (2, 2), (1, 1, 1, 1)),
    "pointwise": (40, (8, 12, 1), 9, (1, 1), (1, 1), (0, 0, 0, 0)),
    "pointwise_strided_grouped": (16, (8, 6, 2), 9, (1, 1), (2, 2), (0, 0, 0, 0)),
}


def _run(case: str, threads: int, monkeypatch, concurrent: bool = False
         ) -> tuple[np.ndarray, np.ndarray]:
    n, (c_in, c_out, group), hw, kernel, strides, pads = CASES[case]
    rng = np.random.default_rng(len(case))
    x = rng.integers(-128, 128, (c_in, hw, hw, n)).astype(np.int8)  # stored batch-minor
    w = rng.integers(-127, 128, (c_out, c_in // group) + kernel).astype(np.float32)
    b = rng.integers(-1000, 1000, c_out).astype(np.float32)
    pad_value = -7.0
    geometry = conv_geometry("test", (n, c_in, hw, hw), np.float32, w.shape, strides, pads,
                             (1, 1), group)
    plan = ConvPlan(geometry, np.float32, concurrent)
    conv = EpilogueConv(plan, plan.prepare_weights(w, b), _to_int32, pad_value=pad_value)
    if threads > 1:
        monkeypatch.setattr(conv, "_threads", threads)
    out = np.empty((c_out,) + geometry.out_hw + (n,), np.int32)
    got = conv(from_batch_minor(x), out)
    assert got.base is out or got.base is out.base

    xf = from_batch_minor(x).astype(np.float64)
    big = np.full((n, c_in, hw + pads[0] + pads[2], hw + pads[1] + pads[3]), pad_value)
    big[:, :, pads[0]:pads[0] + hw, pads[1]:pads[1] + hw] = xf
    want = naive_conv(big, w, b, strides, (0, 0, 0, 0), (1, 1), group)
    return got, want


def _to_int32(acc: np.ndarray, dst: np.ndarray) -> None:
    np.copyto(dst, acc, casting="unsafe")


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("pieces", [False, True])
@pytest.mark.parametrize("concurrent", [False, True])
def test_matches_naive_conv_padded_with_pad_value(case, threads, pieces, concurrent,
                                                  monkeypatch):
    # small chunks, so that every case runs several of them (bigger ones when concurrent)
    monkeypatch.setattr(conv_plan, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(conv_plan, "CONCURRENT_CHUNK_BYTES", 16384)
    monkeypatch.setattr(conv_plan, "MIN_CHUNK_COLUMNS", 64)
    monkeypatch.setattr(conv_epilogue, "MIN_CHUNK_COLUMNS", 64)
    monkeypatch.setattr(conv_plan, "DIRECT_DEPTHWISE_BAND", 512)
    monkeypatch.setattr(conv_epilogue, "DIRECT_DEPTHWISE_BAND", 512)
    if pieces:  # a few columns per piece: stacks of equal pieces plus a remainder
        monkeypatch.setattr(conv_epilogue, "SMALL_GEMM_MACS", 1000)
        monkeypatch.setattr(conv_epilogue, "MIN_PIECE_COLUMNS", 1)
    got, want = _run(case, threads, monkeypatch, concurrent)
    np.testing.assert_array_equal(got, want.astype(np.int32))
    assert batch_minor(got).flags.c_contiguous


def test_modes_are_what_the_cases_say(monkeypatch):
    for case, check in (("full_width_batch1", lambda p: p.full_width),
                        ("exact_columns_chunks", lambda p: not p.full_width),
                        ("direct_depthwise", lambda p: p.direct_depthwise),
                        ("pointwise", lambda p: p.geometry.pointwise)):
        n, (c_in, c_out, group), hw, kernel, strides, pads = CASES[case]
        geometry = conv_geometry("t", (n, c_in, hw, hw), np.float32,
                                 (c_out, c_in // group) + kernel, strides, pads, (1, 1), group)
        assert check(ConvPlan(geometry, np.float32)), case


def test_small_pieces_are_one_stacked_call_and_a_remainder(monkeypatch):
    monkeypatch.setattr(conv_epilogue, "SMALL_GEMM_MACS", 1000)
    monkeypatch.setattr(conv_epilogue, "MIN_PIECE_COLUMNS", 1)
    n, (c_in, c_out, group), hw, kernel, strides, pads = CASES["exact_columns_chunks"]
    geometry = conv_geometry("t", (n, c_in, hw, hw), np.float32,
                             (c_out, c_in // group) + kernel, strides, pads, (1, 1), group)
    plan = ConvPlan(geometry, np.float32)
    conv = EpilogueConv(plan, plan.prepare_weights(np.ones((c_out, c_in) + kernel), None),
                        _to_int32)
    columns = plan._chunks[0].columns  # 12 x 12 x 24: one chunk
    calls = conv._worker_steps(0)[id(plan._chunks[0])][1]
    piece = 1000 // (c_out * (c_in * 9 + 1))  # 5 columns
    assert [c.shape for _, _, c in calls] == [
        (columns // piece, c_out, piece), (1, c_out, columns % piece)]


def test_doctests():
    assert doctest.testmod(conv_epilogue).failed == 0
