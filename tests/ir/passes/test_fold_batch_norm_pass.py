"""FoldBatchNormPass: BN after Conv (plain, grouped, depthwise; with/without bias), Gemm
(transB 0/1, with/without C, beta != 1) and MatMul folds to 1e-5; unsafe cases stay."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir import Graph, Value
from edgefw.ir.passes import FoldBatchNormPass, FuseMatMulAddPass, optimize
from tests.ir.passes.graph_testing import assert_rewrite_keeps_outputs, op_types, random_feeds

RNG = np.random.default_rng(42)


def add_batch_norm(g: Graph, x: Value, channels: int, name: str = "bn") -> Value:
    """A BatchNormalization with non-trivial random statistics."""
    gamma = RNG.uniform(0.5, 2.0, channels).astype(np.float32)
    beta = RNG.standard_normal(channels).astype(np.float32)
    mean = RNG.standard_normal(channels).astype(np.float32)
    var = RNG.uniform(0.1, 3.0, channels).astype(np.float32)
    params = [g.add_constant(f"{name}.{p}", a) for p, a in
              (("weight", gamma), ("bias", beta), ("running_mean", mean), ("running_var", var))]
    return g.add_node("BatchNormalization", [x, *params], {"epsilon": 1e-3}, name=name,
                      module_path=name).output


def conv_bn_graph(cin: int, cout: int, group: int, bias: bool) -> Graph:
    g = Graph("conv_bn")
    x = g.add_input("input", "float32", ("batch", cin, 9, 9))
    w = g.add_constant("features.0.conv.weight",
                       RNG.standard_normal((cout, cin // group, 3, 3)).astype(np.float32))
    inputs = [x, w]
    if bias:
        inputs.append(g.add_constant("features.0.conv.bias",
                                     RNG.standard_normal(cout).astype(np.float32)))
    conv = g.add_node("Conv", inputs, {"group": group, "pads": [1, 1, 1, 1], "strides": [2, 2]},
                      module_path="features.0.conv").output
    g.set_outputs([add_batch_norm(g, conv, cout, "features.0.bn")])
    return g


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("cin,cout,group", [(3, 8, 1), (4, 6, 2), (6, 6, 6)],
                         ids=["plain", "grouped", "depthwise"])
def test_conv_bn_folds_to_1e5(cin, cout, group, bias):
    g = conv_bn_graph(cin, cout, group, bias)
    feeds = [random_feeds(g, batch=b, seed=b) for b in (1, 3)]
    result = assert_rewrite_keeps_outputs(g, FoldBatchNormPass(), feeds)
    assert result.changed and result.rewrites == 1
    assert op_types(g) == ["Conv"]
    conv = g.nodes[0]
    # New constants carry the original names; the BN's output name lives on.
    assert [v.name for v in conv.inputs[1:]] == ["features.0.conv.weight", "features.0.conv.bias"]
    assert g.outputs[0].name == "features.0.bn"
    assert conv.meta["folded_batch_norm"] == ("features.0.bn",)
    assert FoldBatchNormPass().run(g).changed is False


def test_conv_bn_folded_values_match_hand_computation():
    g = conv_bn_graph(2, 3, 1, bias=True)
    w0 = g.constants["features.0.conv.weight"].data.copy()
    b0 = g.constants["features.0.conv.bias"].data.copy()
    gamma, beta, mean, var = (g.constants[f"features.0.bn.{p}"].data
                              for p in ("weight", "bias", "running_mean", "running_var"))
    FoldBatchNormPass().run(g)
    s = gamma / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(g.constants["features.0.conv.weight"].data,
                               w0 * s[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(g.constants["features.0.conv.bias"].data,
                               (b0 - mean) * s + beta, rtol=1e-6, atol=1e-6)


def gemm_bn_graph(trans_b: int, with_c: bool, beta: float = 1.0) -> Graph:
    g = Graph("gemm_bn")
    x = g.add_input("x", "float32", ("batch", 5))
    shape = (4, 5) if trans_b else (5, 4)
    inputs = [x, g.add_constant("fc.weight", RNG.standard_normal(shape).astype(np.float32))]
    if with_c:
        inputs.append(g.add_constant("fc.bias", RNG.standard_normal((1, 4)).astype(np.float32)))
    gemm = g.add_node("Gemm", inputs, {"transB": trans_b, "alpha": 0.5, "beta": beta},
                      name="fc").output
    g.set_outputs([add_batch_norm(g, gemm, 4)])
    return g


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("with_c,beta", [(False, 1.0), (True, 1.0), (True, 2.5)])
def test_gemm_bn_folds(trans_b, with_c, beta):
    g = gemm_bn_graph(trans_b, with_c, beta)
    feeds = [random_feeds(g, batch=b, seed=b) for b in (1, 7)]
    assert_rewrite_keeps_outputs(g, FoldBatchNormPass(), feeds)
    assert op_types(g) == ["Gemm"]
    gemm = g.nodes[0]
    assert gemm.inputs[1].name == "fc.weight" and gemm.inputs[2].name == "fc.bias"
    assert gemm.attr("beta") == 1.0 and gemm.attr("alpha") == 0.5


def test_matmul_bn_becomes_add_then_gemm():
    g = Graph("matmul_bn")
    x = g.add_input("x", "float32", ("batch", 6))
    w = g.add_constant("dense.weight", RNG.standard_normal((6, 3)).astype(np.float32))
    mm = g.add_node("MatMul", [x, w], name="dense").output
    g.set_outputs([add_batch_norm(g, mm, 3)])
    feeds = [random_feeds(g, batch=4)]
    assert_rewrite_keeps_outputs(g, FoldBatchNormPass(), feeds)
    assert op_types(g) == ["MatMul", "Add"]
    assert_rewrite_keeps_outputs(g, FuseMatMulAddPass(), feeds)
    assert op_types(g) == ["Gemm"] and g.outputs[0].name == "bn"


def test_matmul_bn_with_3d_output_is_left_alone():
    # BN normalizes axis 1 (the sequence axis here), not the MatMul's output columns.
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 3, 6))
    mm = g.add_node("MatMul", [x, RNG.standard_normal((6, 4)).astype(np.float32)]).output
    g.set_outputs([add_batch_norm(g, mm, 3)])
    assert FoldBatchNormPass().run(g).changed is False


def test_not_folded_when_conv_output_is_needed_elsewhere():
    g = conv_bn_graph(3, 4, 1, bias=False)
    conv = g.nodes[0]
    g.set_outputs([g.outputs[0], conv.output])  # the raw conv output is a graph output
    assert FoldBatchNormPass().run(g).changed is False
    g = conv_bn_graph(3, 4, 1, bias=False)
    relu = g.add_node("Relu", [g.nodes[0].output]).output  # a second reader
    g.set_outputs([g.outputs[0], relu])
    assert FoldBatchNormPass().run(g).changed is False


def test_not_folded_with_computed_statistics_or_fused_activation():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 2, 4, 4))
    scale = g.add_input("scale", "float32", (2,))
    conv = g.add_node("Conv", [x, np.ones((2, 2, 1, 1), np.float32)]).output
    p = np.ones(2, np.float32)
    g.set_outputs([g.add_node("BatchNormalization", [conv, scale, p, p, p]).output])
    assert FoldBatchNormPass().run(g).changed is False

    g = conv_bn_graph(3, 4, 1, bias=True)
    g.nodes[0].meta["fused_activation"] = "Relu"  # BN(relu(conv)) is not affine in conv
    assert FoldBatchNormPass().run(g).changed is False


def test_shared_weight_gets_a_new_name_and_the_other_reader_keeps_the_original():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 2, 5, 5))
    w = g.add_constant("shared.weight", RNG.standard_normal((2, 2, 1, 1)).astype(np.float32))
    a = g.add_node("Conv", [x, w], name="a").output
    b = g.add_node("Conv", [x, w], name="b").output
    g.set_outputs([add_batch_norm(g, a, 2), b])
    feeds = [random_feeds(g)]
    assert_rewrite_keeps_outputs(g, FoldBatchNormPass(), feeds)
    assert g.node("a").inputs[1].name == "shared.weight_1"
    assert g.node("b").inputs[1] is g.constants["shared.weight"]


def test_optimize_all_leaves_no_batch_norm_and_fewer_constants():
    g = conv_bn_graph(4, 4, 4, bias=False)
    feeds = [random_feeds(g)]
    assert_rewrite_keeps_outputs(g, lambda graph: optimize(graph, "all"), feeds)
    assert "BatchNormalization" not in op_types(g)
    # The BN parameters are gone; only the folded weight and bias remain.
    assert sorted(g.constants) == ["features.0.conv.bias", "features.0.conv.weight"]
