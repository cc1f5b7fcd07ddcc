"""Module API: registration, traversal, modes, state dicts, repr."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import nn
from edgefw.errors import CheckpointError, ConfigError


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 8 * 8, 3))

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).relu())


def test_parameters_buffers_and_paths():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "head.2.weight",
                     "head.2.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in net.named_modules()][:4] == ["", "conv", "bn", "head"]
    assert net.num_parameters() == 4 * 9 + 4 + 4 + 4 + 256 * 3 + 3


def test_train_eval_propagates_and_dropout_obeys():
    net = Net()
    net.eval()
    assert all(not m.training for m in net.modules())
    x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(net(x).data, net(x).data)  # no dropout noise in eval
    net.train()
    assert all(m.training for m in net.modules())


def test_state_dict_round_trip_and_shape_error():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    for (n1, p1), (_, p2) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p1.data, p2.data, err_msg=n1)
    bad = dict(a.state_dict())
    bad["head.2.weight"] = np.zeros((5, 256), np.float32)
    with pytest.raises(CheckpointError, match=r"head\.2\.weight.*\(5, 256\).*\(3, 256\)"):
        b.load_state_dict(bad)
    del bad["head.2.weight"]
    with pytest.raises(CheckpointError, match="missing keys \\['head.2.weight'\\]"):
        b.load_state_dict(bad)


def test_batchnorm_updates_running_stats_like_pytorch():
    bn = nn.BatchNorm2d(3)
    x = np.random.default_rng(1).standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 1
    y = bn(x)
    mean = x.mean(axis=(0, 2, 3))
    var_unbiased = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var_unbiased, rtol=1e-5)
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    bn.eval()
    expected = (x - bn.running_mean[None, :, None, None]) / np.sqrt(
        bn.running_var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-5, atol=1e-5)


def test_default_initialisation_ranges():
    edgefw.manual_seed(0)
    lin = nn.Linear(400, 50)
    bound = 1 / np.sqrt(400)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.weight.data).max() > 0.9 * bound
    dense = nn.Dense(50)
    dense(np.zeros((1, 400), np.float32))
    limit = np.sqrt(6 / 450)
    assert np.abs(dense.weight.data).max() <= limit
    assert np.all(dense.bias.data == 0)


def test_repr_is_readable():
    text = repr(Net())
    assert "(conv): Conv2d(1, 4, kernel_size=(3, 3)" in text
    assert "(2): Linear(in_features=256, out_features=3, bias=True)" in text


def test_keras_sequential_builds_from_input_shape():
    model = nn.Sequential([
        nn.Flatten(input_shape=(28, 28)),
        nn.Dense(128, activation="relu"),
        nn.Dense(10, activation="softmax"),
    ])
    assert model[1].weight.shape == (128, 784)
    out = model(np.zeros((3, 28, 28), np.float32))
    np.testing.assert_allclose(out.data.sum(axis=1), 1.0, rtol=1e-6)
    assert model.num_parameters() == 101_770


def test_keras_conv_layers_are_channels_last():
    model = nn.Sequential([
        nn.Conv2D(8, 3, activation="relu", padding="same", input_shape=(28, 28, 1)),
        nn.MaxPooling2D(),
        nn.BatchNormalization(),
        nn.GlobalAveragePooling2D(),
        nn.Dense(10),
    ])
    assert model[0].weight.shape == (8, 1, 3, 3)
    assert model(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown activation 'relu7'"):
        nn.Dense(3, activation="relu7")


def test_losses_match_definitions():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 4)).astype(np.float32)
    t = np.array([0, 3, 1, 1, 2, 0])
    ce = nn.CrossEntropyLoss()(edgefw.Tensor(z), t).item()
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    assert ce == pytest.approx(-logp[np.arange(6), t].mean(), rel=1e-5)
    probs = edgefw.Tensor(z).softmax()
    keras = nn.get_loss("sparse_categorical_crossentropy")(probs, t).item()
    assert keras == pytest.approx(ce, rel=1e-5)  # softmax output handled via its logits
    p = np.exp(logp)
    plain = nn.get_loss("sparse_categorical_crossentropy")(edgefw.Tensor(p), t).item()
    assert plain == pytest.approx(ce, rel=1e-4)  # probabilities without a softmax op
    assert nn.MSELoss()(edgefw.Tensor(z), np.zeros_like(z)).item() == pytest.approx(
        (z ** 2).mean(), rel=1e-6)
    assert nn.L1Loss()(edgefw.Tensor(z), np.zeros_like(z)).item() == pytest.approx(
        np.abs(z).mean(), rel=1e-6)
    y = (rng.random((6, 4)) > 0.5).astype(np.float32)
    bce = nn.BCEWithLogitsLoss()(edgefw.Tensor(z), y).item()
    sig = 1 / (1 + np.exp(-z))
    assert bce == pytest.approx(-(y * np.log(sig) + (1 - y) * np.log(1 - sig)).mean(), rel=1e-5)


def test_labels_outside_class_range_are_named():
    from edgefw.errors import DataError

    with pytest.raises(DataError, match=r"label 10, outside the class range \[0, 10\)"):
        nn.CrossEntropyLoss()(edgefw.Tensor(np.zeros((2, 10), np.float32)), np.array([1, 10]))
