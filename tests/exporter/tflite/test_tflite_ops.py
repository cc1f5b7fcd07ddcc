"""One IR op at a time: each exports to the expected TFLite builtin, loads in LiteRT's
interpreter and computes what edgefw's runtime computes (float32, <= 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir import Graph
from tests.exporter.tflite.tflite_checks import check_float, op_names

RNG = np.random.default_rng(0)


def rand(*shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    return RNG.uniform(low, high, shape).astype(np.float32)


def one_node(op: str, shape: tuple, *extra, attrs=None, dtype: str = "float32") -> Graph:
    g = Graph(op.lower())
    x = g.add_input("x", dtype, shape)
    g.set_outputs([g.add_node(op, [x, *extra], attrs or {}, name=op.lower()).output])
    return g


@pytest.mark.parametrize("op,builtin,low", [
    ("Relu", "RELU", -2), ("Sigmoid", "LOGISTIC", -2), ("Tanh", "TANH", -2), ("Exp", "EXP", -2),
    ("Abs", "ABS", -2), ("Neg", "NEG", -2), ("Sqrt", "SQRT", 0.1), ("Log", "LOG", 0.1),
    ("Floor", "FLOOR", -2), ("Ceil", "CEIL", -2), ("Sin", "SIN", -2), ("Cos", "COS", -2),
    ("Reciprocal", "DIV", 0.5),
])
def test_unary(op, builtin, low):
    g = one_node(op, ("batch", 3, 5))
    check_float(g, {"x": rand(2, 3, 5, low=low)}, expect_ops=[builtin])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    g = one_node("Gelu", ("batch", 7), attrs={"approximate": approximate})
    check_float(g, {"x": rand(3, 7, low=-4, high=4)}, expect_ops=["GELU"])


def test_leaky_relu():
    g = one_node("LeakyRelu", ("batch", 6), attrs={"alpha": 0.2})
    check_float(g, {"x": rand(2, 6)}, expect_ops=["LEAKY_RELU"])


@pytest.mark.parametrize("bounds,ops", [
    ((0.0, 6.0), ["RELU6"]), ((-1.0, 1.0), ["RELU_N1_TO_1"]), ((0.0, None), ["RELU"]),
    ((-0.5, 1.5), ["MAXIMUM", "MINIMUM"]), ((None, 0.25), ["MINIMUM"]),
])
def test_clip(bounds, ops):
    lo, hi = bounds
    g = Graph("clip")
    x = g.add_input("x", "float32", ("batch", 8))
    inputs = [x, None if lo is None else np.float32(lo), None if hi is None else np.float32(hi)]
    g.set_outputs([g.add_node("Clip", inputs).output])
    check_float(g, {"x": rand(2, 8, low=-8, high=8)}, expect_ops=ops)


@pytest.mark.parametrize("op,builtin", [("Add", "ADD"), ("Sub", "SUB"), ("Mul", "MUL"),
                                        ("Div", "DIV"), ("Pow", "POW")])
def test_binary_broadcast(op, builtin):
    g = Graph("binary")
    a = g.add_input("a", "float32", ("batch", 4, 5))
    b = g.add_input("b", "float32", (5,))
    g.set_outputs([g.add_node(op, [a, b]).output])
    check_float(g, {"a": rand(2, 4, 5, low=0.5), "b": rand(5, low=0.5)}, expect_ops=[builtin])


@pytest.mark.parametrize("op,builtin", [("Equal", "EQUAL"), ("Greater", "GREATER"),
                                        ("Less", "LESS"), ("LessOrEqual", "LESS_EQUAL")])
def test_comparisons(op, builtin):
    g = Graph("compare")
    a = g.add_input("a", "float32", ("batch", 6))
    g.set_outputs([g.add_node(op, [a, np.float32(0.0)]).output])
    x = np.float32([[-1, 0, 1, 2, 0, -3]])
    check_float(g, {"a": x}, expect_ops=[builtin])


def test_where_and_cast():
    g = Graph("where")
    a = g.add_input("a", "float32", ("batch", 6))
    positive = g.add_node("Greater", [a, np.float32(0.0)]).output
    chosen = g.add_node("Where", [positive, a, np.float32(-1.0)]).output
    g.set_outputs([g.add_node("Cast", [chosen], {"to": 6}).output])  # int32
    check_float(g, {"a": rand(3, 6, low=-5, high=5)}, expect_ops=["GREATER", "SELECT_V2", "CAST"])


@pytest.mark.parametrize("axis", [-1, 1])
def test_softmax_axes(axis):
    g = one_node("Softmax", ("batch", 5, 7), attrs={"axis": axis})
    data = check_float(g, {"x": rand(2, 5, 7)})
    # TFLite normalizes over the last axis: axis 1 needs its data moved there and back.
    assert op_names(data).count("SOFTMAX") == 1
    assert op_names(data).count("TRANSPOSE") == (0 if axis == -1 else 2)


def test_log_softmax():
    check_float(one_node("LogSoftmax", ("batch", 9)), {"x": rand(2, 9)},
                expect_ops=["LOG_SOFTMAX"])


# ---------------------------------------------------------------------- convolution
def conv_graph(cin: int, cout: int, k: int, *, group: int = 1, size: int = 9, **attrs) -> Graph:
    g = Graph("conv")
    x = g.add_input("x", "float32", ("batch", cin, size, size))
    w = rand(cout, cin // group, k, k)
    b = rand(cout)
    conv = g.add_node("Conv", [x, w, b], {"group": group, "kernel_shape": [k, k], **attrs},
                      name="conv", module_path="features.0")
    g.set_outputs([conv.output])
    return g


@pytest.mark.parametrize("attrs,ops", [
    ({}, ["CONV_2D"]),
    ({"pads": [1, 1, 1, 1]}, ["CONV_2D"]),                                   # SAME
    ({"pads": [1, 1, 1, 1], "strides": [2, 2], "size": 8}, ["PAD", "CONV_2D"]),  # not SAME
    ({"pads": [1, 1, 1, 1], "strides": [2, 2]}, ["CONV_2D"]),  # SAME for size 9
    ({"pads": [0, 1, 2, 0]}, ["PAD", "CONV_2D"]),
    ({"auto_pad": "SAME_UPPER", "strides": [2, 2]}, ["CONV_2D"]),
    ({"dilations": [2, 2]}, ["CONV_2D"]),
    ({"strides": [2, 1]}, ["CONV_2D"]),
])
def test_conv(attrs, ops):
    size = attrs.get("size", 9)
    check_float(conv_graph(3, 4, 3, **attrs), {"x": rand(2, 3, size, size)}, expect_ops=ops)


@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_conv(multiplier):
    g = conv_graph(4, 4 * multiplier, 3, group=4, pads=[1, 1, 1, 1])
    check_float(g, {"x": rand(2, 4, 9, 9)}, expect_ops=["DEPTHWISE_CONV_2D"])


@pytest.mark.parametrize("activation,ops", [
    ("Relu", ["CONV_2D"]), (("Clip", 0.0, 6.0), ["CONV_2D"]), ("Tanh", ["CONV_2D", "TANH"]),
    ("Sigmoid", ["CONV_2D", "LOGISTIC"]), (("LeakyRelu", 0.1), ["CONV_2D", "LEAKY_RELU"]),
    (("Clip", -0.5, 0.5), ["CONV_2D", "MAXIMUM", "MINIMUM"]),
])
def test_fused_activation(activation, ops):
    g = conv_graph(2, 3, 3)
    g.nodes[0].meta["fused_activation"] = activation
    check_float(g, {"x": rand(2, 2, 9, 9)}, expect_ops=ops)


def test_grouped_conv_fails_naming_the_node():
    from edgefw.errors import ExportError
    from exporter.tflite import to_tflite

    with pytest.raises(ExportError, match=r"node 'conv' \(Conv, module features.0\).*group=2"):
        to_tflite(conv_graph(4, 4, 3, group=2))


# ---------------------------------------------------------------------- pooling
@pytest.mark.parametrize("op,attrs,ops", [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}, ["MAX_POOL_2D"]),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 0, 0]},
     ["PADV2", "MAX_POOL_2D"]),
    ("MaxPool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, ["MAX_POOL_2D"]),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2]}, ["AVERAGE_POOL_2D"]),
    ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, ["AVERAGE_POOL_2D"]),
    ("AveragePool", {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
     ["PAD", "AVERAGE_POOL_2D"]),
    ("AveragePool", {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1},
     ["PAD", "AVERAGE_POOL_2D"]),  # SAME pads, but the zeros count: explicit PAD
])
def test_pooling(op, attrs, ops):
    check_float(one_node(op, ("batch", 3, 9, 9), attrs=attrs), {"x": rand(2, 3, 9, 9)},
                expect_ops=ops)


def test_global_average_pool():
    check_float(one_node("GlobalAveragePool", ("batch", 5, 6, 6)), {"x": rand(3, 5, 6, 6)},
                expect_ops=["MEAN"])


# ---------------------------------------------------------------------- matrix products
@pytest.mark.parametrize("trans_a,trans_b,alpha,beta", [(0, 1, 1.0, 1.0), (0, 0, 0.5, 2.0),
                                                       (1, 1, 1.0, 1.0)])
def test_gemm(trans_a, trans_b, alpha, beta):
    g = Graph("gemm")
    x = g.add_input("x", "float32", (6, 4) if trans_a else (4, 6))
    w = rand(5, 6) if trans_b else rand(6, 5)
    g.set_outputs([g.add_node("Gemm", [x, w, rand(5)], {"transA": trans_a, "transB": trans_b,
                                                        "alpha": alpha, "beta": beta}).output])
    ops = ["FULLY_CONNECTED"] + (["TRANSPOSE"] if trans_a else [])
    check_float(g, {"x": rand(6, 4) if trans_a else rand(4, 6)}, expect_ops=ops)


def test_matmul_constant_weight_with_bias_is_one_fully_connected():
    g = Graph("linear3d")
    x = g.add_input("x", "float32", ("batch", 4, 6))
    y = g.add_node("MatMul", [x, rand(6, 3)]).output
    g.set_outputs([g.add_node("Add", [y, rand(3)]).output])
    check_float(g, {"x": rand(2, 4, 6)}, expect_ops=["FULLY_CONNECTED"])


def test_batch_matmul_reads_transposed_operand_with_adjoint():
    g = Graph("attention_scores")
    q = g.add_input("q", "float32", ("batch", 2, 4, 8))
    k = g.add_input("k", "float32", ("batch", 2, 4, 8))
    kt = g.add_node("Transpose", [k], {"perm": [0, 1, 3, 2]}).output
    g.set_outputs([g.add_node("MatMul", [q, kt]).output])
    # layout NCHW: rank-4 inputs as in the IR (NHWC would store these non-images NHWC).
    check_float(g, {"q": rand(3, 2, 4, 8), "k": rand(3, 2, 4, 8)}, layout="NCHW",
                expect_ops=["BATCH_MATMUL"])  # no TRANSPOSE: BATCH_MATMUL's adj_y


# ---------------------------------------------------------------------- data movement
def test_reshape_flatten_squeeze_unsqueeze():
    g = Graph("shapes")
    x = g.add_input("x", "float32", ("batch", 3, 1, 4))
    s = g.add_node("Squeeze", [x, np.int64([2])]).output
    u = g.add_node("Unsqueeze", [s, np.int64([1])]).output
    r = g.add_node("Reshape", [u, np.int64([0, 12])]).output
    g.set_outputs([g.add_node("Flatten", [r], {"axis": 1}).output])
    check_float(g, {"x": rand(5, 3, 1, 4)}, layout="NCHW")


def test_transposes_compose_and_cancel():
    g = Graph("transposes")
    x = g.add_input("x", "float32", ("batch", 3, 4, 5))
    t = g.add_node("Transpose", [x], {"perm": [0, 2, 3, 1]}).output
    t = g.add_node("Relu", [t]).output
    t = g.add_node("Transpose", [t], {"perm": [0, 3, 1, 2]}).output
    g.set_outputs([g.add_node("Transpose", [t], {"perm": [0, 2, 3, 1]}).output])
    # NCHW -> NHWC, NHWC -> NCHW, NCHW -> NHWC on NHWC-stored input: the output is the
    # stored data itself, so no TRANSPOSE is written at all.
    check_float(g, {"x": rand(2, 3, 4, 5)}, layout="NCHW", expect_ops=["TRANSPOSE", "RELU"])
    check_float(g, {"x": rand(2, 3, 4, 5)}, layout="NHWC", expect_ops=["RELU", "TRANSPOSE"])


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1], [3], [1], [1]), ([0, -3], [2, 10**9], [1, 2], [1, 2]), ([-1], [-10**9], [2], [-1]),
    ([3], [0], [2], [-2]),
])
def test_slice(starts, ends, axes, steps):
    g = Graph("slice")
    x = g.add_input("x", "float32", ("batch", 4, 6))
    g.set_outputs([g.add_node("Slice", [x, np.int64(starts), np.int64(ends), np.int64(axes),
                                        np.int64(steps)]).output])
    check_float(g, {"x": rand(2, 4, 6)}, expect_ops=["STRIDED_SLICE"])


def test_concat_of_nhwc_feature_maps_stays_nhwc():
    g = Graph("concat")
    x = g.add_input("x", "float32", ("batch", 2, 5, 5))
    a = g.add_node("Conv", [x, rand(3, 2, 1, 1)], {"kernel_shape": [1, 1]}).output
    b = g.add_node("Conv", [x, rand(4, 2, 1, 1)], {"kernel_shape": [1, 1]}).output
    g.set_outputs([g.add_node("Concat", [a, b], {"axis": 1}).output])
    check_float(g, {"x": rand(2, 2, 5, 5)}, expect_ops=["CONV_2D", "CONV_2D", "CONCATENATION"])


@pytest.mark.parametrize("mode,value,ops", [("constant", None, ["PAD"]),
                                            ("constant", 1.5, ["PADV2"]),
                                            ("reflect", None, ["MIRROR_PAD"])])
def test_pad(mode, value, ops):
    g = Graph("pad")
    x = g.add_input("x", "float32", ("batch", 3, 5))
    inputs = [x, np.int64([0, 1, 2, 0, 2, 1])]
    if value is not None:
        inputs.append(np.float32(value))
    g.set_outputs([g.add_node("Pad", inputs, {"mode": mode}).output])
    check_float(g, {"x": rand(2, 3, 5)}, expect_ops=ops)


def test_gather_embedding_and_constant_indices():
    g = Graph("gather")
    ids = g.add_input("ids", "int64", ("batch", 3))
    table = rand(10, 4)
    emb = g.add_node("Gather", [table, ids], {"axis": 0}).output
    g.set_outputs([g.add_node("Gather", [emb, np.int64([-1, 0])], {"axis": 1}).output])
    check_float(g, {"ids": np.int64([[1, 9, 0], [3, 3, 2]])}, expect_ops=["GATHER", "GATHER"])


@pytest.mark.parametrize("sizes", [None, [1, 3]])
def test_split(sizes):
    g = Graph("split")
    x = g.add_input("x", "float32", ("batch", 4))
    inputs = [x] if sizes is None else [x, np.int64(sizes)]
    node = g.add_node("Split", inputs, {"axis": 1, "num_outputs": 2} if sizes is None
                      else {"axis": 1}, num_outputs=2)
    g.set_outputs(node.outputs)
    check_float(g, {"x": rand(3, 4)}, expect_ops=["SPLIT" if sizes is None else "SPLIT_V"])


@pytest.mark.parametrize("op,builtin,keepdims", [("ReduceMean", "MEAN", 1),
                                                 ("ReduceSum", "SUM", 0),
                                                 ("ReduceMax", "REDUCE_MAX", 1)])
def test_reductions_on_nhwc_data(op, builtin, keepdims):
    g = Graph("reduce")
    x = g.add_input("x", "float32", ("batch", 3, 4, 5))
    y = g.add_node("Relu", [x]).output
    g.set_outputs([g.add_node(op, [y, np.int64([1, 3])], {"keepdims": keepdims}).output])
    check_float(g, {"x": rand(2, 3, 4, 5)})


def test_batch_norm_unfolded_and_layer_norm():
    g = Graph("norms")
    x = g.add_input("x", "float32", ("batch", 3, 4, 4))
    stats = [rand(3, low=0.5), rand(3), rand(3), rand(3, low=0.5, high=2)]
    bn = g.add_node("BatchNormalization", [x, *stats]).output
    ln = g.add_node("LayerNormalization", [bn, rand(4), rand(4)], {"axis": -1}).output
    g.set_outputs([ln])
    check_float(g, {"x": rand(2, 3, 4, 4)})
