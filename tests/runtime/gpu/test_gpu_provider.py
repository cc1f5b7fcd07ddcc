"""The GPU provider in a session: availability and its one warning, the partition summary,
copies at provider boundaries, one submission per run, weights uploaded once, pipelines
cached, batches split over binding limits, clear errors, and ``import runtime`` staying
free of wgpu."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import runtime.providers.gpu.provider as provider_module
from edgefw.errors import DeviceError, NodeExecutionError
from edgefw.ir import Graph
from runtime import InferenceSession
from tests.runtime.gpu.helpers import assert_close, rand

ROOT = Path(__file__).resolve().parents[3]


def _mlp() -> Graph:
    g = Graph("mlp")
    x = g.add_input("x", "float32", ("batch", 20))
    h = g.add_node("Gemm", [x, rand(30, 20, seed=1), rand(30, seed=2)], {"transB": 1},
                   name="fc1", meta={"fused_activation": "Relu"}).output
    y = g.add_node("Gemm", [h, rand(5, 30, seed=3)], {"transB": 1}, name="fc2").output
    g.set_outputs([g.add_node("Softmax", [y], {"axis": -1}, name="softmax").output])
    return g


# ------------------------------------------------------------------ availability
def _no_adapter(monkeypatch):
    def missing():
        raise DeviceError("wgpu found no WebGPU adapter (simulated); install 'edgefw[gpu]' "
                          "and a driver (apt-get install mesa-vulkan-drivers)")

    monkeypatch.setattr(provider_module, "gpu_context", missing)


def test_without_an_adapter_gpu_then_cpu_runs_on_cpu_with_one_warning(monkeypatch, caplog):
    _no_adapter(monkeypatch)
    with caplog.at_level(logging.INFO, logger="edgefw.runtime"):
        session = InferenceSession(_mlp(), providers=["gpu", "cpu"])
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "'gpu' is not available" in warnings[0].getMessage()
    assert "mesa-vulkan-drivers" in warnings[0].getMessage()
    assert session.get_providers() == ["cpu"]
    assert session.run(None, {"x": rand(2, 20)})[0].shape == (2, 5)


def test_gpu_alone_without_an_adapter_raises_what_to_install(monkeypatch):
    _no_adapter(monkeypatch)
    with pytest.raises(DeviceError, match=r"edgefw\[gpu\].*mesa-vulkan-drivers"):
        InferenceSession(_mlp(), providers=["gpu"])


def test_unknown_provider_names_still_raise(monkeypatch):
    with pytest.raises(DeviceError, match="unknown execution provider 'gpuu'"):
        InferenceSession(_mlp(), providers=["gpuu", "cpu"])


def test_missing_wgpu_package_is_named(monkeypatch):
    from runtime.providers.gpu import device

    monkeypatch.setitem(sys.modules, "wgpu", None)
    with pytest.raises(DeviceError, match=r"needs the 'wgpu' package.*edgefw\[gpu\]"):
        device.import_wgpu()


def test_importing_runtime_does_not_import_wgpu():
    script = ("import sys, numpy as np, runtime, runtime.providers.gpu\n"
              "from edgefw.ir import Graph\n"
              "g = Graph(); x = g.add_input('x', 'float32', (2,))\n"
              "g.set_outputs([g.add_node('Relu', [x]).output])\n"
              "runtime.InferenceSession(g).run(None, {'x': np.ones(2, np.float32)})\n"
              "print('wgpu' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


# ------------------------------------------------------------------ partitioning
def _mixed_graph() -> Graph:
    """float: Relu (gpu) -> Pad (cpu: no GPU kernel) -> Exp (gpu); int32: Add (cpu)."""
    g = Graph("mixed")
    x = g.add_input("x", "float32", ("batch", 3, 5))
    i = g.add_input("i", "int32", ("batch", 4))
    r = g.add_node("Relu", [x], name="relu").output
    p = g.add_node("Pad", [r, np.array([0, 1, 0, 0, 1, 0], np.int64)], name="pad").output
    e = g.add_node("Exp", [p], name="exp").output
    s = g.add_node("Add", [i, i], name="add").output
    g.set_outputs([e, s, r])
    return g


@pytest.mark.usefixtures("gpu_context")
def test_partition_summary_names_each_fallback_and_why(caplog):
    with caplog.at_level(logging.INFO, logger="edgefw.runtime"):
        session = InferenceSession(_mixed_graph(), providers=["gpu", "cpu"])
    assert session.get_provider_assignment() == {"relu": "gpu", "pad": "cpu", "exp": "gpu",
                                                 "add": "cpu"}
    summary = session.get_provider_summary()
    assert summary.startswith("2 nodes on gpu, 2 on cpu: pad (Pad: no GPU kernel), "
                              "add (Add: dtype int32 unsupported")
    logged = [r for r in caplog.records if r.name == "edgefw.runtime"]
    assert len(logged) == 1 and logged[0].levelno == logging.WARNING
    assert summary in logged[0].getMessage()


@pytest.mark.usefixtures("gpu_context")
def test_values_are_copied_at_provider_boundaries():
    graph = _mixed_graph()
    gpu = InferenceSession(graph, providers=["gpu", "cpu"])
    cpu = InferenceSession(graph, providers=["cpu"])
    feed = {"x": rand(2, 3, 5, low=-1, high=1), "i": np.arange(8, dtype=np.int32).reshape(2, 4)}
    for got, want in zip(gpu.run(None, feed), cpu.run(None, feed), strict=True):
        assert_close(got, want)
    source = gpu.plan.source.split("def run_profiled")[0]
    # x and Pad's output go up, Relu's output comes down once (for Pad and as an output)
    assert source.count("_gpu = _x") == 2 and source.count("_host = _x") == 1, source
    assert "_out" in source  # Exp's output is read back for the caller


@pytest.mark.usefixtures("gpu_context")
def test_one_submission_per_run_weights_once_pipelines_cached():
    graph = _mlp()
    session = InferenceSession(graph, providers=["gpu", "cpu"])
    provider = session._providers[0]
    session.run(None, {"x": rand(4, 20)})
    uploads = provider.stats["constant_uploads"]
    before = provider.stats["submissions"]
    session.run(None, {"x": rand(4, 20, seed=3)})
    assert provider.stats["submissions"] == before + 1
    session.run(None, {"x": rand(9, 20)})  # a new batch: a new plan, same weights
    assert provider.stats["constant_uploads"] == uploads
    compiled = provider.context.pipelines.compiled
    again = InferenceSession(graph, providers=["gpu", "cpu"])
    again.run(None, {"x": rand(4, 20)})
    assert provider.context.pipelines.compiled == compiled


@pytest.mark.usefixtures("gpu_context")
def test_symbolic_batch_and_profiling():
    graph = _mlp()
    gpu = InferenceSession(graph, providers=["gpu", "cpu"], enable_profiling=True)
    cpu = InferenceSession(graph, providers=["cpu"])
    for batch in (1, 37, 1):
        x = rand(batch, 20, seed=batch)
        assert_close(gpu.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0])
    report = gpu.profile()
    assert report.runs == 3
    assert [(r.name, r.provider, r.calls) for r in report.records] == [
        ("fc1", "gpu", 3), ("fc2", "gpu", 3), ("softmax", "gpu", 3)]


# ------------------------------------------------------------------ device limits
@pytest.fixture
def small_bindings(gpu_context, monkeypatch):
    """Pretend the adapter binds at most 256 KiB per storage binding, with 32-byte offset
    alignment (lavapipe's and NVIDIA's): the zoo's weights fit, a LeNet or MobileNet
    activation of 20 images does not."""
    monkeypatch.setattr(gpu_context, "max_binding_bytes", 256 << 10)
    monkeypatch.setattr(gpu_context, "offset_alignment", 32)
    return gpu_context


def test_big_tensors_are_split_into_binding_sized_chunks(small_bindings):
    import edgefw
    from edgefw import models

    for name in ("lenet", "mobilenet", "transformer"):
        shape = models.INPUT_SHAPES[name]
        graph = edgefw.trace(models.build(name), np.zeros((1, *shape), np.float32))
        gpu = InferenceSession(graph, providers=["gpu", "cpu"])
        cpu = InferenceSession(graph, providers=["cpu"])
        assert set(gpu.get_provider_assignment().values()) == {"gpu"}
        x = np.random.default_rng(0).random((20, *shape)).astype(np.float32)
        before = gpu._providers[0].stats["dispatches"]
        assert_close(gpu.run(None, {"input": x})[0], cpu.run(None, {"input": x})[0])
        if name != "transformer":  # its attention reshapes cannot be split; they fit anyway
            assert gpu._providers[0].stats["dispatches"] - before > len(gpu.graph.nodes)


def test_chunks_start_at_aligned_offsets_or_the_error_says_why(small_bindings):
    from runtime.providers.gpu.launch import GPUKernelEnv

    env = GPUKernelEnv(small_bindings, None, None)
    small_bindings.offset_alignment = 256
    small_bindings.max_binding_bytes = 128 << 10
    # A 28x28x1 float image (3136 bytes) starts 256-aligned every 4 images.
    assert env.row_chunks(10, [3136, 18816], "Conv") == [(0, 4), (4, 4), (8, 2)]
    assert env.row_chunks(3, [3136, 18816], "Conv") == [(0, 3)]  # fits: one chunk
    with pytest.raises(DeviceError, match="256-byte aligned offsets"):
        env.row_chunks(10, [3136, 50176], "Conv")  # 4 images' output exceed 128 KiB


def test_constants_past_the_binding_limit_stay_on_the_cpu(small_bindings):
    g = Graph("wide")
    x = g.add_input("x", "float32", ("batch", 300))
    g.set_outputs([g.add_node("Gemm", [x, rand(400, 300)], {"transB": 1}, name="fc").output])
    session = InferenceSession(g, providers=["gpu", "cpu"])
    assert session.get_provider_summary() == (
        "0 nodes on gpu, 1 on cpu: fc (Gemm: constant fc.in1 (0.5 MiB) exceeds the adapter's "
        "0.2 MiB storage binding limit)")


def test_a_tensor_past_the_buffer_limit_fails_naming_the_node(gpu_context, monkeypatch):
    monkeypatch.setattr(gpu_context, "max_buffer_bytes", 1024)
    session = InferenceSession(_mlp(), providers=["gpu", "cpu"])
    with pytest.raises(NodeExecutionError, match=r"node 'fc1'.*MiB"):
        session.run(None, {"x": rand(64, 20)})
