"""InferenceSession: whole models vs numpy, symbolic batch, input checks, errors, profiling."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import runtime.session as session_module
from edgefw.errors import (
    DeviceError,
    GraphError,
    InvalidInputError,
    ModelFormatError,
    NodeExecutionError,
    UnsupportedOpError,
)
from edgefw.ir import Graph
from runtime import InferenceSession, register_loader
from tests.runtime.numpy_models import lenet, lenet_reference, mlp, mlp_reference, randn


# ------------------------------------------------------------------ whole models
@pytest.mark.parametrize("optimization", ["none", "all"])
def test_mlp_matches_numpy_for_batch_1_and_37(optimization):
    g, p = mlp()
    session = InferenceSession(g, optimization=optimization)
    for batch in (1, 37, 1):
        x = randn(batch, 1, 28, 28)
        (y,) = session.run(None, {"input": x})
        assert y.shape == (batch, 10) and y.dtype == np.float32
        np.testing.assert_allclose(y, mlp_reference(x, p), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("optimization", ["none", "all"])
def test_lenet_matches_numpy_for_batch_1_and_37(optimization):
    g, p = lenet()
    session = InferenceSession(g, optimization=optimization)
    for batch in (1, 37):
        x = randn(batch, 1, 28, 28)
        (y,) = session.run(None, {"image": x})
        assert y.shape == (batch, 10)
        np.testing.assert_allclose(y, lenet_reference(x, p), rtol=1e-5, atol=1e-5)


def test_session_never_mutates_the_callers_graph():
    g, _ = mlp()
    before = str(g)
    InferenceSession(g, optimization="all").run(None, {"input": randn(2, 1, 28, 28)})
    assert str(g) == before
    g.check()


def test_inputs_and_outputs_metadata():
    g, _ = mlp()
    session = InferenceSession(g)
    (inp,) = session.get_inputs()
    (out,) = session.get_outputs()
    assert (inp.name, inp.shape, inp.type, inp.dtype) == (
        "input", ["batch", 1, 28, 28], "tensor(float)", "float32")
    assert (out.name, out.shape) == ("fc2", ["batch", 10])
    assert session.get_providers() == ["cpu"]
    assert set(session.get_provider_assignment().values()) == {"cpu"}


def test_outputs_are_fresh_arrays_and_inputs_are_untouched():
    g = Graph("g")
    x = g.add_input("x", "float32", (4, 4))
    a = g.add_node("MatMul", [x, randn(4, 4)]).output  # a preallocated buffer
    r = g.add_node("Relu", [a]).output  # in place into that buffer
    g.set_outputs([r, x, g.add_node("Neg", [x]).output])
    session = InferenceSession(g, optimization="none")
    x1, x2 = randn(4, 4), randn(4, 4)
    keep = x1.copy()
    first = session.run(None, {"x": x1})
    snapshot = [o.copy() for o in first]
    session.run(None, {"x": x2})
    for got, want in zip(first, snapshot, strict=True):
        np.testing.assert_array_equal(got, want)  # a later run did not overwrite them
    np.testing.assert_array_equal(x1, keep)
    assert first[1] is not x1  # a graph input returned as output is a copy


def test_output_selection():
    g = Graph("two")
    x = g.add_input("x", "float32", (3,))
    g.set_outputs([g.add_node("Neg", [x], name="neg").output,
                   g.add_node("Abs", [x], name="abs").output])
    session = InferenceSession(g)
    x0 = np.array([-1.0, 2.0, -3.0], np.float32)
    (a,) = session.run(["abs"], {"x": x0})
    np.testing.assert_array_equal(a, np.abs(x0))
    b, a2 = session.run(["neg", "abs"], {"x": x0})
    np.testing.assert_array_equal(b, -x0)
    with pytest.raises(InvalidInputError, match="unknown output 'nope'.*'neg', 'abs'"):
        session.run(["nope"], {"x": x0})


# ------------------------------------------------------------------ input checks
@pytest.fixture(scope="module")
def mlp_session():
    return InferenceSession(mlp()[0])


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        ({}, r"missing input 'input' \(expected float32\[batch,1,28,28\]\)"),
        ({"input": np.zeros((1, 1, 28, 28), np.float32), "extra": np.zeros(1)},
         r"unknown input 'extra'; the model's inputs are: 'input' float32\[batch,1,28,28\]"),
        ({"inputs": np.zeros((1, 1, 28, 28), np.float32)}, "unknown input 'inputs'"),
        ({"input": np.zeros((1, 1, 28, 28), np.float64)},
         r"input 'input' has dtype float64, expected float32 .*astype\(np.float32\)"),
        ({"input": np.zeros((1, 784), np.float32)},
         r"input 'input' has shape \[1, 784\] \(rank 2\), expected rank 4"),
        ({"input": np.zeros((1, 1, 28, 27), np.float32)},
         r"input 'input' has shape \[1, 1, 28, 27\]: dim 3 is 27, expected 28"),
    ],
    ids=["missing", "unknown", "misspelt", "dtype", "rank", "static-dim"],
)
def test_input_errors_name_the_input(mlp_session, feed, message):
    with pytest.raises(InvalidInputError, match=message):
        mlp_session.run(None, feed)


def test_feed_must_be_a_mapping(mlp_session):
    with pytest.raises(InvalidInputError, match="must be a dict"):
        mlp_session.run(None, [np.zeros((1, 1, 28, 28), np.float32)])


def test_symbolic_dims_must_bind_consistently():
    g = Graph("pair")
    a = g.add_input("a", "float32", ("batch", 3))
    b = g.add_input("b", "float32", ("batch", 3))
    g.set_outputs([g.add_node("Add", [a, b]).output])
    session = InferenceSession(g)
    out = session.run(None, {"a": np.ones((5, 3), np.float32), "b": np.ones((5, 3), np.float32)})
    np.testing.assert_array_equal(out[0], 2 * np.ones((5, 3)))
    with pytest.raises(InvalidInputError, match="input 'b' binds symbolic dim 'batch' \\(dim 0\\) "
                                                "to 4, but input 'a' bound it to 5"):
        session.run(None, {"a": np.ones((5, 3), np.float32), "b": np.ones((4, 3), np.float32)})


def test_python_lists_take_the_input_dtype():
    g = Graph("g")
    g.set_outputs([g.add_node("Neg", [g.add_input("x", "float32", (2,))]).output])
    (y,) = InferenceSession(g).run(None, {"x": [1, 2]})
    assert y.dtype == np.float32 and y.tolist() == [-1.0, -2.0]


# ------------------------------------------------------------------ errors
def test_kernel_failure_names_the_node():
    g = Graph("g")
    x = g.add_input("x", "float32", ("n",))
    idx = g.add_input("idx", "int64", (2,))
    g.set_outputs([g.add_node("Gather", [x, idx], module_path="embed.lookup").output])
    session = InferenceSession(g)
    ok = session.run(None, {"x": np.arange(4, dtype=np.float32), "idx": np.array([0, -1])})
    np.testing.assert_array_equal(ok[0], [0.0, 3.0])
    with pytest.raises(NodeExecutionError, match=r"while executing node 'embed.lookup' \(Gather, "
                                                 r"module embed.lookup\) on cpu: IndexError.*"
                                                 r"inputs: x float32\[4\], idx int64\[2\]"):
        session.run(None, {"x": np.arange(4, dtype=np.float32), "idx": np.array([0, 9])})


def test_invalid_graph_is_rejected():
    g, _ = mlp()
    g.node("fc1").output.shape = ("batch", 3)
    with pytest.raises(GraphError, match="node 'fc1'"):
        InferenceSession(g)


def test_unsupported_node_fails_at_construction():
    g = Graph("g")
    x = g.add_input("x", "float32", (1, 1, 4, 4, 4))
    g.set_outputs([g.add_node("Conv", [x, randn(1, 1, 2, 2, 2)], name="conv3d").output])
    with pytest.raises(UnsupportedOpError, match="node 'conv3d' \\(Conv\\).*3 spatial dims"):
        InferenceSession(g)


def test_bad_session_arguments():
    g, _ = mlp()
    with pytest.raises(DeviceError, match="unknown execution provider 'tpu'; available: cpu"):
        InferenceSession(g, providers=["tpu"])
    with pytest.raises(InvalidInputError, match="optimization must be one of none, basic, all"):
        InferenceSession(g, optimization="max")
    assert InferenceSession(g, providers=["CPUExecutionProvider"]).get_providers() == ["cpu"]


def test_model_files_without_a_loader(tmp_path, monkeypatch):
    monkeypatch.setattr(session_module, "_LOADERS", {})
    monkeypatch.setitem(sys.modules, "runtime.loaders", None)
    with pytest.raises(ModelFormatError, match="model file not found"):
        InferenceSession(tmp_path / "missing.onnx")
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")
    with pytest.raises(ModelFormatError, match="loading .onnx models is not supported yet"):
        InferenceSession(path)
    with pytest.raises(ModelFormatError, match="loading .tflite models is not supported yet"):
        InferenceSession(b"\x1c\x00\x00\x00TFL3" + bytes(16))
    with pytest.raises(ModelFormatError, match="needs an edgefw.ir.Graph"):
        InferenceSession(42)


def test_registered_loader_is_used(monkeypatch):
    monkeypatch.setattr(session_module, "_LOADERS", {})
    seen = []

    def fake_onnx_loader(source):
        seen.append(source)
        return mlp()[0]

    register_loader("onnx", fake_onnx_loader)
    session = InferenceSession(b"\x08\x07onnx-bytes")
    assert seen == [b"\x08\x07onnx-bytes"]
    assert session.get_outputs()[0].name == "fc2"


# ------------------------------------------------------------------ profiling
def test_profiling_accumulates_per_node():
    g, _ = mlp()
    session = InferenceSession(g, optimization="none", enable_profiling=True)
    for batch in (1, 1, 1, 4, 4):
        session.run(None, {"input": randn(batch, 1, 28, 28)})
    report = session.profile()
    assert report.runs == 5
    assert [r.name for r in report.records] == ["flatten", "fc1", "relu", "fc2"]
    assert all(r.calls == 5 and r.total_s > 0 for r in report.records)
    assert {o.op_type for o in report.by_op_type} == {"Flatten", "Gemm", "Relu"}
    assert sum(o.percent for o in report.by_op_type) == pytest.approx(100.0)
    gemm = next(o for o in report.by_op_type if o.op_type == "Gemm")
    assert gemm.nodes == 2 and gemm.calls == 10
    table = str(report)
    assert "op type" in table and "Gemm" in table and "%" in table and "5 runs" in table
    assert "fc1" in table  # top nodes
    session.profile(reset=True)
    assert session.profile().runs == 0


def test_profile_needs_profiling_enabled(mlp_session):
    with pytest.raises(InvalidInputError, match="enable_profiling=True"):
        mlp_session.profile()
