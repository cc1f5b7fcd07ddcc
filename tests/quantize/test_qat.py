"""Quantization-aware training: the fake-quant op and its straight-through gradient, the
observers, prepare_qat's module surgery (BatchNorm folding, absorbed activations),
convert_qat's QDQ graph against the eager fake-quant model, fine-tuning, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
import quantize
from edgefw import models, nn
from edgefw.errors import CheckpointError, QuantizationError
from edgefw.ir.passes import optimize
from quantize.fake_quant import (
    ActivationFakeQuant,
    FakeQuantize,
    QATConv2d,
    QATLinear,
    WeightFakeQuant,
)
from quantize.qparams import QParams, compute_qparams, dequantize_array, quantize_array
from runtime import InferenceSession
from tests.quantize.test_accuracy import blob_images


def fake_quant(x, scale, zero_point, qmin, qmax, axis=None, requires_grad=False):
    t = edgefw.tensor(x, requires_grad=requires_grad)
    return t, FakeQuantize.apply(t, scale=scale, zero_point=zero_point, qmin=qmin, qmax=qmax,
                                 axis=axis)


# ------------------------------------------------------------------ the fake-quant op
def test_fake_quantize_equals_quantize_then_dequantize():
    x = np.random.default_rng(0).normal(0, 2, (5, 7)).astype(np.float32)
    x[0, :2] = [-9.0, 9.0]  # beyond both ends of the range
    params = compute_qparams(-1.5, 3.0, "int8")
    _, y = fake_quant(x, params.scale, params.zero_point, -128, 127)
    expected = dequantize_array(quantize_array(x, params), params)
    np.testing.assert_array_equal(y.data, expected)
    # by hand: scale 4.5/255, zero point round(-128 + 1.5/scale) = -43
    assert int(params.zero_point) == -43
    assert y.data.max() == pytest.approx((127 + 43) * float(params.scale))
    assert y.data.min() == pytest.approx((-128 + 43) * float(params.scale))


def test_fake_quantize_per_channel_uses_one_scale_per_slice():
    w = np.random.default_rng(1).normal(0, 1, (3, 4, 2, 2)).astype(np.float32)
    w[1] *= 10
    fq = WeightFakeQuant(axis=0)
    y = fq(edgefw.tensor(w)).data
    for c in range(3):
        scale = np.abs(w[c]).max() / 127
        expected = np.clip(np.rint(w[c] / np.float32(scale)), -127, 127) * np.float32(scale)
        np.testing.assert_allclose(y[c], expected, rtol=1e-6, atol=1e-7)
        assert np.abs(y[c] - w[c]).max() <= scale / 2 + 1e-7
    per_tensor = WeightFakeQuant(axis=None)(edgefw.tensor(w)).data
    step = np.float32(np.abs(w).max() / 127)
    np.testing.assert_allclose(per_tensor, np.rint(w / step) * step, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("axis", [None, 1])
def test_straight_through_gradient_matches_the_clip_surrogate(axis):
    """The STE gradient is the derivative of clip(x, lo, hi) with lo/hi the rounding edges
    of the code range, checked by central differences in float64 away from the edges."""
    r = np.random.default_rng(2)
    x = r.normal(0, 3, (6, 4))
    scale = np.float32(0.05) if axis is None else np.array([0.05, 0.02, 0.1, 0.04], np.float32)
    zero_point = np.int8(10) if axis is None else np.array([0, 5, -20, 3], np.int8)
    qmin, qmax = -128, 127
    shape = (1, -1) if axis is not None else ()
    s = np.asarray(scale, np.float64).reshape(shape)
    z = np.asarray(zero_point, np.float64).reshape(shape)
    lo, hi = (qmin - z - 0.5) * s, (qmax - z + 0.5) * s
    keep = (np.abs(x - lo) > 1e-3) & (np.abs(x - hi) > 1e-3)
    x = np.where(keep, x, x + 0.01)
    weights = r.normal(0, 1, x.shape)
    t, y = fake_quant(x, scale, zero_point, qmin, qmax, axis=axis, requires_grad=True)
    (y * edgefw.tensor(weights)).sum().backward()

    def surrogate(v):
        return float(np.sum(weights * np.clip(v, lo, hi)))

    eps = 1e-6
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (surrogate(plus) - surrogate(minus)) / (2 * eps)
    np.testing.assert_allclose(t.grad, numeric, atol=1e-6)
    assert 0 < np.count_nonzero(t.grad == 0) < x.size  # both sides of the range exercised


def test_straight_through_gradient_reaches_weights_through_a_layer():
    layer = QATLinear(np.array([[0.5, -0.25], [1.0, 0.125]]), np.zeros(2))
    x = edgefw.tensor(np.array([[1.0, 2.0], [3.0, -1.0]], np.float32))
    layer.train()
    layer(x).sum().backward()
    # weights quantize exactly (multiples of max/127 inside the range): gradient = x summed
    np.testing.assert_allclose(layer.weight.grad, np.tile(x.data.sum(0), (2, 1)), rtol=1e-6)
    np.testing.assert_allclose(layer.bias.grad, [2.0, 2.0])


# ------------------------------------------------------------------------- observers
def test_activation_observer_moving_average_and_eval_freeze():
    fq = ActivationFakeQuant("int8", momentum=0.25)
    fq.train()
    fq(edgefw.tensor(np.array([-1.0, 3.0], np.float32)))
    assert (float(fq.min_val), float(fq.max_val)) == (-1.0, 3.0)  # first batch sets it
    fq(edgefw.tensor(np.array([-5.0, 7.0], np.float32)))
    assert float(fq.min_val) == pytest.approx(0.75 * -1 + 0.25 * -5)
    assert float(fq.max_val) == pytest.approx(0.75 * 3 + 0.25 * 7)
    fq.eval()
    before = (float(fq.min_val), float(fq.max_val))
    y = fq(edgefw.tensor(np.array([-100.0, 100.0], np.float32)))
    assert (float(fq.min_val), float(fq.max_val)) == before  # frozen in eval
    scale, zero_point = fq.qparams()
    assert y.data.max() == pytest.approx((127 - int(zero_point)) * float(scale))
    fresh = ActivationFakeQuant("uint8").eval()
    with pytest.raises(QuantizationError, match="seen no data"):
        fresh.qparams()
    fresh(edgefw.tensor(np.array([0.0, 2.0], np.float32)))  # first batch even in eval
    assert fresh.observed and float(fresh.max_val) == 2.0


def test_observer_rejects_non_finite_values_and_bad_settings():
    with pytest.raises(QuantizationError, match="non-finite"):
        ActivationFakeQuant()(edgefw.tensor(np.array([np.nan, 1.0], np.float32)))
    with pytest.raises(QuantizationError, match="momentum"):
        ActivationFakeQuant(momentum=0.0)
    with pytest.raises(QuantizationError, match="activation dtype"):
        ActivationFakeQuant("int4")


# ----------------------------------------------------------------------- prepare_qat
class ConvBNNet(nn.Module):
    """Conv-BN-ReLU6 (module activations), a functional relu, max pool, global average
    pool, a residual-free head: every case prepare_qat distinguishes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU6()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        y = self.pool(self.act(self.bn(self.conv(x))))
        y = self.conv2(y).relu()  # functional: stays in forward, becomes a no-op
        return self.fc(self.gap(y).flatten(1))


