"""QGemm through the whole path (Gemm and MatMul QDQ groups -> FuseQDQPass -> kernel):
against TFLite's reference FullyConnected exact for 16x8 and within one step for int8/uint8
(the requantization folded into the float32 GEMM, rarely off: ``test_chunk_requantizer``),
within one step of the simulated QDQ float graph."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.providers.cpu import requantize
from tests.runtime.integer import tflite_reference as ref
from tests.runtime.integer.qdq_graphs import (
    QDQBuilder,
    multipliers,
    op_types,
    params_for,
    sessions,
)

CASES = {
    # name: (op, x shape, K, N, transB, weight axis, bias kind, activation, dtype)
    "gemm_transB_per_channel": ("Gemm", (6, 20), 20, 7, 1, 0, "int32", None, "int8"),
    "gemm_weight_KN_per_channel": ("Gemm", (6, 20), 20, 7, 0, 1, "int32", "Relu", "int8"),
    "gemm_per_tensor": ("Gemm", (5, 12), 12, 4, 1, None, "int32", None, "int8"),
    "gemm_float_bias_row": ("Gemm", (5, 12), 12, 4, 1, 0, "float_1xN", None, "int8"),
    "gemm_no_bias_uint8": ("Gemm", (5, 12), 12, 4, 1, 0, None, "relu_node", "uint8"),
    "matmul_2d": ("MatMul", (6, 10), 10, 5, 0, 1, None, None, "int8"),
    "matmul_3d_input": ("MatMul", (2, 3, 10), 10, 5, 0, 1, None, ("Clip", 0.0, 6.0), "int8"),
    "gemm_int16x8": ("Gemm", (6, 20), 20, 7, 1, 0, "int32", None, "int16"),
    "gemm_batch_fast_path": ("Gemm", (400, 64), 64, 96, 1, 0, "int32", None, "int8"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_qgemm_matches_tflite_reference_and_simulated_qdq(case, monkeypatch):
    if "fast_path" in case:  # big batches take the float fast path: force it at test size
        monkeypatch.setattr(requantize, "FAST_PATH_MIN_ELEMENTS", 1)
    op, x_shape, k, n, trans_b, axis, bias_kind, activation, dtype = CASES[case]
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    x = rng.uniform(-1.5, 1.0, x_shape).astype(np.float32)
    if dtype == "uint8":
        x = np.abs(x)
    w_nk = rng.normal(0, 0.4, (n, k)).astype(np.float32)
    b = rng.normal(0, 0.3, n).astype(np.float32)
    y_float = x @ w_nk.T + (b if bias_kind else 0)
    xq = params_for(float(x.min()), float(x.max()), dtype)
    lo = 0.0 if activation else float(y_float.min())
    yq = params_for(lo, float(y_float.max()), dtype)

    builder = QDQBuilder(case)
    g = builder.g
    xd = builder.quantized_input("x", ("batch",) + x_shape[1:], xq)
    w_stored = w_nk if (op == "Gemm" and trans_b) else w_nk.T
    wd, w_q, w_scale = builder.weight(w_stored, axis)
    inputs = [xd, wd]
    w_scale_n = np.broadcast_to(w_scale.reshape(-1), (n,))
    b_q = None
    if bias_kind == "int32":
        bd, b_q = builder.bias(b, np.float32(xq.scale) * w_scale_n)
        inputs.append(bd)
    elif bias_kind == "float_1xN":
        inputs.append(g.add_constant("c", b.reshape(1, n)))
        b_q = np.rint(b.astype(np.float64) / (xq.scale * w_scale_n.astype(np.float64)))
    attrs = {"transB": trans_b} if op == "Gemm" else None
    node = g.add_node(op, inputs, attrs, name="fc")
    y = node.output
    if activation == "relu_node":
        y = g.add_node("Relu", [y]).output
    elif activation is not None:
        node.meta["fused_activation"] = activation
    builder.quantized_output(y, yq)

    basic, fused = sessions(g)
    assert "QGemm" in op_types(fused) and op not in op_types(fused)
    simulated = basic.run(None, {"x": x})[0]
    got = fused.run(None, {"x": x})[0]

    w_rows = w_q if (op == "Gemm" and trans_b) else w_q.T
    mult, shift = multipliers(xq.scale, w_scale_n, yq.scale)
    mark = {None: None, "Relu": "Relu", "relu_node": "Relu"}.get(activation, "Relu6") \
        if not isinstance(activation, tuple) else "Relu6"
    clamp = ref.act_range(dtype, yq.zero_point, yq.scale, mark)
    x_int = xq.quantize(x).reshape(-1, k)
    want = ref.fully_connected(x_int, w_rows, b_q, xq.zero_point, mult, shift, yq.zero_point,
                               clamp[0], clamp[1], wide=dtype == "int16")
    want = want.reshape(got.shape)
    if dtype == "int16":
        np.testing.assert_array_equal(got, want.astype(dtype))
    else:
        steps = np.abs(got.astype(np.int64) - want)  # a single one can differ at these sizes
        assert steps.max() <= 1 and np.count_nonzero(steps) <= 1 + 1e-3 * steps.size, (
            steps.max(), np.count_nonzero(steps), steps.size)
    assert np.max(np.abs(got.astype(np.int64) - simulated.astype(np.int64))) <= 1


def test_batch_minor_input_gives_the_same_integers():
    """An input stored batch-minor (a Flatten of a conv's output) takes the transposed
    product: same integers as a row-major one."""
    op, x_shape, k, n, trans_b, axis, *_ = CASES["gemm_batch_fast_path"]
    rng = np.random.default_rng(4)
    builder = QDQBuilder("batch_minor")
    xq, yq = params_for(-1.5, 1.0), params_for(-4.0, 4.0)
    xd = builder.quantized_input("x", ("batch", k), xq)
    wd, _, _ = builder.weight(rng.normal(0, 0.4, (n, k)).astype(np.float32), axis)
    y = builder.g.add_node(op, [xd, wd], {"transB": trans_b}).output
    builder.quantized_output(y, yq)
    _, fused = sessions(builder.g)
    x = rng.uniform(-1.5, 1.0, x_shape).astype(np.float32)
    row_major = fused.run(None, {"x": x})[0]
    np.testing.assert_array_equal(fused.run(None, {"x": np.asfortranarray(x)})[0], row_major)
