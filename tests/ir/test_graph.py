"""Graph builder, editing API, copy, check() violations and the printed listing."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import DTypeError, GraphError, ShapeError, UnsupportedOpError
from edgefw.ir import Graph, Node, Value


def mlp_graph() -> Graph:
    g = Graph("mlp")
    x = g.add_input("input", "float32", ("batch", 1, 28, 28))
    flat = g.add_node("Flatten", [x]).output
    w1 = g.add_constant("fc1.weight", np.zeros((128, 784), np.float32))
    b1 = g.add_constant("fc1.bias", np.zeros(128, np.float32))
    h = g.add_node("Gemm", [flat, w1, b1], {"transB": 1}, module_path="fc1").output
    r = g.add_node("Relu", [h], module_path="act").output
    w2 = g.add_constant("fc2.weight", np.zeros((10, 128), np.float32))
    b2 = g.add_constant("fc2.bias", np.zeros(10, np.float32))
    y = g.add_node("Gemm", [r, w2, b2], {"transB": 1}, module_path="fc2").output
    g.set_outputs([y])
    return g


# ------------------------------------------------------------------ builder
def test_builder_infers_outputs_and_names():
    g = mlp_graph()
    g.check()
    assert [n.name for n in g.nodes] == ["flatten", "fc1", "act", "fc2"]
    assert [n.op_type for n in g.nodes] == ["Flatten", "Gemm", "Relu", "Gemm"]
    assert g.outputs[0].name == "fc2"
    assert g.outputs[0].shape == ("batch", 10) and g.outputs[0].dtype == "float32"
    fc1 = g.node("fc1")
    assert fc1.module_path == "fc1"
    assert fc1.attr("transB") == 1 and fc1.attr("alpha") == 1.0  # default from the schema
    assert fc1.output.producer is fc1
    assert g.producer(fc1.output) is fc1 and g.producer(g.inputs[0]) is None


def test_names_are_made_unique():
    g = Graph()
    x = g.add_input("x", "float32", (2,))
    a = g.add_constant("w", np.ones(2, np.float32))
    b = g.add_constant("w", np.ones(2, np.float32))
    assert (a.name, b.name) == ("w", "w_1")
    n1 = g.add_node("Relu", [x])
    n2 = g.add_node("Relu", [n1.output])
    n3 = g.add_node("Add", [n2.output, a], name="relu")
    assert [n.name for n in (n1, n2, n3)] == ["relu", "relu_1", "relu_2"]
    assert [n.output.name for n in (n1, n2, n3)] == ["relu", "relu_1", "relu_2"]
    split = g.add_node("Split", [x], {"axis": 0}, num_outputs=2)
    assert [v.name for v in split.outputs] == ["split_0", "split_1"]
    with pytest.raises(GraphError, match="input 'x'.*exists"):
        g.add_input("x", "float32", (2,))


def test_inputs_by_name_array_and_constant_snapshot():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 3))
    weights = np.ones(3, np.float32)
    node = g.add_node("Mul", ["x", weights], name="scale")
    const = node.inputs[1]
    assert const.is_constant and const.name == "scale.in1"
    weights[0] = 5.0  # the graph took a copy: later training does not change it
    assert const.data[0] == 1.0
    assert not const.data.flags.writeable
    assert node.inputs[0] is x


def test_builder_errors_name_the_node():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 784))
    w = g.add_constant("fc.weight", np.zeros((10, 700), np.float32))
    with pytest.raises(ShapeError, match=r"node 'fc' \(Gemm, module fc\): Gemm inner dims"):
        g.add_node("Gemm", [x, w], {"transB": 1}, module_path="fc")
    with pytest.raises(GraphError, match="unknown attribute 'transb'"):
        g.add_node("Gemm", [x, w], {"transb": 1})
    with pytest.raises(GraphError, match="required attribute 'axis'"):
        g.add_node("Concat", [x, x])
    with pytest.raises(GraphError, match="attribute 'transB' must be an int, got 'yes'"):
        g.add_node("Gemm", [x, w], {"transB": "yes"})
    with pytest.raises(GraphError, match="attribute 'perm' must be a list of ints, got 2"):
        g.add_node("Transpose", [x], {"perm": 2})
    with pytest.raises(GraphError, match="takes 2 to 3 inputs, got 1"):
        g.add_node("Gemm", [x])
    with pytest.raises(UnsupportedOpError, match="'Frobnicate'.*known ops"):
        g.add_node("Frobnicate", [x])
    other = Graph().add_input("y", "float32", (3,))
    with pytest.raises(GraphError, match="does not belong"):
        g.add_node("Relu", [other])
    with pytest.raises(DTypeError, match="share one dtype"):
        g.add_node("Add", [x, g.add_constant("i", np.zeros(784, np.int64))])
    assert g.nodes == []  # failed adds leave nothing behind


def test_before_inserts_in_place():
    g = Graph()
    x = g.add_input("x", "float32", (3,))
    last = g.add_node("Relu", [x], name="last")
    first = g.add_node("Neg", [x], name="first", before=last)
    assert g.nodes == [first, last]


# ------------------------------------------------------------------ editing
def test_consumers_uses_and_replace_all_uses():
    g = mlp_graph()
    flat = g.node("flatten").output
    assert g.consumers(flat) == [g.node("fc1")]
    uses = g.uses()
    assert uses[id(flat)] == [(g.node("fc1"), 0)]
    relu = g.node("act")
    count = g.replace_all_uses(relu.output, g.node("fc1").output)
    assert count == 1 and g.node("fc2").inputs[0] is g.node("fc1").output
    g.remove_node(relu)
    g.check()
    assert "act" not in [n.name for n in g.nodes]


def test_replace_graph_output_keeps_its_name():
    g = Graph()
    x = g.add_input("x", "float32", (3,))
    relu = g.add_node("Relu", [x], name="relu")
    ident = g.add_node("Identity", [relu.output], name="y", output_names=["y"])
    g.set_outputs([ident.output])
    g.replace_all_uses(ident.output, relu.output)
    g.remove_node(ident)
    g.check()
    assert g.outputs[0] is relu.output and relu.output.name == "y"


def test_remove_node_refuses_while_used():
    g = mlp_graph()
    with pytest.raises(GraphError, match="cannot remove node 'fc1'.*still used by nodes \\['act'"):
        g.remove_node(g.node("fc1"))
    with pytest.raises(GraphError, match="graph outputs"):
        g.remove_node(g.node("fc2"))


def test_remove_unused_constants():
    g = mlp_graph()
    g.add_constant("orphan", np.zeros(3, np.float32))
    assert g.remove_unused_constants() == 1
    assert "orphan" not in g.constants and not g.has_value("orphan")
    with pytest.raises(GraphError, match="still used"):
        g.remove_constant(g.constants["fc1.weight"])


def test_topological_sort_restores_order_and_finds_cycles():
    g = mlp_graph()
    g.nodes.reverse()
    with pytest.raises(GraphError, match="before it is produced"):
        g.check()
    g.topological_sort()
    assert [n.name for n in g.nodes] == ["flatten", "fc1", "act", "fc2"]
    g.check()
    # Make a cycle: fc1 reads act's output, act reads fc1's.
    g.node("fc1").inputs[0] = g.node("act").output
    with pytest.raises(GraphError, match="cycle through.*fc1"):
        g.topological_sort()


def test_copy_is_independent():
    g = mlp_graph()
    c = g.copy()
    c.check()
    assert str(c) == str(g)
    c.node("fc1").attrs["transB"] = 0
    c.node("fc1").meta["fused_activation"] = "Relu"
    c.nodes.pop()
    c.constants.pop("fc2.bias")
    assert g.node("fc1").attrs["transB"] == 1 and "fused_activation" not in g.node("fc1").meta
    assert len(g.nodes) == 4 and "fc2.bias" in g.constants
    assert c.constants["fc1.weight"].data is g.constants["fc1.weight"].data  # shared read-only
    assert c.inputs[0] is not g.inputs[0]
    assert c.node("fc1").inputs[1] is c.constants["fc1.weight"]
    g.check()


# ------------------------------------------------------------------ check()
def test_check_catches_reassigned_value():
    g = mlp_graph()
    g.node("act").outputs[0] = g.node("fc1").output
    with pytest.raises(GraphError, match="node 'act'.*reassigns node 'fc1'.*SSA"):
        g.check()


def test_check_catches_reassigned_input_and_constant():
    g = mlp_graph()
    g.node("flatten").outputs[0] = g.inputs[0]
    with pytest.raises(GraphError, match="node 'flatten'.*reassigns graph input 'input'"):
        g.check()
    g = mlp_graph()
    g.node("fc2").outputs[0] = g.constants["fc1.bias"]
    with pytest.raises(GraphError, match="node 'fc2'.*reassigns constant 'fc1.bias'"):
        g.check()


def test_check_catches_undefined_input():
    g = mlp_graph()
    g.node("fc2").inputs[0] = Value("ghost", "float32", ("batch", 128))
    with pytest.raises(GraphError, match="node 'fc2'.*input 0 'ghost' is not defined"):
        g.check()


def test_check_catches_unknown_op_and_bad_attributes():
    g = mlp_graph()
    g.node("act").op_type = "Relu6"
    with pytest.raises(GraphError, match="node 'act' \\(Relu6.*unknown op type 'Relu6'"):
        g.check()
    g = mlp_graph()
    g.node("flatten").attrs = {"axes": 1}  # a misspelt attribute
    with pytest.raises(GraphError, match="node 'flatten'.*unknown attribute 'axes'"):
        g.check()
    g = mlp_graph()
    g.node("fc1").inputs.pop()
    g.node("fc1").inputs.pop()
    with pytest.raises(GraphError, match="node 'fc1' \\(Gemm, module fc1\\).*takes 2 to 3 inputs"):
        g.check()


def test_check_catches_inconsistent_shape_and_dtype():
    g = mlp_graph()
    g.node("fc1").output.shape = ("batch", 64)
    with pytest.raises(GraphError, match="output 'fc1' is declared \\[batch,64\\] but inference "
                                         "gives \\[batch,128\\]"):
        g.check()
    g = mlp_graph()
    g.node("act").output.dtype = "float16"
    with pytest.raises(GraphError, match="node 'act'.*declared float16 but inference gives "
                                         "float32"):
        g.check()
    g = mlp_graph()
    g.constants["fc1.weight"].shape = (128, 700)
    with pytest.raises(GraphError, match="node 'fc1'.*inference fails"):
        g.check()


def test_check_lists_every_problem_and_requires_outputs():
    g = mlp_graph()
    g.outputs = []
    g.node("act").op_type = "Nope"
    with pytest.raises(GraphError, match="2 problems") as err:
        g.check()
    assert "has no outputs" in str(err.value) and "unknown op type 'Nope'" in str(err.value)


def test_check_catches_duplicate_node_names():
    g = mlp_graph()
    g.node("act").name = "fc1"
    with pytest.raises(GraphError, match="node name is used twice"):
        g.check()


def test_constant_node_feeds_inference():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 16, 5, 5))
    shape = g.add_node("Constant", [], {"value": np.array([-1, 400], np.int64)}).output
    y = g.add_node("Reshape", [x, shape]).output
    assert y.shape == ("batch", 400)


# ------------------------------------------------------------------ printing
def test_print_listing():
    g = mlp_graph()
    g.node("fc1").meta["fused_activation"] = ("Clip", 0.0, 6.0)
    assert str(g) == (
        "graph mlp(%input: float32[batch,1,28,28]) -> (%fc2)  opset 17\n"
        "  constants (4 constants, 397.5 KiB): fc1.weight float32[128,784], "
        "fc1.bias float32[128], fc2.weight float32[10,128], fc2.bias float32[10]\n"
        "  %flatten = Flatten(%input)  # float32[batch,784]\n"
        "  %fc1 = Gemm[+Clip(0,6)](%flatten, fc1.weight, fc1.bias, transB=1)  "
        "# float32[batch,128]  (fc1)\n"
        "  %act = Relu(%fc1)  # float32[batch,128]  (act)\n"
        "  %fc2 = Gemm(%act, fc2.weight, fc2.bias, transB=1)  # float32[batch,10]  (fc2)\n"
        "  return %fc2"
    )
    assert repr(g) == "<Graph 'mlp': 4 nodes, inputs ['input'], outputs ['fc2']>"


def test_print_multi_output_and_omitted_inputs():
    g = Graph("g")
    x = g.add_input("x", "float32", (4, 6))
    parts = g.add_node("Split", [x], {"axis": 1, "num_outputs": 2}, num_outputs=2)
    clip = g.add_node("Clip", [parts.outputs[0], None, np.float32(1.0)])
    g.set_outputs([clip.output, parts.outputs[1]])
    text = str(g)
    assert "%split_0, %split_1 = Split(%x, axis=1, num_outputs=2)  # float32[4,3], " \
           "float32[4,3]" in text
    assert "%clip = Clip(%split_0, _, clip.in2)  # float32[4,3]" in text


def test_node_describe_and_repr():
    g = mlp_graph()
    assert g.node("fc1").describe() == "node 'fc1' (Gemm, module fc1)"
    assert isinstance(g.node("fc1"), Node)
    assert repr(g.inputs[0]) == "<Value input: float32[batch,1,28,28]>"
