"""EliminateDeadCodePass: unreachable nodes and unread constants go; inputs, outputs and
partly used multi-output nodes stay."""

from __future__ import annotations

import numpy as np

from edgefw.ir import Graph
from edgefw.ir.passes import EliminateDeadCodePass
from tests.ir.passes.graph_testing import assert_rewrite_keeps_outputs, op_types, random_feeds


def test_dead_branch_and_its_constants_are_removed():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 4))
    unused_input = g.add_input("unused", "float32", (1,))
    w = g.add_constant("w", np.ones((4, 4), np.float32))
    g.add_constant("orphan", np.zeros(3, np.float32))
    dead = g.add_node("MatMul", [x, w], name="dead").output
    g.add_node("Relu", [g.add_node("Add", [dead, np.ones(4, np.float32)]).output])
    g.set_outputs([g.add_node("Sigmoid", [x], name="out").output])
    result = assert_rewrite_keeps_outputs(
        g, EliminateDeadCodePass(),
        [{**random_feeds(g), "unused": np.zeros(1, np.float32)}])
    assert result.changed and result.rewrites == 3 + 3  # nodes + constants (w, orphan, add.in1)
    assert op_types(g) == ["Sigmoid"]
    assert g.constants == {}
    assert g.inputs == [x, unused_input]  # the user-facing interface stays


def test_multi_output_node_with_one_output_read_stays():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 6))
    a, b = g.add_node("Split", [x, np.array([2, 4])], {"axis": 1}, num_outputs=2).outputs
    g.set_outputs([g.add_node("Relu", [b]).output])
    assert EliminateDeadCodePass().run(g).changed is False
    assert op_types(g) == ["Split", "Relu"]


def test_nothing_dead_reports_unchanged():
    g = Graph()
    x = g.add_input("x", "float32", (2,))
    g.set_outputs([g.add_node("Mul", [x, np.float32(2)]).output])
    result = EliminateDeadCodePass().run(g)
    assert result.changed is False and result.rewrites == 0
