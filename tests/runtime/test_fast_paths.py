"""The CPU kernels' prebuilt fast paths (static shapes) against onnxruntime and the eager
forward: LayerNorm, short-row Softmax with its fallback, and whole conv nets
whose activations travel batch-minor between Conv, MaxPool and GlobalAveragePool."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import models
from runtime import InferenceSession
from tests.runtime.onnx_reference import check_op

rng = np.random.default_rng(77)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
def test_layer_norm_matches_onnxruntime(dtype, with_bias):
    x = (rng.standard_normal((1, 16, 64)) * 3 + 5).astype(dtype)
    scale = rng.standard_normal(64).astype(dtype)
    inputs = [x, scale] + ([rng.standard_normal(64).astype(dtype)] if with_bias else [])
    check_op("LayerNormalization", inputs, {"axis": -1, "epsilon": 1e-5},
             constants=tuple(range(1, len(inputs))), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["plain", "row_far_below", "masked", "wide"])
def test_short_row_softmax_matches_onnxruntime(case):
    width = 300 if case == "wide" else 16
    x = rng.standard_normal((1, 4, 16, width)).astype(np.float32) * 4
    if case == "row_far_below":  # exp(x - global max) would underflow in that row
        x[0, 1, 3] -= 200.0
    if case == "masked":
        x[0, :, :, 5:] = -np.inf
    check_op("Softmax", [x], {"axis": -1}, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lenet", "mobilenet", "mlp"])
@pytest.mark.parametrize("batch", [1, 5])
def test_conv_nets_match_the_eager_forward(name, batch):
    edgefw.manual_seed(3)
    model = models.build(name)
    model.eval()
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    session = InferenceSession(edgefw.trace(model, x), optimization="all")
    with edgefw.no_grad():
        expected = model(x).data
    for _ in range(2):  # the second run reuses every buffer
        (y,) = session.run(None, {"input": x})
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
        assert y.flags.c_contiguous


def test_batch_minor_results_leave_the_session_c_contiguous():
    edgefw.manual_seed(4)
    conv = edgefw.nn.Conv2d(1, 3, 3, padding=1)
    x = rng.random((4, 1, 6, 6), dtype=np.float32)
    session = InferenceSession(edgefw.trace(conv, x))
    (y,) = session.run(None, {"input": x})
    with edgefw.no_grad():
        np.testing.assert_allclose(y, conv(x).data, rtol=1e-5, atol=1e-6)
    assert y.flags.c_contiguous


def test_float32_erf_and_gelu_against_math_erf():
    import math

    from runtime.providers.cpu.kernels.erf import erf_float32, gelu_float32

    x = np.linspace(-7, 7, 40001).astype(np.float32)  # more than one 16k-value chunk
    erf = np.array([math.erf(float(v)) for v in x])
    gelu = np.array([float(v) * 0.5 * (1 + math.erf(float(v) / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(erf_float32(x), erf, rtol=0, atol=5e-7)
    np.testing.assert_allclose(gelu_float32(x), gelu, rtol=0, atol=2e-6)
    square = x[:40000].reshape(200, 200)
    np.testing.assert_array_equal(erf_float32(square), erf_float32(x[:40000]).reshape(200, 200))
    assert np.isnan(erf_float32(np.array([np.nan], np.float32)))[0]


def test_gelu_kernel_matches_onnxruntime():
    x = (rng.standard_normal((2, 16, 128)) * 3).astype(np.float32)
    check_op("Gelu", [x], {}, rtol=1e-5, atol=2e-6)
