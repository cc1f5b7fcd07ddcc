"""Small float graphs built with the IR API, and helpers to run them, for the quantizer's
tests. Weights are seeded so every test sees the same numbers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgefw.ir import Graph
from quantize.ptq import quantization_info
from runtime import InferenceSession


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def conv_net(seed: int = 0) -> Graph:
    """input (batch,1,8,8) -> Conv(4, 3x3, pad 1, bias) -> Relu -> MaxPool 2 -> Flatten ->
    Gemm(transB=1, 64->12) -> Relu -> Gemm(transB=0, 12->5) -> output."""
    r = rng(seed)
    g = Graph("conv_net")
    x = g.add_input("input", "float32", ("batch", 1, 8, 8))
    w = g.add_constant("conv.weight", r.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32))
    b = g.add_constant("conv.bias", r.normal(0, 0.1, 4).astype(np.float32))
    conv = g.add_node("Conv", [x, w, b], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]},
                      name="conv", module_path="conv")
    relu = g.add_node("Relu", [conv.output], name="relu", module_path="relu")
    pool = g.add_node("MaxPool", [relu.output], {"kernel_shape": [2, 2], "strides": [2, 2]},
                      name="pool", module_path="pool")
    flat = g.add_node("Flatten", [pool.output], {"axis": 1}, name="flatten",
                      module_path="flatten")
    w1 = g.add_constant("fc1.weight", r.normal(0, 0.2, (12, 64)).astype(np.float32))
    b1 = g.add_constant("fc1.bias", r.normal(0, 0.1, 12).astype(np.float32))
    fc1 = g.add_node("Gemm", [flat.output, w1, b1], {"transB": 1}, name="fc1",
                     module_path="fc1")
    relu1 = g.add_node("Relu", [fc1.output], name="relu1", module_path="relu1")
    w2 = g.add_constant("fc2.weight", r.normal(0, 0.3, (12, 5)).astype(np.float32))
    b2 = g.add_constant("fc2.bias", r.normal(0, 0.1, 5).astype(np.float32))
    fc2 = g.add_node("Gemm", [relu1.output, w2, b2], name="fc2", module_path="fc2",
                     output_names=["output"])
    g.set_outputs([fc2.output])
    g.check()
    return g


def mlp_graph(layers: Sequence[tuple[np.ndarray, np.ndarray]], name: str = "mlp") -> Graph:
    """Gemm(transB=1)+Relu layers ``fc1, fc2, ...`` (no Relu after the last)."""
    g = Graph(name)
    h = g.add_input("input", "float32", ("batch", layers[0][0].shape[1]))
    for i, (w, b) in enumerate(layers, 1):
        wv = g.add_constant(f"fc{i}.weight", np.asarray(w, np.float32))
        bv = g.add_constant(f"fc{i}.bias", np.asarray(b, np.float32))
        last = i == len(layers)
        h = g.add_node("Gemm", [h, wv, bv], {"transB": 1}, name=f"fc{i}", module_path=f"fc{i}",
                       output_names=["output"] if last else None).output
        if not last:
            h = g.add_node("Relu", [h], name=f"relu{i}", module_path=f"relu{i}").output
    g.set_outputs([h])
    g.check()
    return g


def run(graph: Graph, x: np.ndarray, outputs: Sequence[str] | None = None,
        optimization: str = "none") -> list[np.ndarray]:
    """The graph's outputs (or the named values) for input ``x``."""
    if outputs is not None:
        graph = graph.copy()
        graph.set_outputs([graph.value(n) for n in outputs])
    session = InferenceSession(graph, optimization=optimization)
    return session.run(None, {graph.inputs[0].name: x})


def node_info(graph: Graph, name: str) -> dict:
    """The quantizer's metadata record of node ``name``."""
    return next(r for r in quantization_info(graph)["nodes"] if r["name"] == name)


def producer_op(graph: Graph, value_name: str) -> str:
    producer = graph.value(value_name).producer
    return producer.op_type if producer is not None else "<input>"
