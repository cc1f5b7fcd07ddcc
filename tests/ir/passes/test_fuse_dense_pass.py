"""FuseDensePass: stacked MatMul + constant bias Add -> edgefw Dense (runtime-only)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import runtime
from edgefw.ir import Graph
from edgefw.ir.passes import FuseDensePass, fuse_dense_pass, optimize, passes_for_level
from tests.ir.passes.graph_testing import op_types, run_onnxruntime, run_runtime

RNG = np.random.default_rng(5)


def stacked_graph(bias_shape=(4,), bias_first=False, activation=None,
                  x_shape=("batch", 3, 6)) -> Graph:
    g = Graph()
    x = g.add_input("x", "float32", x_shape)
    w = g.add_constant("proj.weight", RNG.standard_normal((6, 4)).astype(np.float32))
    mm = g.add_node("MatMul", [x, w], name="proj").output
    b = g.add_constant("proj.bias", RNG.standard_normal(bias_shape).astype(np.float32))
    y = g.add_node("Add", [b, mm] if bias_first else [mm, b], name="out").output
    if activation is not None:
        y = g.add_node(activation, [y], name="act").output
    g.set_outputs([y])
    return g


def feeds(g: Graph, batch: int) -> dict[str, np.ndarray]:
    shape = [batch if not isinstance(d, int) else d for d in g.inputs[0].shape]
    return {"x": RNG.standard_normal(shape).astype(np.float32)}


def assert_same_as_unfused(g: Graph, fused: Graph, batches=(1, 4)) -> None:
    for batch in batches:
        f = feeds(g, batch)
        expected = run_onnxruntime(g, f)[0]
        np.testing.assert_allclose(run_runtime(fused, f)[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bias_shape", [(4,), (1, 4), (1, 1, 4)])
@pytest.mark.parametrize("bias_first", [False, True])
def test_stacked_matmul_add_becomes_dense(bias_shape, bias_first):
    g = stacked_graph(bias_shape, bias_first)
    fused = g.copy()
    assert FuseDensePass().run(fused).rewrites == 1
    fused.check()
    assert op_types(fused) == ["Dense"] and fused.nodes[0].domain == "edgefw"
    assert fused.outputs[0].name == "out" and fused.nodes[0].inputs[2].shape == (4,)
    assert_same_as_unfused(g, fused)


def test_rank4_input_and_a_fused_activation_carry_over():
    g = stacked_graph(activation="Relu", x_shape=("batch", 2, 3, 6))
    fused = optimize(g.copy(), "all", integer_kernels=True)
    assert op_types(fused) == ["Dense"]
    assert fused.nodes[0].meta["fused_activation"] == "Relu"
    assert_same_as_unfused(g, fused, batches=(1, 3))


@pytest.mark.parametrize("case", ["rank2", "computed-weight", "wide-bias", "bias-rows",
                                  "shared-product"])
def test_left_alone(case):
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 6) if case == "rank2" else ("batch", 3, 6))
    w = RNG.standard_normal((6, 4)).astype(np.float32)
    if case == "computed-weight":
        w = g.add_node("Neg", [w]).output
    mm = g.add_node("MatMul", [x, w]).output
    bias = {"wide-bias": (2, 1, 4), "bias-rows": (3, 4)}.get(case, (4,))
    y = g.add_node("Add", [mm, RNG.standard_normal(bias).astype(np.float32)]).output
    g.set_outputs([y, mm] if case == "shared-product" else [y])
    assert FuseDensePass().run(g).changed is False


def test_only_the_runtime_level_makes_dense():
    g = stacked_graph()
    assert "FuseDensePass" not in [type(p).__name__ for p in passes_for_level("all")]
    assert "Dense" not in op_types(optimize(g.copy(), "all"))
    session = runtime.InferenceSession(g)
    assert op_types(session.graph) == ["Dense"]
    f = feeds(g, 2)
    np.testing.assert_allclose(session.run(None, f)[0], run_onnxruntime(g, f)[0], rtol=1e-5,
                               atol=1e-5)


def test_dynamic_shapes_path():
    from runtime.providers.cpu.kernels.dense import dense  # noqa: F401  (registered)

    g = stacked_graph(x_shape=("batch", "seq", 6))
    session = runtime.InferenceSession(g)
    for shape in [(1, 5, 6), (3, 2, 6)]:
        x = RNG.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(session.run(None, {"x": x})[0],
                                   run_onnxruntime(g, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_doctest():
    assert doctest.testmod(fuse_dense_pass).failed == 0
