"""What the ONNX exporter refuses, and how: ExportError naming the node, its module and the
reason, raised before anything is written; atomic writes that leave no partial file."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

import exporter
import exporter.onnx.writer as onnx_writer
from edgefw import models
from edgefw.errors import ExportError, GraphError
from edgefw.ir import Graph
from tests.exporter.onnx_checks import run_onnxruntime


def reduce_with_runtime_axes() -> Graph:
    """ReduceMean whose axes are computed at run time: not expressible before opset 18."""
    g = Graph("pool")
    x = g.add_input("x", "float32", ("batch", 3, 4))
    axes = g.add_node("Shape", [x], {"start": 2}, module_path="encoder.pool").output
    axes = g.add_node("Sub", [axes, np.array([2], np.int64)], module_path="encoder.pool").output
    mean = g.add_node("ReduceMean", [x, axes], name="mean", module_path="encoder.pool")
    g.set_outputs([mean.output])
    return g


def test_unexpressible_node_names_node_module_and_reason_and_writes_nothing(tmp_path):
    path = tmp_path / "pool.onnx"
    with pytest.raises(ExportError) as err:
        exporter.to_onnx(reduce_with_runtime_axes(), path, opset=17, optimize="none")
    message = str(err.value)
    assert "node 'mean' (ReduceMean)" in message
    assert "module 'encoder.pool'" in message
    assert "opset 17" in message and "axes" in message and "constant" in message
    assert list(tmp_path.iterdir()) == []
    # From opset 18 on axes are an input, and the same graph exports and runs.
    model = exporter.to_onnx(reduce_with_runtime_axes(), path, opset=18, optimize="none")
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(run_onnxruntime(model, {"x": x})[0], x.mean(axis=2, keepdims=True),
                               atol=1e-6)


def test_failed_export_keeps_the_previous_file(tmp_path):
    path = tmp_path / "pool.onnx"
    path.write_bytes(b"previous model")
    with pytest.raises(ExportError):
        exporter.to_onnx(reduce_with_runtime_axes(), path, opset=13, optimize="none")
    assert path.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool.onnx"]


@pytest.mark.parametrize(("dtype", "op", "needs"), [
    ("int8", "Relu", 14),    # Relu-13 is float only
    ("int16", "Add", 14),
])
def test_dtype_the_opset_cannot_hold_says_which_opset_can(dtype, op, needs):
    g = Graph("ints")
    x = g.add_input("x", dtype, (2, 3))
    inputs = [x] if op == "Relu" else [x, x]
    g.set_outputs([g.add_node(op, inputs, module_path="layer").output])
    with pytest.raises(ExportError) as err:
        exporter.to_onnx(g, opset=needs - 1, optimize="none")
    assert f"is {dtype}" in str(err.value) and f"from opset {needs} on" in str(err.value)
    exporter.to_onnx(g, opset=needs, optimize="none")


def test_float16_quantization_scale_needs_opset_19():
    g = Graph("q")
    x = g.add_input("x", "float16", (4,))
    q = g.add_node("QuantizeLinear", [x, np.array(0.1, np.float16), np.array(0, np.int8)],
                   module_path="quant")
    g.set_outputs([q.output])
    with pytest.raises(ExportError, match="from opset 19 on"):
        exporter.to_onnx(g, opset=18, optimize="none")
    model = exporter.to_onnx(g, opset=19, optimize="none")
    x_value = np.array([0.1, -0.3, 1.0, 20.0], np.float16)
    np.testing.assert_array_equal(run_onnxruntime(model, {"x": x_value})[0], [1, -3, 10, 127])


def test_op_missing_at_the_opset_names_the_first_opset():
    g = Graph("tri")
    x = g.add_input("x", "float32", (3, 3))
    g.set_outputs([g.add_node("Trilu", [x], module_path="mask").output])
    with pytest.raises(ExportError, match=r"Trilu exists in ONNX from opset 14 on"):
        exporter.to_onnx(g, opset=13)


def test_old_form_nodes_are_written_only_where_their_form_holds():
    g = Graph("old")
    x = g.add_input("x", "float32", (2, 3))
    node = g.add_node("Softmax", [x], {"axis": 1}, module_path="head", meta={"opset": 11})
    g.set_outputs([node.output])
    with pytest.raises(ExportError, match="opset-11 form of Softmax"):
        exporter.to_onnx(g, opset=13, optimize="none")
    node.meta["opset"] = 13
    (written,) = exporter.to_onnx(g, opset=17, optimize="none").graph.node
    assert written.op_type == "Softmax"


def test_unknown_fused_activation_is_refused():
    g = Graph("fused")
    x = g.add_input("x", "float32", (2, 3))
    node = g.add_node("Add", [x, x], module_path="res", meta={"fused_activation": "Swoosh"})
    g.set_outputs([node.output])
    with pytest.raises(ExportError, match="fused activation 'Swoosh'"):
        exporter.to_onnx(g, optimize="none")


def test_fused_clip_with_one_bound_and_leaky_relu_run():
    g = Graph("fused")
    x = g.add_input("x", "float32", (2, 3))
    clip = g.add_node("Add", [x, x], meta={"fused_activation": ("Clip", None, 0.5)})
    leaky = g.add_node("Mul", [clip.output, x], name="mul")
    leaky = g.add_node("Add", [leaky.output, x], meta={"fused_activation": ("LeakyRelu", 0.1)})
    g.set_outputs([leaky.output])
    model = exporter.to_onnx(g, optimize="none")
    assert [n.op_type for n in model.graph.node] == ["Add", "Clip", "Mul", "Add", "LeakyRelu"]
    v = np.array([[-2.0, 0.1, 1.0], [0.3, -0.2, 4.0]], np.float32)
    s = np.minimum(v + v, 0.5) * v + v
    np.testing.assert_allclose(run_onnxruntime(model, {"x": v})[0], np.where(s > 0, s, 0.1 * s),
                               rtol=1e-6)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"opset": 12}, "opset 12 is not supported"),
    ({"opset": 22}, "choose one of 13..21"),
    ({"opset": True}, "not supported"),
    ({"optimize": "fast"}, "optimize must be one of"),
    ({"metadata": {"labels": object()}}, "metadata 'labels' cannot be stored as JSON"),
    ({"metadata": {"edgefw.json_keys": "[]"}}, "reserved"),
    ({"input_names": ["a", "b"]}, "input_names must be 1"),
])
def test_bad_arguments(kwargs, match, tmp_path):
    g = Graph("g")
    g.set_outputs([g.add_node("Relu", [g.add_input("x", "float32", (2,))]).output])
    with pytest.raises(ExportError, match=match):
        exporter.to_onnx(g, tmp_path / "g.onnx", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_module_needs_example_inputs_and_other_objects_are_refused():
    with pytest.raises(ExportError, match="needs example_inputs"):
        exporter.to_onnx(models.build("mlp"))
    with pytest.raises(ExportError, match="got dict"):
        exporter.to_onnx({"not": "a model"})


def test_invalid_graph_is_a_graph_error():
    g = Graph("broken")
    x = g.add_input("x", "float32", (2,))
    g.set_outputs([g.add_node("Relu", [x]).output])
    g.nodes[0].outputs[0].shape = (3,)  # disagrees with inference
    with pytest.raises(GraphError):
        exporter.to_onnx(g)


def test_output_listed_twice_and_input_passed_through():
    g = Graph("twice")
    x = g.add_input("x", "float32", (2,))
    y = g.add_node("Relu", [x]).output
    g.set_outputs([y, y, x])
    model = exporter.to_onnx(g, optimize="none")
    names = [o.name for o in model.graph.output]
    assert names[0] == "relu" and names[2] == "x" and len(set(names)) == 3
    v = np.array([-1.0, 2.0], np.float32)
    got = run_onnxruntime(model, {"x": v})
    for out, want in zip(got, [[0, 2], [0, 2], [-1, 2]]):
        np.testing.assert_array_equal(out, want)


# ------------------------------------------------------------------ atomic writes
def tiny_graph() -> Graph:
    g = Graph("tiny")
    g.set_outputs([g.add_node("Relu", [g.add_input("x", "float32", ("batch", 2))]).output])
    return g


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failure_while_writing_leaves_no_file(monkeypatch, tmp_path, failing):
    path = tmp_path / "tiny.onnx"

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(ExportError, match="cannot write .*tiny.onnx.*No space left"):
        exporter.to_onnx(tiny_graph(), path)
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    exporter.to_onnx(tiny_graph(), path)
    assert onnx.load(str(path)).graph.node[0].op_type == "Relu"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]


def test_interrupt_while_writing_leaves_the_old_file(monkeypatch, tmp_path):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(b"old")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        exporter.to_onnx(tiny_graph(), path)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]


def test_directory_as_path_is_refused(tmp_path):
    with pytest.raises(ExportError, match="is a directory"):
        exporter.to_onnx(tiny_graph(), tmp_path)


def test_models_over_the_protobuf_limit_are_refused_before_writing(monkeypatch, tmp_path):
    g = Graph("big")
    x = g.add_input("x", "float32", ("batch", 64))
    w = g.add_constant("fc.weight", np.zeros((64, 64), np.float32))
    g.set_outputs([g.add_node("MatMul", [x, w], module_path="fc").output])
    # Stand-in for 2 GiB: the same checks, without allocating gigabytes in a test.
    monkeypatch.setattr(onnx_writer, "MAX_MODEL_BYTES", 8 * 1024)
    with pytest.raises(ExportError, match="over 2 GiB"):
        exporter.to_onnx(g, tmp_path / "big.onnx")
    monkeypatch.setattr(onnx_writer, "MAX_MODEL_BYTES", 64 * 64 * 4 + 10)  # weights fit, file not
    with pytest.raises(ExportError, match="over 2 GiB"):
        exporter.to_onnx(g, tmp_path / "big.onnx")
    assert list(tmp_path.iterdir()) == []
