"""EdgeFWBackend / EdgeFWBackendRep: the onnx.backend.base interface over InferenceSession."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgefw.errors import DeviceError, EdgeFWError, InvalidInputError, UnsupportedOpError
from runtime import InferenceSession
from runtime.onnx_backend import EdgeFWBackend, EdgeFWBackendRep


def _gemm_relu_model() -> onnx.ModelProto:
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 2], [1.0, -1.0, 2.0, 0.5, -3.0, 1.0])
    nodes = [helper.make_node("Gemm", ["x", "w"], ["h"]),
             helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(nodes, "gemm_relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
                              initializer=[w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


X = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]], np.float32)
W = np.array([[1.0, -1.0], [2.0, 0.5], [-3.0, 1.0]], np.float32)
EXPECTED = np.maximum(X @ W, 0)


def test_prepare_and_run_like_the_onnx_runner():
    rep = EdgeFWBackend.prepare(_gemm_relu_model(), "CPU")
    assert isinstance(rep, EdgeFWBackendRep)
    assert isinstance(rep.session, InferenceSession)
    outputs = rep.run([X])
    np.testing.assert_allclose(outputs[0], EXPECTED)
    np.testing.assert_allclose(outputs["y"], EXPECTED)  # named tuple access, as onnx's
    np.testing.assert_allclose(rep.run(X)[0], EXPECTED)  # a lone array
    np.testing.assert_allclose(rep.run({"x": X[:1]})[0], EXPECTED[:1])  # a feed dict


def test_prepare_accepts_bytes_and_the_optimization_level():
    model = _gemm_relu_model()
    for level in ("none", "basic", "all"):
        rep = EdgeFWBackend.prepare(model.SerializeToString(), optimization=level)
        np.testing.assert_allclose(rep.run([X])[0], EXPECTED)
    np.testing.assert_allclose(EdgeFWBackend.run_model(model, [X])[0], EXPECTED)


def test_run_node_builds_a_one_node_model():
    node = helper.make_node("Softmax", ["x"], ["y"], axis=0)
    x = np.array([[1.0, 2.0], [3.0, 5.0]], np.float32)
    (y,) = EdgeFWBackend.run_node(node, [x])
    e = np.exp(x - x.max(axis=0))
    np.testing.assert_allclose(y, e / e.sum(axis=0), rtol=1e-6)
    # An old opset is honoured: Softmax-11 coerces to 2-D from the axis on.
    (y11,) = EdgeFWBackend.run_node(helper.make_node("Softmax", ["x"], ["y"], axis=0), [x],
                                    opset_version=11)
    flat = np.exp(x.reshape(-1) - x.max())
    np.testing.assert_allclose(y11, (flat / flat.sum()).reshape(2, 2), rtol=1e-6)


def test_devices():
    assert EdgeFWBackend.supports_device("CPU")
    assert not EdgeFWBackend.supports_device("CUDA")
    assert not EdgeFWBackend.supports_device("TPU")
    with pytest.raises(DeviceError, match="CPU only"):
        EdgeFWBackend.prepare(_gemm_relu_model(), "CUDA")


def test_bad_inputs_raise_edgefw_errors():
    rep = EdgeFWBackend.prepare(_gemm_relu_model())
    with pytest.raises(InvalidInputError, match="takes 1 inputs"):
        rep.run([X, X])
    with pytest.raises(InvalidInputError):
        rep.run(["not", "arrays", "here"][:1])
    with pytest.raises(InvalidInputError, match="inputs must be"):
        rep.run(42)
    with pytest.raises(InvalidInputError, match="has 2 inputs"):
        EdgeFWBackend.run_node(helper.make_node("Add", ["a", "b"], ["c"]), [X])


def test_an_unsupported_op_names_the_node_and_the_supported_ops():
    node = helper.make_node("StringNormalizer", ["x"], ["y"], name="normalize")
    graph = helper.make_graph([node], "s", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedOpError, match="StringNormalizer.*supported ops: .*Gemm"):
        EdgeFWBackend.prepare(model)
    with pytest.raises(EdgeFWError):
        EdgeFWBackend.prepare(b"not an onnx model at all")