def trained_bn_net() -> ConvBNNet:
    edgefw.manual_seed(0)
    net = ConvBNNet()
    x, _ = blob_images(64, 3)
    net.train()
    for _ in range(3):  # non-trivial running statistics
        net(x)
    return net.eval()


def test_prepare_qat_folds_batchnorm_like_the_graph_pass_and_leaves_the_model_alone():
    net = trained_bn_net()
    original = {k: v.copy() for k, v in net.state_dict().items()}
    qat = quantize.prepare_qat(net, example_inputs=np.zeros((1, 1, 8, 8), np.float32))
    assert isinstance(qat.conv, QATConv2d) and isinstance(qat.conv2, QATConv2d)
    assert isinstance(qat.fc, QATLinear)
    assert type(qat.bn).__name__ == "Identity" and type(qat.act).__name__ == "Identity"
    assert qat.conv.activation == "relu6" and qat.conv2.activation == "relu"
    # input fake-quant only where the input is not already a fake-quantized tensor
    assert qat.conv.input_quant is not None  # the model input
    assert qat.conv2.input_quant is None  # conv output -> MaxPool: still on its grid
    assert qat.fc.input_quant is not None  # after the average pool
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, original[key])
    # reference: the IR's FoldBatchNormPass on the traced float graph
    folded = optimize(edgefw.trace(net, np.zeros((1, 1, 8, 8), np.float32)), "all")
    conv = next(n for n in folded.nodes if n.op_type == "Conv")
    np.testing.assert_allclose(qat.conv.weight.data, conv.inputs[1].data, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(qat.conv.bias.data, conv.inputs[2].data, rtol=1e-5, atol=1e-6)


def test_prepare_qat_keras_dense_and_options():
    model = nn.Sequential([nn.Flatten(input_shape=(8, 8)), nn.Dense(16, activation="relu"),
                           nn.Dense(4)])
    qat = quantize.prepare_qat(model, per_channel=False, activation_dtype="uint8")
    assert isinstance(qat[1], QATLinear) and qat[1].activation == "relu"
    assert qat[1].weight_quant.axis is None and qat[1].output_quant.dtype == "uint8"
    np.testing.assert_array_equal(qat[1].weight.data, model[1].weight.data)


def test_prepare_qat_errors():
    with pytest.raises(QuantizationError, match="edgefw Module"):
        quantize.prepare_qat("mlp")
    qat = quantize.prepare_qat(models.build("mlp"))
    with pytest.raises(QuantizationError, match="already prepared"):
        quantize.prepare_qat(qat)

    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(QuantizationError, match="needs example_inputs"):
        quantize.prepare_qat(Custom())
    with pytest.raises(QuantizationError, match="per_channel"):
        quantize.prepare_qat(Custom(), per_channel="yes", example_inputs=np.zeros((1, 3)))
    with pytest.raises(QuantizationError, match="activation dtype"):
        quantize.prepare_qat(Custom(), activation_dtype="int4", example_inputs=np.zeros((1, 3)))


# ------------------------------------------------------------------------ convert_qat
def fine_tuned(model, x, y, steps_epochs=1, **options):
    qat = quantize.prepare_qat(model, example_inputs=x[:1], **options)
    qat.compile(edgefw.optim.Adam(list(qat.parameters()), lr=1e-3), nn.CrossEntropyLoss())
    qat.fit(x, y, epochs=steps_epochs, batch_size=32, seed=0, verbose=0)
    return qat.eval()


def output_step(graph) -> float:
    dq = graph.outputs[0].producer
    assert dq.op_type == "DequantizeLinear"
    return float(dq.inputs[1].data)


@pytest.mark.parametrize("build, options", [
    (trained_bn_net, {}),
    (trained_bn_net, {"per_channel": False, "activation_dtype": "uint8"}),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 4)), {}),
])
def test_converted_graph_matches_the_eager_fake_quant_model(build, options):
    x, y = blob_images(256, 5)
    edgefw.manual_seed(1)
    qat = fine_tuned(build(), x, y, **options)
    eager = qat(x).data
    graph = quantize.convert_qat(qat)
    step = output_step(graph)
    for level in ("none", "all"):  # simulated QDQ in float, then the integer kernels
        session = InferenceSession(graph, optimization=level)
        out = session.run(None, {"input": x})[0]
        assert np.abs(out - eager).max() <= step * (1 + 1e-3), level
        assert np.mean(out.argmax(1) == eager.argmax(1)) >= 0.99, level
    fused = [n.op_type for n in InferenceSession(graph).graph.nodes]
    assert "QGemm" in fused and not {"Conv", "Gemm"} & set(fused)  # every layer on integers


