"""Files made by TensorFlow's converter (``tests/fixtures/make_tflite_fixtures.py``): a Keras
MLP with a dynamic-batch Flatten and a small CNN, each as float32, dynamic-range (hybrid
FULLY_CONNECTED v12 / CONV_2D v5), full int8 with int8 input/output, and float16 weights
with DEQUANTIZE. edgefw's runtime must agree with LiteRT's reference kernels on the same
file (float <= 1e-5, int8 within one step) and with the outputs TensorFlow's interpreter
stored beside each file."""

from __future__ import annotations

import numpy as np
import pytest

import runtime
from tests.runtime.tflite.tflite_builder import (
    FIXTURE_STEMS,
    FIXTURES,
    assert_matches,
    litert,
    random_feed,
)

pytestmark = pytest.mark.skipif(not FIXTURE_STEMS, reason="no TFLite fixtures")


def _stored(stem: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(FIXTURES / f"{stem}.npz") as data:
        return data["input"], data["output"]


@pytest.mark.parametrize("stem", FIXTURE_STEMS)
def test_fixture_matches_litert_and_tensorflow(stem):
    path = FIXTURES / f"{stem}.tflite"
    x, stored = _stored(stem)
    session = runtime.InferenceSession(path)
    (arg,) = session.get_inputs()
    ours = session.run(None, {arg.name: x})
    assert_matches(ours, [stored])  # TensorFlow's interpreter, reference kernels
    assert_matches(ours, litert(path, [x]))  # LiteRT on the same file, now


@pytest.mark.parametrize("stem", FIXTURE_STEMS)
def test_fixture_runs_any_batch_and_every_optimization_level(stem):
    path = FIXTURES / f"{stem}.tflite"
    x, _ = _stored(stem)
    arg = runtime.InferenceSession(path).get_inputs()[0]
    assert arg.shape[0] == "batch" and arg.dtype == x.dtype.name
    batch = random_feed((5,) + x.shape[1:], x.dtype.name, seed=3)
    reference = litert(path, [batch])
    for level in ("none", "basic", "all"):
        session = runtime.InferenceSession(path, optimization=level)
        assert_matches(session.run(None, {arg.name: batch}), reference)
        assert_matches(session.run(None, {arg.name: batch[:1]}), litert(path, [batch[:1]]))


def test_signature_names_and_symbolic_batch():
    graph = runtime.load_tflite(FIXTURES / "mlp_float32.tflite")
    assert [(v.name, v.shape) for v in graph.inputs] == [("pixels", ("batch", 8, 8))]
    assert [(v.name, v.shape) for v in graph.outputs] == [("output_0", ("batch", 10))]
    assert graph.metadata["description"] == "MLIR Converted."


def test_keras_dynamic_flatten_becomes_one_reshape():
    """SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE is evaluated while loading: one Reshape
    that copies the batch dim, no Shape/Slice/Concat nodes."""
    graph = runtime.load_tflite(FIXTURES / "mlp_float32.tflite")
    assert [n.op_type for n in graph.nodes] == ["Reshape", "Gemm", "Gemm", "Gemm", "Softmax"]
    reshape = graph.nodes[0]
    assert reshape.inputs[1].data.tolist() == [0, 64]
    assert reshape.output.shape == ("batch", 64)


def test_dynamic_range_files_use_hybrid_kernels():
    mlp = runtime.load_tflite(FIXTURES / "mlp_dynamic.tflite")
    ops = [(n.domain, n.op_type) for n in mlp.nodes]
    # the 64x64 and 32x64 layers are hybrid; the 10x32 one (< 1024 weights) stays float
    assert ops.count(("edgefw", "QDynamicGemm")) == 2 and ("", "Gemm") in ops
    weight = next(n for n in mlp.nodes if n.op_type == "QDynamicGemm").inputs[1]
    assert weight.dtype == "int8"
    cnn = runtime.load_tflite(FIXTURES / "cnn_dynamic.tflite")
    assert sum(n.op_type == "QDynamicConv" for n in cnn.nodes) == 2


def test_int8_files_run_on_integer_kernels_with_int8_io():
    graph = runtime.load_tflite(FIXTURES / "cnn_int8.tflite")
    assert graph.inputs[0].dtype == "int8" and graph.outputs[0].dtype == "int8"
    assert graph.inputs[0].quant is not None
    ops = [n.op_type for n in graph.nodes]
    assert ops.count("QConv") == 5 and "QAdd" in ops and "QGemm" in ops
    assert "QAveragePool" in ops and "QGlobalAveragePool" in ops
    # int8 SOFTMAX has no integer kernel: it runs dequantized, in float, and requantized
    assert ops[-3:] == ["DequantizeLinear", "Softmax", "QuantizeLinear"]


def test_conv_chains_need_no_transposes():
    """The input is transposed to channels-first once; the convs, pools and the residual
    Add all stay channels-first."""
    graph = runtime.load_tflite(FIXTURES / "cnn_float32.tflite")
    assert [n.op_type for n in graph.nodes].count("Transpose") == 1


def test_float16_weights_are_kept_float16():
    graph = runtime.load_tflite(FIXTURES / "mlp_float16.tflite")
    dtypes = {v.data.dtype.name for v in graph.constants.values() if v.data.size > 64}
    assert dtypes == {"float16"}
    assert sum(n.op_type == "Cast" for n in graph.nodes) == 6  # one per DEQUANTIZE


def test_bytes_and_path_load_the_same_graph():
    path = FIXTURES / "cnn_int8.tflite"
    a, b = runtime.load_tflite(path), runtime.load_tflite(path.read_bytes())
    assert str(a) == str(b)
