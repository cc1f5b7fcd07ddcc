"""RemoveIdentityPass: Identity/Dropout/no-op Cast, Reshape, Flatten, Transpose vanish;
Transpose pairs cancel or merge; Reshape chains collapse; graph outputs keep their names."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir import Graph, dtypes
from edgefw.ir.passes import RemoveIdentityPass
from tests.ir.passes.graph_testing import assert_rewrite_keeps_outputs, op_types, random_feeds


def test_identity_and_dropout_chain_between_two_ops():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 4))
    r = g.add_node("Relu", [x]).output
    i1 = g.add_node("Identity", [r]).output
    d = g.add_node("Dropout", [i1, np.float32(0.5)], num_outputs=2).outputs[0]
    i2 = g.add_node("Identity", [d]).output
    g.set_outputs([g.add_node("Gemm", [i2, np.ones((3, 4), np.float32)], {"transB": 1},
                              name="fc").output])
    result = assert_rewrite_keeps_outputs(g, RemoveIdentityPass(), [random_feeds(g)])
    assert result.rewrites == 3
    assert op_types(g) == ["Relu", "Gemm"]
    assert g.nodes[1].inputs[0] is g.nodes[0].output


def test_training_dropout_and_used_mask_stay():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 4))
    d = g.add_node("Dropout", [x, np.float32(0.5), np.array(True)]).output
    g.set_outputs([g.add_node("Relu", [d]).output])
    assert RemoveIdentityPass().run(g).changed is False

    g = Graph()
    x = g.add_input("x", "float32", ("batch", 4))
    y, mask = g.add_node("Dropout", [x], num_outputs=2).outputs
    g.set_outputs([g.add_node("Relu", [y]).output, mask])
    assert RemoveIdentityPass().run(g).changed is False


@pytest.mark.parametrize("to,removed", [("float32", True), ("float16", False)])
def test_cast_to_own_dtype(to, removed):
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 4))
    c = g.add_node("Cast", [g.add_node("Relu", [x]).output], {"to": dtypes.to_onnx(to)}).output
    g.set_outputs([g.add_node("Neg", [c], name="out").output])
    assert_rewrite_keeps_outputs(g, RemoveIdentityPass(), [random_feeds(g)])
    assert ("Cast" not in op_types(g)) == removed


@pytest.mark.parametrize("in_shape,op,arg,attrs", [
    ((2, 3, 4), "Reshape", np.array([2, 3, 4]), {}),
    (("batch", 10), "Reshape", np.array([0, -1]), {}),
    (("batch", 10), "Flatten", None, {}),
    (("batch", 3), "Expand", np.array([1, 3]), {}),
    (("batch", 3, 4), "Transpose", None, {"perm": [0, 1, 2]}),
])
def test_shape_noops_removed(in_shape, op, arg, attrs):
    g = Graph()
    x = g.add_input("x", "float32", in_shape)
    r = g.add_node("Relu", [x]).output
    y = g.add_node(op, [r] if arg is None else [r, arg], attrs).output
    g.set_outputs([g.add_node("Neg", [y], name="out").output])
    assert_rewrite_keeps_outputs(g, RemoveIdentityPass(), [random_feeds(g, batch=2)])
    assert op_types(g) == ["Relu", "Neg"]


def test_real_reshape_stays():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 10))
    y = g.add_node("Reshape", [x, np.array([0, 2, 5])]).output
    g.set_outputs([g.add_node("Relu", [y]).output])
    assert RemoveIdentityPass().run(g).changed is False


def test_cancelling_transposes_around_a_channels_last_op_vanish():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 3, 4, 5))
    relu = g.add_node("Relu", [x]).output
    nhwc = g.add_node("Transpose", [relu], {"perm": [0, 2, 3, 1]}).output
    nchw = g.add_node("Transpose", [nhwc], {"perm": [0, 3, 1, 2]}).output
    g.set_outputs([g.add_node("Neg", [nchw], name="out").output])
    result = assert_rewrite_keeps_outputs(g, RemoveIdentityPass(), [random_feeds(g)])
    assert op_types(g) == ["Relu", "Neg"] and result.changed


def test_non_cancelling_transposes_merge_into_one():
    g = Graph()
    x = g.add_input("x", "float32", (2, 3, 4, 5))
    a = g.add_node("Transpose", [x], {"perm": [0, 2, 3, 1]}).output
    b = g.add_node("Transpose", [a], {"perm": [2, 1, 0, 3]}).output
    g.set_outputs([g.add_node("Neg", [b]).output])
    assert_rewrite_keeps_outputs(g, RemoveIdentityPass(), [random_feeds(g)])
    assert op_types(g) == ["Transpose", "Neg"]
    assert g.nodes[0].inputs[0] is x and g.nodes[0].attrs["perm"] == [3, 2, 0, 1]


def test_default_perm_transposes_cancel():
    g = Graph()
    x = g.add_input("x", "float32", (2, 3, 4))
    relu = g.add_node("Relu", [x]).output
    t = g.add_node("Transpose", [g.add_node("Transpose", [relu]).output]).output
    g.set_outputs([g.add_node("Neg", [t]).output])
    assert_rewrite_keeps_outputs(g, RemoveIdentityPass(), [random_feeds(g)])
    assert op_types(g) == ["Relu", "Neg"]


def test_transpose_read_elsewhere_is_kept_when_pair_does_not_cancel():
    g = Graph()
    x = g.add_input("x", "float32", (2, 3, 4))
    a = g.add_node("Transpose", [x], {"perm": [1, 0, 2]}).output
    b = g.add_node("Transpose", [a], {"perm": [0, 2, 1]}).output
    g.set_outputs([b, a])
    assert RemoveIdentityPass().run(g).changed is False


def test_reshape_chain_collapses():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 2, 3, 4))
    flat = g.add_node("Flatten", [x]).output
    r = g.add_node("Reshape", [flat, np.array([-1, 6, 4])]).output
    g.set_outputs([g.add_node("Neg", [r]).output])
    assert_rewrite_keeps_outputs(g, RemoveIdentityPass(), [random_feeds(g, batch=3)])
    assert op_types(g) == ["Reshape", "Neg"] and g.nodes[0].inputs[0] is x


def test_graph_output_identity_removed_and_name_kept():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 4))
    relu = g.add_node("Relu", [x], name="relu").output
    g.set_outputs([g.add_node("Identity", [relu], name="probabilities").output])
    assert_rewrite_keeps_outputs(g, RemoveIdentityPass(), [random_feeds(g)])
    assert op_types(g) == ["Relu"] and g.outputs[0].name == "probabilities"


def test_identity_kept_when_removal_would_rename_a_graph_output():
    # Output = Identity(graph input): removing it would expose the input's name.
    g = Graph()
    x = g.add_input("x", "float32", (4,))
    g.set_outputs([g.add_node("Identity", [x], name="y").output])
    assert RemoveIdentityPass().run(g).changed is False
    # Two outputs, one the Identity of the other: both names must survive.
    g = Graph()
    x = g.add_input("x", "float32", (4,))
    r = g.add_node("Relu", [x], name="r").output
    g.set_outputs([r, g.add_node("Identity", [r], name="copy").output])
    assert RemoveIdentityPass().run(g).changed is False
    # A constant output through Identity.
    g = Graph()
    g.add_input("x", "float32", (4,))
    g.set_outputs([g.add_node("Identity", [np.ones(4, np.float32)], name="y").output])
    assert RemoveIdentityPass().run(g).changed is False
