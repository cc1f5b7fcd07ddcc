"""The QDQ fusion passes: which groups they take, which they must leave float, and that the
rewritten graph verifies and computes what the QDQ graph did."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from edgefw.ir import Graph, known_ops
from edgefw.ir.passes import (
    DropQDQPairPass,
    FoldQDQWeightsPass,
    FuseDynamicQuantPass,
    FuseQDQPass,
    drop_qdq_pair_pass,
    fold_qdq_weights_pass,
    fuse_dynamic_quant_pass,
    fuse_qdq_pass,
    integer_execution,
    optimize,
    qdq_patterns,
)
from edgefw.ir.schema import integer_ops
from runtime import InferenceSession
from runtime.providers.cpu import supported_ops
from tests.runtime.integer.qdq_graphs import Q, QDQBuilder, op_types, sessions

X_Q, Y_Q = Q(0.02, -10), Q(0.05, 3)


def _conv_graph(*, weight_axis=0, weight_zero_point=0, activation=None, extra=None,
                x_params=X_Q) -> tuple[Graph, QDQBuilder]:
    """x -> Q -> DQ -> Conv(DQ(w), DQ(b)) -> Q -> DQ -> y, with optional twists."""
    rng = np.random.default_rng(20)
    builder = QDQBuilder("conv")
    g = builder.g
    xd = builder.quantized_input("x", ("batch", 2, 6, 6), x_params)
    w = rng.normal(0, 0.3, (3, 2, 3, 3)).astype(np.float32)
    wd, _, w_scale = builder.weight(w, weight_axis, weight_zero_point)
    # (per-channel along axis 1 has 2 scales: any positive bias scale will do there)
    w_scale = w_scale.reshape(-1)
    bias_scale = np.float32(X_Q.scale) * (w_scale if w_scale.size == 3 else w_scale[:1])
    bd, _ = builder.bias(np.array([0.1, -0.2, 0.3]), bias_scale)
    conv = g.add_node("Conv", [xd, wd, bd], {"pads": [1, 1, 1, 1]}, name="conv",
                      module_path="features.0")
    if activation is not None:
        conv.meta["fused_activation"] = activation
    y = builder.output(conv.output, Y_Q)
    if extra == "conv_output_also_read":
        g.set_outputs([y, g.add_node("Sigmoid", [conv.output], name="side").output])
    if extra == "input_dq_also_read":
        g.set_outputs([y, g.add_node("Sigmoid", [xd], name="side").output])
    return g, builder


def _feeds(g: Graph) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(21)
    return {v.name: rng.uniform(-1, 1, (2,) + tuple(v.shape[1:])).astype(v.dtype)
            for v in g.inputs}


def test_conv_group_fuses_and_verifies():
    g, _ = _conv_graph(activation="Relu")
    result = FuseQDQPass().run(g)
    g.check()
    assert result.rewrites == 1
    assert [n.op_type for n in g.nodes] == ["QuantizeLinear", "QConv", "DequantizeLinear"]
    fused = g.node("conv")
    assert fused.domain == "edgefw" and fused.module_path == "features.0"
    assert fused.attr("act_min") == Y_Q.zero_point  # Relu: clamp at the zero point
    assert "fused_activation" not in fused.meta
    assert "edgefw.QConv" in str(g)
    assert FuseQDQPass().run(g).changed is False  # idempotent
    assert not any(n.op_type == "DequantizeLinear" and n.inputs[0].is_constant for n in g.nodes)
    assert len(g.constants) == len({v.name for n in g.nodes for v in n.inputs
                                    if v is not None and v.is_constant})


def test_fused_graph_computes_what_the_qdq_graph_did():
    g, _ = _conv_graph(activation=("Clip", 0.0, 6.0))
    basic, fused = sessions(g)
    feeds = _feeds(g)
    a, b = fused.run(None, feeds)[0], basic.run(None, feeds)[0]
    assert a.dtype == np.float32 and a.shape == b.shape  # I/O stays float
    assert np.max(np.abs(a - b)) <= Y_Q.scale * 1.0001
    assert op_types(fused)[0] == "QuantizeLinear" and op_types(fused)[-1] == "DequantizeLinear"


@pytest.mark.parametrize("twist", [
    {"weight_axis": 1},                          # per-channel along the input channels
    {"weight_zero_point": 2},                    # asymmetric weights
    {"activation": ("LeakyRelu", 0.1)},          # not a clamp
    {"activation": "Sigmoid"},
    {"extra": "conv_output_also_read"},          # the float conv output is still needed
])
def test_invalid_groups_stay_float(twist):
    g, _ = _conv_graph(**twist)
    assert FuseQDQPass().run(g).changed is False
    g.check()
    assert "Conv" in [n.op_type for n in g.nodes]


def test_input_dq_shared_with_a_float_reader_is_kept_for_it():
    g, _ = _conv_graph(extra="input_dq_also_read")
    basic = InferenceSession(g, optimization="basic")
    assert FuseQDQPass().run(g).changed
    g.check()
    types = [n.op_type for n in g.nodes]
    assert "QConv" in types and types.count("DequantizeLinear") == 2  # x's DQ and y's
    feeds = _feeds(g)
    fused_out = InferenceSession(g, optimization="none").run(None, feeds)
    base_out = basic.run(None, feeds)
    np.testing.assert_array_equal(fused_out[1], base_out[1])
    assert np.max(np.abs(fused_out[0] - base_out[0])) <= Y_Q.scale * 1.0001


def test_per_axis_activation_parameters_stay_float():
    builder = QDQBuilder("axis")
    g = builder.g
    x = g.add_input("x", "float32", (2, 3))
    scale, zp = np.full(3, 0.1, np.float32), np.zeros(3, np.int8)
    xq = g.add_node("QuantizeLinear", [x, scale, zp], {"axis": 1}).output
    xd = g.add_node("DequantizeLinear", [xq, scale, zp], {"axis": 1}).output
    wd, _, _ = builder.weight(np.ones((4, 3), np.float32), 0)
    y = g.add_node("Gemm", [xd, wd], {"transB": 1}).output
    builder.output(y, Y_Q)
    assert FuseQDQPass().run(g).changed is False


@pytest.mark.parametrize("attrs", [{"transA": 1}, {"alpha": 0.5}])
def test_gemm_attributes_tflite_cannot_express_stay_float(attrs):
    builder = QDQBuilder("gemm")
    g = builder.g
    shape = (3, 2) if attrs.get("transA") else (2, 3)
    xd = builder.quantized_input("x", shape, X_Q)
    wd, _, _ = builder.weight(np.ones((4, 3), np.float32), 0)
    y = g.add_node("Gemm", [xd, wd], {"transB": 1, **attrs}).output
    builder.output(y, Y_Q)
    assert FuseQDQPass().run(g).changed is False


def test_bias_beyond_int32_stays_float():
    builder = QDQBuilder("bias")
    g = builder.g
    xd = builder.quantized_input("x", (2, 3), Q(1e-4, 0))
    wd, _, _ = builder.weight(np.full((2, 3), 1e-3, np.float32), 0)
    y = g.add_node("Gemm", [xd, wd, np.array([1e6, 0], np.float32)], {"transB": 1}).output
    builder.output(y, Y_Q)
    assert FuseQDQPass().run(g).changed is False


def test_integer_model_io_reads_and_writes_integers():
    rng = np.random.default_rng(22)
    builder = QDQBuilder("int_io")
    g = builder.g
    x = g.add_input("x", "int8", ("batch", 6))
    scale, zp = g.add_constant("xs", np.float32(0.1)), g.add_constant("xz", np.int8(0))
    xd = g.add_node("DequantizeLinear", [x, scale, zp]).output
    wd, _, _ = builder.weight(rng.normal(0, 1, (4, 6)).astype(np.float32), 0)
    y = g.add_node("Gemm", [xd, wd], {"transB": 1}).output
    builder.quantized_output(y, Q(0.2, 0))
    basic, fused = sessions(g)
    assert op_types(fused) == ["QGemm"]
    assert fused.get_inputs()[0].dtype == "int8" and fused.get_outputs()[0].dtype == "int8"
    feeds = {"x": rng.integers(-128, 128, (5, 6)).astype(np.int8)}
    assert np.max(np.abs(fused.run(None, feeds)[0].astype(int)
                         - basic.run(None, feeds)[0].astype(int))) <= 1


def test_session_never_changes_the_callers_graph():
    g, _ = _conv_graph()
    before = str(g)
    InferenceSession(g, optimization="all")
    assert str(g) == before  # exporters see the QDQ graph, never the fused ops


def test_dynamic_and_fold_passes_leave_float_graphs_alone():
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 4))
    y = g.add_node("Gemm", [x, np.ones((3, 4), np.float32)], {"transB": 1}).output
    g.set_outputs([y])
    for p in (FuseQDQPass(), DropQDQPairPass(), FuseDynamicQuantPass(), FoldQDQWeightsPass()):
        assert p.run(g).changed is False
    assert [n.op_type for n in optimize(g, "all", integer_kernels=True).nodes] == ["Gemm"]


def test_every_integer_op_has_a_cpu_kernel():
    assert sorted(known_ops("edgefw")) == supported_ops("edgefw")
    assert set(known_ops("edgefw")) >= {"QConv", "QGemm", "QAdd", "QAveragePool",
                                        "QGlobalAveragePool", "QDynamicGemm", "QDynamicConv"}
    assert not {"QConv", "QGemm"} & set(known_ops())  # never in the ONNX domain


def test_docstring_examples():
    from runtime.providers.cpu.kernels import integer_common

    for module in (fuse_qdq_pass, drop_qdq_pair_pass, fuse_dynamic_quant_pass,
                   fold_qdq_weights_pass, integer_execution, qdq_patterns, integer_ops,
                   integer_common):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_optimize_keeps_the_qdq_form_by_default():
    g, _ = _conv_graph()
    optimize(g, "all")
    assert "QConv" not in [n.op_type for n in g.nodes]
    assert [n.op_type for n in g.nodes].count("DequantizeLinear") == 4  # x, w, b, y
    assert "fuse_qdq" not in g.metadata["passes"]
