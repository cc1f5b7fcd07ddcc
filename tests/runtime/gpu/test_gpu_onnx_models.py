"""The ONNX light models shipped in the onnx wheel (random weights, as the conformance
tests use them) on ``["gpu", "cpu"]`` vs the CPU provider. The two small ones run by
default; the rest take minutes on a software Vulkan driver and are marked slow."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from runtime import InferenceSession
from runtime.conformance import light_model_inputs, light_models, randomized_weights
from tests.runtime.gpu.helpers import assert_close

pytestmark = pytest.mark.usefixtures("gpu_context")

_MODELS = {m.name: m for m in light_models()}
FAST = ["squeezenet", "shufflenet"]
#: Ops of these models the GPU provider has no kernel for.
CPU_OPS = {"LRN"}


def _check(name: str) -> None:
    model = randomized_weights(onnx.load(_MODELS[name].path))
    rng = np.random.default_rng(1)
    feed = [rng.standard_normal(x.shape).astype(x.dtype) for x in light_model_inputs(model)]
    data = model.SerializeToString()
    gpu = InferenceSession(data, providers=["gpu", "cpu"])
    cpu = InferenceSession(data, providers=["cpu"])
    summary = gpu.get_provider_summary()
    for node in gpu.graph.nodes:
        if gpu.get_provider_assignment()[node.name] == "cpu":
            # LRN has no GPU kernel; AlexNet/VGG's fc weights exceed lavapipe's 128 MiB
            # binding (the summary says so).
            assert node.op_type in CPU_OPS or f"{node.name} ({node.op_type}: constant" in \
                summary and "storage binding limit" in summary, summary
    names = [i.name for i in gpu.get_inputs()]
    for got, want in zip(gpu.run(None, dict(zip(names, feed))),
                         cpu.run(None, dict(zip(names, feed))), strict=True):
        assert_close(got, want)


@pytest.mark.parametrize("name", FAST)
def test_small_light_model(name):
    _check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(_MODELS) - set(FAST)))
def test_light_model(name):
    _check(name)
