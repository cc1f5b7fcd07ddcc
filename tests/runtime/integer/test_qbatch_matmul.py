"""QBatchMatMul: a MatMul of two quantized activations (attention's Q @ K^T and P @ V)
through FuseQDQPass and the kernel, exact against TFLite's reference BATCH_MATMUL (double
rounding, unlike FULLY_CONNECTED), within one step of the simulated QDQ float graph."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir.passes.qdq_patterns import quantize_multiplier
from tests.runtime.integer import tflite_reference as ref
from tests.runtime.integer.qdq_graphs import QDQBuilder, op_types, params_for, sessions


@pytest.mark.parametrize("dtype, a_shape, b_shape", [
    ("int8", (2, 4, 16, 8), (2, 4, 8, 16)),   # per-head products
    ("int8", (3, 5, 12), (12, 7)),            # batched x 2-D operand
    ("uint8", (6, 9), (9, 4)),
])
def test_qbatch_matmul_matches_tflite_reference(dtype, a_shape, b_shape):
    rng = np.random.default_rng(11)
    a = rng.uniform(-1.0, 2.0, a_shape).astype(np.float32)
    b = rng.uniform(-1.5, 1.0, b_shape).astype(np.float32)
    if dtype == "uint8":
        a, b = np.abs(a), np.abs(b)
    aq = params_for(float(a.min()), float(a.max()), dtype)
    bq = params_for(float(b.min()), float(b.max()), dtype)
    y = a @ b
    yq = params_for(float(y.min()), float(y.max()), dtype)
    builder = QDQBuilder("bmm")
    g = builder.g
    ad = builder.quantized_input("a", a_shape, aq)
    bd = builder.quantized_input("b", b_shape, bq)
    builder.quantized_output(g.add_node("MatMul", [ad, bd], name="bmm").output, yq)
    basic, fused = sessions(g)
    assert "QBatchMatMul" in op_types(fused) and "MatMul" not in op_types(fused)
    feeds = {"a": a, "b": b}
    got = fused.run(None, feeds)[0]
    multiplier, shift = quantize_multiplier(aq.scale * bq.scale / yq.scale)
    info = np.iinfo(dtype)
    want = ref.batch_matmul(aq.quantize(a), bq.quantize(b), aq.zero_point, bq.zero_point,
                            multiplier, shift, yq.zero_point, int(info.min), int(info.max))
    np.testing.assert_array_equal(got, want.astype(dtype))
    simulated = basic.run(None, feeds)[0]
    assert np.max(np.abs(got.astype(np.int64) - simulated.astype(np.int64))) <= 1


def test_int16_matmul_of_activations_stays_float():
    """16x8 BATCH_MATMUL is not an integer kernel here: the group stays simulated."""
    q = params_for(-1.0, 1.0, "int16")
    builder = QDQBuilder("bmm16")
    g = builder.g
    ad = builder.quantized_input("a", (2, 3, 4), q)
    bd = builder.quantized_input("b", (2, 4, 5), q)
    builder.quantized_output(g.add_node("MatMul", [ad, bd]).output, params_for(-4, 4, "int16"))
    _, fused = sessions(g)
    assert "QBatchMatMul" not in op_types(fused)
