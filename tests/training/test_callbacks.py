"""Callbacks on a one-weight regression whose validation loss rises every epoch.

Training fits y = 2x from w = 0 while validation scores against y = -2x, so the training
loss falls and the validation loss rises monotonically: the best val_loss is epoch 1's.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

import edgefw
from edgefw import checkpoint, optim
from edgefw.errors import ConfigError
from edgefw.training.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    LRSchedulerCallback,
    ModelCheckpoint,
)
from tests.training.fixtures import assert_same_weights, line_model, line_problem, weights


class Snapshots(Callback):
    """Keeps the weights at the end of every epoch (before later callbacks run)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_epoch: list[dict[str, np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        self.by_epoch.append(weights(self.model))


def _fit(model, callbacks, epochs=6, **kwargs):
    x, y = line_problem(64)
    return model.fit(x, y, epochs=epochs, batch_size=16, validation_data=(x, -y), verbose=0,
                     callbacks=callbacks, **kwargs)


def test_history_shows_the_rising_validation_loss():
    history = _fit(line_model(), [], epochs=4)
    val = history.history["val_loss"]
    train = history.history["loss"]
    assert all(a < b for a, b in zip(val, val[1:], strict=False))
    assert all(a > b for a, b in zip(train, train[1:], strict=False))


def test_early_stopping_with_patience_restores_the_best_weights(capsys):
    model = line_model()
    snaps = Snapshots()
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True, verbose=1)
    history = _fit(model, [snaps, stop])
    # Epoch 1 is best; epochs 2 and 3 do not improve, so patience 2 stops after epoch 3.
    assert history.epoch == [0, 1, 2]
    assert stop.stopped_epoch == 2 and stop.best_epoch == 0
    assert_same_weights(weights(model), snaps.by_epoch[0])
    out = capsys.readouterr().out
    assert "Restoring model weights from the end of the best epoch: 1." in out
    assert "Epoch 3: early stopping" in out


def test_early_stopping_keeps_the_last_weights_without_restore():
    model = line_model()
    snaps = Snapshots()
    history = _fit(model, [snaps, EarlyStopping(patience=1)])
    assert history.epoch == [0, 1]
    assert_same_weights(weights(model), snaps.by_epoch[-1])


def test_early_stopping_on_an_improving_metric_runs_every_epoch():
    stop = EarlyStopping(monitor="loss", patience=0, min_delta=1e-6)
    history = _fit(line_model(), [stop], epochs=4)
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 0
    # A min_delta larger than any improvement counts nothing as better than epoch 1.
    history = _fit(line_model(), [EarlyStopping(monitor="loss", min_delta=10.0)], epochs=4)
    assert history.epoch == [0, 1]


def test_monitor_modes():
    assert EarlyStopping(monitor="val_accuracy").mode == "max"
    assert EarlyStopping(monitor="val_loss").mode == "min"
    with pytest.raises(ConfigError, match="mode must be"):
        EarlyStopping(mode="up")
    with pytest.warns(UserWarning, match="'val_auc' is not in the epoch's logs"):
        _fit(line_model(), [EarlyStopping(monitor="val_auc")], epochs=1)


def test_model_checkpoint_save_best_only_writes_on_improvement(tmp_path):
    model = line_model()
    snaps = Snapshots()
    best = ModelCheckpoint(tmp_path / "best-{epoch:02d}-{val_loss:.3f}.npz", save_best_only=True)
    every = ModelCheckpoint(tmp_path / "train-{epoch:02d}.npz", monitor="loss",
                            save_best_only=True)
    history = _fit(model, [snaps, best, every], epochs=3)
    val_1 = history.history["val_loss"][0]
    assert sorted(p.name for p in tmp_path.glob("best-*")) == [f"best-01-{val_1:.3f}.npz"]
    assert sorted(p.name for p in tmp_path.glob("train-*")) == [
        "train-01.npz", "train-02.npz", "train-03.npz"]
    saved = checkpoint.read(best.saved[0])
    assert saved.extra["epoch"] == 1
    assert saved.extra["history"]["val_loss"] == [val_1]
    assert_same_weights(saved.state_dict, snaps.by_epoch[0])
    restored = edgefw.load(tmp_path / "train-02.npz", model=line_model())
    assert_same_weights(weights(restored), snaps.by_epoch[1])


def test_model_checkpoint_bad_field_names_the_available_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot format filepath .* use \{epoch\} and the "
                                          r"logs' keys: loss, lr, val_loss"):
        _fit(line_model(), [ModelCheckpoint(tmp_path / "m-{val_acc:.2f}.npz")], epochs=1)


