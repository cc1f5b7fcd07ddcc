"""Shared checks of the GPU tests: one op or one model run on ``["gpu", "cpu"]`` against
the CPU provider alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgefw.ir import Graph
from runtime import InferenceSession

#: float32 tolerance: relative 1e-4, absolute 1e-5 of the reference's magnitude.
RTOL = 1e-4


class Const:
    """Marks an op input as a graph constant (not a graph input)."""

    def __init__(self, data: Any) -> None:
        self.data = np.asarray(data)


def rand(*shape: int, seed: int = 0, low: float = -1.0, high: float = 1.0,
         dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def single_op_graph(op_type: str, inputs: Sequence[Any], attrs: dict | None = None, *,
                    num_outputs: int = 1, meta: dict | None = None,
                    domain: str = "") -> tuple[Graph, dict[str, np.ndarray]]:
    """A graph with one ``op_type`` node; arrays become graph inputs, :class:`Const`
    constants, None omitted inputs. Returns the graph and its input feed."""
    g = Graph(op_type.lower())
    feed: dict[str, np.ndarray] = {}
    values = []
    for i, item in enumerate(inputs):
        if item is None:
            values.append(None)
        elif isinstance(item, Const):
            values.append(g.add_constant(f"c{i}", item.data))
        else:
            arr = np.asarray(item)
            values.append(g.add_input(f"x{i}", str(arr.dtype), arr.shape))
            feed[f"x{i}"] = arr
    node = g.add_node(op_type, values, attrs or {}, num_outputs=num_outputs, meta=meta,
                      domain=domain)
    g.set_outputs(list(node.outputs))
    return g, feed


def run_both(graph: Graph, feed: dict[str, np.ndarray], optimization: str = "none",
             expect_all_gpu: bool = True) -> tuple[list[np.ndarray], list[np.ndarray],
                                                   InferenceSession]:
    gpu = InferenceSession(graph, providers=["gpu", "cpu"], optimization=optimization)
    cpu = InferenceSession(graph, providers=["cpu"], optimization=optimization)
    if expect_all_gpu:
        assignment = gpu.get_provider_assignment()
        assert set(assignment.values()) == {"gpu"}, gpu.get_provider_summary()
    return gpu.run(None, feed), cpu.run(None, feed), gpu


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float = RTOL) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype,
                                                                 want.shape, want.dtype)
    if want.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want)
        return
    scale = float(np.abs(want).max(initial=0.0)) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-5 * max(scale, 1.0))


def check_op(op_type: str, inputs: Sequence[Any], attrs: dict | None = None, *,
             num_outputs: int = 1, meta: dict | None = None, domain: str = "",
             rtol: float = RTOL) -> list[np.ndarray]:
    """Run one node on the GPU provider and on the CPU provider; assert it ran on the GPU
    and that every output matches. Returns the GPU outputs."""
    graph, feed = single_op_graph(op_type, inputs, attrs, num_outputs=num_outputs, meta=meta,
                                  domain=domain)
    got, want, _ = run_both(graph, feed)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w, rtol)
    return got


def assert_lsb(got: np.ndarray, want: np.ndarray, scale: float, max_lsb: int = 1) -> None:
    """Dequantized outputs agree within ``max_lsb`` quantization steps."""
    steps = np.abs(got.astype(np.float64) - want.astype(np.float64)) / scale
    assert steps.max(initial=0.0) <= max_lsb + 1e-3, f"{steps.max()} steps apart"
