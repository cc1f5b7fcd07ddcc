"""FuseActivationPass: Conv/Gemm/MatMul/Add + Relu/Clip/LeakyRelu/Sigmoid/Tanh become one
marked node with the same outputs; shared or graph-output producers stay unfused."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir import Graph, QuantParams, Value
from edgefw.ir.passes import FuseActivationPass
from tests.ir.passes.graph_testing import assert_rewrite_keeps_outputs, op_types, random_feeds

RNG = np.random.default_rng(7)


def producer(g: Graph, kind: str) -> Value:
    """A ``kind`` node on graph input ``x`` with outputs of both signs."""
    if kind == "Conv":
        x = g.add_input("x", "float32", ("batch", 3, 6, 6))
        w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
        return g.add_node("Conv", [x, w, RNG.standard_normal(4).astype(np.float32)],
                          {"pads": [1, 1, 1, 1]}, name="conv").output
    x = g.add_input("x", "float32", ("batch", 5))
    if kind == "Gemm":
        w = RNG.standard_normal((3, 5)).astype(np.float32)
        return g.add_node("Gemm", [x, w], {"transB": 1}, name="fc").output
    if kind == "MatMul":
        return g.add_node("MatMul", [x, RNG.standard_normal((5, 3)).astype(np.float32)],
                          name="mm").output
    # A residual-style Add of two computed values.
    scaled = g.add_node("Mul", [x, np.full(5, -3.0, np.float32)]).output
    return g.add_node("Add", [x, scaled], name="add").output


ACTIVATIONS = {
    "Relu": ([], {}, "Relu"),
    "ReLU6": ([np.float32(0.0), np.float32(6.0)], {}, ("Clip", 0.0, 6.0)),
    "Clip": ([np.float32(-0.5), np.float32(0.25)], {}, ("Clip", -0.5, 0.25)),
    "LeakyRelu": ([], {"alpha": 0.2}, ("LeakyRelu", 0.2)),
    "Sigmoid": ([], {}, "Sigmoid"),
    "Tanh": ([], {}, "Tanh"),
}


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("kind", ["Conv", "Gemm", "MatMul", "Add"])
def test_activation_fuses_and_keeps_outputs(kind, activation):
    g = Graph()
    y = producer(g, kind)
    bounds, attrs, mark = ACTIVATIONS[activation]
    op = "Clip" if activation in ("ReLU6", "Clip") else activation
    act = g.add_node(op, [y, *bounds], attrs, name="act")
    g.set_outputs([act.output])
    feeds = [random_feeds(g, batch=3, seed=s) for s in (0, 1)]
    for f in feeds:
        f["x"] *= 4  # reach both clip bounds
    result = assert_rewrite_keeps_outputs(g, FuseActivationPass(), feeds)
    assert result.changed
    assert op not in op_types(g)
    fused = g.outputs[0].producer
    assert fused.op_type == kind and fused.meta["fused_activation"] == mark
    assert g.outputs[0].name == "act"


def test_clip_with_only_a_lower_bound():
    g = Graph()
    y = producer(g, "Gemm")
    g.set_outputs([g.add_node("Clip", [y, np.float32(0.5)], name="act").output])
    assert_rewrite_keeps_outputs(g, FuseActivationPass(), [random_feeds(g)])
    assert g.nodes[0].meta["fused_activation"] == ("Clip", 0.5, None)


def test_printer_shows_the_fused_activation():
    g = Graph()
    y = producer(g, "Gemm")
    g.set_outputs([g.add_node("Relu", [y], name="relu").output])
    FuseActivationPass().run(g)
    assert "%relu = Gemm[+Relu](%x, fc.in1, transB=1)" in str(g)


def test_not_fused_when_producer_output_is_shared_or_a_graph_output():
    g = Graph()
    y = producer(g, "Gemm")
    relu = g.add_node("Relu", [y]).output
    g.set_outputs([relu, g.add_node("Neg", [y]).output])
    assert FuseActivationPass().run(g).changed is False

    g = Graph()
    y = producer(g, "Conv")
    g.set_outputs([g.add_node("Relu", [y]).output, y])
    assert FuseActivationPass().run(g).changed is False


def test_not_fused_with_computed_clip_bounds_or_an_existing_mark():
    g = Graph()
    y = producer(g, "Gemm")
    hi = g.add_input("hi", "float32", ())
    g.set_outputs([g.add_node("Clip", [y, None, hi]).output])
    assert FuseActivationPass().run(g).changed is False

    g = Graph()
    y = producer(g, "Gemm")
    g.nodes[-1].meta["fused_activation"] = "Relu"
    g.set_outputs([g.add_node("Sigmoid", [y]).output])
    assert FuseActivationPass().run(g).changed is False

    g = Graph()
    y = producer(g, "Conv")
    y.quant = QuantParams(np.array(0.05, np.float32), np.array(0, np.int8))  # pre-Relu range
    g.set_outputs([g.add_node("Relu", [y]).output])
    assert FuseActivationPass().run(g).changed is False


def test_only_the_first_of_two_activations_fuses():
    g = Graph()
    y = producer(g, "Conv")
    r = g.add_node("Relu", [y], name="relu").output
    g.set_outputs([g.add_node("Sigmoid", [r], name="sigmoid").output])
    assert_rewrite_keeps_outputs(g, FuseActivationPass(), [random_feeds(g)])
    assert op_types(g) == ["Conv", "Sigmoid"]
    assert g.nodes[0].meta["fused_activation"] == "Relu" and g.nodes[0].output.name == "relu"
