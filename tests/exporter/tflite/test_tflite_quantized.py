"""Quantized exports: full-integer int8 (per-channel weights, int32 bias, int8 I/O),
float16 weights and dynamic-range (hybrid) models, checked in LiteRT's interpreter against
edgefw's runtime running the same QDQ graph."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import models
from edgefw.ir import Graph
from edgefw.ir.passes import optimize
from exporter.tflite import read_metadata, to_tflite
from tests.exporter.tflite.qdq_graphs import (
    convert_float16_weights,
    quantize_dynamic_qdq,
    quantize_static_qdq,
)
from tests.exporter.tflite.test_tflite_models import build
from tests.exporter.tflite.tflite_checks import (
    interpreter,
    lsb_error,
    op_names,
    output_scale,
    run_edgefw,
    run_tflite,
)

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
RNG = np.random.default_rng(0)


def rand(*shape: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return RNG.uniform(low, high, shape).astype(np.float32)


def int8_kernels(data: bytes) -> list[str]:
    """The compute ops that run on int8 data (their first input is an int8 tensor)."""
    interp = interpreter(data, "BUILTIN_WITHOUT_DEFAULT_DELEGATES")
    dtypes = {d["index"]: d["dtype"] for d in interp.get_tensor_details()}
    return sorted(d["op_name"] for d in interp._get_ops_details()
                  if len(d["inputs"]) and dtypes.get(d["inputs"][0]) == np.int8
                  and d["op_name"] not in ("QUANTIZE", "DEQUANTIZE"))


def check_int8(graph: Graph, feeds: dict, *, max_lsb: float = 1.0, **export) -> bytes:
    """The int8 file's outputs are within ``max_lsb`` output steps of the runtime's."""
    data = to_tflite(graph, optimize="none", **export)
    for got, want, i in zip(run_tflite(data, feeds), run_edgefw(graph, feeds), range(9)):
        assert got.shape == want.shape
        assert lsb_error(got, want, output_scale(graph, i)) <= max_lsb + 1e-4
    return data


# ---------------------------------------------------------------------- int8 ops
def conv_net(depthwise: bool = False) -> Graph:
    g = Graph("convs")
    x = g.add_input("input", "float32", ("batch", 4, 8, 8))
    w = rand(4, 1, 3, 3) if depthwise else rand(6, 4, 3, 3)
    conv = g.add_node("Conv", [x, w, rand(w.shape[0])],
                      {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "group": 4 if depthwise
                       else 1}, name="conv", meta={"fused_activation": ("Clip", 0.0, 6.0)})
    pool = g.add_node("MaxPool", [conv.output], {"kernel_shape": [2, 2], "strides": [2, 2]})
    avg = g.add_node("GlobalAveragePool", [pool.output])
    g.set_outputs([g.add_node("Flatten", [avg.output]).output])
    return g


@pytest.mark.parametrize("depthwise", [False, True])
@pytest.mark.parametrize("per_channel", [True, False])
def test_int8_conv_pool(depthwise, per_channel):
    x = rand(16, 4, 8, 8, low=0, high=1)
    q = quantize_static_qdq(conv_net(depthwise), {"input": x}, per_channel=per_channel)
    data = check_int8(q, {"input": x[:5]})
    conv = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    assert {conv, "MAX_POOL_2D", "MEAN"} <= set(int8_kernels(data))
    sub = schema.ModelT.InitFromPackedBuf(data, 0).subgraphs[0]
    op = next(o for o in sub.operators if len(o.inputs) == 3)
    x_t, weights, bias = (sub.tensors[i] for i in op.inputs)
    channels = (4 if depthwise else 6) if per_channel else 1
    assert weights.type == schema.TensorType.INT8
    assert len(weights.quantization.scale) == channels
    assert weights.quantization.quantizedDimension == (3 if depthwise and per_channel else 0)
    assert not np.any(weights.quantization.zeroPoint)
    # int32 bias at input scale x weight scale, as TFLite's kernels require
    assert bias.type == schema.TensorType.INT32
    np.testing.assert_allclose(bias.quantization.scale,
                               x_t.quantization.scale[0] * weights.quantization.scale,
                               rtol=1e-6)


@pytest.mark.parametrize("op,attrs,ops", [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 0, 0]},
     ["PADV2", "MAX_POOL_2D"]),  # the int8 fill value carries the tensor's quantization
    ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
     ["PAD", "AVERAGE_POOL_2D"]),
    ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, ["AVERAGE_POOL_2D"]),
])
def test_int8_pooling_with_padding(op, attrs, ops):
    g = Graph("pool")
    x = g.add_input("input", "float32", ("batch", 3, 9, 9))
    g.set_outputs([g.add_node(op, [x], attrs).output])
    xs = rand(8, 3, 9, 9)
    data = check_int8(quantize_static_qdq(g, {"input": xs}), {"input": xs})
    assert int8_kernels(data) == sorted(ops)


def test_int8_fully_connected_and_matmul():
    g = Graph("fc")
    x = g.add_input("input", "float32", ("batch", 6))
    h = g.add_node("Gemm", [x, rand(5, 6), rand(5)], {"transB": 1}, name="fc",
                   meta={"fused_activation": "Relu"}).output
    y = g.add_node("MatMul", [h, rand(5, 3)], name="proj").output
    g.set_outputs([y])
    x_data = rand(32, 6)
    q = quantize_static_qdq(g, {"input": x_data})
    data = check_int8(q, {"input": x_data[:7]})
    assert int8_kernels(data) == ["FULLY_CONNECTED", "FULLY_CONNECTED"]


def test_int8_batch_matmul_add_and_concat_requantize():
    g = Graph("mix")
    a = g.add_input("a", "float32", ("batch", 3, 4))
    b = g.add_input("b", "float32", ("batch", 4, 5))
    m = g.add_node("MatMul", [a, b]).output
    s = g.add_node("Add", [m, m]).output
    g.set_outputs([g.add_node("Concat", [m, s], {"axis": 2}).output])
    feeds = {"a": rand(8, 3, 4), "b": rand(8, 4, 5)}
    q = quantize_static_qdq(g, feeds)
    data = check_int8(q, feeds)
    kernels = int8_kernels(data)
    assert {"BATCH_MATMUL", "ADD", "CONCATENATION"} <= set(kernels)


def test_softmax_int8_kernel_only_with_its_fixed_output_scale():
    g = Graph("softmax")
    x = g.add_input("input", "float32", ("batch", 10))
    g.set_outputs([g.add_node("Softmax", [x]).output])
    xs = rand(16, 10, low=-3, high=3)
    q = quantize_static_qdq(g, {"input": xs})
    data = check_int8(q, {"input": xs})
    assert "SOFTMAX" not in int8_kernels(data)  # the graph's scale is not 1/256: float
    # With TFLite's own output parameters the int8 kernel is used.
    out_q = q.outputs[0].producer.inputs[0].producer
    for node in (out_q, q.outputs[0].producer):
        node.inputs[1] = q.add_constant("softmax_scale", np.float32(1 / 256))
        node.inputs[2] = q.add_constant("softmax_zp", np.int8(-128))
    data = check_int8(q, {"input": xs})
    assert "SOFTMAX" in int8_kernels(data)


@pytest.mark.parametrize("name", ["mlp", "lenet", "mobilenet"])
def test_int8_models_within_one_lsb(name):
    graph = optimize(edgefw.trace(build(name), np.zeros((1, 1, 28, 28), np.float32)), "all")
    x = np.random.default_rng(1).random((32, 1, 28, 28), np.float32)
    q = quantize_static_qdq(graph, {"input": x})
    data = check_int8(q, {"input": x[:16]})
    assert "FULLY_CONNECTED" in int8_kernels(data)
    for io_data in (to_tflite(q, int8_io=True),):
        interp = interpreter(io_data)
        (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
        assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
        assert "QUANTIZE" not in op_names(io_data) and "DEQUANTIZE" not in op_names(io_data)
        (got,) = run_tflite(io_data, {"input": x[:16]})
        (want,) = run_edgefw(q, {"input": x[:16]})
        assert lsb_error(got, want, output_scale(q)) <= 1.0 + 1e-4


def test_int8_transformer_within_one_lsb():
    graph = optimize(edgefw.trace(build("transformer"), np.zeros((1, 16, 32), np.float32)), "all")
    x = np.random.default_rng(1).random((16, 16, 32), np.float32)
    q = quantize_static_qdq(graph, {"input": x})
    data = to_tflite(q)
    scale = output_scale(q)
    for seed in range(4):
        xs = np.random.default_rng(100 + seed).random((16, 16, 32), np.float32)
        (want,) = run_edgefw(q, {"input": xs})
        # TFLite's reference kernels: the runtime's integer kernels (FULLY_CONNECTED,
        # BATCH_MATMUL, ADD) are bit-exact with them and its LayerNorm sums in their order.
        (got,) = run_tflite(data, {"input": xs}, resolver="BUILTIN_REF")
        assert lsb_error(got, want, scale) <= 1.0 + 1e-4
        assert np.mean(np.abs(got - want) > scale / 2) < 0.002
        # XNNPACK (the default resolver) runs the float LayerNorm, softmax and QUANTIZE
        # with its own SIMD arithmetic: a flipped step can meet another downstream.
        (got,) = run_tflite(data, {"input": xs})
        assert lsb_error(got, want, scale) <= 2.0 + 1e-4
        assert np.mean(np.abs(got - want) > scale / 2) < 0.01
        # "basic": float arithmetic between the Q/DQ pairs, not TFLite's fixed point.
        (simulated,) = run_edgefw(q, {"input": xs}, "basic")
        assert lsb_error(got, simulated, scale) <= 2.0 + 1e-4
        assert np.mean(np.abs(got - simulated) > scale / 2) < 0.08
    assert {"FULLY_CONNECTED", "BATCH_MATMUL", "GELU"} <= set(int8_kernels(data))


def test_real_quantizer_through_to_tflite():
    quantize = pytest.importorskip("quantize")
    net = build("lenet")
    graph = edgefw.trace(net, np.zeros((1, 1, 28, 28), np.float32))
    calibration = np.random.default_rng(2).random((32, 1, 28, 28), np.float32)
    data = to_tflite(graph, quantize="int8", calibration_data=calibration, int8_io=True)
    q = quantize.quantize_static(graph, calibration, per_channel=True, activation_dtype="int8")
    x = calibration[:8]
    (got,) = run_tflite(data, {"input": x})
    (want,) = run_edgefw(q, {"input": x})
    assert lsb_error(got, want, output_scale(q)) <= 1.0 + 1e-4
    meta = read_metadata(data)
    assert meta["quantization"] == "int8" and meta["int8_io"] is True
    assert meta["inputs"][0]["dtype"] == "int8" and "scale" in meta["inputs"][0]


def test_mlp_int8_file_size():
    net = build("mlp")
    graph = optimize(edgefw.trace(net, np.zeros((1, 1, 28, 28), np.float32)), "all")
    q = quantize_static_qdq(graph, {"input": np.random.default_rng(0).random((8, 1, 28, 28),
                                                                             np.float32)})
    ratio = len(to_tflite(q)) / len(to_tflite(graph))
    assert ratio <= 0.27, ratio


# ---------------------------------------------------------------------- float16, dynamic
@pytest.mark.parametrize("name", ["lenet", "transformer"])
def test_float16_weights(name):
    shape = (1, *models.INPUT_SHAPES[name])
    graph = optimize(edgefw.trace(build(name), np.zeros(shape, np.float32)), "all")
    half = convert_float16_weights(graph)
    data = to_tflite(half)
    x = np.random.default_rng(0).random((3, *shape[1:]), np.float32)
    (got,) = run_tflite(data, {"input": x})
    (want,) = run_edgefw(half, {"input": x})
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert len(data) < 0.65 * len(to_tflite(graph))
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    tensors = model.subgraphs[0].tensors
    halves = [t for t in tensors if t.type == schema.TensorType.FLOAT16]
    assert halves and op_names(data).count("DEQUANTIZE") == len(halves)


def test_dynamic_range_fully_connected_error_bound():
    """Hybrid FULLY_CONNECTED quantizes each input row to int8 on the fly (step s = range
    / 255): its error against float activations is at most s/2 * sum|w| per output."""
    g = Graph("hybrid")
    x = g.add_input("input", "float32", ("batch", 64))
    g.set_outputs([g.add_node("Gemm", [x, rand(16, 64), rand(16)], {"transB": 1}).output])
    q = quantize_dynamic_qdq(g)
    data = to_tflite(q)
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    (fc,) = model.subgraphs[0].operators
    weights = model.subgraphs[0].tensors[fc.inputs[1]]
    assert weights.type == schema.TensorType.INT8 and len(weights.quantization.scale) == 16
    assert fc.builtinOptions.asymmetricQuantizeInputs
    assert {c.version for c in model.operatorCodes} == {12}  # hybrid, per-channel
    xs = rand(10, 64, low=-3, high=3)
    (got,) = run_tflite(data, {"input": xs})
    (want,) = run_edgefw(q, {"input": xs})
    steps = (np.maximum(xs.max(1), 0) - np.minimum(xs.min(1), 0)) / 255
    w = run_edgefw_weight(q)
    bound = steps[:, None] / 2 * np.abs(w).sum(1)[None, :] * 1.01 + 1e-5
    assert np.all(np.abs(got - want) <= bound)
    assert np.abs(got - want).max() > 0  # it really ran the int8 (hybrid) kernel


def run_edgefw_weight(graph: Graph) -> np.ndarray:
    """The dequantized weight matrix (N, K) of the single Gemm in ``graph``."""
    from exporter.tflite.quantized import weight_source

    gemm = next(n for n in graph.nodes if n.op_type == "Gemm")
    return weight_source(gemm.inputs[1]).as_float()


@pytest.mark.parametrize("name", ["mlp", "lenet"])
def test_dynamic_range_models(name):
    graph = optimize(edgefw.trace(build(name), np.zeros((1, 1, 28, 28), np.float32)), "all")
    q = quantize_dynamic_qdq(graph)
    data = to_tflite(q)
    assert len(data) < 0.3 * len(to_tflite(graph))
    x = np.random.default_rng(0).random((20, 1, 28, 28), np.float32)
    (got,) = run_tflite(data, {"input": x})
    (want,) = run_edgefw(q, {"input": x})
    spread = want.max() - want.min()
    assert np.abs(got - want).max() < 0.02 * spread
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.95


@pytest.mark.parametrize("mode", ["uint8", "per_tensor", "16x8"])
def test_real_quantizer_variants(mode):
    """uint8 activations are written as int8 (zero point - 128: the same real values);
    int16 activations (16x8) run their ops in float between QUANTIZE/DEQUANTIZE."""
    quantize = pytest.importorskip("quantize")
    graph = edgefw.trace(build("lenet"), np.zeros((1, 1, 28, 28), np.float32))
    x = np.random.default_rng(3).random((16, 1, 28, 28), np.float32)
    if mode == "16x8":
        q = quantize.quantize_16x8(graph, x)
    else:
        q = quantize.quantize_static(graph, x, per_channel=mode != "per_tensor",
                                     activation_dtype="uint8" if mode == "uint8" else "int8")
    data = to_tflite(q)
    (got,) = run_tflite(data, {"input": x})
    (want,) = run_edgefw(q, {"input": x}, "basic")  # the QDQ graph's own arithmetic
    assert lsb_error(got, want, output_scale(q)) <= 1.01  # int16 steps are ~1e-5: float32 noise
    kernels = int8_kernels(data)
    assert ("CONV_2D" in kernels) == (mode != "16x8")
