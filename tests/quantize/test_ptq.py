"""The QDQ graphs quantize_static / quantize_dynamic / quantize_16x8 build: structure per
mode, parameters, and their outputs in the runtime against float and a numpy reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgefw
import quantize
from edgefw import models
from edgefw.errors import QuantizationError
from edgefw.ir import Graph
from quantize.qparams import QParams, compute_qparams, dequantize_array, quantize_array
from tests.quantize.graphs import conv_net, node_info, producer_op, run

X = np.random.default_rng(1).random((64, 1, 8, 8)).astype(np.float32)


def dq_weight(graph: Graph, node_name: str, index: int = 1):
    """The DequantizeLinear feeding input ``index`` of node ``node_name``."""
    return graph.node(node_name).inputs[index].producer


def qdq_after(graph: Graph, value_name: str):
    """(QuantizeLinear, DequantizeLinear) placed after value ``value_name``."""
    q = next(n for n in graph.consumers(graph.value(value_name))
             if n.op_type == "QuantizeLinear")
    return q, graph.consumers(q.output)[0]


@pytest.fixture(scope="module")
def int8():
    return quantize.quantize_static(conv_net(), X)


def test_weights_are_int8_per_output_channel_with_the_right_axis(int8):
    conv_w = dq_weight(int8, "conv")
    assert conv_w.op_type == "DequantizeLinear" and conv_w.attrs["axis"] == 0
    q, scale, zp = conv_w.inputs
    assert q.name == "conv.weight.quantized" and q.dtype == "int8" and q.shape == (4, 1, 3, 3)
    assert scale.shape == (4,) and zp.dtype == "int8" and not zp.data.any()
    w = conv_net().value("conv.weight").data
    np.testing.assert_allclose(scale.data, np.abs(w).reshape(4, -1).max(1) / 127, rtol=1e-6)
    assert dq_weight(int8, "fc1").attrs["axis"] == 0  # Gemm transB=1: W is (N, K)
    assert dq_weight(int8, "fc2").attrs["axis"] == 1  # Gemm transB=0: W is (K, N)
    assert dq_weight(int8, "fc2").inputs[1].shape == (5,)
    assert dq_weight(int8, "conv").output.quant.axis == 0


def test_per_tensor_weights_have_one_scale():
    q = quantize.quantize_static(conv_net(), X, per_channel=False)
    for name in ("conv", "fc1", "fc2"):
        dq = dq_weight(q, name)
        assert "axis" not in dq.attrs and dq.inputs[1].shape == ()


def test_bias_is_int32_at_input_scale_times_weight_scale(int8):
    for name in ("conv", "fc1", "fc2"):
        node = int8.node(name)
        bias_dq = node.inputs[2].producer
        b_q, b_scale, b_zp = bias_dq.inputs
        assert b_q.dtype == "int32" and b_zp.dtype == "int32" and not b_zp.data.any()
        input_scale = node.inputs[0].producer.inputs[1].data
        weight_scale = node.inputs[1].producer.inputs[1].data
        np.testing.assert_array_equal(b_scale.data, np.float32(input_scale) * weight_scale)
        float_bias = conv_net().value(f"{name}.bias").data
        np.testing.assert_allclose(b_q.data * b_scale.data, float_bias,
                                   atol=float(b_scale.data.max()) / 2 + 1e-9)


def test_relu_is_absorbed_and_activations_get_qdq(int8):
    assert "Relu" not in [n.op_type for n in int8.nodes]
    conv = int8.node("conv")
    assert conv.meta["fused_activation"] == "Relu"
    q, dq = qdq_after(int8, conv.output.name)  # Q right after Conv[+Relu], not between
    assert int(q.inputs[2].data) == -128  # the range starts at 0: ReLU's floor is code -128
    assert q.output.dtype == "int8" and dq.output.quant is not None
    # the graph input is quantized too (int8 input later possible for TFLite)
    assert producer_op(int8, "input_quantized") == "QuantizeLinear"
    assert int8.node("conv").inputs[0].name == "input_dequantized"
    # the output keeps its name, now on the dequantized value
    assert int8.outputs[0].name == "output" and producer_op(int8, "output") == \
        "DequantizeLinear"


def test_pass_through_ops_reuse_their_input_parameters(int8):
    pool = int8.node("pool")
    q_in = pool.inputs[0].producer.inputs[0].producer  # DQ <- Q of the Conv output
    q_out, _ = qdq_after(int8, pool.output.name)
    assert float(q_out.inputs[1].data) == float(q_in.inputs[1].data)
    assert int(q_out.inputs[2].data) == int(q_in.inputs[2].data)
    assert node_info(int8, "pool")["kind"] == "pass-through"


def test_metadata_records_the_mode(int8):
    info = json.loads(int8.metadata["quantization"])
    assert info["mode"] == "static" and info["activation_dtype"] == "int8"
    assert info["per_channel"] is True and info["calibration_method"] == "minmax"
    assert info["calibration_samples"] == 64
    assert quantize.quantization_info(int8)["nodes"][0]["kind"] == "weighted"


def test_caller_graph_is_not_modified():
    g = conv_net()
    before = str(g)
    quantize.quantize_static(g, X)
    quantize.quantize_dynamic(g)
    quantize.convert_float16(g)
    assert str(g) == before and "quantization" not in g.metadata


def test_qdq_output_matches_a_numpy_simulation_exactly():
    """One Gemm: Q/DQ the input, DQ weights and int32 bias, Gemm, Q/DQ the output —
    recomputed in numpy from the graph's own parameters."""
    r = np.random.default_rng(2)
    g = Graph("gemm")
    x = g.add_input("x", "float32", ("batch", 6))
    w, b = r.normal(0, 1, (3, 6)).astype(np.float32), r.normal(0, 1, 3).astype(np.float32)
    g.set_outputs([g.add_node("Gemm", [x, w, b], {"transB": 1}, name="fc").output])
    data = r.normal(0, 1, (50, 6)).astype(np.float32)
    q = quantize.quantize_static(g, data)

    def params(dq_node, dtype, axis=None) -> QParams:
        return QParams(dq_node.inputs[1].data, dq_node.inputs[2].data, dtype, axis)

    fc = q.node("fc")
    p_in = params(fc.inputs[0].producer, "int8")
    p_w = params(fc.inputs[1].producer, "int8", 0)
    p_b = params(fc.inputs[2].producer, "int32", 0)
    p_out = params(q.outputs[0].producer, "int8")
    assert p_in.scale == compute_qparams(data.min(), data.max(), "int8").scale
    x_dq = dequantize_array(quantize_array(data, p_in), p_in)
    w_dq = dequantize_array(fc.inputs[1].producer.inputs[0].data, p_w)
    b_dq = fc.inputs[2].producer.inputs[0].data.astype(np.float32) * p_b.scale
    expected = dequantize_array(quantize_array(x_dq @ w_dq.T + b_dq, p_out), p_out)
    got = run(q, data)[0]
    assert np.abs(got - expected).max() <= float(p_out.scale) * 1.001  # one step at most
    assert np.mean(got == expected) > 0.97
    float_out = run(g, data)[0]
    assert np.abs(got - float_out).max() < 3 * float(p_out.scale)


