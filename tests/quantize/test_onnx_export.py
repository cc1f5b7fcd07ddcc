"""Quantized graphs exported to ONNX: onnxruntime runs them and agrees with edgefw's runtime
within one quantization step, and the int8 file is about a quarter of the float one."""

from __future__ import annotations

import numpy as np
import pytest

import quantize
from tests.quantize.graphs import conv_net, mlp_graph, run

onnx_export = pytest.importorskip("exporter.onnx")
ort = pytest.importorskip("onnxruntime")

X = np.random.default_rng(0).random((32, 1, 8, 8)).astype(np.float32)


def onnxruntime_output(graph, x: np.ndarray, optimized: bool) -> np.ndarray:
    """onnxruntime's output: with its graph optimizations (which swap QDQ groups for its
    own integer kernels) or with basic ones only (the plain QDQ semantics)."""
    model = onnx_export.to_onnx(graph, opset=21, optimize="none")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized \
        else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {graph.inputs[0].name: x})[0]


@pytest.mark.parametrize("mode", ["int8", "int8-per-tensor", "uint8", "16x8", "dynamic"])
def test_onnxruntime_agrees(mode):
    g = conv_net()
    if mode == "dynamic":
        q = quantize.quantize_dynamic(g)
    elif mode == "16x8":
        q = quantize.quantize_16x8(g, X)
    else:
        q = quantize.quantize_static(g, X, per_channel=mode != "int8-per-tensor",
                                     activation_dtype="uint8" if mode == "uint8" else "int8")
    ours = run(q, X)[0]
    # The QDQ semantics: the same numbers.
    np.testing.assert_allclose(onnxruntime_output(q, X, optimized=False), ours, atol=1e-6)
    if mode in ("int8", "int8-per-tensor", "uint8"):
        # onnxruntime's integer kernels: within one quantization step of the output.
        step = float(q.outputs[0].producer.inputs[1].data)
        theirs = onnxruntime_output(q, X, optimized=True)
        assert np.abs(theirs - ours).max() <= step * 1.001
        assert np.mean(theirs == ours) > 0.9


def test_int8_onnx_file_is_about_a_quarter_of_float():
    r = np.random.default_rng(1)
    # the MNIST MLP's shapes (784 -> 128 -> 10); onnxruntime's tool reaches 0.26x
    g = mlp_graph([(r.normal(0, 0.05, (128, 784)), r.normal(0, 0.1, 128)),
                   (r.normal(0, 0.1, (10, 128)), r.normal(0, 0.1, 10))])
    x = r.random((16, 784)).astype(np.float32)
    size = {name: len(onnx_export.to_onnx(graph, opset=17, optimize="none")
                      .SerializeToString())
            for name, graph in [("float", g), ("int8", quantize.quantize_static(g, x)),
                                ("float16", quantize.convert_float16(g))]}
    assert size["int8"] <= 0.27 * size["float"]
    assert size["float16"] <= 0.52 * size["float"]
