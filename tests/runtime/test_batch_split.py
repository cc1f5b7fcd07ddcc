"""Batch-parallel execution: which graphs may run as tiles of their batch, and that tiled
runs give the unsplit results."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import models
from edgefw.ir import Graph
from edgefw.ir.graph import constant_data
from edgefw.ir.primitives.blas import get_num_threads, set_num_threads
from runtime import InferenceSession
from runtime.batch_split import MIN_TILE, BatchSplit, analyze


@pytest.fixture
def two_threads():
    before = get_num_threads()
    set_num_threads(2)
    yield
    set_num_threads(before)


def _graph(op: str, attrs: dict | None = None, shape=("batch", 4, 6), extra=()) -> Graph:
    g = Graph()
    x = g.add_input("x", "float32", shape)
    g.set_outputs([g.add_node(op, [x, *extra], attrs or {}).output])
    return g


@pytest.mark.parametrize("name", ["mlp", "lenet", "mobilenet", "transformer"])
def test_zoo_models_split(name):
    kwargs = {"dim": 32, "heads": 4, "hidden": 64} if name == "transformer" else {}
    model = models.build(name, **kwargs).eval()
    shape = (1, 16, 32) if name == "transformer" else (1, 1, 28, 28)
    graph = edgefw.trace(model, edgefw.tensor(np.zeros(shape, np.float32)))
    session = InferenceSession(graph)
    assert session._batch_split is not None and session._batch_split.work_per_sample > 0


@pytest.mark.parametrize("op, attrs, extra", [
    ("Softmax", {"axis": 0}, ()),
    ("LayerNormalization", {"axis": 0}, (np.ones((4, 6), np.float32),)),
    ("ReduceMean", {}, (np.array([0, 2], np.int64),)),
    ("ReduceSum", {}, ()),  # every axis
    ("Transpose", {"perm": [1, 0, 2]}, ()),  # batch leaves axis 0 and stays there
    ("Flatten", {"axis": 0}, ()),
    ("Add", {}, (np.ones((5, 1, 1), np.float32),)),  # broadcasting a constant over batch
])
def test_mixing_ops_are_refused(op, attrs, extra):
    assert analyze(_graph(op, attrs, extra=extra)) is None


def test_per_row_ops_pass():
    assert analyze(_graph("Softmax", {"axis": -1})) is not None
    assert analyze(_graph("ReduceMean", {"keepdims": 0},
                          extra=(np.array([2], np.int64),))) is not None
    assert analyze(_graph("Flatten", {"axis": 1})) is not None
    # a (1, 4, 6) constant is shared by every sample
    assert analyze(_graph("Add", extra=(np.ones((1, 4, 6), np.float32),))) is not None


def test_dynamic_quantization_is_refused():
    """DynamicQuantizeLinear's scale is computed over the whole batch."""
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 8))
    q = g.add_node("DynamicQuantizeLinear", [x], num_outputs=3)
    g.set_outputs([q.outputs[0]])
    assert analyze(g) is None


def test_shape_chain_reshape_is_followed():
    """PyTorch-style Shape -> Gather -> Concat -> Reshape keeps samples apart."""
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 4, 6))
    shape = g.add_node("Shape", [x]).output
    n = g.add_node("Gather", [shape, g.add_constant("i", np.array(0, np.int64))],
                   {"axis": 0}).output
    n1 = g.add_node("Unsqueeze", [n, g.add_constant("a", np.array([0], np.int64))]).output
    target = g.add_node("Concat", [n1, g.add_constant("rest", np.array([24], np.int64))],
                        {"axis": 0}).output
    g.set_outputs([g.add_node("Reshape", [x, target]).output])
    split = analyze(g)
    if g.outputs[0].shape and g.outputs[0].shape[0] == "batch":
        assert split is not None
    else:  # inference could not keep the symbol: refusing is the safe answer
        assert split is None


def test_tiles_cover_the_batch():
    split = BatchSplit(work_per_sample=1 << 20)
    assert split.tiles(256, 2) == [(0, 128), (128, 256)]
    assert split.tiles(203, 3) == [(0, 67), (67, 135), (135, 203)]
    assert split.tiles(256, 1) is None
    assert split.tiles(2 * MIN_TILE - 1, 2) is None
    assert BatchSplit(work_per_sample=10).tiles(256, 2) is None  # too little work


