"""FuseMatMulAddPass: 2-D MatMul + constant bias Add -> Gemm; everything else stays."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir import Graph
from edgefw.ir.passes import FuseMatMulAddPass
from tests.ir.passes.graph_testing import assert_rewrite_keeps_outputs, op_types, random_feeds

RNG = np.random.default_rng(3)


def dense_graph(bias_shape: tuple[int, ...], bias_first: bool = False,
                x_shape: tuple = ("batch", 6)) -> Graph:
    g = Graph()
    x = g.add_input("x", "float32", x_shape)
    w = g.add_constant("dense.weight", RNG.standard_normal((6, 4)).astype(np.float32))
    mm = g.add_node("MatMul", [x, w], name="dense").output
    b = g.add_constant("dense.bias", RNG.standard_normal(bias_shape).astype(np.float32))
    g.set_outputs([g.add_node("Add", [b, mm] if bias_first else [mm, b], name="out").output])
    return g


@pytest.mark.parametrize("bias_shape", [(4,), (1, 4), (), (1,)])
@pytest.mark.parametrize("bias_first", [False, True])
def test_matmul_add_becomes_gemm(bias_shape, bias_first):
    g = dense_graph(bias_shape, bias_first)
    feeds = [random_feeds(g, batch=b, seed=b) for b in (1, 5)]
    result = assert_rewrite_keeps_outputs(g, FuseMatMulAddPass(), feeds)
    assert result.changed
    assert op_types(g) == ["Gemm"]
    gemm = g.nodes[0]
    assert gemm.name == "dense" and gemm.output.name == "out"
    assert [v.name for v in gemm.inputs] == ["x", "dense.weight", "dense.bias"]


def test_static_full_bias_fuses():
    g = dense_graph((3, 4), x_shape=(3, 6))
    assert_rewrite_keeps_outputs(g, FuseMatMulAddPass(), [random_feeds(g)])
    assert op_types(g) == ["Gemm"]


@pytest.mark.parametrize("x_shape,bias_shape", [
    (("batch", 2, 6), (4,)),  # rank 3: Gemm is 2-D only
    (("batch", 6), (3, 4)),   # bias rows vs a symbolic batch: cannot prove it broadcasts
    (("batch", 6), (4, 1)),   # wrong broadcast ([4,1] against [batch,4]) is not Gemm's C
], ids=["rank3", "rows-vs-batch", "column-bias"])
def test_left_alone(x_shape, bias_shape):
    g = Graph()
    x = g.add_input("x", "float32", x_shape)
    mm = g.add_node("MatMul", [x, RNG.standard_normal((6, 4)).astype(np.float32)]).output
    g.set_outputs([g.add_node("Add", [mm, RNG.standard_normal(bias_shape)
                                      .astype(np.float32)]).output])
    assert FuseMatMulAddPass().run(g).changed is False


def test_computed_bias_or_weight_or_shared_product_is_left_alone():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 6))
    b = g.add_input("b", "float32", (4,))
    mm = g.add_node("MatMul", [x, np.ones((6, 4), np.float32)]).output
    g.set_outputs([g.add_node("Add", [mm, b]).output])
    assert FuseMatMulAddPass().run(g).changed is False

    g = Graph()
    x = g.add_input("x", "float32", ("batch", 6))
    w = g.add_input("w", "float32", (6, 4))
    mm = g.add_node("MatMul", [x, w]).output
    g.set_outputs([g.add_node("Add", [mm, np.ones(4, np.float32)]).output])
    assert FuseMatMulAddPass().run(g).changed is False

    g = Graph()
    x = g.add_input("x", "float32", ("batch", 6))
    mm = g.add_node("MatMul", [x, np.ones((6, 4), np.float32)]).output
    g.set_outputs([g.add_node("Add", [mm, np.ones(4, np.float32)]).output, mm])
    assert FuseMatMulAddPass().run(g).changed is False
