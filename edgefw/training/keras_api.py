"""Keras-style training for any :class:`edgefw.nn.Module`: compile, fit, evaluate, predict.

The brief's Keras workflow, line by line (here on a slice of MNIST):

>>> import edgefw
>>> from edgefw import nn
>>> (x_train, y_train), (x_test, y_test) = edgefw.datasets.load_mnist()
>>> x_train, x_test = x_train[:512] / 255.0, x_test[:256] / 255.0
>>> model = nn.Sequential([
...     nn.Flatten(input_shape=(28, 28)),
...     nn.Dense(128, activation="relu"),
...     nn.Dense(10, activation="softmax"),
... ])
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
...               metrics=["accuracy"])
>>> history = model.fit(x_train, y_train[:512], epochs=2, batch_size=32, verbose=0,
...                     validation_data=(x_test, y_test[:256]))
>>> sorted(history.history)
['accuracy', 'loss', 'lr', 'val_accuracy', 'val_loss']
>>> model.evaluate(x_test, y_test[:256], verbose=2)  # doctest: +SKIP
8/8 - 0s 1ms/step - loss: 0.5235 - accuracy: 0.8555
[0.5235, 0.8555]
>>> model.predict(x_test).shape
(256, 10)

Each training step slices its batch with one index per array, runs forward, loss, backward
and the optimizer, and adds the loss and metrics to Python running sums; the progress line
is redrawn at most ten times a second. The loss scalar is checked for NaN/inf every step.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgefw import random as _random
from edgefw.autograd import Tensor, no_grad
from edgefw.errors import ConfigError, DataError, ShapeError, TrainingError
from edgefw.nn.loss import BCEWithLogitsLoss, get_loss
from edgefw.nn.module import Module
from edgefw.optim import SGD, Adam, AdamW, Optimizer, RMSprop
from edgefw.training.callbacks import (
    Callback,
    CallbackList,
    History,
    LRSchedulerCallback,
    get_lr,
)
from edgefw.training.data_adapter import ArrayData, LoaderData, training_data, validation_set
from edgefw.training.metrics import Metric, get_metrics
from edgefw.training.progress import ProgressBar

# Optimizer names with Keras' default settings.
OPTIMIZERS: dict[str, Callable[[list], Optimizer]] = {
    "adam": lambda params: Adam(params, lr=1e-3, eps=1e-7),
    "adamw": lambda params: AdamW(params, lr=1e-3, eps=1e-7, weight_decay=0.004),
    "sgd": lambda params: SGD(params, lr=0.01),
    "rmsprop": lambda params: RMSprop(params, lr=1e-3, alpha=0.9, eps=1e-7),
}


def _reject(unsupported: dict[str, Any], who: str, supported: str) -> None:
    if unsupported:
        raise ConfigError(f"{who}() got unsupported arguments {sorted(unsupported)}; "
                          f"it takes {supported}")


# ------------------------------------------------------------------------------ compile
def compile_model(model: Module, optimizer: Any = "adam", loss: Any = None, metrics: Any = None,
                  **kwargs: Any) -> None:
    """Configure ``model`` for :func:`fit`: an optimizer name ("adam", "sgd", "rmsprop",
    "adamw", with Keras' defaults) or an edgefw Optimizer, a loss name or callable
    ``loss(pred, target)``, and metric names. The optimizer is ``model._optimizer``; for a
    model whose layers are sized on the first call it is created when fit builds them."""
    _reject(kwargs, "compile", "optimizer, loss and metrics")
    if not isinstance(model, Module):
        raise ConfigError(f"compile needs an edgefw Module, got {type(model).__name__}")
    if loss is None:
        raise ConfigError("compile: a loss is required, e.g. "
                          "loss='sparse_categorical_crossentropy' or nn.CrossEntropyLoss()")
    loss_fn = get_loss(loss)
    from_logits = isinstance(loss_fn, BCEWithLogitsLoss) or getattr(loss_fn, "from_logits", False)
    metric_list = get_metrics(metrics, threshold=0.0 if from_logits else 0.5)
    if isinstance(optimizer, str):
        factory = OPTIMIZERS.get(optimizer.lower())
        if factory is None:
            raise ConfigError(f"compile: unknown optimizer {optimizer!r}; known: "
                              f"{', '.join(sorted(OPTIMIZERS))}, or an edgefw.optim Optimizer")
        instance = None
    elif isinstance(optimizer, Optimizer):
        factory, instance = None, optimizer
    else:
        raise ConfigError(f"compile: optimizer must be a name or an edgefw.optim Optimizer, "
                          f"got {type(optimizer).__name__}")
    # Stored outside Module.__setattr__ so the loss module is not registered as a child layer.
    state = model.__dict__
    state["_loss"], state["_metrics"] = loss_fn, metric_list
    state["_optimizer"], state["_optimizer_factory"] = instance, factory
    state["stop_training"] = False
    ensure_optimizer(model)


def _is_built(model: Module) -> bool:
    return all(getattr(m, "built", True) for m in model.modules())


def ensure_optimizer(model: Module) -> Optimizer | None:
    """``model._optimizer``, created from the compiled name once every layer is built
    (None while some layer still waits for its first input)."""
    optimizer = model.__dict__.get("_optimizer")
    factory = model.__dict__.get("_optimizer_factory")
    if optimizer is not None or factory is None or not _is_built(model):
        return optimizer
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"{type(model).__name__} has no trainable parameters to optimize")
    optimizer = factory(params)
    pending = model.__dict__.pop("_pending_optimizer_state", None)
    if pending is not None:  # edgefw.load() came before compile(): resume its state
        optimizer.load_state_dict(pending)
    model.__dict__["_optimizer"] = optimizer
    return optimizer


def _compiled(model: Module, who: str) -> tuple[Any, list[Metric]]:
    loss_fn = model.__dict__.get("_loss")
    if loss_fn is None:
        raise ConfigError(f"{who}: the model is not compiled; call model.compile(optimizer, "
                          "loss, metrics) first")
    return loss_fn, model.__dict__["_metrics"]


def _check_int(value: Any, name: str, who: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ConfigError(f"{who}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_verbose(verbose: Any, who: str) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ConfigError(f"{who}: verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


# ------------------------------------------------------------------------------ running
def _modes(model: Module) -> list[tuple[Module, bool]]:
    return [(m, m.training) for m in model.modules()]


def _restore_modes(modes: list[tuple[Module, bool]]) -> None:
    for module, training in modes:
        object.__setattr__(module, "training", training)


def _forward(model: Module, xb: np.ndarray, who: str) -> Tensor:
    try:
        out = model(xb)
    except ShapeError as err:
        raise ShapeError(f"{who}: the model cannot run on a batch of shape {xb.shape}: "
                         f"{err}") from err
    if not isinstance(out, Tensor):
        raise ConfigError(f"{who}: the model must return one Tensor, got {type(out).__name__}")
    return out


def _loss_value(loss_fn: Any, out: Tensor, yb: Any, who: str) -> Tensor:
    try:
        loss = loss_fn(out, yb)
    except ShapeError as err:
        shape = getattr(yb, "shape", None)
        raise ShapeError(f"{who}: the loss cannot compare predictions of shape {out.shape} "
                         f"with targets of shape {shape}: {err}") from err
    if not isinstance(loss, Tensor):
        raise ConfigError(f"{who}: the loss must return a Tensor, got {type(loss).__name__}")
    return loss if loss.data.size == 1 else loss.mean()  # Keras averages per-sample losses


def _build(model: Module, data: ArrayData | LoaderData, who: str) -> None:
    """Size lazily built layers on one sample (eval mode, no gradients), so the compiled
    optimizer can be created before training starts."""
    if ensure_optimizer(model) is not None or _is_built(model):
        return
    sample = data.sample()
    if sample is None:
        return  # built by the first training step instead
    modes = _modes(model)
    model.eval()
    try:
        with no_grad():
            _forward(model, sample, who)
    finally:
        _restore_modes(modes)
    ensure_optimizer(model)


def _evaluate(model: Module, data: ArrayData | LoaderData, batch_size: int, loss_fn: Any,
              metrics: list[Metric], verbose: int, who: str) -> dict[str, float]:
    """Average loss and metrics over ``data`` in eval mode without gradients."""
    for metric in metrics:
        metric.reset()
    bar = ProgressBar(data.steps(batch_size), verbose) if verbose else None
    modes = _modes(model)
    model.eval()
    total, seen, step = 0.0, 0, 0
    try:
        with no_grad():
            for xb, yb in data.batches(batch_size):
                out = _forward(model, xb, who)
                n = len(xb)
                total += float(_loss_value(loss_fn, out, yb, who).data) * n
                seen += n
                pred = out.data
                for metric in metrics:
                    metric.update(pred, yb)
                step += 1
                if bar is not None and time.perf_counter() >= bar.next_update:
                    bar.update(step, _logs(total, seen, metrics))
    finally:
        _restore_modes(modes)
    if not seen:
        raise DataError(f"{who}: the data yielded no batches")
    logs = _logs(total, seen, metrics)
    if bar is not None:
        bar.finish(logs, step)
    return logs


def _logs(total: float, seen: int, metrics: list[Metric]) -> dict[str, float]:
    logs = {"loss": total / seen if seen else math.nan}
    for metric in metrics:
        logs[metric.name] = metric.result()
    return logs


def _fresh(metrics: list[Metric]) -> list[Metric]:
    copies = [copy.deepcopy(m) for m in metrics]
    for metric in copies:
        metric.reset()
    return copies


# ------------------------------------------------------------------------------ fit
def _callback_list(callbacks: Any, history: History, model: Module,
                   params: dict[str, Any]) -> CallbackList:
    from edgefw.optim.lr_scheduler import LRScheduler

    items = [] if callbacks is None else list(callbacks)
    wrapped = []
    for i, item in enumerate(items):
        if isinstance(item, LRScheduler):
            item = LRSchedulerCallback(item)
        if not isinstance(item, Callback):
            raise ConfigError(f"fit: callbacks[{i}] is a {type(item).__name__}, not an "
                              "edgefw.callbacks.Callback or an optim LR scheduler")
        wrapped.append(item)
    # History last, as in Keras, so it records keys other callbacks add to the logs.
    return CallbackList(wrapped + [history], model, params)


def _shuffled_order(n: int, seed: int | None, epoch: int) -> np.ndarray:
    """The epoch's sample order: a function of (seed, epoch) alone when seeded, so a run
    resumed at ``initial_epoch`` sees the same orders; else edgefw's global generator,
    whose state checkpoints save and restore."""
    if seed is None:
        return _random.generator().permutation(n)
    return np.random.default_rng((seed, epoch)).permutation(n)


class _EpochRunner:
    """One training epoch: the lean per-step loop, and what to do on a NaN loss."""

    def __init__(self, model: Module, loss_fn: Any, metrics: list[Metric],
                 callbacks: CallbackList, epochs: int) -> None:
        self.model, self.loss_fn, self.metrics = model, loss_fn, metrics
        self.callbacks, self.epochs = callbacks, epochs
        self.steps_done = 0

    def run(self, epoch: int, batches: Iterator[tuple], steps: int | None,
            bar: ProgressBar) -> dict[str, float]:
        model, loss_fn, metrics, cbs = self.model, self.loss_fn, self.metrics, self.callbacks
        for metric in metrics:
            metric.reset()
        optimizer = ensure_optimizer(model)
        if optimizer is not None:
            optimizer.zero_grad()
        batch_begin, batch_end = cbs.batch_begin, cbs.batch_end
        clock, isfinite = time.perf_counter, math.isfinite
        total, seen, step = 0.0, 0, 0
        for xb, yb in batches:
            if batch_begin:
                cbs.on_train_batch_begin(step, {})
            out = _forward(model, xb, "fit")
            loss = _loss_value(loss_fn, out, yb, "fit")
            value = float(loss.data)
            n = len(xb)
            if not isfinite(value):
                # The update is not applied: the model keeps its last finite weights.
                bar.close()
                self._invalid_loss(epoch, step, steps, value, total, seen, n)
                total += value * n
                seen += n
                break
            loss.backward()
            if optimizer is None:  # layers sized by this first step
                optimizer = ensure_optimizer(model)
            optimizer.step()
            optimizer.zero_grad()
            total += value * n
            seen += n
            pred = out.data
            for metric in metrics:
                metric.update(pred, yb)
            step += 1
            if batch_end:
                cbs.on_train_batch_end(step - 1, _logs(total, seen, metrics))
                if model.stop_training:
                    break
            if clock() >= bar.next_update:
                bar.update(step, _logs(total, seen, metrics))
        if not seen:
            raise DataError(f"fit: the training data yielded no batches in epoch {epoch + 1} "
                            "(a generator can be iterated only once; pass a DataLoader)")
        self.steps_done = step
        return _logs(total, seen, metrics)

    def _invalid_loss(self, epoch: int, step: int, steps: int | None, value: float,
                      total: float, seen: int, n: int) -> None:
        where = f"step {step + 1}/{steps}" if steps else f"step {step + 1}"
        if not self.callbacks.terminate_on_nan:
            before = f"{total / seen:.4f}" if seen else "none yet"
            raise TrainingError(
                f"loss became {value} at epoch {epoch + 1}/{self.epochs}, {where} (batch of "
                f"{n} samples; running loss before it: {before}). That step was not applied. "
                "Try a lower learning rate, check x and y for NaN/inf and that the loss suits "
                "the model's outputs, or pass callbacks=[edgefw.callbacks.TerminateOnNaN()] "
                "to stop without an error"
            )
        logs = _logs(total + value * n, seen + n, self.metrics)
        self.callbacks.on_invalid_loss(step, logs)
        self.model.stop_training = True


def fit(model: Module, x: Any = None, y: Any = None, *, epochs: int = 1, batch_size: int = 32,
        verbose: int | str = 1, callbacks: Any = None, validation_split: float = 0.0,
        validation_data: Any = None, shuffle: bool = True, initial_epoch: int = 0,
        seed: int | None = None, validation_batch_size: int | None = None,
        **unsupported: Any) -> History:
    """Train like Keras' ``model.fit``; returns a :class:`History`.

    ``x``/``y`` are arrays (uint8 or float64 inputs are cast to float32 per batch, as Keras
    does; scale pixels yourself) or ``x`` is a DataLoader yielding ``(inputs, targets)``.
    ``validation_split`` holds out the last fraction of the arrays. ``epochs`` is the
    index of the last epoch and ``initial_epoch`` the first (to resume from a checkpoint).
    Shuffling uses ``seed`` (the order of epoch ``e`` depends on ``(seed, e)`` only) or
    else edgefw's global generator, so a resumed run reproduces an uninterrupted one.
    """
    _reject(unsupported, "fit", "x, y, epochs, batch_size, verbose, callbacks, "
            "validation_split, validation_data, shuffle, initial_epoch, seed, "
            "validation_batch_size")
    loss_fn, metrics = _compiled(model, "fit")
    epochs = _check_int(epochs, "epochs", "fit", 0)
    initial_epoch = _check_int(initial_epoch, "initial_epoch", "fit", 0)
    batch_size = _check_int(batch_size, "batch_size", "fit", 1)
    val_batch_size = _check_int(validation_batch_size or batch_size, "validation_batch_size",
                                "fit", 1)
    verbose = _check_verbose(verbose, "fit")
    if seed is not None:
        seed = _check_int(seed, "seed", "fit", 0)
    if isinstance(validation_split, bool) or not isinstance(validation_split, int | float) \
            or not 0.0 <= validation_split < 1.0:
        raise ConfigError(f"fit: validation_split must be a fraction in [0, 1), got "
                          f"{validation_split!r}")
    train = training_data(model, x, y, "fit", targets=True)
    val = None
    if validation_data is not None:
        val = validation_set(model, validation_data, "fit")
    elif validation_split:
        if not isinstance(train, ArrayData):
            raise ConfigError("fit: validation_split needs x and y arrays; with a DataLoader "
                              "pass validation_data instead")
        train, val = train.split(float(validation_split), "fit")
    _build(model, train, "fit")

    history = History()
    model.__dict__["history"] = history
    model.stop_training = False
    steps = train.steps(batch_size)
    cbs = _callback_list(callbacks, history, model,
                         {"epochs": epochs, "steps": steps, "verbose": verbose})
    runner = _EpochRunner(model, loss_fn, metrics, cbs, epochs)
    val_metrics = _fresh(metrics)
    modes = _modes(model)
    if not model.training:  # PyTorch-style code may have left it in eval mode
        model.train()
    logs: dict[str, float] = {}
    try:
        cbs.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            order = None
            if shuffle and isinstance(train, ArrayData):
                order = _shuffled_order(len(train), seed, epoch)
            bar = ProgressBar(steps, verbose)
            logs = runner.run(epoch, train.batches(batch_size, order), steps, bar)
            if val is not None:
                val_logs = _evaluate(model, val, val_batch_size, loss_fn, val_metrics, 0,
                                     "fit validation")
                logs.update({f"val_{k}": v for k, v in val_logs.items()})
            optimizer = model.__dict__.get("_optimizer")
            bar.finish(logs, runner.steps_done)
            if optimizer is not None:
                logs["lr"] = get_lr(optimizer)
            cbs.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        cbs.on_train_end(logs)
    finally:
        _restore_modes(modes)
    return history


# ------------------------------------------------------------------------------ evaluate
def evaluate(model: Module, x: Any = None, y: Any = None, *, batch_size: int = 32,
             verbose: int | str = 0, return_dict: bool = False,
             **unsupported: Any) -> float | list[float] | dict[str, float]:
    """The compiled loss (and metrics) averaged over the samples of ``x``/``y`` (or a
    DataLoader), in eval mode without gradients; the model's modes are restored.
    Returns the loss alone without metrics, else ``[loss, *metrics]`` (a dict with
    ``return_dict``)."""
    _reject(unsupported, "evaluate", "x, y, batch_size, verbose, return_dict")
    loss_fn, metrics = _compiled(model, "evaluate")
    batch_size = _check_int(batch_size, "batch_size", "evaluate", 1)
    verbose = _check_verbose(verbose, "evaluate")
    data = training_data(model, x, y, "evaluate", targets=True)
    logs = _evaluate(model, data, batch_size, loss_fn, _fresh(metrics), verbose, "evaluate")
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


# ------------------------------------------------------------------------------ predict
def predict(model: Module, x: Any, *, batch_size: int = 32, verbose: int | str = 0,
            **unsupported: Any) -> np.ndarray:
    """The model's outputs for ``x`` (an array, or a DataLoader whose batches are inputs
    or (inputs, targets)), batch by batch in eval mode without gradients, as one array."""
    _reject(unsupported, "predict", "x, batch_size, verbose")
    batch_size = _check_int(batch_size, "batch_size", "predict", 1)
    verbose = _check_verbose(verbose, "predict")
    data = training_data(model, x, None, "predict", targets=False)
    bar = ProgressBar(data.steps(batch_size), verbose) if verbose else None
    outputs: list[np.ndarray] = []
    modes = _modes(model)
    model.eval()
    try:
        with no_grad():
            for xb, _ in data.batches(batch_size):
                outputs.append(_forward(model, xb, "predict").data)
                if bar is not None and time.perf_counter() >= bar.next_update:
                    bar.update(len(outputs), {})
    finally:
        _restore_modes(modes)
    if not outputs:
        raise DataError("predict: the data yielded no batches")
    if bar is not None:
        bar.finish({}, len(outputs))
    return np.concatenate(outputs, axis=0)
