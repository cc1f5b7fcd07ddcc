"""Keras' callbacks for ``model.fit``: History, EarlyStopping, ModelCheckpoint,
TerminateOnNaN, CSVLogger, LearningRateScheduler, and LRSchedulerCallback to drive an
``edgefw.optim.lr_scheduler`` scheduler from ``fit``.

A callback gets ``self.model`` and ``self.params`` (``epochs``, ``steps``, ``verbose``)
before training and its hooks are called with Keras' arguments; ``logs`` at the end of an
epoch hold ``loss``, the metrics, ``val_``-prefixed validation values and ``lr``. Setting
``self.model.stop_training = True`` ends training after the current epoch.

>>> import edgefw
>>> stop = edgefw.callbacks.EarlyStopping(monitor="val_loss", patience=2)
>>> history = model.fit(x, y, epochs=20, validation_split=0.2, callbacks=[stop])  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import inspect
import io
import math
import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from edgefw.errors import ConfigError


class Callback:
    """Base class. Override the hooks you need; every one defaults to doing nothing."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        pass

    # Keras 2.2+ names; by default they call the older on_batch_* hooks, as in Keras.
    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.on_batch_end(batch, logs)


def _overrides(callback: Callback, *hooks: str) -> bool:
    return any(getattr(type(callback), h) is not getattr(Callback, h) for h in hooks)


class CallbackList:
    """The callbacks of one ``fit`` call. Batch hooks are only dispatched to callbacks that
    define them, so a plain ``fit`` spends nothing per step on callbacks."""

    def __init__(self, callbacks: Iterable[Callback], model: Any,
                 params: dict[str, Any]) -> None:
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)
            callback.set_params(params)
        self.batch_begin = [c for c in self.callbacks
                            if _overrides(c, "on_batch_begin", "on_train_batch_begin")]
        # TerminateOnNaN needs no call per batch: fit checks every loss itself and calls it
        # when one is not finite.
        self.batch_end = [c for c in self.callbacks if not isinstance(c, TerminateOnNaN)
                          and _overrides(c, "on_batch_end", "on_train_batch_end")
                          and getattr(c, "uses_batch_end", True)]
        self.terminate_on_nan = any(isinstance(c, TerminateOnNaN) for c in self.callbacks)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for callback in self.callbacks:
            callback.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        for callback in self.batch_begin:
            callback.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        for callback in self.batch_end:
            callback.on_train_batch_end(batch, logs)

    def on_invalid_loss(self, batch: int, logs: dict[str, Any]) -> None:
        """A non-finite loss: every batch-end hook sees it, TerminateOnNaN included."""
        for callback in self.callbacks:
            if isinstance(callback, TerminateOnNaN) or callback in self.batch_end:
                callback.on_train_batch_end(batch, logs)