def test_csv_logger_writes_one_complete_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    history = _fit(line_model(), [CSVLogger(path)], epochs=3)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "lr", "val_loss"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    for key in ("loss", "lr", "val_loss"):
        column = rows[0].index(key)
        assert [float(r[column]) for r in rows[1:]] == history.history[key]
    assert path.read_text().endswith("\n")

    _fit(line_model(), [CSVLogger(path, append=True)], epochs=2)
    rows = list(csv.reader(path.read_text().splitlines()))
    assert len(rows) == 1 + 3 + 2 and rows.count(rows[0]) == 1  # no second header

    _fit(line_model(), [CSVLogger(path)], epochs=1)  # append=False starts over
    assert len(path.read_text().splitlines()) == 2


def test_learning_rate_scheduler_sets_the_rate_used_by_each_epoch(capsys):
    model = line_model(lr=0.05)
    schedule = LearningRateScheduler(lambda epoch, lr: lr if epoch == 0 else lr * 0.5,
                                     verbose=1)
    history = _fit(model, [schedule], epochs=3)
    assert history.history["lr"] == [0.05, 0.025, 0.0125]
    assert model._optimizer.param_groups[0]["lr"] == 0.0125
    out = capsys.readouterr().out
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.025." in out

    # The rate really drives the updates: a rate of 0 leaves the weights alone.
    frozen = line_model()
    _fit(frozen, [LearningRateScheduler(lambda epoch: 0.0)], epochs=2)
    assert frozen.weight.data.item() == 0.0 and frozen.bias.data.item() == 0.0

    with pytest.raises(ConfigError, match="schedule returned -1.0 at epoch 0"):
        _fit(line_model(), [LearningRateScheduler(lambda epoch: -1.0)], epochs=1)


def test_optim_schedulers_drive_fit():
    model = line_model(lr=0.1)
    step = optim.StepLR(model._optimizer, step_size=1, gamma=0.5)
    history = _fit(model, [step], epochs=3)  # a scheduler in callbacks is wrapped
    assert history.history["lr"] == [0.1, 0.05, 0.025]

    plateau = line_model(lr=0.1)
    wrapped = LRSchedulerCallback(
        lambda opt: optim.ReduceLROnPlateau(opt, factor=0.1, patience=0), monitor="val_loss")
    history = _fit(plateau, [wrapped], epochs=3)
    # val_loss rises: epoch 2 is the first bad epoch, so epoch 3 runs at a tenth.
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.01])


def test_per_batch_scheduler_and_the_factory_for_named_optimizers():
    x, y = line_problem(64)
    model = edgefw.nn.Sequential([edgefw.nn.Dense(1, input_shape=(1,))])
    model.compile("sgd", "mse")
    cb = LRSchedulerCallback(lambda opt: optim.StepLR(opt, step_size=2, gamma=0.5),
                             interval="batch")
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    # 4 steps per epoch: the rate halves every 2 steps, i.e. twice per epoch.
    assert history.history["lr"] == [0.01 / 4, 0.01 / 16]


def test_hooks_are_called_in_keras_order():
    calls = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            calls.append(("train_begin", self.params["epochs"], self.params["steps"]))

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(("epoch_begin", epoch))

        def on_batch_end(self, batch, logs=None):
            calls.append(("batch_end", batch, sorted(logs)))

        def on_epoch_end(self, epoch, logs=None):
            calls.append(("epoch_end", epoch, sorted(logs)))

        def on_train_end(self, logs=None):
            calls.append(("train_end",))

    _fit(line_model(), [Recorder()], epochs=2, initial_epoch=1)
    assert calls == [
        ("train_begin", 2, 4), ("epoch_begin", 1),
        *[("batch_end", b, ["loss"]) for b in range(4)],
        ("epoch_end", 1, ["loss", "lr", "val_loss"]), ("train_end",),
    ]


def test_a_callback_can_stop_training_mid_epoch():
    class StopAtBatch(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    history = _fit(line_model(), [StopAtBatch()], epochs=5)
    assert history.epoch == [0]
