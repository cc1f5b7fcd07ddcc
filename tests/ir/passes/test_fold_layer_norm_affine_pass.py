"""FoldLayerNormAffinePass: LayerNorm scale/bias moved into the next Dense or Gemm give the
same outputs (against onnxruntime on the unfolded graph) and are skipped when unsafe."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import edgefw
from edgefw import models
from edgefw.ir import Graph
from edgefw.ir.passes import FoldLayerNormAffinePass
from exporter.onnx import to_onnx
from runtime import InferenceSession

rng = np.random.default_rng(11)


def _ln_gemm(trans_b: int, second_reader: bool = False) -> Graph:
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 32))
    ln = g.add_node("LayerNormalization", [x, rng.standard_normal(32).astype(np.float32),
                                           rng.standard_normal(32).astype(np.float32)],
                    {"axis": -1}, name="norm")
    w = rng.standard_normal((10, 32) if trans_b else (32, 10)).astype(np.float32)
    fc = g.add_node("Gemm", [ln.output, w, rng.standard_normal(10).astype(np.float32)],
                    {"transB": trans_b}, name="fc")
    outputs = [fc.output]
    if second_reader:
        outputs.append(g.add_node("Relu", [ln.output], name="other").output)
    g.set_outputs(outputs)
    return g


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_fold_keeps_outputs(trans_b):
    g = _ln_gemm(trans_b)
    x = rng.standard_normal((5, 32)).astype(np.float32)
    expected = InferenceSession(g.copy(), optimization="none").run(None, {"x": x})[0]
    folded = g.copy()
    assert FoldLayerNormAffinePass().run(folded).changed
    ln = next(n for n in folded.nodes if n.op_type == "LayerNormalization")
    assert len(ln.inputs) == 2 and np.all(ln.inputs[1].data == 1)
    got = InferenceSession(folded, optimization="none").run(None, {"x": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_second_reader_blocks_the_fold():
    g = _ln_gemm(1, second_reader=True)
    assert not FoldLayerNormAffinePass().run(g).changed


def test_transformer_session_matches_onnxruntime(tmp_path):
    edgefw.manual_seed(0)
    model = models.build("transformer", dim=32, heads=4, hidden=64).eval()
    for norm in (model.norm1, model.norm2):  # trained-looking affine parameters
        norm.weight.data[...] = rng.uniform(0.5, 1.5, norm.weight.data.shape)
        norm.bias.data[...] = rng.standard_normal(norm.bias.data.shape) * 0.1
    x = rng.standard_normal((2, 16, 32)).astype(np.float32)
    path = tmp_path / "block.onnx"
    to_onnx(model, path, example_inputs=edgefw.tensor(x[:1]))
    session = InferenceSession(str(path))
    lns = [n for n in session.graph.nodes if n.op_type == "LayerNormalization"]
    assert lns and all(len(n.inputs) == 2 for n in lns)  # both folded into their Dense
    name = session.get_inputs()[0].name
    ours = session.run(None, {name: x})[0]
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {name: x})[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=2e-5)