@pytest.mark.parametrize("name", ["lenet", "transformer"])
def test_tiled_run_matches_unsplit(name, two_threads):
    edgefw.manual_seed(0)
    kwargs = {"dim": 32, "heads": 4, "hidden": 64} if name == "transformer" else {}
    model = models.build(name, **kwargs).eval()
    shape = (16, 32) if name == "transformer" else (1, 28, 28)
    graph = edgefw.trace(model, edgefw.tensor(np.zeros((1, *shape), np.float32)))
    x = np.random.default_rng(0).random((203, *shape), dtype=np.float32)
    tiled = InferenceSession(graph)
    plain = InferenceSession(graph)
    plain._batch_split = None
    name_in = tiled.get_inputs()[0].name
    expected = plain.run(None, {name_in: x})[0]
    got = tiled.run(None, {name_in: x})[0]
    assert any(k[0] == "tile" for k in tiled._plans)  # the run was tiled
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    again = tiled.run(None, {name_in: x})[0]  # tile plans are reused
    np.testing.assert_array_equal(again, got)
    with torch_like_model_reference(model, x) as reference:
        np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-4)


class torch_like_model_reference:
    """The eager edgefw forward as an independent reference."""

    def __init__(self, model, x):
        self.model, self.x = model, x

    def __enter__(self):
        with edgefw.no_grad():
            return self.model(edgefw.tensor(self.x)).numpy()

    def __exit__(self, *exc):
        return False


def test_tiled_run_of_a_plain_graph(two_threads):
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 64))
    w = g.add_constant("w", np.ones((64, 4096), np.float32))
    y = g.add_node("MatMul", [x, w], name="big").output
    g.set_outputs([g.add_node("Sqrt", [y], name="root").output])
    session = InferenceSession(g)
    assert session._batch_split is not None
    out = session.run(None, {"x": np.ones((64, 64), np.float32)})[0]
    assert out.shape == (64, 4096) and np.allclose(out, 8.0)
    assert any(k[0] == "tile" for k in session._plans)


def test_dynamic_range_graph_splits_and_matches(two_threads):
    """quantize_dynamic's kernels quantize each row on its own: tiles give the same bits."""
    import quantize

    edgefw.manual_seed(0)
    model = models.build("mlp").eval()
    graph = edgefw.trace(model, edgefw.tensor(np.zeros((1, 1, 28, 28), np.float32)))
    dynamic = quantize.quantize_dynamic(graph)
    x = np.random.default_rng(1).random((256, 1, 28, 28), dtype=np.float32)
    tiled = InferenceSession(dynamic)
    assert tiled._batch_split is not None
    plain = InferenceSession(dynamic)
    plain._batch_split = None
    name = tiled.get_inputs()[0].name
    np.testing.assert_array_equal(tiled.run(None, {name: x})[0], plain.run(None, {name: x})[0])


def test_last_run_plans_lists_every_tile_plan(two_threads):
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 64))
    g.set_outputs([g.add_node("MatMul", [x, np.ones((64, 4096), np.float32)]).output])
    session = InferenceSession(g)
    session.run(None, {"x": np.ones((64, 64), np.float32)})
    assert len(session.last_run_plans) == 2 and session.plan is session.last_run_plans[0]
    session.run(None, {"x": np.ones((1, 64), np.float32)})
    assert session.last_run_plans == [session.plan]


def test_tile_plans_are_built_concurrent_and_int8_tiles_agree(two_threads, monkeypatch):
    """Tile plans are planned for running beside each other (bigger conv chunks, one-call
    rounding, see KernelContext.concurrent); a whole-batch plan is not. The int8 results
    agree with the untiled run's within one output step."""
    import quantize
    import runtime.session as session_module

    built = []
    real = session_module.build_plan

    def spy(graph, assignment, shapes=None, concurrent=False):
        built.append((shapes and next(iter(shapes.values()))[0], concurrent))
        return real(graph, assignment, shapes, concurrent)

    monkeypatch.setattr(session_module, "build_plan", spy)
    edgefw.manual_seed(0)
    model = models.build("lenet").eval()
    graph = edgefw.trace(model, edgefw.tensor(np.zeros((1, 1, 28, 28), np.float32)))
    x = np.random.default_rng(2).random((256, 1, 28, 28), dtype=np.float32)
    int8 = quantize.quantize_static(graph, x[:64], per_channel=True)
    built.clear()  # (calibration ran tiled too)
    tiled = InferenceSession(int8)
    plain = InferenceSession(int8)
    plain._batch_split = None
    name = tiled.get_inputs()[0].name
    got, want = tiled.run(None, {name: x})[0], plain.run(None, {name: x})[0]
    assert (128, True) in built and (256, False) in built
    assert {batch for batch, concurrent in built if concurrent} == {128}
    step = float(constant_data(int8.outputs[0].producer.inputs[1]))  # output scale
    assert np.max(np.abs(got - want)) <= step * 1.001
    assert np.mean(got != want) < 1e-3
