"""Bad inputs to the kernels added for ONNX conformance raise edgefw errors naming the node:
indices out of range, absurd sizes from data, shapes that do not fit; never a bare numpy
IndexError or a huge allocation."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import EdgeFWError, NodeExecutionError, ShapeError
from runtime import InferenceSession
from tests.runtime.onnx_reference import one_op_graph

_OUTPUTS = {"TopK": 2}


def _run(op_type, inputs, attrs=None, constants=(), num_outputs=None):
    num_outputs = num_outputs or _OUTPUTS.get(op_type, 1)
    graph = one_op_graph(op_type, inputs, attrs or {}, constants, num_outputs)
    feed = {f"in{i}": a for i, a in enumerate(inputs) if a is not None and i not in constants}
    return InferenceSession(graph, optimization="none").run(None, feed)


I64 = np.int64


@pytest.mark.parametrize(("op_type", "inputs", "attrs", "match"), [
    ("GatherElements", [np.zeros((2, 3), np.float32), np.array([[0, 5, 1]], I64)], {},
     r"outside \[-2, 2\)"),
    ("ScatterElements", [np.zeros((2, 3), np.float32), np.array([[0, -4]], I64),
                         np.ones((1, 2), np.float32)], {}, "outside"),
    ("GatherND", [np.zeros((2, 3), np.float32), np.array([[2, 0]], I64)], {}, "outside"),
    ("ConstantOfShape", [np.array([1 << 20, 1 << 20], I64)], {}, "absurdly large"),
    ("Range", [np.array(0.0, np.float32), np.array(1e30, np.float32),
               np.array(1.0, np.float32)], {}, "absurdly long"),
    ("Tile", [np.zeros((4, 4), np.float32), np.array([1 << 20, 1 << 20], I64)], {},
     "do not fit"),
    ("TopK", [np.zeros((2, 3), np.float32), np.array([4], I64)], {}, "out of range"),
    ("OneHot", [np.array([0, 1], I64), np.array(-3, I64), np.array([0, 1], np.float32)], {},
     "not positive"),
    ("Compress", [np.zeros(3, np.float32), np.ones(5, bool)], {"axis": 0}, "entries"),
    ("ReverseSequence", [np.zeros((4, 2), np.float32), np.array([5, 1], I64)], {},
     "sequence_lens"),
    ("NegativeLogLikelihoodLoss", [np.zeros((2, 3), np.float32), np.array([0, 7], I64)], {},
     r"target values must be in \[0, 3\)"),
    ("MaxUnpool", [np.ones((1, 1, 2, 2), np.float32), np.array([[[[0, 1], [2, 99]]]], I64)],
     {"kernel_shape": [2, 2], "strides": [2, 2]}, r"indices must be in \[0, 16\)"),
])
def test_runtime_data_errors_name_the_node(op_type, inputs, attrs, match):
    with pytest.raises(NodeExecutionError, match=match) as info:
        _run(op_type, inputs, attrs)
    assert op_type in str(info.value)


@pytest.mark.parametrize(("op_type", "inputs", "attrs", "constants", "match"), [
    ("TopK", [np.zeros((2, 3), np.float32), np.array([4], I64)], {}, (1,), "exceeds axis"),
    ("ConstantOfShape", [np.array([1 << 30, 1 << 30], I64)], {}, (0,), "absurdly large"),
    ("Resize", [np.zeros((1, 1, 2, 2), np.float32), None, np.array([1, 1, -2, 2], np.float32)],
     {}, (2,), "must be positive"),
    ("DepthToSpace", [np.zeros((1, 5, 2, 2), np.float32)], {"blocksize": 2}, (),
     "not divisible"),
    ("Einsum", [np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32)],
     {"equation": "ij,jk->ik"}, (), "sizes 3 and 4"),
    ("GroupNormalization", [np.zeros((1, 6, 2), np.float32), np.ones(6, np.float32),
                            np.ones(6, np.float32)], {"num_groups": 4}, (), "not divisible"),
    ("BitShift", [np.zeros(3, np.uint8), np.zeros(3, np.uint8)], {"direction": "UP"}, (),
     "LEFT or RIGHT"),
])
def test_bad_graphs_fail_when_built(op_type, inputs, attrs, constants, match):
    with pytest.raises(EdgeFWError, match=match):
        _run(op_type, inputs, attrs, constants)


def test_lrn_matches_a_naive_channel_window():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 3, 4)).astype(np.float32)
    size, alpha, beta, bias = 4, 1e-3, 0.75, 2.0
    (y,) = _run("LRN", [x], {"size": size, "alpha": alpha, "beta": beta, "bias": bias})
    expected = np.empty_like(x, dtype=np.float64)
    for c in range(7):
        lo, hi = max(0, c - (size - 1) // 2), min(6, c + size // 2)
        square_sum = np.sum(x[:, lo:hi + 1].astype(np.float64) ** 2, axis=1)
        expected[:, c] = x[:, c] / (bias + alpha / size * square_sum) ** beta
    np.testing.assert_allclose(y, expected, rtol=1e-5)


def test_topk_keeps_the_lower_index_first_among_equal_values():
    x = np.array([[3, 1, 3, 2, 3]], np.float32)
    values, indices = _run("TopK", [x, np.array([4], I64)], {}, num_outputs=2)
    np.testing.assert_array_equal(indices, [[0, 2, 4, 3]])
    np.testing.assert_array_equal(values, [[3, 3, 3, 2]])
    values, indices = _run("TopK", [x, np.array([2], I64)], {"largest": 0}, num_outputs=2)
    np.testing.assert_array_equal(indices, [[1, 3]])


def test_shape_errors_are_edgefw_errors_too():
    with pytest.raises(ShapeError):
        _run("SpaceToDepth", [np.zeros((1, 1, 3, 4), np.float32)], {"blocksize": 2})
