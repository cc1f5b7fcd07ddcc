"""float16 and QDQ-quantized graphs (per-tensor and per-axis int8/uint8, int32 bias) export
and run in onnxruntime with the same results as edgefw's runtime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import exporter
from edgefw.ir import Graph
from tests.exporter.onnx_checks import (
    assert_outputs_match,
    assert_shape_inference_agrees,
    run_edgefw,
    run_onnxruntime,
)

rng = np.random.default_rng(11)


def float16_graph() -> Graph:
    """Conv + Relu, pooling, Gemm, LayerNorm and GELU, all in float16."""
    h = np.float16
    g = Graph("half")
    x = g.add_input("input", "float16", ("batch", 3, 6, 6))
    conv = g.add_node("Conv", [x, g.add_constant("conv.weight", rng.normal(0, 0.3, (4, 3, 3, 3))
                                                 .astype(h)),
                               g.add_constant("conv.bias", rng.normal(0, 0.1, 4).astype(h))],
                      {"pads": [1, 1, 1, 1]}, module_path="conv")
    relu = g.add_node("Relu", [conv.output], module_path="act")
    pool = g.add_node("GlobalAveragePool", [relu.output], module_path="pool")
    flat = g.add_node("Flatten", [pool.output], module_path="flatten")
    fc = g.add_node("Gemm", [flat.output, g.add_constant("fc.weight", rng.normal(0, 0.5, (8, 4))
                                                         .astype(h)),
                             g.add_constant("fc.bias", rng.normal(0, 0.1, 8).astype(h))],
                    {"transB": 1}, module_path="fc")
    norm = g.add_node("LayerNormalization", [fc.output,
                                             g.add_constant("norm.weight", np.ones(8, h)),
                                             g.add_constant("norm.bias", np.zeros(8, h))],
                      module_path="norm")
    g.set_outputs([g.add_node("Gelu", [norm.output], module_path="gelu").output])
    return g


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_float16_graph_runs_in_onnxruntime(opset):
    graph = float16_graph()
    model = exporter.to_onnx(graph, opset=opset)
    assert {t.data_type for t in model.graph.initializer} == {onnx.TensorProto.FLOAT16} | (
        {onnx.TensorProto.FLOAT} if opset < 17 else set())  # LayerNorm's float32 statistics
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert_shape_inference_agrees(model)
    x = rng.standard_normal((5, 3, 6, 6)).astype(np.float16)
    got = run_onnxruntime(model, {"input": x})
    want = run_edgefw(graph, {"input": x})
    assert got[0].dtype == np.float16
    # Both compute in float16 (or round to it at the end): about two float16 ulps apart.
    assert_outputs_match(got, want, atol=2e-3)


def qdq_graph(activation_dtype: str) -> Graph:
    """QDQ Conv (per-axis int8 weight, int32 bias) -> Relu -> QDQ -> Gemm (per-tensor int8)."""
    act = np.dtype(activation_dtype)
    zero = np.array(128 if act == np.uint8 else 3, act)
    g = Graph("qdq")
    x = g.add_input("input", "float32", ("batch", 2, 6, 6))
    x_scale = np.array(0.03, np.float32)

    def qdq(value, scale, name):
        q = g.add_node("QuantizeLinear", [value, g.add_constant(f"{name}.scale", scale),
                                          g.add_constant(f"{name}.zero_point", zero)],
                       module_path=name)
        return g.add_node("DequantizeLinear", [q.output, f"{name}.scale", f"{name}.zero_point"],
                          module_path=name).output

    xq = qdq(x, x_scale, "input_quant")
    w_scale = np.array([0.01, 0.02, 0.015, 0.012], np.float32)
    w = g.add_node("DequantizeLinear", [
        g.add_constant("conv.weight", rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8)),
        g.add_constant("conv.weight.scale", w_scale),
        g.add_constant("conv.weight.zero_point", np.zeros(4, np.int8))], {"axis": 0},
        module_path="conv").output
    b = g.add_node("DequantizeLinear", [
        g.add_constant("conv.bias", rng.integers(-400, 400, 4).astype(np.int32)),
        g.add_constant("conv.bias.scale", x_scale * w_scale)], {"axis": 0},
        module_path="conv").output
    conv = g.add_node("Conv", [xq, w, b], {"pads": [1, 1, 1, 1], "strides": [2, 2]},
                      module_path="conv")
    relu = g.add_node("Relu", [conv.output], module_path="act")
    yq = qdq(relu.output, np.array(0.02, np.float32), "act_quant")
    flat = g.add_node("Flatten", [yq], module_path="flatten")
    fc_w = g.add_node("DequantizeLinear", [
        g.add_constant("fc.weight", rng.integers(-127, 128, (5, 36)).astype(np.int8)),
        g.add_constant("fc.weight.scale", np.array(0.004, np.float32)),
        g.add_constant("fc.weight.zero_point", np.array(0, np.int8))], module_path="fc").output
    g.set_outputs([g.add_node("Gemm", [flat.output, fc_w], {"transB": 1},
                              module_path="fc").output])
    return g


@pytest.mark.parametrize("activation_dtype", ["uint8", "int8"])
@pytest.mark.parametrize("opset", [13, 17, 21])
def test_qdq_graph_runs_in_onnxruntime(activation_dtype, opset):
    graph = qdq_graph(activation_dtype)
    model = exporter.to_onnx(graph, opset=opset)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") == 2 and ops.count("DequantizeLinear") == 5
    types = {t.name: t.data_type for t in model.graph.initializer}
    assert types["conv.weight"] == onnx.TensorProto.INT8
    assert types["conv.bias"] == onnx.TensorProto.INT32
    assert_shape_inference_agrees(model)
    x = rng.uniform(-2, 2, (3, 2, 6, 6)).astype(np.float32)
    want = run_edgefw(graph, {"input": x}, optimization="basic")  # simulated QDQ
    # As written (no graph rewrites), onnxruntime computes exactly what the file says.
    assert_outputs_match(run_onnxruntime(model, {"input": x}, optimized=False), want, atol=1e-5)
    # Optimized, onnxruntime fuses the QDQ groups into integer kernels: one step of the
    # activation quantization (0.02) times the Gemm weights' sum stays the bound.
    fused = run_onnxruntime(model, {"input": x})[0]
    assert np.abs(fused - want[0]).max() <= 0.02 * 0.004 * 127 * 36
