"""The whole pipeline on a realistic graph: a MobileNet-style net (conv-BN-ReLU6, then
depthwise-separable blocks, GlobalAveragePool, Flatten, Gemm) optimizes to Convs with
folded BN and fused ReLU6, with outputs equal to 1e-5 before and after."""

from __future__ import annotations

import numpy as np

from edgefw.ir import Graph, Value
from edgefw.ir.passes import PassManager, optimize
from tests.ir.passes.graph_testing import assert_rewrite_keeps_outputs, op_types, random_feeds

RNG = np.random.default_rng(11)


def conv_bn_relu6(g: Graph, x: Value, cin: int, cout: int, kernel: int, stride: int,
                  groups: int, path: str) -> Value:
    fan_in = cin // groups * kernel * kernel
    w = g.add_constant(f"{path}.conv.weight", (RNG.standard_normal(
        (cout, cin // groups, kernel, kernel)) * np.sqrt(2 / fan_in)).astype(np.float32))
    pad = kernel // 2
    conv = g.add_node("Conv", [x, w], {"group": groups, "strides": [stride, stride],
                                       "pads": [pad] * 4}, module_path=f"{path}.conv").output
    stats = [RNG.uniform(0.5, 1.5, cout), RNG.standard_normal(cout) * 0.1,
             RNG.standard_normal(cout) * 0.2, RNG.uniform(0.5, 2.0, cout)]
    params = [g.add_constant(f"{path}.bn.{name}", s.astype(np.float32)) for name, s in
              zip(("weight", "bias", "running_mean", "running_var"), stats, strict=True)]
    bn = g.add_node("BatchNormalization", [conv, *params], module_path=f"{path}.bn").output
    return g.add_node("Clip", [bn, np.float32(0), np.float32(6)],
                      module_path=f"{path}.act").output


def mobilenet_graph(width: int = 8, num_classes: int = 10) -> Graph:
    g = Graph("mobilenet")
    x = g.add_input("input", "float32", ("batch", 3, 32, 32))
    h = conv_bn_relu6(g, x, 3, width, 3, 2, 1, "features.0")
    blocks = [(width, 2 * width, 1), (2 * width, 4 * width, 2), (4 * width, 4 * width, 1)]
    for i, (cin, cout, stride) in enumerate(blocks, start=1):
        h = conv_bn_relu6(g, h, cin, cin, 3, stride, cin, f"features.{i}.depthwise")
        h = conv_bn_relu6(g, h, cin, cout, 1, 1, 1, f"features.{i}.pointwise")
    pooled = g.add_node("GlobalAveragePool", [h], module_path="pool").output
    flat = g.add_node("Flatten", [pooled], module_path="flatten").output
    w = g.add_constant("classifier.weight",
                       (RNG.standard_normal((num_classes, 4 * width)) * 0.2).astype(np.float32))
    b = g.add_constant("classifier.bias", RNG.standard_normal(num_classes).astype(np.float32))
    logits = g.add_node("Gemm", [flat, w, b], {"transB": 1}, module_path="classifier")
    g.set_outputs([logits.output])
    return g


def test_mobilenet_graph_optimizes_to_fused_convs():
    g = mobilenet_graph()
    assert op_types(g).count("BatchNormalization") == 7 and op_types(g).count("Clip") == 7
    feeds = [random_feeds(g, batch=b, seed=b) for b in (1, 3)]
    assert_rewrite_keeps_outputs(g, lambda graph: optimize(graph, "all"), feeds)
    assert op_types(g) == ["Conv"] * 7 + ["GlobalAveragePool", "Flatten", "Gemm"]
    for conv in g.nodes[:7]:
        assert conv.meta["fused_activation"] == ("Clip", 0.0, 6.0)
        assert conv.output.name == f"{conv.module_path[:-len('.conv')]}.act"
    # Only the folded weights and biases and the classifier remain.
    assert len(g.constants) == 7 * 2 + 2
    assert "features.2.depthwise.conv.weight" in g.constants
    assert g.outputs[0].name == "classifier" and g.outputs[0].shape == ("batch", 10)


def test_pass_manager_is_cheap_on_mobilenet():
    # Verification after every changing pass is on by default: it must stay cheap.
    import time

    g = mobilenet_graph()
    start = time.perf_counter()
    report = PassManager.for_level("all").run(g)
    elapsed = time.perf_counter() - start
    assert report.converged and report.iterations == 2
    assert elapsed < 1.0, f"optimizing a 31-node graph took {elapsed:.2f} s"
