"""Passes on graphs the tracer makes from edgefw models: the optimized graph has no
BatchNormalization, every ReLU6 is fused, and it matches the eager model to 1e-5."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
import runtime
from edgefw import models
from edgefw.ir.passes import optimize
from tests.ir.passes.graph_testing import assert_rewrite_keeps_outputs, op_types


def mobilenet_with_random_statistics() -> edgefw.nn.Module:
    """MobileNet whose BatchNorms have non-trivial running statistics and affine params."""
    rng = np.random.default_rng(0)
    model = models.build("mobilenet")
    state = model.state_dict()
    for key, array in state.items():
        if key.endswith(("running_mean", "bn.bias")):
            state[key] = (rng.standard_normal(array.shape) * 0.2).astype(array.dtype)
        elif key.endswith(("running_var", "bn.weight")):
            state[key] = rng.uniform(0.5, 1.5, array.shape).astype(array.dtype)
    model.load_state_dict(state)
    return model.eval()


def test_traced_mobilenet_optimizes_and_matches_eager():
    model = mobilenet_with_random_statistics()
    rng = np.random.default_rng(1)
    graph = edgefw.trace(model, rng.standard_normal((1, 1, 28, 28)).astype(np.float32))
    n_batch_norms = op_types(graph).count("BatchNormalization")
    assert n_batch_norms == 9
    feeds = [{"input": rng.standard_normal((b, 1, 28, 28)).astype(np.float32)} for b in (1, 5)]
    assert_rewrite_keeps_outputs(graph, lambda g: optimize(g, "all"), feeds)
    assert "BatchNormalization" not in op_types(graph)
    assert "Clip" not in op_types(graph)
    convs = [n for n in graph.nodes if n.op_type == "Conv"]
    assert len(convs) == n_batch_norms
    assert all(c.meta.get("fused_activation") == ("Clip", 0.0, 6.0) for c in convs)

    session = runtime.InferenceSession(graph, optimization="none")
    with edgefw.no_grad():
        for f in feeds:
            eager = model(edgefw.Tensor(f["input"])).data
            got = session.run(None, f)[0]
            np.testing.assert_allclose(got, eager, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,fused", [("mlp", 1), ("lenet", 4)])
def test_traced_relu_models_fuse_every_relu(name, fused):
    model = models.build(name).eval()
    rng = np.random.default_rng(2)
    graph = edgefw.trace(model, rng.standard_normal((1, 1, 28, 28)).astype(np.float32))
    feeds = [{"input": rng.standard_normal((b, 1, 28, 28)).astype(np.float32)} for b in (1, 37)]
    assert_rewrite_keeps_outputs(graph, lambda g: optimize(g, "all"), feeds)
    assert "Relu" not in op_types(graph)
    assert sum(n.meta.get("fused_activation") == "Relu" for n in graph.nodes) == fused
