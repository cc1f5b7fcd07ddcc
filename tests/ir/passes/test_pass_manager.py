"""PassManager and optimize(): levels, fixed point, verification after each pass naming the
pass that broke the graph, the report, and the runtime session using them."""

from __future__ import annotations

import numpy as np
import pytest

import runtime
from edgefw.errors import ConfigError, GraphError, ShapeError
from edgefw.ir import Graph
from edgefw.ir.passes import (
    EliminateDeadCodePass,
    FoldConstantsPass,
    Pass,
    PassManager,
    PassResult,
    RemoveIdentityPass,
    optimize,
    passes_for_level,
)
from tests.ir.passes.graph_testing import assert_rewrite_keeps_outputs, op_types, random_feeds


def messy_graph() -> Graph:
    """Identity, foldable constants, a dead branch, Gemm + BN + Relu."""
    g = Graph("messy")
    x = g.add_input("x", "float32", ("batch", 4))
    w = g.add_node("Transpose", [np.arange(12, dtype=np.float32).reshape(4, 3) / 10]).output
    fc = g.add_node("Gemm", [g.add_node("Identity", [x]).output, w], {"transB": 1},
                    name="fc").output
    p = np.linspace(0.5, 1.5, 3).astype(np.float32)
    bn = g.add_node("BatchNormalization", [fc, p, p - 1, p * 0.1, p + 0.2], name="bn").output
    g.add_node("Sigmoid", [bn], name="dead")
    g.set_outputs([g.add_node("Relu", [bn], name="relu").output])
    return g


def test_levels_choose_passes():
    assert passes_for_level("none") == []
    assert [p.name for p in passes_for_level("basic")] == [
        "infer_shapes", "fold_constants", "remove_identity", "eliminate_dead_code"]
    assert [p.name for p in passes_for_level("all")] == [
        "infer_shapes", "fold_constants", "remove_identity", "fuse_pad_into_conv",
        "fold_batch_norm",
        "fuse_matmul_add", "fuse_gelu", "fuse_activation", "eliminate_dead_code"]
    assert [p.name for p in passes_for_level("all", integer_kernels=True)][-8:] == [
        "mark_sequential_sums", "fuse_qdq", "drop_qdq_pair", "fuse_dynamic_quant",
        "fold_qdq_weights", "fuse_dense", "fold_layer_norm_affine", "eliminate_dead_code"]
    with pytest.raises(ConfigError, match="'fast'.*none, basic, all"):
        passes_for_level("fast")


def test_optimize_none_changes_nothing():
    g = messy_graph()
    before = str(g)
    assert optimize(g, "none") is g and str(g) == before


def test_optimize_basic_cleans_but_keeps_op_types():
    g = messy_graph()
    assert_rewrite_keeps_outputs(g, lambda graph: optimize(graph, "basic"),
                                 [random_feeds(g, batch=3)])
    assert op_types(g) == ["Gemm", "BatchNormalization", "Relu"]
    assert g.metadata["passes"] == ("fold_constants: 1, remove_identity: 1, "
                                    "eliminate_dead_code: 2")


def test_optimize_all_reaches_one_fused_gemm():
    g = messy_graph()
    assert_rewrite_keeps_outputs(g, lambda graph: optimize(graph, "all"),
                                 [random_feeds(g, batch=b) for b in (1, 5)])
    assert op_types(g) == ["Gemm"]
    assert g.nodes[0].meta["fused_activation"] == "Relu" and g.outputs[0].name == "relu"
    assert g.metadata["optimization_level"] == "all"
    assert "fold_batch_norm: 1" in g.metadata["passes"]


def test_report_and_fixed_point():
    g = messy_graph()
    report = PassManager.for_level("all").run(g)
    assert report.converged and report.changed
    # Iteration 2 fuses the Relu, which the dead Sigmoid also read until DCE removed it at
    # the end of iteration 1; iteration 3 confirms nothing is left.
    assert report.iterations == 3
    changed = [(r.iteration, r.pass_name) for r in report.records if r.result.changed]
    assert changed == [(1, "fold_constants"), (1, "remove_identity"), (1, "fold_batch_norm"),
                       (1, "eliminate_dead_code"), (2, "fuse_activation")]
    assert "fused node 'relu' (Relu) into node 'fc' (Gemm)" in " ".join(report.notes())
    assert str(report).startswith("3 iterations, converged; fold_constants: 1,")


class AlwaysChangesPass(Pass):
    name = "always_changes"

    def run(self, graph: Graph) -> PassResult:
        return PassResult(True, 1, ["claims a change"])


def test_iteration_limit_stops_a_pass_that_never_settles():
    report = PassManager([AlwaysChangesPass()], max_iterations=3).run(messy_graph())
    assert report.iterations == 3 and not report.converged
    with pytest.raises(ConfigError, match="max_iterations"):
        PassManager([], max_iterations=0)


class BreaksGraphPass(Pass):
    """Drops the first node's inputs: the graph no longer verifies."""

    name = "breaks_graph"

    def run(self, graph: Graph) -> PassResult:
        graph.nodes[0].inputs = []
        return PassResult(True, 1)


class RaisesPass(Pass):
    name = "raises"

    def run(self, graph: Graph) -> PassResult:
        raise ShapeError("cannot handle this shape")


def test_broken_graph_names_the_pass():
    with pytest.raises(GraphError, match="after pass 'breaks_graph' \\(iteration 1\\)"):
        PassManager([RemoveIdentityPass(), BreaksGraphPass()]).run(messy_graph())
    with pytest.raises(GraphError, match="pass 'raises' failed.*cannot handle this shape"):
        PassManager([RaisesPass()]).run(messy_graph())
    # With checking off the manager trusts the passes (the runtime still verifies).
    PassManager([BreaksGraphPass()], max_iterations=1, check=False).run(messy_graph())


def test_invalid_input_graph_is_reported_as_such():
    g = messy_graph()
    g.node("fc").inputs = g.node("fc").inputs[:1]  # Gemm without B
    with pytest.raises(GraphError, match="before optimization"):
        optimize(g, "basic")


def test_bad_arguments():
    with pytest.raises(ConfigError, match="check"):
        PassManager([], check="sometimes")
    with pytest.raises(ConfigError, match="not a Pass"):
        PassManager([EliminateDeadCodePass, FoldConstantsPass()])


def test_runtime_session_optimizes_a_copy():
    g = messy_graph()
    before = str(g)
    session = runtime.InferenceSession(g, optimization="all")
    assert str(g) == before  # the caller's graph is untouched
    assert op_types(session.graph) == ["Gemm"]
    feeds = random_feeds(g, batch=4)
    reference = runtime.InferenceSession(g, optimization="none").run(None, feeds)
    np.testing.assert_allclose(session.run(None, feeds)[0], reference[0], rtol=1e-5, atol=1e-6)
