"""Model files the command tests share: edgefw's traced MLP exported to .onnx, and
hand-built onnx.helper models (two inputs, a softmax head, a symbolic sequence dim)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgefw
import exporter
from edgefw import models

LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def onnxruntime_outputs(path, feed):
    """The reference: onnxruntime's CPU EP on the same file."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feed)


@pytest.fixture(scope="session")
def mlp_onnx(tmp_path_factory):
    """edgefw's MLP (784-128-10), traced and exported with class labels in its metadata."""
    edgefw.manual_seed(0)
    path = tmp_path_factory.mktemp("models") / "mlp.onnx"
    exporter.to_onnx(models.build("mlp"), path,
                     example_inputs=np.zeros((1, 1, 28, 28), np.float32),
                     metadata={"class_labels": LABELS, "input_layout": "NCHW"})
    return path


@pytest.fixture(scope="session")
def two_input_onnx(tmp_path_factory):
    """y = Softmax(MatMul(a, W) + b_in), with an int64 initializer; made by onnx.helper
    (another producer: metadata_props written by hand, labels as a JSON object)."""
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((4, 3)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["a", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        helper.make_node("Reshape", ["logits", "flat_shape"], ["flat"]),
    ]
    graph = helper.make_graph(
        nodes, "two_inputs",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("flat", TensorProto.FLOAT, [None])],
        initializer=[numpy_helper.from_array(weight, "W"),
                     numpy_helper.from_array(np.array([-1], np.int64), "flat_shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="handmade", producer_version="1.2")
    helper.set_model_props(model, {"class_labels": '{"0": "cat", "1": "dog", "2": "emu"}',
                                   "author": "tests"})
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path_factory.mktemp("models") / "two_inputs.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def sequence_onnx(tmp_path_factory):
    """Relu over float32[batch, seq, 8]: a symbolic dim that is not the batch."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "seq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("models") / "seq.onnx"
    onnx.save(model, path)
    return path
