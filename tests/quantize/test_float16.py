"""convert_float16: weights-only (float16 storage + Cast) and full float16 compute."""

from __future__ import annotations

import json

import numpy as np
import pytest

import quantize
from edgefw.errors import QuantizationError
from edgefw.ir import Graph
from tests.quantize.graphs import conv_net, run

X = np.random.default_rng(0).random((16, 1, 8, 8)).astype(np.float32)


def test_weights_only_stores_float16_and_casts_back():
    g = conv_net()
    half = quantize.convert_float16(g)
    w = half.value("conv.weight")
    assert w.dtype == "float16" and w.is_constant
    np.testing.assert_array_equal(w.data, g.value("conv.weight").data.astype(np.float16))
    cast = half.value("conv.weight_float32").producer
    assert cast.op_type == "Cast" and cast.attrs["to"] == 1
    assert half.node("conv").inputs[1].name == "conv.weight_float32"
    float_bytes = sum(v.data.nbytes for v in g.constants.values())
    half_bytes = sum(v.data.nbytes for v in half.constants.values())
    assert half_bytes == pytest.approx(float_bytes / 2, rel=0.01)
    out = run(half, X)[0]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, run(g, X)[0], atol=2e-3)
    assert json.loads(half.metadata["quantization"]) == {
        "compute": "float32", "keep_io_float32": True, "mode": "float16"}


@pytest.mark.parametrize("keep_io_float32", [True, False])
def test_float16_compute(keep_io_float32):
    g = conv_net()
    half = quantize.convert_float16(g, keep_io_float32=keep_io_float32, compute="float16")
    io_dtype = "float32" if keep_io_float32 else "float16"
    assert half.inputs[0].dtype == io_dtype and half.outputs[0].dtype == io_dtype
    assert half.outputs[0].name == "output"
    assert half.node("conv").output.dtype == "float16"
    assert half.value("fc1.weight").dtype == "float16"
    out = run(half, X if keep_io_float32 else X.astype(np.float16))[0]
    assert out.dtype == np.dtype(io_dtype)
    np.testing.assert_allclose(out.astype(np.float32), run(g, X)[0], atol=5e-3)


def test_values_beyond_float16_range():
    g = Graph("big")
    x = g.add_input("x", "float32", ("batch", 2))
    w = np.array([[1e6, 1.0], [2.0, 3.0]], np.float32)
    g.set_outputs([g.add_node("MatMul", [x, w]).output])
    half = quantize.convert_float16(g)  # weights-only: that weight stays float32
    assert half.value("mat_mul.in1").dtype == "float32"
    assert json.loads(half.metadata["quantization"])["kept_float32"] == ["mat_mul.in1"]
    with pytest.raises(QuantizationError, match="beyond float16's range"):
        quantize.convert_float16(g, compute="float16")


def test_float16_errors():
    with pytest.raises(QuantizationError, match="compute must be one of float32, float16"):
        quantize.convert_float16(conv_net(), compute="bfloat16")
    with pytest.raises(QuantizationError, match="is quantized"):
        quantize.convert_float16(quantize.quantize_dynamic(conv_net()))
    with pytest.raises(QuantizationError, match="edgefw.ir.Graph"):
        quantize.convert_float16(None)
