"""FoldConstantsPass: constant subgraphs become constants (each evaluator checked against
onnxruntime on the unfolded node), static shape dims fold, a symbolic batch never does."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir import Graph, dtypes
from edgefw.ir.passes import FoldConstantsPass, optimize
from edgefw.ir.passes.constant_evaluator import evaluated_ops
from tests.ir.passes.graph_testing import (
    assert_rewrite_keeps_outputs,
    op_types,
    random_feeds,
    run_onnxruntime,
)

RNG = np.random.default_rng(5)
F = np.float32
I64 = np.int64


def _f(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(F)


# (op, constant inputs, attributes): one case per evaluator, run by onnxruntime unfolded.
EVALUATOR_CASES = [
    ("Identity", [_f(2, 3)], {}),
    ("Cast", [np.array([1.7, -1.7, 3.2], F)], {"to": dtypes.to_onnx("int64")}),
    ("Cast", [np.array([0, 2, -3], I64)], {"to": dtypes.to_onnx("float32")}),
    ("Shape", [_f(2, 3, 4)], {"start": 1}),
    ("Gather", [_f(4, 3), np.array([[0, -1], [2, 1]], I64)], {"axis": 0}),
    ("Gather", [_f(4, 3), np.array(-2, I64)], {"axis": 1}),
    ("Gather", [np.array([5, 6, 7], I64), np.array(1, I64)], {}),  # a 0-d result
    ("Unsqueeze", [_f(3, 4), np.array([0, -1], I64)], {}),
    ("Squeeze", [_f(1, 3, 1), np.array([2], I64)], {}),
    ("Squeeze", [_f(1, 3, 1)], {}),
    ("Concat", [_f(2, 3), _f(2, 1)], {"axis": -1}),
    ("Reshape", [_f(2, 3, 4), np.array([0, -1], I64)], {}),
    ("Flatten", [_f(2, 3, 4)], {"axis": 2}),
    ("Transpose", [_f(2, 3, 4)], {"perm": [1, 2, 0]}),
    ("Transpose", [_f(2, 3, 4)], {}),
    ("Slice", [_f(5, 6), np.array([1, -1], I64), np.array([4, -6], I64),
               np.array([0, 1], I64), np.array([2, -2], I64)], {}),
    ("Slice", [_f(5, 6), np.array([-1], I64), np.array([-100], I64), np.array([0], I64),
               np.array([-1], I64)], {}),
    ("Expand", [_f(3, 1), np.array([2, 1, 4], I64)], {}),
    ("Where", [np.array([True, False, True]), _f(3), _f(3)], {}),
    ("Add", [_f(2, 3), _f(3)], {}),
    ("Sub", [_f(3), _f(2, 1)], {}),
    ("Mul", [np.array([2, -3], I64), np.array([4, 5], I64)], {}),
    ("Div", [_f(3), np.array([2.0, -4.0, 0.5], F)], {}),
    ("Div", [np.array([-7, 7, -7, 7], I64), np.array([2, 2, -2, -2], I64)], {}),
    ("Pow", [np.abs(_f(3)), np.array([2.0, 0.5, -1.0], F)], {}),
    ("MatMul", [_f(2, 3), _f(3, 4)], {}),
    ("Neg", [_f(3)], {}),
    ("Abs", [_f(3)], {}),
    ("Sqrt", [np.abs(_f(3))], {}),
    ("Reciprocal", [_f(3)], {}),
    ("Exp", [_f(3)], {}),
    ("Log", [np.abs(_f(3)) + 0.1], {}),
    ("Tanh", [_f(3)], {}),
    ("Relu", [_f(5)], {}),
    ("Sigmoid", [_f(5)], {}),
    ("Erf", [_f(5)], {}),
    ("Clip", [_f(6), np.array(-0.3, F), np.array(0.4, F)], {}),
    ("Equal", [np.array([1, 2, 3], I64), np.array([1, 0, 3], I64)], {}),
    ("Less", [_f(4), _f(4)], {}),
    ("Greater", [_f(4), _f(4)], {}),
    ("Not", [np.array([True, False])], {}),
    ("ReduceSum", [_f(2, 3, 4), np.array([1], I64)], {"keepdims": 0}),
    ("ReduceMean", [_f(2, 3, 4), np.array([0, 2], I64)], {}),
    ("ReduceMax", [_f(2, 3, 4)], {}),
    ("ReduceMin", [_f(2, 3, 4), np.array([-1], I64)], {"keepdims": 0}),
    ("Constant", [], {"value": _f(2, 2)}),
    ("Constant", [], {"value_ints": [3, 4]}),
]


@pytest.mark.parametrize("op,inputs,attrs", EVALUATOR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(EVALUATOR_CASES)])
def test_evaluator_matches_onnxruntime(op, inputs, attrs):
    g = Graph()
    trigger = g.add_input("trigger", "float32", (1,))  # ONNX graphs need an input
    y = g.add_node(op, inputs, attrs, name="folded").output
    # Graph outputs are never folded: read the folded value through an Identity.
    g.set_outputs([g.add_node("Identity", [y], name="out").output,
                   g.add_node("Relu", [trigger]).output])
    feeds = {"trigger": np.ones(1, F)}
    expected = run_onnxruntime(g, feeds)[0]
    result = FoldConstantsPass().run(g)
    g.check()
    assert result.changed and op_types(g) == ["Identity", "Relu"]
    folded = g.nodes[0].inputs[0]
    assert folded.is_constant and folded.name == "folded"
    assert folded.data.dtype == expected.dtype and folded.data.shape == expected.shape
    np.testing.assert_allclose(folded.data, expected, rtol=1e-6, atol=1e-6)


def test_every_evaluator_has_a_case():
    assert {c[0] for c in EVALUATOR_CASES} == set(evaluated_ops())


def reshape_by_shape_graph(index: int) -> Graph:
    """``x.view(x.shape[index], -1)``-style shape arithmetic on a symbolic batch."""
    g = Graph("view")
    x = g.add_input("x", "float32", ("batch", 3, 4, 4))
    shape = g.add_node("Shape", [x]).output
    dim = g.add_node("Gather", [shape, np.array(index, I64)]).output
    dim = g.add_node("Unsqueeze", [dim, np.array([0], I64)]).output
    target = g.add_node("Concat", [dim, np.array([-1], I64)], {"axis": 0}).output
    g.set_outputs([g.add_node("Reshape", [x, target], name="out").output])
    return g


def test_symbolic_batch_dim_is_not_folded():
    g = reshape_by_shape_graph(0)
    feeds = [random_feeds(g, batch=b, seed=b) for b in (1, 5)]
    result = assert_rewrite_keeps_outputs(g, FoldConstantsPass(), feeds)
    assert result.changed is False
    assert op_types(g) == ["Shape", "Gather", "Unsqueeze", "Concat", "Reshape"]


def test_static_dim_of_a_symbolic_shape_folds_and_batch_stays_dynamic():
    g = reshape_by_shape_graph(1)  # x.view(3, -1): dim 1 is static
    feeds = [random_feeds(g, batch=b, seed=b) for b in (2, 3)]
    assert_rewrite_keeps_outputs(g, lambda graph: optimize(graph, "basic"), feeds)
    assert op_types(g) == ["Reshape"]
    np.testing.assert_array_equal(g.nodes[0].inputs[1].data, [3, -1])
    assert g.outputs[0].shape == (3, None)  # batch * 16: unknown, not a fixed number


def test_slice_of_shape_with_static_tail_folds():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 3, 4, 4))
    shape = g.add_node("Shape", [x]).output
    tail = g.add_node("Slice", [shape, np.array([1], I64), np.array([4], I64)]).output
    target = g.add_node("Concat", [np.array([-1], I64), tail], {"axis": 0}).output
    g.set_outputs([g.add_node("Reshape", [x, target], name="out").output])
    feeds = [random_feeds(g, batch=b) for b in (1, 4)]
    assert_rewrite_keeps_outputs(g, lambda graph: optimize(graph, "basic"), feeds)
    assert op_types(g) == ["Reshape"]
    assert g.outputs[0].shape == ("batch", 3, 4, 4)


def test_static_shape_folds_entirely():
    g = reshape_by_shape_graph(0)
    g.inputs[0].shape = (2, 3, 4, 4)
    assert_rewrite_keeps_outputs(g, lambda graph: optimize(graph, "basic"),
                                 [random_feeds(g)])
    assert op_types(g) == ["Reshape"]
    np.testing.assert_array_equal(g.nodes[0].inputs[1].data, [2, -1])


def test_batch_norm_style_arithmetic_folds_to_one_constant():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 4))
    var = np.abs(_f(4)) + 0.1
    gamma = _f(4)
    std = g.add_node("Sqrt", [g.add_node("Add", [var, np.float32(1e-5)]).output]).output
    scale = g.add_node("Mul", [g.add_node("Reciprocal", [std]).output, gamma]).output
    g.set_outputs([g.add_node("Mul", [x, scale], name="out").output])
    assert_rewrite_keeps_outputs(g, FoldConstantsPass(), [random_feeds(g)])
    assert op_types(g) == ["Mul"]
    np.testing.assert_allclose(g.nodes[0].inputs[1].data, gamma / np.sqrt(var + F(1e-5)),
                               rtol=1e-6)


def test_constant_node_becomes_an_initializer():
    g = Graph()
    x = g.add_input("x", "float32", (3,))
    c = g.add_node("Constant", [], {"value": np.arange(3, dtype=F)}, name="offset").output
    g.set_outputs([g.add_node("Add", [x, c]).output])
    assert_rewrite_keeps_outputs(g, FoldConstantsPass(), [random_feeds(g)])
    assert op_types(g) == ["Add"] and "offset" in g.constants


def test_left_alone_graph_outputs_quantization_and_bad_indices():
    g = Graph()
    g.add_input("x", "float32", (1,))
    g.set_outputs([g.add_node("Sqrt", [np.ones(3, F)]).output])  # a graph output
    assert FoldConstantsPass().run(g).changed is False

    g = Graph()
    x = g.add_input("x", "float32", (3,))
    w = g.add_node("DequantizeLinear", [np.array([1, -2, 3], np.int8), np.float32(0.1)]).output
    g.set_outputs([g.add_node("Mul", [x, w]).output])
    assert FoldConstantsPass().run(g).changed is False  # QDQ weights stay quantized

    g = Graph()
    x = g.add_input("x", "float32", (1,))
    bad = g.add_node("Gather", [np.ones(3, F), np.array([7], I64)], name="bad").output
    g.set_outputs([g.add_node("Add", [x, bad]).output])
    assert FoldConstantsPass().run(g).changed is False  # the runtime reports it, by node


def test_large_results_are_not_materialized():
    def expand_graph(n: int) -> Graph:
        g = Graph()
        x = g.add_input("x", "float32", (n,))
        e = g.add_node("Expand", [np.ones(1, F), np.array([n], I64)]).output
        g.set_outputs([g.add_node("Add", [x, e]).output])
        return g

    assert FoldConstantsPass(max_elements=100).run(expand_graph(1000)).changed is False
    assert FoldConstantsPass(max_elements=100).run(expand_graph(50)).changed is True
    # Results no larger than their largest input always fold (a weight transpose).
    g = Graph()
    x = g.add_input("x", "float32", (1, 200))
    w = g.add_node("Transpose", [_f(300, 200)]).output
    g.set_outputs([g.add_node("MatMul", [x, w]).output])
    assert FoldConstantsPass(max_elements=100).run(g).changed is True
