"""MarkSequentialSumsPass: TFLite's summation order only in quantized graphs, and both
LayerNorm kernels agree with onnxruntime."""

from __future__ import annotations

import numpy as np

from edgefw.ir import Graph
from edgefw.ir.passes import MarkSequentialSumsPass
from runtime import InferenceSession


def _layer_norm_graph(quantized: bool) -> tuple[Graph, object]:
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 16, 64))
    rng = np.random.default_rng(3)
    ln = g.add_node("LayerNormalization", [x, rng.standard_normal(64).astype(np.float32),
                                           rng.standard_normal(64).astype(np.float32)],
                    {"axis": -1, "epsilon": 1e-5})
    out = ln.output
    if quantized:
        scale, zero = np.float32(0.05), np.int8(0)
        q = g.add_node("QuantizeLinear", [out, scale, zero]).output
        out = g.add_node("DequantizeLinear", [q, scale, zero]).output
    g.set_outputs([out])
    return g, ln


def test_float_graphs_are_left_alone():
    g, ln = _layer_norm_graph(quantized=False)
    assert not MarkSequentialSumsPass().run(g).changed
    assert "sequential_sums" not in ln.meta


def test_quantized_graphs_are_marked_once():
    g, ln = _layer_norm_graph(quantized=True)
    assert MarkSequentialSumsPass().run(g).changed and ln.meta["sequential_sums"]
    assert not MarkSequentialSumsPass().run(g).changed


def test_both_layer_norm_orders_match_the_definition():
    x = (np.random.default_rng(5).standard_normal((4, 16, 64)) * 3 + 5).astype(np.float32)
    g, ln = _layer_norm_graph(quantized=False)
    scale, bias = ln.inputs[1].data, ln.inputs[2].data
    x64 = x.astype(np.float64)
    mean = x64.mean(-1, keepdims=True)
    ref = (x64 - mean) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5) * scale + bias
    fast = InferenceSession(g).run(None, {"x": x})[0]
    g.nodes[0].meta["sequential_sums"] = True
    ordered = InferenceSession(g, optimization="none").run(None, {"x": x})[0]
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ordered, ref, rtol=1e-5, atol=1e-5)
