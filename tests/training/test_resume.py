"""A run resumed from a checkpoint with ``initial_epoch`` reproduces an uninterrupted run
bit for bit: weights, optimizer state, shuffling and dropout masks."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import checkpoint, nn
from edgefw.training.callbacks import ModelCheckpoint
from tests.training.fixtures import assert_same_weights, weights


def _model(init_seed: int) -> nn.Module:
    edgefw.manual_seed(init_seed)
    model = nn.Sequential([
        nn.Flatten(input_shape=(28, 28)),
        nn.Dense(64, activation="relu"),
        nn.Dropout(0.3),  # draws from edgefw's global generator every step
        nn.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def data(mnist):
    (x, y), _ = mnist
    return x[:640] / 255.0, y[:640]


def _optimizer_arrays(model: nn.Module) -> list[np.ndarray]:
    state = model._optimizer.state_dict()["state"]
    return [np.asarray(v) for key in sorted(state) for _, v in sorted(state[key].items())]


@pytest.mark.parametrize("seed", [None, 7])
def test_resume_reproduces_an_uninterrupted_run(data, tmp_path, seed):
    x, y = data
    straight = _model(init_seed=0)
    full = straight.fit(x, y, epochs=2, verbose=0, seed=seed, validation_split=0.25)

    first = _model(init_seed=0)
    first.fit(x, y, epochs=1, verbose=0, seed=seed, validation_split=0.25)
    path = edgefw.save(first, tmp_path / "epoch1.npz", epoch=1)

    edgefw.manual_seed(999)  # disturb the global generator: the checkpoint restores it
    np.random.default_rng(0).random(10)
    resumed = _model(init_seed=123)
    edgefw.load(path, model=resumed)
    rest = resumed.fit(x, y, epochs=2, initial_epoch=resumed.checkpoint_extra["epoch"],
                       verbose=0, seed=seed, validation_split=0.25)

    assert rest.epoch == [1]
    assert_same_weights(weights(resumed), weights(straight))
    for a, b in zip(_optimizer_arrays(resumed), _optimizer_arrays(straight), strict=True):
        np.testing.assert_array_equal(a, b)
    for key, values in full.history.items():
        assert rest.history[key] == values[1:], key


def test_resume_from_model_checkpoint_files(data, tmp_path):
    x, y = data
    straight = _model(init_seed=1)
    saver = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}.npz", monitor="loss")
    full = straight.fit(x, y, epochs=3, verbose=0, callbacks=[saver])
    assert [p.rsplit("/", 1)[-1] for p in saver.saved] == [
        "ckpt-01.npz", "ckpt-02.npz", "ckpt-03.npz"]

    resumed = _model(init_seed=5)
    edgefw.load(tmp_path / "ckpt-01.npz", model=resumed)
    extra = resumed.checkpoint_extra
    assert extra["epoch"] == 1
    assert extra["history"]["loss"] == full.history["loss"][:1]
    rest = resumed.fit(x, y, epochs=3, initial_epoch=extra["epoch"], verbose=0)
    assert_same_weights(weights(resumed), weights(straight))
    assert rest.history["loss"] == full.history["loss"][1:]
    assert checkpoint.read(tmp_path / "ckpt-03.npz").extra["history"] == full.history


def test_a_run_without_resume_differs(data):
    """Guard against a vacuous comparison: another shuffling gives other weights."""
    x, y = data
    a, b = _model(init_seed=0), _model(init_seed=0)
    a.fit(x, y, epochs=1, verbose=0, seed=1)
    b.fit(x, y, epochs=1, verbose=0, seed=2)
    assert not np.array_equal(weights(a)["1.weight"], weights(b)["1.weight"])
