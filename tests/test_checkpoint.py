"""Checkpoints: round trips, rebuilding, optimizer state, atomic writes, bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest

import edgefw
from edgefw import models, nn, optim
from edgefw.errors import CheckpointError


def _train_steps(model, opt, x, y, steps, seed):
    rng = np.random.default_rng(seed)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        idx = rng.integers(0, len(x), 8)
        opt.zero_grad()
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()


def test_zoo_model_round_trip_rebuilds(tmp_path):
    net = models.build("lenet")
    path = edgefw.save(net, tmp_path / "lenet.npz")
    loaded = edgefw.load(path)
    assert type(loaded).__name__ == "LeNet5"
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    net.eval()
    loaded.eval()
    np.testing.assert_array_equal(net(x).data, loaded(x).data)


def test_keras_sequential_with_lazy_layers_rebuilds(tmp_path):
    model = nn.Sequential([nn.Flatten(), nn.Dense(16, activation="relu"), nn.Dense(3)])
    x = np.random.default_rng(0).random((4, 5, 5), dtype=np.float32)
    ref = model(x).data
    loaded = edgefw.load(edgefw.save(model, tmp_path / "k.npz"))
    np.testing.assert_array_equal(loaded(x).data, ref)


def test_custom_class_needs_the_model_and_shapes_are_checked(tmp_path):
    class Net(nn.Module):
        def __init__(self, hidden):
            super().__init__()
            self.fc = nn.Linear(4, hidden)

        def forward(self, x):
            return self.fc(x)

    path = edgefw.save(Net(8), tmp_path / "net.npz")
    with pytest.raises(CheckpointError, match="build the model and pass it"):
        edgefw.load(path)
    edgefw.load(path, model=Net(8))
    with pytest.raises(CheckpointError, match=r"fc\.weight.*\(8, 4\).*\(5, 4\)"):
        edgefw.load(path, model=Net(5))


def test_resume_reproduces_uninterrupted_training_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 64)

    edgefw.manual_seed(1)
    straight = models.build("mobilenet")
    opt = optim.Adam(straight.parameters(), lr=1e-2)
    _train_steps(straight, opt, x, y, 3, seed=10)
    _train_steps(straight, opt, x, y, 3, seed=11)

    edgefw.manual_seed(1)
    first = models.build("mobilenet")
    opt1 = optim.Adam(first.parameters(), lr=1e-2)
    _train_steps(first, opt1, x, y, 3, seed=10)
    path = edgefw.save(first, tmp_path / "mid.npz", optimizer=opt1, step=3)

    resumed = models.build("mobilenet")
    opt2 = optim.Adam(resumed.parameters(), lr=1e-2)
    edgefw.load(path, model=resumed, optimizer=opt2)
    assert resumed.checkpoint_extra == {"step": 3}
    _train_steps(resumed, opt2, x, y, 3, seed=11)

    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    net = models.build("mlp")
    target = tmp_path / "m.npz"

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        edgefw.save(net, target)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04garbage"])
def test_corrupt_files_raise_checkpoint_error(tmp_path, content):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.npz"):
        edgefw.load(bad)


def test_truncated_checkpoint(tmp_path):
    path = edgefw.save(models.build("mlp"), tmp_path / "m.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        edgefw.load(path)


def test_foreign_npz_is_rejected(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(CheckpointError, match="not an edgefw checkpoint"):
        edgefw.load(tmp_path / "other.npz")


def _keras_model():
    return nn.Sequential([nn.Flatten(), nn.Dense(8, activation="relu"), nn.Dense(3)])


@pytest.mark.parametrize("order", ["compile_then_load", "load_then_compile"])
def test_keras_optimizer_state_survives_for_lazy_models(tmp_path, order):
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 4, 4), dtype=np.float32), rng.integers(0, 3, 40)
    edgefw.manual_seed(0)
    model = _keras_model()
    model.compile("adam", nn.CrossEntropyLoss())
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, seed=1)
    saved = model._optimizer.state_dict()
    path = edgefw.save(model, tmp_path / "k.npz")

    if order == "compile_then_load":
        fresh = _keras_model()
        fresh.compile("adam", nn.CrossEntropyLoss())
        edgefw.load(path, model=fresh)
    else:
        fresh = edgefw.load(path)
        fresh.compile("adam", nn.CrossEntropyLoss())
    from edgefw.training.keras_api import ensure_optimizer

    restored = ensure_optimizer(fresh).state_dict()
    for key, entry in saved["state"].items():
        for name, value in entry.items():
            np.testing.assert_array_equal(restored["state"][key][name], value)