def test_converted_graph_follows_the_qdq_contract():
    x, y = blob_images(128, 6)
    qat = fine_tuned(trained_bn_net(), x, y)
    graph = quantize.convert_qat(qat)
    conv = next(n for n in graph.nodes if n.op_type == "Conv")
    x_dq, w_dq, b_dq = (v.producer for v in conv.inputs)
    assert [p.op_type for p in (x_dq, w_dq, b_dq)] == ["DequantizeLinear"] * 3
    w_q = w_dq.inputs[0]
    assert w_q.name == "conv.weight.quantized" and w_q.dtype == "int8"
    assert not np.any(w_dq.inputs[2].data) and w_dq.attrs["axis"] == 0
    # the stored codes are the eager fake-quant's: same scale, same integers
    scale = qat.conv.weight_quant.qparams(qat.conv.weight.data)[0]
    np.testing.assert_array_equal(w_dq.inputs[1].data, scale)
    np.testing.assert_array_equal(w_q.data, np.rint(qat.conv.weight.data
                                                    / scale[:, None, None, None]))
    b_q, b_scale = b_dq.inputs[0], b_dq.inputs[1].data
    assert b_q.dtype == "int32"
    np.testing.assert_allclose(b_scale, float(x_dq.inputs[1].data) * scale, rtol=1e-6)
    np.testing.assert_allclose(b_q.data * b_scale, qat.conv.bias.data, atol=b_scale.max())
    # ReLU6 absorbed before the output Q; the model's functional relu after conv2 removed
    assert [n.op_type for n in graph.consumers(conv.output)] == ["Clip"]
    assert sum(n.op_type == "Relu" for n in graph.nodes) == 1
    # MaxPool sits between equal Q/DQ parameters, every weighted op reads a DQ
    pool = next(n for n in graph.nodes if n.op_type == "MaxPool")
    (after,) = graph.consumers(pool.output)
    assert pool.inputs[0].producer.op_type == "DequantizeLinear"
    assert after.op_type == "QuantizeLinear"
    assert after.inputs[1].data == pool.inputs[0].producer.inputs[1].data
    info = quantize.quantization_info(graph)
    assert info["mode"] == "qat" and info["per_channel"] is True


