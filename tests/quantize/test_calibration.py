"""Calibration: every data form gives the same ranges, bad data fails clearly, and memory
does not grow with the number of batches."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import quantize
from edgefw.data import DataLoader, TensorDataset
from edgefw.errors import QuantizationError
from edgefw.ir import Graph
from quantize.calibration import calibrate
from quantize.ptq import prepare
from tests.quantize.graphs import conv_net, run

X = np.random.default_rng(0).random((40, 1, 8, 8)).astype(np.float32)
TENSORS = ["input", "relu", "output"]


def reference_ranges(graph: Graph, x: np.ndarray) -> list[float]:
    """[min, max] of each of TENSORS, computed from the whole data at once."""
    relu, output = run(graph, x, ["relu", "output"])
    return [float(f(a)) for a in (x, relu, output) for f in (np.min, np.max)]


def ranges(result) -> list[float]:
    return [v for n in TENSORS for v in result.range(n, "int8")]


@pytest.fixture(scope="module")
def prepared():
    return prepare(conv_net())


def batches_generator():
    for i in range(0, 40, 16):
        yield X[i:i + 16]


@pytest.mark.parametrize("data", [
    X,
    [X[:16], X[16:32], X[32:]],
    {"input": X},
    [{"input": X[:25]}, {"input": X[25:]}],
    DataLoader(TensorDataset(X, np.arange(40)), batch_size=16),
    (X[:10], X[10:]),
], ids=["array", "list", "dict", "dict-batches", "dataloader", "tuple"])
def test_every_data_form_gives_the_exact_minmax(prepared, data):
    result = calibrate(prepared, data, TENSORS, batch_size=16)
    assert ranges(result) == pytest.approx(reference_ranges(prepared, X))
    assert result.num_samples == 40


def test_generators_and_integer_arrays_are_accepted(prepared):
    assert ranges(calibrate(prepared, batches_generator(), TENSORS)) == \
        pytest.approx(reference_ranges(prepared, X))
    pixels = (X * 255).astype(np.uint8)
    as_float = pixels.astype(np.float32)
    assert ranges(calibrate(prepared, pixels, TENSORS)) == \
        pytest.approx(reference_ranges(prepared, as_float))


def test_num_calibration_batches_limits_the_data(prepared):
    result = calibrate(prepared, X, TENSORS, batch_size=8, num_batches=2)
    assert result.num_batches == 2 and result.num_samples == 16
    assert ranges(result) == pytest.approx(reference_ranges(prepared, X[:16]))


@pytest.mark.parametrize("data, message", [
    (np.zeros((0, 1, 8, 8), np.float32), "empty"),
    ([], "empty"),
    (None, "is None"),
    ({"image": X}, r"input names \['image'\] do not match the graph's inputs \['input'\]"),
    (np.zeros((4, 1, 9, 9), np.float32), r"batch 0: input 'input' has shape \[4, 1, 9, 9\]"),
    (np.zeros((4, 8, 8), np.float32), "expected rank 4"),
    ([X[:4], np.zeros(5)], r"batch 1: .*rank.*read as a list of batches"),
    (np.array(["a", "b"]), "expected numbers"),
    ([object()], "batch 0 is a object"),
    (42, "must be an array"),
], ids=["empty-array", "empty-list", "none", "wrong-name", "wrong-shape", "wrong-rank",
        "bad-second-batch", "strings", "object", "int"])
def test_bad_calibration_data_raises_quantization_error(data, message):
    with pytest.raises(QuantizationError, match=message):
        quantize.quantize_static(conv_net(), data)


def test_multi_input_graph_needs_named_batches():
    g = Graph("two_inputs")
    a = g.add_input("a", "float32", ("batch", 3))
    b = g.add_input("b", "float32", ("batch", 3))
    g.set_outputs([g.add_node("Add", [a, b]).output])
    with pytest.raises(QuantizationError, match=r"2 inputs \['a', 'b'\].*dict or a tuple"):
        quantize.quantize_static(g, np.zeros((4, 3), np.float32))
    with pytest.raises(QuantizationError, match="different numbers of samples"):
        quantize.quantize_static(g, {"a": np.zeros((4, 3)), "b": np.zeros((5, 3))})
    q = quantize.quantize_static(g, [(np.ones((4, 3)), -np.ones((4, 3)))])
    assert [n.op_type for n in q.nodes].count("QuantizeLinear") == 3


def test_bad_options_raise_quantization_error():
    g = conv_net()
    with pytest.raises(QuantizationError, match="batch_size"):
        quantize.quantize_static(g, X, batch_size=0)
    with pytest.raises(QuantizationError, match="num_calibration_batches"):
        quantize.quantize_static(g, X, num_calibration_batches=-1)


def _peak_bytes(graph: Graph, num_batches: int) -> int:
    def batches():
        r = np.random.default_rng(0)
        for _ in range(num_batches):
            yield r.random((16, 1, 8, 8), dtype=np.float32)

    tracemalloc.start()
    try:
        calibrate(graph, batches(), ["input", "relu", "pool", "output"], method="percentile")
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_calibration_memory_does_not_grow_with_the_number_of_batches(prepared):
    _peak_bytes(prepared, 2)  # warm caches (plans, imports) outside the measurement
    few, many = _peak_bytes(prepared, 10), _peak_bytes(prepared, 100)
    # Keeping every observed activation, as onnxruntime's calibrator does, would need this
    # much more for the 90 extra batches:
    kept_per_batch = 16 * (1 * 8 * 8 + 4 * 8 * 8 + 4 * 4 * 4 + 5) * 4
    assert many < few * 1.25 + 64 * 1024
    assert many - few < 90 * kept_per_batch / 10
