"""The zoo models as float32 .tflite files: they load and run in LiteRT's interpreter at
batch 1 and at a resized batch, agree with edgefw's runtime within 1e-5, are NHWC inside
(no layout transposes for the CNNs), and carry a runnable serving_default signature,
metadata and 16-byte aligned constant buffers."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import models
from edgefw.ir.passes import optimize
from exporter.tflite import read_metadata, to_tflite
from tests.exporter.tflite.tflite_checks import (
    interpreter,
    op_names,
    run_edgefw,
    run_tflite,
    to_file_layout,
)

schema = pytest.importorskip("ai_edge_litert.schema_py_generated")


def build(name: str, seed: int = 0):
    """A zoo model with random weights and, for BatchNorm, random running statistics (so
    that folding them into the convolutions is actually tested)."""
    edgefw.manual_seed(seed)
    net = models.build(name)
    rng = np.random.default_rng(seed)
    for module_name, buffer in net.named_buffers():
        if module_name.endswith("running_mean"):
            buffer[...] = rng.normal(0, 0.5, buffer.shape)
        elif module_name.endswith("running_var"):
            buffer[...] = rng.uniform(0.5, 2.0, buffer.shape)
    return net


def traced(name: str):
    x = np.zeros((1, *models.INPUT_SHAPES[name]), np.float32)
    return optimize(edgefw.trace(build(name), x), "all")


@pytest.fixture(scope="module", params=["mlp", "lenet", "mobilenet", "transformer"])
def exported(request):
    name = request.param
    graph = traced(name)
    return name, graph, to_tflite(graph, metadata={"normalization": {"scale": 1 / 255}})


EXPECTED_OPS = {
    "mlp": {"RESHAPE": 1, "FULLY_CONNECTED": 2},
    "lenet": {"CONV_2D": 2, "MAX_POOL_2D": 2, "RESHAPE": 1, "FULLY_CONNECTED": 3},
    # the stride-2 depthwise convs pad (1, 1), which TFLite's SAME pads (0, 1): explicit PAD
    "mobilenet": {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 4, "PAD": 2, "MEAN": 1, "RESHAPE": 1,
                  "FULLY_CONNECTED": 1},
}


@pytest.mark.parametrize("batch", [1, 5])
def test_outputs_match_runtime(exported, batch):
    name, graph, data = exported
    x = np.random.default_rng(batch).random((batch, *models.INPUT_SHAPES[name]), np.float32)
    (got,) = run_tflite(data, {"input": x})
    (want,) = run_edgefw(graph, {"input": x})
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_model_network_ops(exported):
    name, _, data = exported
    ops = op_names(data)
    counts = {op: ops.count(op) for op in set(ops)}
    if name in EXPECTED_OPS:
        assert counts == EXPECTED_OPS[name]  # BatchNorm and ReLU(6) fused, no TRANSPOSE
    else:  # transformer: q/k/v and the heads' merge are the only layout changes
        assert counts["TRANSPOSE"] == 4 and counts["BATCH_MATMUL"] == 2
        assert counts["GELU"] == 1 and counts["SOFTMAX"] == 1
        assert counts["FULLY_CONNECTED"] == 4  # MatMul + bias Add as one op each


def test_signature_runner(exported):
    name, graph, data = exported
    interp = interpreter(data)
    assert interp.get_signature_list() == {
        "serving_default": {"inputs": ["input"], "outputs": ["output"]}}
    runner = interp.get_signature_runner("serving_default")
    x = np.random.default_rng(3).random((3, *models.INPUT_SHAPES[name]), np.float32)
    out = runner(input=to_file_layout(x))
    (want,) = run_edgefw(graph, {"input": x})
    np.testing.assert_allclose(out["output"], want, atol=1e-5, rtol=0)


def test_file_structure(exported):
    name, _, data = exported
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    assert model.version == 3 and data[4:8] == b"TFL3"
    assert model.description.decode().startswith("edgefw")
    (sub,) = model.subgraphs
    (inp,) = [sub.tensors[i] for i in sub.inputs]
    want = [-1, 28, 28, 1] if name != "transformer" else [-1, 16, 32]
    assert list(inp.shapeSignature) == want and inp.shape[0] == 1
    assert model.buffers[0].data is None  # the empty sentinel buffer
    # Every buffer's data starts 16-byte aligned in the file (memory-mapped use).
    table = schema.Model.GetRootAs(data, 0)
    for i in range(table.BuffersLength()):
        buffer = table.Buffers(i)
        if buffer.DataLength():
            start = buffer._tab.Vector(buffer._tab.Offset(4))
            assert start % 16 == 0, (i, start)
    meta = read_metadata(data)
    assert meta["producer"].startswith("edgefw")
    assert meta["normalization"] == {"scale": 1 / 255}
    assert meta["inputs"][0]["layout"] == ("NHWC" if name != "transformer" else None)


def test_nchw_interface_option():
    graph = traced("lenet")
    data = to_tflite(graph, layout="NCHW")
    x = np.random.default_rng(0).random((2, 1, 28, 28), np.float32)
    (got,) = run_tflite(data, {"input": x}, layout="NCHW")
    np.testing.assert_allclose(got, run_edgefw(graph, {"input": x})[0], atol=1e-5, rtol=0)
    # One TRANSPOSE at the input; everything after stays NHWC.
    assert op_names(data).count("TRANSPOSE") == 1
    assert read_metadata(data)["input_layout"] == "NCHW"


def test_flatten_of_nhwc_maps_permutes_fc_weights_instead_of_transposing():
    from edgefw.ir import Graph

    rng = np.random.default_rng(0)
    g = Graph("conv_fc")
    x = g.add_input("input", "float32", ("batch", 2, 4, 4))
    c = g.add_node("Conv", [x, rng.normal(size=(3, 2, 3, 3)).astype(np.float32)],
                   {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}).output
    f = g.add_node("Flatten", [c], {"axis": 1}).output
    g.set_outputs([g.add_node("Gemm", [f, rng.normal(size=(5, 48)).astype(np.float32)],
                              {"transB": 1}).output])
    data = to_tflite(g)
    assert sorted(op_names(data)) == ["CONV_2D", "FULLY_CONNECTED", "RESHAPE"]
    xs = rng.random((3, 2, 4, 4), np.float32)
    np.testing.assert_allclose(run_tflite(data, {"input": xs})[0],
                               run_edgefw(g, {"input": xs})[0], atol=1e-5, rtol=0)
    # When the flattened features are also an output, their NCHW order is needed.
    g.set_outputs([g.outputs[0], f])
    data = to_tflite(g)
    assert op_names(data).count("TRANSPOSE") == 1
    for got, want in zip(run_tflite(data, {"input": xs}), run_edgefw(g, {"input": xs})):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_fixed_batch_export():
    data = to_tflite(build("mlp"), example_inputs=np.zeros((4, 1, 28, 28), np.float32),
                     dynamic_batch=False)
    interp = interpreter(data)
    (inp,) = interp.get_input_details()
    assert list(inp["shape"]) == [4, 28, 28, 1] and list(inp["shape_signature"]) == [4, 28, 28, 1]


def test_module_export_writes_file_and_returns_bytes(tmp_path):
    net = build("lenet")
    path = tmp_path / "sub" / "lenet.tflite"
    data = to_tflite(net, path, example_inputs=np.zeros((1, 1, 28, 28), np.float32))
    assert path.read_bytes() == data
    x = np.random.default_rng(0).random((2, 1, 28, 28), np.float32)
    np.testing.assert_allclose(run_tflite(data, {"input": x})[0], net(x).data, atol=1e-5)


def test_op_versions_are_the_lowest_that_fit(exported):
    _, _, data = exported
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    versions = {names[c.builtinCode]: c.version for c in model.operatorCodes}
    # float32 kernels are version 1, except FULLY_CONNECTED keeping a 3-D input's dims (5)
    # and STRIDED_SLICE of the transformer's 5-D q/k/v tensor (4).
    special = {"FULLY_CONNECTED": 5, "STRIDED_SLICE": 4} if "GELU" in versions else {}
    assert versions == {op: special.get(op, 1) for op in versions}
    for c in model.operatorCodes:  # pre-2.4 readers look at deprecated_builtin_code
        assert c.deprecatedBuiltinCode == min(c.builtinCode, 127)