def test_convert_qat_errors():
    with pytest.raises(QuantizationError, match="not prepared"):
        quantize.convert_qat(models.build("mlp"))
    qat = quantize.prepare_qat(models.build("mlp"))
    with pytest.raises(QuantizationError, match="seen no data"):
        quantize.convert_qat(qat)


def test_fine_tuning_keeps_a_trained_models_accuracy():
    x_train, y_train = blob_images(600, 0)
    x_test, y_test = blob_images(400, 1)
    edgefw.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 16), nn.ReLU(),
                          nn.Linear(16, 4))
    model.compile(optimizer="adam", loss=nn.CrossEntropyLoss())
    model.fit(x_train, y_train, epochs=8, batch_size=32, seed=0, verbose=0)
    float_acc = np.mean(model.predict(x_test).argmax(1) == y_test)
    assert float_acc > 0.9
    qat = quantize.prepare_qat(model, example_inputs=x_test[:1])
    qat.compile(edgefw.optim.Adam(list(qat.parameters()), lr=1e-4), nn.CrossEntropyLoss())
    history = qat.fit(x_train, y_train, epochs=1, batch_size=32, seed=0, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    graph = quantize.convert_qat(qat)
    pred = InferenceSession(graph).run(None, {"input": x_test})[0].argmax(1)
    assert np.mean(pred == y_test) >= float_acc - 0.01


def test_save_and_load_qat_round_trip(tmp_path):
    x, y = blob_images(128, 7)
    edgefw.manual_seed(0)
    qat = fine_tuned(trained_bn_net(), x, y)
    path = quantize.save_qat(qat, tmp_path / "qat.npz", epoch=3)
    with pytest.raises(QuantizationError, match="prepare_qat"):
        quantize.save_qat(trained_bn_net(), tmp_path / "float.npz")
    # a custom class: the float architecture comes from the caller
    loaded = quantize.load_qat(path, model=ConvBNNet())
    assert loaded.checkpoint_extra["epoch"] == 3
    loaded.eval()
    np.testing.assert_array_equal(loaded(x).data, qat(x).data)
    np.testing.assert_array_equal(loaded.conv.output_quant.max_val, qat.conv.output_quant.max_val)
    edgefw.save(trained_bn_net(), tmp_path / "plain.npz")
    with pytest.raises(CheckpointError, match="not a QAT checkpoint"):
        quantize.load_qat(tmp_path / "plain.npz", model=ConvBNNet())


def test_zoo_qat_checkpoint_rebuilds_without_the_model(tmp_path):
    x = np.random.default_rng(0).random((16, 1, 28, 28), np.float32)
    qat = quantize.prepare_qat(models.build("mlp"))
    qat.train()
    qat(x)
    path = quantize.save_qat(qat, tmp_path / "mlp-qat.npz")
    loaded = quantize.load_qat(path).eval()
    np.testing.assert_array_equal(loaded(x).data, qat.eval()(x).data)


@pytest.mark.slow
def test_mnist_mlp_qat_recovers_float_accuracy():
    from edgefw import datasets

    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    x_train = (x_train.astype(np.float32) / 255.0)[:, None]
    x_test = (x_test.astype(np.float32) / 255.0)[:, None]
    y_train = y_train.astype(np.int64)
    edgefw.manual_seed(0)
    model = models.build("mlp")
    model.compile(optimizer="adam", loss=nn.CrossEntropyLoss())
    model.fit(x_train, y_train, epochs=2, batch_size=32, seed=0, verbose=0)
    graph = edgefw.trace(model, x_test[:1])
    float_acc = np.mean(InferenceSession(graph).run(None, {"input": x_test})[0].argmax(1)
                        == y_test)
    qat = quantize.prepare_qat(model)
    qat.compile(edgefw.optim.Adam(list(qat.parameters()), lr=1e-4), nn.CrossEntropyLoss())
    qat.fit(x_train, y_train, epochs=1, batch_size=32, seed=0, verbose=0)
    qat_graph = quantize.convert_qat(qat)
    qat_acc = np.mean(InferenceSession(qat_graph).run(None, {"input": x_test})[0].argmax(1)
                      == y_test)
    assert qat_acc >= float_acc - 0.0005


def test_quantize_params_helpers_agree_with_fake_quant_for_weights():
    w = np.random.default_rng(3).normal(0, 1, (5, 3)).astype(np.float32)
    scale, zero_point = WeightFakeQuant(axis=0).qparams(w)
    params = QParams(scale, zero_point, "int8", 0)
    _, y = fake_quant(w, scale, zero_point, -127, 127, axis=0)
    np.testing.assert_array_equal(y.data, dequantize_array(quantize_array(w, params), params))
