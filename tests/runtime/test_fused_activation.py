"""Kernels honour ``node.meta["fused_activation"]`` (the mark the fusion pass leaves)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import UnsupportedOpError
from edgefw.ir import Graph
from runtime import InferenceSession
from tests.runtime.numpy_models import conv_reference

rng = np.random.default_rng(11)

ACTIVATIONS = {
    "Relu": lambda y: np.maximum(y, 0),
    ("Relu",): lambda y: np.maximum(y, 0),
    ("Clip", 0.0, 6.0): lambda y: np.clip(y, 0, 6),
    ("Clip", None, 0.5): lambda y: np.minimum(y, 0.5),
    ("LeakyRelu", 0.2): lambda y: np.where(y < 0, 0.2 * y, y),
    "Sigmoid": lambda y: 1 / (1 + np.exp(-y)),
    "Tanh": np.tanh,
}


def run_single(op_type, inputs, attrs, mark, batch_shape):
    g = Graph("fused")
    x = g.add_input("x", "float32", batch_shape)
    node = g.add_node(op_type, [x, *inputs], attrs, meta={"fused_activation": mark})
    g.set_outputs([node.output])
    session = InferenceSession(g, optimization="none")
    x0 = (rng.standard_normal(batch_shape) * 4).astype(np.float32)
    return x0, session.run(None, {"x": x0})[0], session


@pytest.mark.parametrize("mark", list(ACTIVATIONS), ids=str)
def test_gemm_applies_fused_activation(mark):
    w = rng.standard_normal((5, 7)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    x0, y, _ = run_single("Gemm", [w, b], {"transB": 1}, mark, (3, 7))
    np.testing.assert_allclose(y, ACTIVATIONS[mark](x0 @ w.T + b), rtol=1e-5, atol=1e-6)


def test_conv_matmul_and_add_apply_fused_activation():
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    x0, y, _ = run_single("Conv", [w, b], {"pads": [1, 1, 1, 1]}, ("Clip", 0.0, 6.0),
                          (2, 2, 5, 5))
    np.testing.assert_allclose(y, np.clip(conv_reference(x0, w, b, pad=1), 0, 6), rtol=1e-5,
                               atol=1e-5)
    m = rng.standard_normal((6, 3)).astype(np.float32)
    x0, y, _ = run_single("MatMul", [m], {}, "Relu", (2, 4, 6))
    np.testing.assert_allclose(y, np.maximum(x0 @ m, 0), rtol=1e-5, atol=1e-6)
    bias = rng.standard_normal(6).astype(np.float32)
    x0, y, _ = run_single("Add", [bias], {}, "Relu", (3, 6))
    np.testing.assert_allclose(y, np.maximum(x0 + bias, 0), rtol=1e-6)


def test_unknown_mark_fails_at_session_creation():
    with pytest.raises(UnsupportedOpError, match="node 'gemm' \\(Gemm\\).*'Swish' is not "
                                                 "supported; supported: Relu, Clip"):
        run_single("Gemm", [np.ones((2, 2), np.float32)], {}, "Swish", (1, 2))
