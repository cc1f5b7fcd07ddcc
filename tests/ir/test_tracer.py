"""edgefw.trace: the traced graph, run by the runtime, matches the eager model."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
import edgefw.functional as F
import runtime
from edgefw import models, nn
from edgefw.errors import TraceError

EncoderBlock = models.TransformerBlock


def _randomize_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf[...] = rng.standard_normal(buf.shape) * 0.2
        elif name.endswith("running_var"):
            buf[...] = rng.uniform(0.5, 2.0, buf.shape)
    for name, p in model.named_parameters():
        if ".bn." in f".{name}" and name.endswith(("weight", "bias")):
            p.data[...] = rng.uniform(0.5, 1.5, p.shape)


CASES = {
    "mlp": (lambda: models.build("mlp"), (1, 28, 28)),
    "lenet": (lambda: models.build("lenet"), (1, 28, 28)),
    "mobilenet": (lambda: models.build("mobilenet"), (1, 28, 28)),
    "transformer": (lambda: EncoderBlock(), (10, 32)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_traced_graph_matches_eager_for_any_batch(name):
    edgefw.manual_seed(0)
    make, sample_shape = CASES[name]
    model = make()
    _randomize_bn(model)
    rng = np.random.default_rng(1)
    example = rng.random((1,) + sample_shape, dtype=np.float32)
    graph = edgefw.trace(model, example)
    assert graph.inputs[0].shape[0] == "batch"
    session = runtime.InferenceSession(graph)
    model.eval()
    for batch in (1, 37):
        x = rng.random((batch,) + sample_shape, dtype=np.float32)
        (out,) = session.run(None, {"input": x})
        with edgefw.no_grad():
            ref = model(x).data
        assert out.shape == ref.shape
        assert np.abs(out - ref).max() <= 1e-5, name


def test_mobilenet_is_optimized_bn_folded_relu6_fused():
    model = models.build("mobilenet")
    _randomize_bn(model)
    graph = edgefw.trace(model, np.zeros((1, 1, 28, 28), np.float32))
    session = runtime.InferenceSession(graph, optimization="all")
    ops = [n.op_type for n in session.graph.nodes]
    assert "BatchNormalization" not in ops and "Clip" not in ops
    assert sum(n.meta.get("fused_activation") is not None for n in session.graph.nodes) == 9


def test_parameters_are_named_by_module_path_and_nodes_remember_modules():
    graph = edgefw.trace(models.build("lenet"), np.zeros((2, 1, 28, 28), np.float32))
    assert "features.0.weight" in graph.constants
    assert "classifier.4.bias" in graph.constants
    assert [n.module_path for n in graph.nodes][:3] == ["features.0", "features.1",
                                                        "features.2"]
    text = str(graph)
    assert "Conv(" in text and "batch" in text


def test_dropout_vanishes_and_training_mode_is_restored():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.ReLU())
    model.train()
    graph = edgefw.trace(model, np.zeros((2, 4), np.float32))
    assert [n.op_type for n in graph.nodes] == ["Gemm", "Relu"]
    assert model.training


def test_multiple_inputs_and_outputs():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 2)
            self.b = nn.Linear(5, 2)

        def forward(self, x, y):
            h = self.a(x) + self.b(y)
            return h.relu(), F.softmax(h)

    model = TwoHeads()
    x = np.random.default_rng(0).random((4, 3), dtype=np.float32)
    y = np.random.default_rng(1).random((4, 5), dtype=np.float32)
    graph = edgefw.trace(model, (x, y), input_names=["x", "y"], output_names=["relu", "probs"])
    outs = runtime.InferenceSession(graph).run(None, {"x": x, "y": y})
    refs = model(x, y)
    for out, ref in zip(outs, refs):
        np.testing.assert_allclose(out, ref.data, atol=1e-6)
    assert [v.name for v in graph.outputs] == ["relu", "probs"]


def test_indexing_slicing_and_padding_trace():
    class Indexer(nn.Module):
        def forward(self, x):
            y = x[:, 1:, ::2] * 2 + x[:, :-1, 1::2]
            z = F.pad(y, (1, 0, 0, 2)) + 1.0
            return F.concat([z[:, None, 0], z[:, None, -1]], axis=1).flatten(1)

    x = np.random.default_rng(0).random((3, 4, 6), dtype=np.float32)
    graph = edgefw.trace(Indexer(), x)
    (out,) = runtime.InferenceSession(graph).run(None, {"input": x[:2]})
    np.testing.assert_allclose(out, Indexer()(x[:2]).data, atol=1e-6)


def test_value_dependent_control_flow_is_refused():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            h = self.fc(x)
            if h.sum() > 0:
                return h.relu()
            return h

    with pytest.raises(TraceError, match="control flow"):
        edgefw.trace(Branchy(), np.ones((2, 3), np.float32))

    class ItemUser(nn.Module):
        def forward(self, x):
            return x * x.max().item()

    with pytest.raises(TraceError, match=r"item\(\)"):
        edgefw.trace(ItemUser(), np.ones((2, 3), np.float32))


def test_losses_cannot_be_traced():
    class WithLoss(nn.Module):
        def forward(self, x):
            return F.cross_entropy(x, np.zeros(len(x), np.int64))

    with pytest.raises(TraceError, match="CrossEntropy"):
        edgefw.trace(WithLoss(), np.ones((2, 3), np.float32))


def test_untraced_output_is_refused():
    class Constant(nn.Module):
        def forward(self, x):
            return edgefw.Tensor(np.ones(3, np.float32))

    with pytest.raises(TraceError, match="not computed from the inputs"):
        edgefw.trace(Constant(), np.ones((2, 3), np.float32))
