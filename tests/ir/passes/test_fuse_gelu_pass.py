"""FuseGeluPass: the GELU decompositions exporters write -> one Gelu; look-alikes stay."""

from __future__ import annotations

import doctest
import math

import numpy as np
import onnxruntime as ort
import pytest

import runtime
from edgefw.ir import Graph
from edgefw.ir.passes import FuseGeluPass, fuse_gelu_pass, optimize
from exporter.onnx import to_onnx
from tests.ir.passes.graph_testing import op_types, run_onnxruntime, run_runtime

F32 = np.float32
SQRT2 = math.sqrt(2.0)


def _erf_core(g: Graph, x, form: str):
    if form == "div":
        scaled = g.add_node("Div", [x, F32(SQRT2)]).output
    else:
        scaled = g.add_node("Mul", [F32(1 / SQRT2), x]).output
    return g.add_node("Erf", [scaled]).output


def _tanh_core(g: Graph, x, cube: str):
    if cube == "pow":
        x3 = g.add_node("Pow", [x, F32(3.0)]).output
    else:
        x3 = g.add_node("Mul", [x, g.add_node("Mul", [x, x]).output]).output
    cubic = g.add_node("Mul", [F32(0.044715), x3]).output
    inner = g.add_node("Add", [x, cubic]).output
    scaled = g.add_node("Mul", [inner, F32(math.sqrt(2 / math.pi))]).output
    return g.add_node("Tanh", [scaled]).output


def _tail(g: Graph, x, core, order: str):
    one_plus = g.add_node("Add", [F32(1.0), core]).output
    if order == "half_x_first":  # ONNX's function body, edgefw's exporter
        return g.add_node("Mul", [g.add_node("Mul", [x, F32(0.5)]).output, one_plus]).output
    if order == "half_last":  # PyTorch's exporter
        return g.add_node("Mul", [g.add_node("Mul", [x, one_plus]).output, F32(0.5)]).output
    return g.add_node("Mul", [x, g.add_node("Mul", [one_plus, F32(0.5)]).output]).output


def gelu_graph(core: str, order: str, shape=("batch", 16, 32)) -> Graph:
    g = Graph()
    x = g.add_input("x", "float32", shape)
    h = g.add_node("Relu", [x]).output  # x need not be a graph input
    h = g.add_node("Sub", [h, F32(1.0)]).output
    c = _tanh_core(g, h, core[5:]) if core.startswith("tanh") else _erf_core(g, h, core)
    y = _tail(g, h, c, order)
    g.set_outputs([g.add_node("Add", [y, F32(0.25)], name="out").output])
    return g


def feeds(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": (rng.standard_normal((batch, 16, 32)) * 3).astype(np.float32)}


@pytest.mark.parametrize("order", ["half_x_first", "half_last", "half_of_sum"])
@pytest.mark.parametrize("core", ["div", "mul", "tanh_pow", "tanh_mul"])
def test_decompositions_become_one_gelu(core, order):
    g = gelu_graph(core, order)
    original = g.copy()
    result = FuseGeluPass().run(g)
    g.check()
    assert result.rewrites == 1
    assert op_types(g) == ["Relu", "Sub", "Gelu", "Add"]
    assert g.nodes[2].attrs["approximate"] == ("tanh" if core.startswith("tanh") else "none")
    for batch in (1, 3):
        f = feeds(batch, batch)
        expected = run_onnxruntime(original, f)[0]  # the unfused graph, on onnxruntime
        np.testing.assert_allclose(run_runtime(g, f)[0], expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(run_runtime(original, f)[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset", [18, 20])
def test_fused_graph_exports_and_matches_onnxruntime(opset):
    g = gelu_graph("div", "half_last")
    reference = run_onnxruntime(g.copy(), feeds(2))[0]
    optimize(g, "all")
    assert "Gelu" in op_types(g)
    model = to_onnx(g, opset=opset, optimize="none")
    written = [n.op_type for n in model.graph.node]
    assert ("Gelu" in written) == (opset >= 20) and ("Erf" in written) == (opset < 20)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, feeds(2))[0], reference, rtol=1e-5, atol=1e-5)
    # and the runtime reading the exported file fuses it again
    ours = runtime.InferenceSession(model.SerializeToString())
    assert "Gelu" in op_types(ours.graph)
    np.testing.assert_allclose(ours.run(None, feeds(2))[0], reference, rtol=1e-5, atol=1e-5)


def _build(mutate: str) -> Graph:
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 8))
    scaled = g.add_node("Div", [x, F32(2.0 if mutate == "constant" else SQRT2)]).output
    erf = g.add_node("Erf", [scaled]).output
    one_plus = g.add_node("Add", [erf, F32(1.0)]).output
    half_x = g.add_node("Mul", [x, F32(0.5)]).output
    y = g.add_node("Mul", [half_x, one_plus]).output
    outputs = [y]
    if mutate == "shared":
        outputs.append(g.add_node("Neg", [erf]).output)
    if mutate == "output":
        outputs.append(one_plus)
    g.set_outputs(outputs)
    if mutate == "broadcast":
        g = Graph()
        x = g.add_input("x", "float32", ("batch", 8))
        scaled = g.add_node("Div", [x, np.full((3, 1, 8), SQRT2, np.float32)]).output
        erf = g.add_node("Erf", [scaled]).output
        one_plus = g.add_node("Add", [erf, F32(1.0)]).output
        half_x = g.add_node("Mul", [x, F32(0.5)]).output
        g.set_outputs([g.add_node("Mul", [half_x, one_plus]).output])
    return g


@pytest.mark.parametrize("mutate", ["constant", "shared", "output", "broadcast"])
def test_look_alikes_are_left_alone(mutate):
    g = _build(mutate)
    assert FuseGeluPass().run(g).changed is False
    assert "Gelu" not in op_types(g)


def test_transformer_block_gelu_fuses_and_matches_onnxruntime(tmp_path):
    import edgefw
    from edgefw import models

    edgefw.manual_seed(0)
    model = models.build("transformer", dim=32, heads=2, hidden=64)
    model.eval()
    x = np.random.default_rng(1).standard_normal((1, 8, 32)).astype(np.float32)
    path = tmp_path / "block.onnx"
    to_onnx(model, path, example_inputs=edgefw.tensor(x))
    session = runtime.InferenceSession(str(path))
    assert "Gelu" in op_types(session.graph) and "Erf" not in op_types(session.graph)
    expected = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected, atol=1e-5)


def test_table_gelu_against_math_erf():
    from runtime.providers.cpu.kernels.erf import GELU_TABLE_MAX_SIZE, gelu_float32

    x = np.linspace(-9, 9, GELU_TABLE_MAX_SIZE).astype(np.float32)
    gelu = np.array([float(v) * 0.5 * math.erfc(-float(v) / SQRT2) for v in x])
    np.testing.assert_allclose(gelu_float32(x), gelu, rtol=0, atol=6e-7 * 9)
    assert np.all(np.abs(gelu_float32(x) - gelu) <= 6e-7 * np.maximum(1, np.abs(x)))
    special = np.array([np.nan, np.inf, -1e30, 1e30, 0.0, -7.0, 7.0], np.float32)
    got = gelu_float32(special)
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == 0 and got[3] == F32(1e30)
    np.testing.assert_array_equal(got[4:], [0.0, 0.0, 7.0])
    same = x.copy()
    gelu_float32(same, out=same)  # in place
    np.testing.assert_array_equal(same, gelu_float32(x))


def test_doctest():
    assert doctest.testmod(fuse_gelu_pass).failed == 0
