"""Planner: liveness (values freed after their last use), buffer reuse, in-place safety."""

from __future__ import annotations

import numpy as np

from edgefw.ir import Graph
from runtime import InferenceSession

rng = np.random.default_rng(3)


def randn(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def test_intermediate_is_freed_after_its_last_use():
    g = Graph("fanout")
    x = g.add_input("x", "float32", (2, 3))
    a = g.add_node("Exp", [x], name="a").output
    b = g.add_node("Neg", [x], name="b").output
    c = g.add_node("Mul", [a, b], name="c").output  # last use of b
    d = g.add_node("Add", [a, c], name="d").output  # last use of a and c
    g.set_outputs([d])
    session = InferenceSession(g, optimization="none")
    x0 = randn(2, 3)
    (y,) = session.run(None, {"x": x0})
    np.testing.assert_allclose(y, np.exp(x0) + np.exp(x0) * -x0, rtol=1e-6)
    freed = {s.node.name: s.freed for s in session.plan.steps}
    assert freed == {"a": [], "b": ["x"], "c": ["b"], "d": ["a", "c"]}
    # The generated code drops each value right after its last reader.
    source = session.plan.source.split("def run_profiled")[0].splitlines()
    call_b = next(i for i, line in enumerate(source) if "= k2(" in line)
    assert source[call_b + 1].strip().startswith("del ")


def test_buffers_are_reused_along_a_chain():
    g = Graph("chain")
    h = g.add_input("x", "float32", (4, 8))
    weights = [randn(8, 8) * 0.3 for _ in range(10)]
    for i, w in enumerate(weights):
        h = g.add_node("MatMul", [h, w], name=f"mm{i}").output
    g.set_outputs([h])
    session = InferenceSession(g, optimization="none")
    x0 = randn(4, 8)
    (y,) = session.run(None, {"x": x0})
    ref = x0
    for w in weights:
        ref = ref @ w
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    plan = session.plan
    # Nine intermediates (the last output is a fresh array) live in two alternating buffers.
    assert plan.num_buffers == 2 and plan.buffer_reuses == 7
    assert plan.buffer_bytes == 2 * 4 * 8 * 4
    assert [s.storage[0] for s in plan.steps[:3]] == ["buffer 0", "buffer 1", "buffer 0"]


def test_no_in_place_write_into_a_value_read_later():
    g = Graph("reuse")
    x = g.add_input("x", "float32", (3, 4))
    a = g.add_node("MatMul", [x, randn(4, 4)], name="a").output
    r = g.add_node("Relu", [a], name="r").output  # a is read again below: no in-place
    s = g.add_node("Add", [a, r], name="s").output  # last use of both: in place
    g.set_outputs([g.add_node("Neg", [s], name="out").output])
    session = InferenceSession(g, optimization="none")
    x0 = randn(3, 4)
    (y,) = session.run(None, {"x": x0})
    a0 = x0 @ g.node("a").inputs[1].data
    np.testing.assert_allclose(y, -(a0 + np.maximum(a0, 0)), rtol=1e-6)
    storage = {s.node.name: s.storage[0] for s in session.plan.steps}
    assert storage["r"].startswith("buffer") and storage["s"].startswith("in-place")


def test_view_keeps_its_buffer_alive():
    g = Graph("views")
    x = g.add_input("x", "float32", (2, 6))
    a = g.add_node("MatMul", [x, randn(6, 6)], name="a").output
    view = g.add_node("Reshape", [a, np.array([3, 4], np.int64)], name="view").output
    b = g.add_node("MatMul", [x, randn(6, 6)], name="b").output  # must not take a's buffer
    b2 = g.add_node("Reshape", [b, np.array([3, 4], np.int64)], name="b2").output
    g.set_outputs([g.add_node("Sub", [view, b2], name="out").output])
    session = InferenceSession(g, optimization="none")
    x0 = randn(2, 6)
    (y,) = session.run(None, {"x": x0})
    wa, wb = g.node("a").inputs[1].data, g.node("b").inputs[1].data
    np.testing.assert_allclose(y, ((x0 @ wa) - (x0 @ wb)).reshape(3, 4), rtol=1e-5, atol=1e-6)
    steps = {s.node.name: s.storage[0] for s in session.plan.steps}
    assert steps["a"] != steps["b"] and steps["view"] == "view"


def test_constants_are_never_written():
    g = Graph("const")
    x = g.add_input("x", "float32", (3,))
    c = g.add_node("Constant", [], {"value": np.array([1.0, -2.0, 3.0], np.float32)}).output
    r = g.add_node("Relu", [c]).output  # its input is held by the kernel: no in-place
    g.set_outputs([g.add_node("Add", [x, r]).output, c])
    session = InferenceSession(g, optimization="none")
    for _ in range(2):
        y, c_out = session.run(None, {"x": np.zeros(3, np.float32)})
        np.testing.assert_array_equal(y, [1.0, 0.0, 3.0])
        c_out[:] = 99  # the caller owns its copy
    np.testing.assert_array_equal(session.run(None, {"x": np.zeros(3, np.float32)})[1],
                                  [1.0, -2.0, 3.0])


def test_one_plan_per_batch_size_and_printing():
    g = Graph("sym")
    x = g.add_input("x", "float32", ("batch", 8))
    h = g.add_node("Gemm", [x, randn(16, 8), randn(16)], {"transB": 1}, name="fc").output
    g.set_outputs([g.add_node("Relu", [h]).output])
    session = InferenceSession(g, optimization="none")
    generic = session.plan
    assert generic.num_buffers == 0  # symbolic batch: nothing static to preallocate
    session.run(None, {"x": randn(1, 8)})
    one = session.plan
    session.run(None, {"x": randn(37, 8)})
    many = session.plan
    session.run(None, {"x": randn(1, 8)})
    assert session.plan is one and many is not one
    assert one.input_shapes == {"x": (1, 8)} and many.steps[0].output_types[0].shape == (37, 16)
    text = str(many)
    assert "plan for graph 'sym' with inputs x[37, 8]: 2 steps" in text
    assert "fc" in text and "Gemm" in text and "buffer 0" in text and "freed after" in text
    assert "in-place (input 0)" in text


def test_absurd_declared_shapes_are_not_preallocated():
    g = Graph("huge")
    x = g.add_input("x", "float32", (100_000, 100_000))  # 40 GB if it were allocated
    h = g.add_node("Neg", [x]).output
    g.set_outputs([g.add_node("Relu", [h]).output])
    session = InferenceSession(g, optimization="none")
    assert session.plan.buffer_bytes == 0 and session.plan.num_buffers == 0