class History(Callback):
    """Records each epoch's logs: ``history.history["val_loss"]``, ``history.epoch``.
    ``fit`` returns it and also stores it as ``model.history``."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        return f"History(epochs={self.epoch}, keys={list(self.history)})"


def _resolve_mode(monitor: str, mode: str, who: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ConfigError(f"{who}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":  # Keras' rule: accuracies go up, everything else down
        return "max" if "acc" in monitor or monitor.startswith("fmeasure") else "min"
    return mode


def _improves(mode: str, current: float, best: float, min_delta: float = 0.0) -> bool:
    if mode == "min":
        return current < best - min_delta
    return current > best + min_delta


def _monitored(logs: dict[str, Any] | None, monitor: str, who: str) -> float | None:
    value = (logs or {}).get(monitor)
    if value is None:
        warnings.warn(
            f"{who}: '{monitor}' is not in the epoch's logs (available: "
            f"{', '.join(sorted(logs or {}))}); pass validation data for val_ metrics",
            stacklevel=3,
        )
        return None
    return float(value)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs. With ``restore_best_weights`` the weights of the best epoch are put back when
    it stops (as in Keras: if training runs to the last epoch, the last weights stay).

    >>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        if patience < 0:
            raise ConfigError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.mode = _resolve_mode(monitor, mode, "EarlyStopping")
        self.min_delta = abs(float(min_delta))
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.on_train_begin()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def _weights(self) -> dict[str, np.ndarray]:
        return {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        current = _monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self._weights()
        self.wait += 1
        if _improves(self.mode, current, self.best, self.min_delta):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self._weights()
            if self.baseline is None or _improves(self.mode, current, self.baseline,
                                                  self.min_delta):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                if self.verbose:
                    print("Restoring model weights from the end of the best epoch: "
                          f"{self.best_epoch + 1}.")
                self.model.load_state_dict(self.best_weights)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Save the model (and its optimizer) with :func:`edgefw.save` after every epoch, or
    only when ``monitor`` improves with ``save_best_only``. ``filepath`` may hold
    ``{epoch:02d}`` and log fields such as ``{val_loss:.4f}``. The file also holds
    ``epoch`` (epochs done: pass it as ``initial_epoch`` to resume) and ``history``.

    >>> ckpt = ModelCheckpoint("runs/mlp-{epoch:02d}-{val_loss:.3f}.npz", save_best_only=True)
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss",
                 verbose: int = 0, save_best_only: bool = False, mode: str = "auto",
                 initial_value_threshold: float | None = None) -> None:
        super().__init__()
        self.filepath, self.monitor, self.verbose = os.fspath(filepath), monitor, verbose
        self.save_best_only = save_best_only
        self.mode = _resolve_mode(monitor, mode, "ModelCheckpoint")
        default = math.inf if self.mode == "min" else -math.inf
        self.best = default if initial_value_threshold is None else initial_value_threshold
        self.saved: list[str] = []  # every path written, in order

    def _path(self, epoch: int, logs: dict[str, Any]) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(
                f"ModelCheckpoint: cannot format filepath {self.filepath!r} ({err!r}); it may "
                f"use {{epoch}} and the logs' keys: {', '.join(sorted(logs))}"
            ) from None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.save_best_only:
            current = _monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None:
                return
            if not _improves(self.mode, current, self.best):
                if self.verbose:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from "
                          f"{self.best:.5f}")
                return
            path = self._path(epoch, logs)
            if self.verbose:
                print(f"Epoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                      f"{current:.5f}, saving model to {path}")
            self.best = current
        else:
            path = self._path(epoch, logs)
            if self.verbose:
                print(f"Epoch {epoch + 1}: saving model to {path}")
        self._save(path, epoch, logs)

    def _save(self, path: str, epoch: int, logs: dict[str, Any]) -> None:
        from edgefw.checkpoint import save

        # History runs after the other callbacks (as in Keras): add this epoch's logs.
        history = getattr(self.model, "history", None)
        record = {k: list(v) for k, v in getattr(history, "history", {}).items()}
        for key, value in logs.items():
            record.setdefault(key, []).append(value)
        save(self.model, path, epoch=epoch + 1, history=record)
        self.saved.append(path)


class TerminateOnNaN(Callback):
    """Stop training (without an error) when the loss becomes NaN or infinite. Without
    it, ``fit`` raises :class:`edgefw.errors.TrainingError` instead. The step whose loss
    was not finite is not applied, so the model keeps its last finite weights."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.stopped_batch: int | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            steps = self.params.get("steps")
            where = f"{batch + 1}/{steps}" if steps else f"{batch + 1}"
            print(f"Epoch {self.epoch + 1}, batch {where}: invalid loss {loss}, "
                  "terminating training")
            self.stopped_batch = batch
            self.model.stop_training = True


class CSVLogger(Callback):
    """Append one CSV row per epoch (``epoch`` and the sorted log keys) to ``filename``.
    Each row is written with one call and the file is closed again, so a crash never
    leaves half a line. ``append=True`` continues an existing file (for resumed runs).

    >>> logger = CSVLogger("runs/training.csv")
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",",
                 append: bool = False) -> None:
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.keys: list[str] | None = None
        self._needs_header = True

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.keys = None
        existing = self.append and os.path.isfile(self.filename)
        self._needs_header = not (existing and os.path.getsize(self.filename) > 0)
        folder = os.path.dirname(self.filename)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if not self.append:
            with open(self.filename, "w", newline=""):
                pass

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        text = io.StringIO()
        writer = csv.writer(text, delimiter=self.separator, lineterminator="\n")
        if self._needs_header:
            writer.writerow(["epoch", *self.keys])
            self._needs_header = False
        writer.writerow([epoch, *(logs.get(k, "NA") for k in self.keys)])
        with open(self.filename, "a", newline="") as f:
            f.write(text.getvalue())
            f.flush()


def optimizer_of(model: Any, who: str) -> Any:
    optimizer = getattr(model, "_optimizer", None)
    if optimizer is None:
        raise ConfigError(
            f"{who}: the model has no optimizer yet; compile it, and build it first "
            "(model.build(input_shape)) if its layers are sized on the first call"
        )
    return optimizer


def get_lr(optimizer: Any) -> float:
    """The learning rate of the optimizer's first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