@pytest.mark.parametrize("kwargs", [
    {}, {"per_channel": False}, {"activation_dtype": "uint8"}, {"method": "percentile"},
    {"method": "entropy"}, {"method": "mse"}])
def test_quantized_conv_net_stays_within_a_few_steps_of_float(kwargs):
    g = conv_net()
    q = quantize.quantize_static(g, X, **kwargs)
    out_scale = float(q.outputs[0].producer.inputs[1].data)
    reference = run(g, X)[0]
    err = np.abs(run(q, X)[0] - reference)
    if kwargs.get("method") in ("entropy", "percentile"):
        # These clip the largest values on purpose (a MaxPool then sees clipped maxima):
        # the error is no longer bounded by steps, but the signal must dominate it.
        assert 10 * np.log10(np.sum(reference**2) / np.sum(err**2)) > 20
    else:
        assert err.max() < 6 * out_scale
        assert err.mean() < 1.5 * out_scale
    if kwargs.get("activation_dtype") == "uint8":
        assert q.value("input_quantized").dtype == "uint8"


def test_16x8_has_int16_activations_with_zero_point_0_and_is_more_precise():
    g = conv_net()
    q16 = quantize.quantize_16x8(g, X)
    q8 = quantize.quantize_static(g, X)
    for node in q16.nodes:
        if node.op_type == "QuantizeLinear":
            assert node.output.dtype == "int16" and int(node.inputs[2].data) == 0
    assert q16.value("conv.weight.quantized").dtype == "int8"
    # Both keep int8 weights; against the weights-only model, what is left is the
    # activations' error, which int16 nearly removes.
    weights_only = run(quantize.quantize_dynamic(g), X)[0]
    err16 = np.abs(run(q16, X)[0] - weights_only).max()
    err8 = np.abs(run(q8, X)[0] - weights_only).max()
    assert err16 < err8 / 20
    assert json.loads(q16.metadata["quantization"])["activation_dtype"] == "int16"
    with pytest.raises(QuantizationError, match="quantize_static"):
        quantize.quantize_16x8(g, X, activation_dtype="int8")


def test_dynamic_quantizes_weights_only():
    g = conv_net()
    q = quantize.quantize_dynamic(g)
    ops = [n.op_type for n in q.nodes]
    assert "QuantizeLinear" not in ops and ops.count("DequantizeLinear") == 3
    assert q.node("conv").inputs[2].name == "conv.bias"  # bias stays float
    assert dq_weight(q, "fc2").attrs["axis"] == 1
    err = np.abs(run(q, X)[0] - run(g, X)[0]).max()
    assert 0 < err < 0.02
    assert json.loads(q.metadata["quantization"])["mode"] == "dynamic"
    per_tensor = quantize.quantize_dynamic(g, per_channel=False)
    assert dq_weight(per_tensor, "conv").inputs[1].shape == ()


