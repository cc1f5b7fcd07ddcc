"""Hand-built IR models (MLP, LeNet-5) and their plain-numpy forwards, for runtime tests."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from edgefw.ir import Graph

rng = np.random.default_rng(7)


def randn(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def mlp() -> tuple[Graph, dict[str, np.ndarray]]:
    p = {"w1": randn(128, 784, scale=0.05), "b1": randn(128), "w2": randn(10, 128, scale=0.1),
         "b2": randn(10)}
    g = Graph("mlp")
    x = g.add_input("input", "float32", ("batch", 1, 28, 28))
    h = g.add_node("Flatten", [x]).output
    h = g.add_node("Gemm", [h, g.add_constant("fc1.weight", p["w1"]),
                            g.add_constant("fc1.bias", p["b1"])], {"transB": 1},
                   module_path="fc1").output
    h = g.add_node("Relu", [h], module_path="relu").output
    y = g.add_node("Gemm", [h, g.add_constant("fc2.weight", p["w2"]),
                            g.add_constant("fc2.bias", p["b2"])], {"transB": 1},
                   module_path="fc2").output
    g.set_outputs([y])
    return g, p


def mlp_reference(x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    h = np.maximum(x.reshape(len(x), -1) @ p["w1"].T + p["b1"], 0)
    return h @ p["w2"].T + p["b2"]


def conv_reference(x, w, b, stride=1, pad=0):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", windows, w) + b[None, :, None, None]


def max_pool_reference(x, k):
    return sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::k, ::k].max(axis=(4, 5))


def lenet() -> tuple[Graph, dict[str, np.ndarray]]:
    p = {"c1w": randn(6, 1, 5, 5, scale=0.2), "c1b": randn(6), "c2w": randn(16, 6, 5, 5, scale=0.1),
         "c2b": randn(16), "f1w": randn(120, 400, scale=0.05), "f1b": randn(120),
         "f2w": randn(84, 120, scale=0.1), "f2b": randn(84), "f3w": randn(10, 84, scale=0.1),
         "f3b": randn(10)}
    g = Graph("lenet")
    c = g.add_constant
    x = g.add_input("image", "float32", ("batch", 1, 28, 28))
    h = g.add_node("Conv", [x, c("conv1.weight", p["c1w"]), c("conv1.bias", p["c1b"])],
                   {"pads": [2, 2, 2, 2]}, module_path="conv1").output
    h = g.add_node("Relu", [h]).output
    h = g.add_node("MaxPool", [h], {"kernel_shape": [2, 2], "strides": [2, 2]}).output
    h = g.add_node("Conv", [h, c("conv2.weight", p["c2w"]), c("conv2.bias", p["c2b"])],
                   module_path="conv2").output
    h = g.add_node("Relu", [h]).output
    h = g.add_node("MaxPool", [h], {"kernel_shape": [2, 2], "strides": [2, 2]}).output
    h = g.add_node("Reshape", [h, np.array([-1, 400], np.int64)]).output
    for i, name in enumerate(("fc1", "fc2", "fc3"), start=1):
        h = g.add_node("Gemm", [h, c(f"{name}.weight", p[f"f{i}w"]), c(f"{name}.bias",
                                                                         p[f"f{i}b"])],
                       {"transB": 1}, module_path=name).output
        if i < 3:
            h = g.add_node("Relu", [h]).output
    g.set_outputs([g.add_node("Softmax", [h], name="probs").output])
    return g, p


def lenet_reference(x, p):
    h = max_pool_reference(np.maximum(conv_reference(x, p["c1w"], p["c1b"], pad=2), 0), 2)
    h = max_pool_reference(np.maximum(conv_reference(h, p["c2w"], p["c2b"]), 0), 2)
    h = h.reshape(len(h), -1)
    h = np.maximum(h @ p["f1w"].T + p["f1b"], 0)
    h = np.maximum(h @ p["f2w"].T + p["f2b"], 0)
    logits = h @ p["f3w"].T + p["f3b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
