"""Whole zoo models (traced with ``edgefw.trace``) on ``["gpu", "cpu"]`` vs the CPU
provider: float, int8 static quantization (integer kernels, and the unfused QDQ form),
and dynamic-range quantization (whose integer ops stay on the CPU, with copies at the
boundaries). Small batches keep this quick on a software Vulkan driver."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import models
from runtime import InferenceSession
from tests.runtime.gpu.helpers import assert_close, assert_lsb

pytestmark = pytest.mark.usefixtures("gpu_context")

ZOO = ["mlp", "lenet", "mobilenet", "transformer"]


def traced(name: str, seed: int = 0):
    """The zoo model with random BatchNorm parameters and statistics and He-initialized
    convs, traced: the freshly built MobileNet's output barely depends on its input,
    which would hide kernel errors."""
    edgefw.manual_seed(seed)  # the same weights whatever ran before in this process
    model = models.build(name)
    rng = np.random.default_rng(seed)
    for pname, p in model.named_parameters():
        if ".bn." in pname:
            p.data[...] = rng.uniform(0.5, 1.5, p.data.shape) if pname.endswith("weight") \
                else rng.normal(0.0, 0.2, p.data.shape)
        elif p.data.ndim == 4:  # He-initialized convs keep activations alive through ReLU6
            p.data[...] = rng.normal(0.0, np.sqrt(2.0 / p.data[0].size), p.data.shape)
    for bname, b in model.named_buffers():
        if bname.endswith("running_mean"):
            b[...] = rng.normal(0.0, 0.1, b.shape)
        elif bname.endswith("running_var"):
            b[...] = rng.uniform(0.5, 1.5, b.shape)
    model.eval()
    shape = models.INPUT_SHAPES[name]
    return edgefw.trace(model, np.zeros((1, *shape), np.float32)), shape


def inputs(shape, batch: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, *shape)).astype(np.float32)


def sessions(graph, optimization: str = "all"):
    return (InferenceSession(graph, providers=["gpu", "cpu"], optimization=optimization),
            InferenceSession(graph, providers=["cpu"], optimization=optimization))


@pytest.mark.parametrize("name", ZOO)
def test_float_model_matches_the_cpu_provider(name):
    graph, shape = traced(name)
    gpu, cpu = sessions(graph)
    assert set(gpu.get_provider_assignment().values()) == {"gpu"}, gpu.get_provider_summary()
    for batch in (3, 1):
        x = inputs(shape, batch)
        assert_close(gpu.run(None, {"input": x})[0], cpu.run(None, {"input": x})[0])


def _output_scale(graph) -> float:
    (dq,) = [n for n in graph.nodes if graph.is_output(n.outputs[0])]
    assert dq.op_type == "DequantizeLinear"
    return float(dq.inputs[1].data)


@pytest.mark.parametrize("name", ZOO)
def test_int8_model_runs_integer_kernels_on_the_gpu(name):
    quantize = pytest.importorskip("quantize")
    graph, shape = traced(name)
    int8 = quantize.quantize_static(graph, inputs(shape, 16, seed=5))
    gpu, cpu = sessions(int8)
    assert set(gpu.get_provider_assignment().values()) == {"gpu"}, gpu.get_provider_summary()
    assert any(n.domain == "edgefw" for n in gpu.graph.nodes)  # QConv/QGemm... ran on the GPU
    x = inputs(shape, 3)
    got, want = gpu.run(None, {"input": x})[0], cpu.run(None, {"input": x})[0]
    if name == "transformer":
        # LayerNorm/Softmax/Gelu run in float between the integer ops: a float result a
        # hair from a rounding boundary can quantize one step apart and carry on.
        assert_lsb(got, want, _output_scale(gpu.graph), max_lsb=3)
        assert np.mean(got == want) > 0.97
    else:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["lenet", "mobilenet"])
def test_unfused_qdq_model_dequantizes_packed_weights_in_the_kernels(name):
    quantize = pytest.importorskip("quantize")
    graph, shape = traced(name)
    int8 = quantize.quantize_static(graph, inputs(shape, 16, seed=5))
    gpu, cpu = sessions(int8, optimization="basic")
    assert set(gpu.get_provider_assignment().values()) == {"gpu"}, gpu.get_provider_summary()
    x = inputs(shape, 2)
    assert_lsb(gpu.run(None, {"input": x})[0], cpu.run(None, {"input": x})[0],
               _output_scale(gpu.graph), max_lsb=1)


def test_dynamic_range_model_splits_between_gpu_and_cpu():
    # LeNet quantized dynamically: QDynamicConv/QDynamicGemm (no GPU kernel) run on the CPU,
    # MaxPool and Flatten on the GPU, so values cross the boundary four times per run. The
    # GPU part is exact, so the results are identical.
    quantize = pytest.importorskip("quantize")
    graph, shape = traced("lenet")
    dynamic = quantize.quantize_dynamic(graph)
    gpu, cpu = sessions(dynamic)
    placed = gpu.get_provider_assignment()
    assert [n.op_type for n in gpu.graph.nodes if placed[n.name] == "gpu"] == \
        ["MaxPool", "MaxPool", "Flatten"]
    assert "QDynamicConv: no GPU kernel" in gpu.get_provider_summary()
    x = inputs(shape, 2)
    np.testing.assert_array_equal(gpu.run(None, {"input": x})[0], cpu.run(None, {"input": x})[0])
    source = gpu.plan.source.split("def run_profiled")[0]
    assert source.count("_gpu = _x") == 2 and source.count("_host = _x") == 2