def test_matmul_weight_axis_is_the_last_and_gemm_alpha_beta_are_folded():
    r = np.random.default_rng(3)
    g = Graph("matmul")
    x = g.add_input("x", "float32", ("batch", 4, 6))
    mm = g.add_node("MatMul", [x, r.normal(0, 1, (6, 5)).astype(np.float32)], name="mm")
    flat = g.add_node("Flatten", [mm.output], {"axis": 1}, name="flat")
    gemm = g.add_node("Gemm", [flat.output, r.normal(0, 1, (20, 3)).astype(np.float32),
                               r.normal(0, 1, (1, 3)).astype(np.float32)],
                      {"alpha": 0.5, "beta": 2.0}, name="gemm")
    g.set_outputs([gemm.output])
    data = r.normal(0, 1, (32, 4, 6)).astype(np.float32)
    q = quantize.quantize_static(g, data)
    assert dq_weight(q, "mm").attrs["axis"] == 1
    assert "alpha" not in q.node("gemm").attrs and "beta" not in q.node("gemm").attrs
    assert dq_weight(q, "gemm", 2).inputs[0].shape == (3,)  # C (1, 3) -> int32 (3,)
    out_scale = float(q.outputs[0].producer.inputs[1].data)
    assert np.abs(run(q, data)[0] - run(g, data)[0]).max() < 4 * out_scale


def test_batchnorm_and_relu6_fold_into_the_quantized_conv():
    g = edgefw.trace(models.build("mobilenet", width=4), np.zeros((1, 1, 28, 28), np.float32))
    data = np.random.default_rng(4).random((16, 1, 28, 28)).astype(np.float32)
    q = quantize.quantize_static(g, data)
    ops = {n.op_type for n in q.nodes}
    assert "BatchNormalization" not in ops and "Clip" not in ops
    stem = q.node("features.0.conv")
    assert stem.meta["fused_activation"] == ("Clip", 0.0, 6.0)
    q_after, _ = qdq_after(q, stem.output.name)
    assert float(q_after.inputs[1].data) <= 6.0 / 255 + 1e-9  # range within ReLU6's [0, 6]
    assert node_info(q, "pool")["kind"] == "activation"  # GlobalAveragePool requantizes


def test_ops_without_a_quantized_form_stay_float_with_a_reason():
    g = edgefw.trace(models.build("transformer"), np.zeros((2, 16, 32), np.float32))
    data = np.random.default_rng(5).normal(0, 1, (8, 16, 32)).astype(np.float32)
    q = quantize.quantize_static(g, data)
    reasons = {r["name"]: r["reason"] for r in quantize.quantization_info(q)["nodes"]
               if r["kind"] == "float"}
    assert "Softmax" in reasons["softmax"] and "LayerNormalization" in reasons["norm1"]
    assert "Gelu" in reasons["act"]
    assert q.node("softmax").op_type == "Softmax"
    assert node_info(q, "mat_mul")["kind"] == "activation"  # attention scores: both inputs
    err = np.abs(run(q, data)[0] - run(g, data)[0])
    assert err.mean() < 0.05


def test_exclude_keeps_layers_float():
    g = conv_net()
    q = quantize.quantize_static(g, X, exclude=["fc2"])
    assert q.node("fc2").inputs[1].name == "fc2.weight"  # float weight
    assert node_info(q, "fc2") == {**node_info(q, "fc2"), "kind": "float",
                                   "reason": "kept float as asked"}
    assert producer_op(q, "output") == "Gemm"  # no Q/DQ after the float layer
    q2 = quantize.quantize_static(g, X, layer_dtypes={"conv": "int16", "fc1": "float"})
    assert q2.value("input_quantized").dtype == "int16"
    assert q2.node("fc1").inputs[1].name == "fc1.weight"


@pytest.mark.parametrize("call, message", [
    (lambda: quantize.quantize_static(conv_net(), X, exclude=["fc9"]),
     "no node or module named 'fc9'.*quantizable layers: conv, fc1, fc2"),
    (lambda: quantize.quantize_static(conv_net(), X, activation_dtype="int4"),
     "unsupported activation dtype 'int4'"),
    (lambda: quantize.quantize_static(conv_net(), X, method="kl"),
     "unknown calibration method 'kl'"),
    (lambda: quantize.quantize_static(conv_net(), X, per_channel="yes"), "per_channel"),
    (lambda: quantize.quantize_static(conv_net(), X, percentile=120), "percentile"),
    (lambda: quantize.quantize_static(conv_net(), X, layer_dtypes={"conv": "int4"}),
     "setting 'int4'"),
    (lambda: quantize.quantize_static(quantize.quantize_dynamic(conv_net()), X),
     "already quantized"),
    (lambda: quantize.quantize_static("model.onnx", X), "expected an edgefw.ir.Graph"),
    (lambda: quantize.quantize_dynamic(conv_net(), optimization="max"), "optimization"),
])
def test_bad_arguments_raise_quantization_error(call, message):
    with pytest.raises(QuantizationError, match=message):
        call()