def set_lr(optimizer: Any, lr: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in optimizer.param_groups:
        group["lr"] = lr


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch to ``schedule(epoch, lr)`` (or
    ``schedule(epoch)``), epochs counted from 0, as in Keras.

    >>> halve = LearningRateScheduler(lambda epoch, lr: lr if epoch < 2 else lr * 0.5)
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise ConfigError(f"LearningRateScheduler: schedule must be callable, got "
                              f"{type(schedule).__name__}")
        self.schedule, self.verbose = schedule, verbose
        self._takes_lr = _positional_arity(schedule) >= 2

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        optimizer = optimizer_of(self.model, "LearningRateScheduler")
        lr = get_lr(optimizer)
        new_lr = self.schedule(epoch, lr) if self._takes_lr else self.schedule(epoch)
        try:
            new_lr = float(new_lr)
        except (TypeError, ValueError):
            new_lr = math.nan
        if not (math.isfinite(new_lr) and new_lr >= 0):
            raise ConfigError(
                f"LearningRateScheduler: schedule returned {new_lr!r} at epoch {epoch}; it "
                "must return a finite float >= 0"
            )
        set_lr(optimizer, new_lr)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{new_lr}.")


def _positional_arity(fn: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return 2
    return sum(1 for p in parameters if p.kind in kinds)


class LRSchedulerCallback(Callback):
    """Step an ``edgefw.optim.lr_scheduler`` scheduler from ``fit``: after every epoch
    (``interval="epoch"``) or batch (``"batch"``); ``ReduceLROnPlateau`` is stepped with
    the epoch's ``monitor`` value. ``scheduler`` may be a scheduler, or a function
    ``optimizer -> scheduler`` for models compiled with an optimizer name (their optimizer
    only exists once fit has started). Schedulers in ``fit(callbacks=...)`` are wrapped
    in this automatically.

    >>> from edgefw.optim.lr_scheduler import StepLR
    >>> cb = LRSchedulerCallback(lambda opt: StepLR(opt, step_size=2, gamma=0.5))
    """

    def __init__(self, scheduler: Any, interval: str = "epoch",
                 monitor: str = "val_loss") -> None:
        super().__init__()
        if interval not in ("epoch", "batch"):
            raise ConfigError(f"LRSchedulerCallback: interval must be 'epoch' or 'batch', "
                              f"got {interval!r}")
        from edgefw.optim.lr_scheduler import LRScheduler

        if not (isinstance(scheduler, LRScheduler) or callable(scheduler)):
            raise ConfigError(
                "LRSchedulerCallback: scheduler must be an edgefw LRScheduler or a function "
                f"optimizer -> scheduler, got {type(scheduler).__name__}"
            )
        self._factory = None if isinstance(scheduler, LRScheduler) else scheduler
        self.scheduler = scheduler if self._factory is None else None
        self.interval, self.monitor = interval, monitor
        self.uses_batch_end = interval == "batch"

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._factory is not None and self.scheduler is None:
            self.scheduler = self._factory(optimizer_of(self.model, "LRSchedulerCallback"))

    def _step(self, logs: dict[str, Any] | None) -> None:
        from edgefw.optim.lr_scheduler import ReduceLROnPlateau

        if isinstance(self.scheduler, ReduceLROnPlateau):
            value = _monitored(logs, self.monitor, "LRSchedulerCallback")
            if value is not None:
                self.scheduler.step(value)
        else:
            self.scheduler.step()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.interval == "epoch":
            self._step(logs)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.interval == "batch":
            self._step(logs)


__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LRSchedulerCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "TerminateOnNaN",
    "get_lr",
    "set_lr",
]
