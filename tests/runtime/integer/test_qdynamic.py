"""Dynamic-range (hybrid) kernels: QDynamicGemm / QDynamicConv against a transcription of
TFLite's AsymmetricQuantizeFloats + hybrid FULLY_CONNECTED / CONV_2D."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir import Graph
from edgefw.ir.graph import constant_data
from runtime import InferenceSession
from runtime.providers.cpu.kernels.qdynamic import exact_chunks, quantize_rows
from tests.runtime.integer import tflite_reference as ref
from tests.runtime.integer.qdq_graphs import Q, QDQBuilder, op_types


def test_row_quantization_matches_tflite():
    rng = np.random.default_rng(11)
    rows = np.concatenate([
        rng.normal(0, 2, (20, 33)),
        rng.uniform(0.5, 3, (3, 33)),          # all positive: range extended to 0
        -rng.uniform(0.5, 3, (3, 33)),         # all negative
        np.zeros((1, 33)),                     # degenerate: scale 1, all zeros
        np.full((1, 33), 0.25),
    ]).astype(np.float32)
    centered, scale = quantize_rows(rows, np.dtype(np.float64))
    q, ref_scale, ref_offset = ref.asymmetric_quantize_rows(rows)
    np.testing.assert_array_equal(scale, ref_scale)
    np.testing.assert_array_equal(centered, q.astype(np.int64) - ref_offset[:, None])


def _dynamic_graph(op: str, x_shape, w: np.ndarray, bias, attrs=None, activation=None):
    builder = QDQBuilder("dynamic")
    g = builder.g
    x = g.add_input("x", "float32", ("batch",) + tuple(x_shape[1:]))
    wd, w_q, w_scale = builder.weight(w, 0 if op != "MatMul" else 1)
    inputs = [x, wd] + ([g.add_constant("b", bias)] if bias is not None else [])
    node = g.add_node(op, inputs, attrs, name="layer")
    if activation:
        node.meta["fused_activation"] = activation
    g.set_outputs([node.output])
    return g, w_q, w_scale


@pytest.mark.parametrize("x_shape, op", [((7, 24), "Gemm"), ((2, 3, 24), "MatMul")])
def test_qdynamic_gemm(x_shape, op):
    rng = np.random.default_rng(12)
    x = rng.normal(0, 1, x_shape).astype(np.float32)
    w = rng.normal(0, 0.3, (9, 24)).astype(np.float32)
    b = rng.normal(0, 0.1, 9).astype(np.float32)
    if op == "Gemm":
        g, w_q, w_scale = _dynamic_graph("Gemm", x_shape, w, b, {"transB": 1}, "Relu")
        w_rows = w_q
    else:
        g, w_q, w_scale = _dynamic_graph("MatMul", x_shape, w.T, None)
        w_rows, b = w_q.T, None
    fused = InferenceSession(g, optimization="all")
    assert op_types(fused) == ["QDynamicGemm"]
    got = fused.run(None, {"x": x})[0]
    want = ref.hybrid_fully_connected(x.reshape(-1, 24), w_rows, w_scale, b).reshape(got.shape)
    if op == "Gemm":
        want = np.maximum(want, 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # and close to the float graph with dequantized weights (input quantization error only)
    simulated = InferenceSession(g, optimization="basic").run(None, {"x": x})[0]
    assert np.max(np.abs(got - simulated)) < 0.02 * np.max(np.abs(simulated))


def test_qdynamic_conv_quantizes_each_image_alone():
    rng = np.random.default_rng(13)
    x = rng.normal(0, 1, (3, 2, 8, 8)).astype(np.float32)
    x[1] *= 10  # a different range per image
    w = rng.normal(0, 0.3, (4, 2, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 4).astype(np.float32)
    attrs = {"pads": [1, 1, 1, 1], "strides": [2, 2]}
    g, w_q, w_scale = _dynamic_graph("Conv", x.shape, w, b, attrs)
    fused = InferenceSession(g, optimization="all")
    assert op_types(fused) == ["QDynamicConv"]
    got = fused.run(None, {"x": x})[0]
    want = ref.hybrid_conv(x, w_q, w_scale, b, (2, 2), (1, 1, 1, 1))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_quantize_dynamic_model_runs_hybrid():
    quantize = pytest.importorskip("quantize")
    import edgefw
    from edgefw import models

    edgefw.manual_seed(0)
    graph = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    qgraph = quantize.quantize_dynamic(graph)
    fused = InferenceSession(qgraph, optimization="all")
    assert op_types(fused).count("QDynamicGemm") == 2
    assert "DequantizeLinear" not in op_types(fused)
    x = np.random.default_rng(14).random((16, 1, 28, 28), np.float32)
    got = fused.run(None, {"input": x})[0]
    simulated = InferenceSession(qgraph, optimization="basic").run(None, {"input": x})[0]
    assert np.max(np.abs(got - simulated)) < 0.02 * np.max(np.abs(simulated))
    assert np.array_equal(got.argmax(1), simulated.argmax(1))


def test_static_qdq_input_is_not_taken_by_the_dynamic_pass():
    # A DequantizeLinear'd activation whose layer output is not quantized stays float:
    # the dynamic kernel would quantize already-quantized values a second time.
    builder = QDQBuilder("static")
    xd = builder.quantized_input("x", (2, 4), Q(0.1, 0))
    wd, _, _ = builder.weight(np.ones((3, 4), np.float32), 0)
    y = builder.g.add_node("Gemm", [xd, wd], {"transB": 1}).output
    builder.g.set_outputs([y])
    basic = InferenceSession(builder.g, optimization="basic")
    fused = InferenceSession(builder.g, optimization="all")
    # the weight's DequantizeLinear was folded into a float constant, the rest stays
    assert op_types(fused) == ["QuantizeLinear", "DequantizeLinear", "Gemm"]
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(fused.run(None, {"x": x})[0], basic.run(None, {"x": x})[0])


# ---------------------------------------------------------------- fast paths (float32)
def test_half_away_rounding_near_every_tie():
    # trunc(v + copysign(0.49999997, v)) must equal sign(v) * floor(|v| + 0.5) (float64)
    # for every float32 around the ties k + 0.5 the clamped values can reach
    from runtime.providers.cpu.kernels.qdynamic import _round_into

    ties = np.arange(-128, 128, dtype=np.float64) + 0.5
    bits = ties.astype(np.float32).view(np.int32)[:, None] + np.arange(-64, 65)[None, :]
    around = bits.astype(np.int32).view(np.float32).ravel()
    rng = np.random.default_rng(21)
    values = np.concatenate([around, -around, rng.uniform(-127, 127, 50_000).astype(np.float32),
                             np.float32([0.0, -0.0, 0.49999997, -0.49999997, 1e-30])])
    values = np.clip(values, -128, 127).astype(np.float32)[None, :]
    for size in (1, 3):  # one np.copysign call / the bitwise form for big arrays
        rows = np.repeat(values, size, axis=0)
        out, scratch = np.empty_like(rows), np.empty_like(rows)
        _round_into(rows, np.float32(1.0), np.float32(0.0), out, scratch)
        d = rows.astype(np.float64)
        np.testing.assert_array_equal(out, np.sign(d) * np.floor(np.abs(d) + 0.5))


@pytest.mark.parametrize("batch", [1, 3, 256])
def test_row_quantization_matches_tflite_at_any_batch(batch):
    # batch 1 (scalars), a few rows (Python parameters) and many (vectorized)
    rng = np.random.default_rng(22 + batch)
    rows = rng.normal(0, 1, (batch, 40)) * rng.uniform(1e-3, 1e3, (batch, 1))
    rows[::5] = np.abs(rows[::5])    # all positive: zero point -128
    rows[1::7] = 0.0                 # all-zero rows: scale 1, all zeros
    rows = rows.astype(np.float32)
    centered, scale = quantize_rows(rows, np.dtype(np.float32))
    q, ref_scale, ref_offset = ref.asymmetric_quantize_rows(rows)
    np.testing.assert_array_equal(scale, ref_scale)
    np.testing.assert_array_equal(centered, q.astype(np.int64) - ref_offset[:, None])


def _check_gemm(w_q: np.ndarray, x: np.ndarray, bias=None) -> None:
    """QDynamicGemm with int8 weight rows ``w_q`` against the TFLite transcription."""
    g = Graph()
    xv = g.add_input("x", "float32", ("batch", w_q.shape[1]))
    w_scale = np.linspace(0.001, 0.01, w_q.shape[0]).astype(np.float32)
    inputs = [xv, w_q, w_scale] + ([bias] if bias is not None else [])
    g.set_outputs([g.add_node("QDynamicGemm", inputs, domain="edgefw").output])
    got = InferenceSession(g).run(None, {"x": x})[0]
    want = ref.hybrid_fully_connected(x, w_q, w_scale, bias)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 20, 256])
def test_qdynamic_gemm_exact_paths(batch):
    rng = np.random.default_rng(23)
    x = rng.normal(0, 1, (batch, 1000)).astype(np.float32)
    x[0] = 0.0  # an all-zero row
    # small weights: the zero point rides in the product (few rows) or is subtracted
    small = rng.integers(-20, 21, (7, 1000)).astype(np.int8)
    _check_gemm(small, x, rng.normal(0, 0.1, 7).astype(np.float32))
    # all 127: one chunk is exact (128 * 127000 < 2**24), the folded zero point is not
    _check_gemm(np.full((3, 1000), 127, np.int8), x)


@pytest.mark.parametrize("batch", [1, 5])
def test_qdynamic_gemm_depth_above_the_float32_bound(batch):
    # K = 2500 int8 weights of magnitude 127: the product runs in exact float32 chunks
    rng = np.random.default_rng(24)
    w = np.where(rng.random((4, 2500)) < 0.5, -127, 127).astype(np.int8)
    w[1] = -128
    x = rng.normal(0, 1, (batch, 2500)).astype(np.float32)
    assert len(exact_chunks(np.abs(w.astype(np.int64)))) == 3
    _check_gemm(w, x, np.float32([0.5, -0.5, 0.0, 1.0]))


def test_quantize_dynamic_mlp_matches_tflite_at_batch_256():
    # big enough to be split into row tiles between threads
    quantize = pytest.importorskip("quantize")
    import edgefw
    from edgefw import models

    edgefw.manual_seed(0)
    graph = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    fused = InferenceSession(quantize.quantize_dynamic(graph), optimization="all")
    x = np.random.default_rng(25).random((256, 1, 28, 28), np.float32)
    got = fused.run(None, {"input": x})[0]
    h = x.reshape(256, -1)
    for node in fused.graph.nodes[1:]:
        w_q, w_scale = (np.asarray(constant_data(v)) for v in node.inputs[1:3])
        b = np.asarray(constant_data(node.inputs[3])) if len(node.inputs) > 3 else None
        h = ref.hybrid_fully_connected(h, w_q, w_scale, b).astype(np.float32)
        if node.meta.get("fused_activation"):
            h = np.maximum(h, 0)
    np.testing.assert_allclose(got, h, rtol=1e-5, atol=1e-5)
