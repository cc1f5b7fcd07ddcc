"""QuantizeLinear / DequantizeLinear with constant per-tensor parameters (a QDQ graph's
input and output): the fast kernels against ONNX's definition and onnxruntime."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from edgefw.ir import Graph
from exporter.onnx import to_onnx
from runtime import InferenceSession


def _graph(dtype: str, scale: float, zero: int, shape) -> Graph:
    g = Graph()
    x = g.add_input("x", "float32", shape)
    q = g.add_node("QuantizeLinear", [x, np.float32(scale), np.array(zero, dtype)]).output
    d = g.add_node("DequantizeLinear", [q, np.float32(scale), np.array(zero, dtype)]).output
    g.set_outputs([q, d])
    return g


@pytest.mark.parametrize("dtype, zero", [("int8", -3), ("uint8", 128), ("int16", 7),
                                         ("uint16", 0)])
@pytest.mark.parametrize("shape", [(1, 1, 28, 28), (64, 1, 28, 28), ()])
def test_constant_per_tensor_matches_definition_and_onnxruntime(dtype, zero, shape, tmp_path):
    rng = np.random.default_rng(4)
    scale = 0.05
    info = np.iinfo(dtype)
    span = (info.max - info.min) * scale
    x = rng.uniform(-0.7 * span, 0.7 * span, shape).astype(np.float32)
    if x.ndim:
        x.reshape(-1)[:6] = np.array([0.025, -0.025, 0.075, 1e9, -1e9, 0.0], np.float32)  # ties
    g = _graph(dtype, scale, zero, ("batch", 1, 28, 28) if shape else ())
    session = InferenceSession(g, optimization="none")
    q, d = session.run(None, {"x": x})
    want = np.clip(np.rint(x / np.float32(scale)) + zero, info.min, info.max).astype(dtype)
    np.testing.assert_array_equal(q, want)
    np.testing.assert_array_equal(d, (want.astype(np.float32) - zero) * np.float32(scale))
    path = tmp_path / "qdq.onnx"
    to_onnx(g, path, opset=21 if "16" in dtype else 17)  # 16-bit Q/DQ: opset 21
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rq, rd = ref.run(None, {ref.get_inputs()[0].name: x})
    np.testing.assert_array_equal(q, rq)
    np.testing.assert_allclose(d, rd, rtol=0, atol=0)
