"""Shared checks for the pass tests: run a graph on edgefw's runtime and on onnxruntime,
and assert a rewrite kept every output equal.

onnxruntime is the independent reference: the graph is written to an ONNX model here with
``onnx.helper`` (fused activations expanded back into activation nodes), so a mistake shared
by the passes and edgefw's runtime kernels cannot hide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

import runtime
from edgefw.ir import Graph, Value, dtypes
from edgefw.ir.passes import Pass, PassResult

Feeds = Mapping[str, np.ndarray]
ONNX_OPSET = 18  # the IR's newest op forms (Reduce*/Pad axes as inputs) need 18


def run_runtime(graph: Graph, feeds: Feeds) -> list[np.ndarray]:
    """Outputs of ``graph`` on edgefw's CPU runtime, without further optimization."""
    session = runtime.InferenceSession(graph, optimization="none")
    return session.run(None, dict(feeds))


def run_onnxruntime(graph: Graph, feeds: Feeds) -> list[np.ndarray]:
    """Outputs of ``graph`` on onnxruntime (its own graph optimizations off)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(to_onnx_model(graph).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, dict(feeds))


BACKENDS: dict[str, Callable[[Graph, Feeds], list[np.ndarray]]] = {
    "runtime": run_runtime,
    "onnxruntime": run_onnxruntime,
}


def assert_rewrite_keeps_outputs(
    graph: Graph,
    rewrite: Pass | Callable[[Graph], object],
    feeds_list: list[Feeds],
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> PassResult | object:
    """Apply ``rewrite`` to ``graph`` in place; assert the result verifies, keeps the output
    names, and gives the same outputs as the original on every backend for every feed."""
    original = graph.copy()
    result = rewrite(graph)
    graph.check()
    assert [v.name for v in graph.outputs] == [v.name for v in original.outputs]
    for feeds in feeds_list:
        for backend, run in BACKENDS.items():
            expected = run(original, feeds)
            got = run(graph, feeds)
            for name, e, g in zip([v.name for v in graph.outputs], expected, got, strict=True):
                assert g.shape == e.shape, (backend, name, g.shape, e.shape)
                np.testing.assert_allclose(g, e, rtol=rtol, atol=atol,
                                           err_msg=f"{backend}: output {name}")
    return result


def op_types(graph: Graph) -> list[str]:
    return [n.op_type for n in graph.nodes]


def random_feeds(graph: Graph, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Normal random float inputs; symbolic dims take ``batch``."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for v in graph.inputs:
        shape = [batch if not isinstance(d, int) else d for d in v.shape]
        feeds[v.name] = rng.standard_normal(shape).astype(dtypes.to_numpy(v.dtype))
    return feeds


# ------------------------------------------------------------------- ONNX export
def _value_info(value: Value) -> onnx.ValueInfoProto:
    shape = None if value.shape is None else [
        d if isinstance(d, (int, str)) else "" for d in value.shape
    ]
    return helper.make_tensor_value_info(value.name, dtypes.to_onnx(value.dtype), shape)


def _attr(value: object) -> object:
    if isinstance(value, np.ndarray):
        return numpy_helper.from_array(value)
    return value


def to_onnx_model(graph: Graph) -> onnx.ModelProto:
    """``graph`` as an ONNX model; a node's ``meta["fused_activation"]`` becomes a separate
    activation node after it."""
    initializers = [numpy_helper.from_array(np.asarray(v.data), v.name)
                    for v in graph.constants.values()]
    nodes = []
    for node in graph.nodes:
        outputs = [v.name for v in node.outputs]
        fused = node.meta.get("fused_activation")
        if fused is not None:
            outputs[0] = node.outputs[0].name + "__before_activation"
        attrs = {k: _attr(v) for k, v in node.attrs.items() if v is not None}
        nodes.append(helper.make_node(node.op_type, ["" if v is None else v.name
                                                     for v in node.inputs],
                                      outputs, name=node.name, domain=node.domain, **attrs))
        if fused is not None:
            nodes.append(_activation_node(fused, outputs[0], node.outputs[0], initializers))
    model_graph = helper.make_graph(
        nodes, graph.name, [_value_info(v) for v in graph.inputs],
        [_value_info(v) for v in graph.outputs], initializers,
    )
    model = helper.make_model(model_graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def _activation_node(spec: object, source: str, out: Value,
                     initializers: list) -> onnx.NodeProto:
    name, *args = (spec,) if isinstance(spec, str) else tuple(spec)
    if name == "Clip":
        inputs = [source]
        for i, bound in enumerate(args):
            if bound is None:
                inputs.append("")
                continue
            const = f"{out.name}__clip{i}"
            initializers.append(numpy_helper.from_array(
                np.array(bound, dtypes.to_numpy(out.dtype)), const))
            inputs.append(const)
        return helper.make_node("Clip", inputs, [out.name])
    if name == "LeakyRelu":
        return helper.make_node("LeakyRelu", [source], [out.name], alpha=float(args[0]))
    return helper.make_node(name, [source], [out.name])
