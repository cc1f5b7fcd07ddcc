"""Zoo models exported to ONNX at opsets 13, 17 and 21: onnxruntime on the file agrees with
edgefw's runtime on the same graph, at batch 1 and 7 (the batch dim stays symbolic)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import edgefw
import exporter
from edgefw import models
from tests.exporter.onnx_checks import (
    assert_outputs_match,
    assert_shape_inference_agrees,
    dims,
    run_edgefw,
    run_onnxruntime,
)

MODELS = ("mlp", "lenet", "mobilenet", "transformer")


def _randomize_batch_norm(model, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters, so that
    folding them (or not) shows in the outputs."""
    rng = np.random.default_rng(seed)
    for name, array in model.state_dict().items():
        if name.endswith("running_mean"):
            array[...] = rng.normal(0.0, 0.5, array.shape)
        elif name.endswith("running_var"):
            array[...] = rng.uniform(0.5, 2.0, array.shape)
        elif ".bn." in f".{name}" and name.endswith(("weight", "bias")):
            array[...] = rng.normal(0.0 if name.endswith("bias") else 1.0, 0.3, array.shape)


@pytest.fixture(scope="module", params=MODELS)
def traced(request):
    name = request.param
    edgefw.manual_seed(3)
    model = models.build(name)
    if name == "mobilenet":
        _randomize_batch_norm(model)
    graph = edgefw.trace(model, np.zeros((1,) + models.INPUT_SHAPES[name], np.float32))
    return name, graph


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_onnxruntime_matches_edgefw_runtime(traced, opset, tmp_path):
    name, graph = traced
    path = tmp_path / f"{name}.onnx"
    model = exporter.to_onnx(graph, path, opset=opset)
    assert path.is_file()
    onnx.checker.check_model(str(path), full_check=True)
    assert_shape_inference_agrees(model)
    rng = np.random.default_rng(opset)
    for batch in (1, 7):
        x = rng.standard_normal((batch,) + models.INPUT_SHAPES[name]).astype(np.float32)
        got = run_onnxruntime(str(path), {"input": x})
        want = run_edgefw(graph, {"input": x})
        assert got[0].shape[0] == batch
        assert_outputs_match(got, want, atol=1e-5)
    if name == "mobilenet":  # the random statistics must matter for this to test anything
        assert float(np.abs(want[0]).max()) > 1e-2


def test_file_structure(traced):
    name, graph = traced
    model = exporter.to_onnx(graph, opset=17, optimize="none")
    assert model.producer_name == "edgefw"
    assert model.producer_version == edgefw.__version__
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 17)]
    assert dims(model.graph.input[0]) == ("batch",) + models.INPUT_SHAPES[name]
    assert dims(model.graph.output[0])[0] == "batch"
    # Initializers keep the module-path names of the parameters they came from.
    parameters = {n for n, _ in models.build(name).named_parameters()}
    initializers = {t.name for t in model.graph.initializer}
    assert parameters <= initializers, sorted(parameters - initializers)
    # Each node documents the module it ran in.
    by_name = {n.name: n for n in model.graph.node}
    for node in graph.nodes:
        if node.module_path:
            assert by_name[node.name].doc_string == node.module_path


def test_module_is_traced_with_its_names_and_batch(tmp_path):
    edgefw.manual_seed(0)
    net = models.build("lenet")
    x = np.random.default_rng(1).standard_normal((3, 1, 28, 28)).astype(np.float32)
    path = tmp_path / "lenet.onnx"
    model = exporter.to_onnx(net, path, example_inputs=x, input_names=["image"],
                             output_names=["logits"])
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert {"features.0.weight", "classifier.4.bias"} <= {t.name for t in model.graph.initializer}
    (got,) = run_onnxruntime(str(path), {"image": x})
    np.testing.assert_allclose(got, net(x).data, atol=1e-5)


def test_fixed_batch_when_dynamic_batch_is_off():
    graph = edgefw.trace(models.build("mlp"), np.zeros((1, 1, 28, 28), np.float32))
    model = exporter.to_onnx(graph, example_inputs=np.zeros((4, 1, 28, 28), np.float32),
                             dynamic_batch=False)
    assert dims(model.graph.input[0]) == (4, 1, 28, 28)
    assert dims(model.graph.output[0]) == (4, 10)
    assert graph.inputs[0].shape[0] == "batch"  # the caller's graph is not changed
    traced = exporter.to_onnx(models.build("mlp"), example_inputs=np.zeros((2, 1, 28, 28),
                                                                            np.float32),
                              dynamic_batch=False)
    assert dims(traced.graph.input[0]) == (2, 1, 28, 28)


@pytest.mark.parametrize("level", ["none", "basic", "all"])
def test_optimization_levels_keep_the_numbers(level):
    edgefw.manual_seed(5)
    net = models.build("mobilenet")
    _randomize_batch_norm(net, seed=2)
    graph = edgefw.trace(net, np.zeros((1, 1, 28, 28), np.float32))
    model = exporter.to_onnx(graph, opset=13, optimize=level)
    ops = [n.op_type for n in model.graph.node]
    assert ("BatchNormalization" in ops) == (level != "all")
    # Fused Clip(0, 6) activations come back as explicit Clip nodes.
    assert ops.count("Clip") == 9
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    assert_outputs_match(run_onnxruntime(model, {"input": x}),
                         run_edgefw(graph, {"input": x}, optimization="none"), atol=1e-5)
