"""InferShapesPass: stale or missing stored types are recomputed; known symbolic dims are
kept when inference cannot tell; inconsistent graphs fail naming the node."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import ShapeError
from edgefw.ir import Graph
from edgefw.ir.passes import InferShapesPass


def small_cnn() -> Graph:
    g = Graph("cnn")
    x = g.add_input("input", "float32", ("batch", 1, 8, 8))
    conv = g.add_node("Conv", [x, np.ones((4, 1, 3, 3), np.float32)], name="conv").output
    relu = g.add_node("Relu", [conv], name="relu").output
    flat = g.add_node("Flatten", [relu], name="flatten").output
    fc = g.add_node("Gemm", [flat, np.ones((10, 144), np.float32)], {"transB": 1}, name="fc")
    g.set_outputs([fc.output])
    return g


def test_missing_types_are_restored():
    g = small_cnn()
    expected = [(v.dtype, v.shape) for n in g.nodes for v in n.outputs]
    for node in g.nodes:
        node.output.dtype, node.output.shape = None, None  # as from a file without value_info
    result = InferShapesPass().run(g)
    assert result.changed and result.rewrites == 4
    assert [(v.dtype, v.shape) for n in g.nodes for v in n.outputs] == expected
    g.check()
    assert InferShapesPass().run(g).changed is False


def test_new_input_shape_propagates():
    g = small_cnn()
    g.inputs[0].shape = (5, 1, 8, 8)  # pin the batch
    InferShapesPass().run(g)
    assert g.node("flatten").output.shape == (5, 144)
    assert g.outputs[0].shape == (5, 10)
    g.inputs[0].shape = ("n", 1, 8, 8)  # and free it again under another symbol
    InferShapesPass().run(g)
    assert g.outputs[0].shape == ("n", 10)


def test_known_symbolic_dim_survives_inference_that_cannot_tell():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 12))
    target = g.add_input("target", "int64", (2,))  # a computed shape: inference gives [?,?]
    y = g.add_node("Reshape", [x, target]).output
    g.set_outputs([y])
    assert y.shape == (None, None)
    y.shape = ("batch", None)  # what a loader's value_info said
    assert InferShapesPass().run(g).changed is False
    assert y.shape == ("batch", None)


def test_replacing_stored_dims_when_inputs_become_less_known():
    g = small_cnn()
    g.inputs[0].shape = (5, 1, 8, 8)
    InferShapesPass().run(g)
    g.inputs[0].shape = (None, 1, 8, 8)
    InferShapesPass().run(g)
    assert g.outputs[0].shape == (5, 10)  # kept: a rewrite never changes a value's shape
    InferShapesPass(keep_stored_dims=False).run(g)
    assert g.outputs[0].shape == (None, 10)


def test_inconsistent_graph_names_the_node():
    g = small_cnn()
    g.inputs[0].shape = ("batch", 1, 9, 9)  # the fc weight no longer fits
    with pytest.raises(ShapeError, match="node 'fc' \\(Gemm\\)"):
        InferShapesPass().run(g)
