"""GlobalAveragePool's static-shape path (one matrix-vector product) against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.runtime.onnx_reference import check_op

rng = np.random.default_rng(21)


@pytest.mark.parametrize("shape", [(1, 64, 7, 7), (5, 3, 4, 6), (2, 4, 9), (2, 3, 2, 3, 2)])
def test_global_average_pool_matches_onnxruntime(shape):
    x = (rng.standard_normal(shape) * 4 + 1).astype(np.float32)
    (y,) = check_op("GlobalAveragePool", [x], {}, rtol=1e-5, atol=1e-6)
    assert y.shape == shape[:2] + (1,) * (len(shape) - 2)


def test_float64_matches_numpy():
    import runtime
    from edgefw.ir import Graph

    g = Graph()
    g.set_outputs([g.add_node("GlobalAveragePool", [g.add_input("x", "float64", (3, 5, 4, 4))]
                              ).output])
    x = rng.standard_normal((3, 5, 4, 4))
    (y,) = runtime.InferenceSession(g, optimization="none").run(None, {"x": x})
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)


def test_non_contiguous_input_through_a_session():
    import runtime
    from edgefw.ir import Graph

    g = Graph()
    x = g.add_input("x", "float32", (2, 3, 4, 5))
    t = g.add_node("Transpose", [x], {"perm": [0, 1, 3, 2]}).output
    g.set_outputs([g.add_node("GlobalAveragePool", [t]).output])
    data = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    (y,) = runtime.InferenceSession(g, optimization="none").run(None, {"x": data})
    np.testing.assert_allclose(y, data.mean(axis=(2, 3), keepdims=True), rtol=1e-5, atol=1e-6)
