"""Metrics for ``compile(metrics=[...])``: running averages over the batches of an epoch.

A metric sees each batch's predictions and targets as numpy arrays (``update``) and reports
the average over every sample seen since ``reset`` (``result``), so a metric over an epoch is
exact whatever the batch sizes, and costs a few microseconds per training step.

>>> import numpy as np
>>> acc = get_metric("accuracy")
>>> acc.update(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([0, 1, 1]))
>>> round(acc.result(), 4)
0.6667
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgefw.errors import ConfigError, ShapeError


class Metric:
    """Base class: subclasses add a batch's sum to ``total`` and its size to ``count``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.total = 0.0
        self.count = 0

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        raise NotImplementedError

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _labels(target: np.ndarray, rows: int, who: str) -> np.ndarray:
    flat = target.reshape(-1)
    if flat.size != rows:
        raise ShapeError(f"{who}: {flat.size} targets for {rows} predictions")
    return flat


class SparseCategoricalAccuracy(Metric):
    """Share of rows whose argmax over the last axis equals the integer label."""

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        guess = pred.reshape(-1, pred.shape[-1]).argmax(axis=1)
        labels = _labels(target, guess.shape[0], self.name)
        self.total += int(np.count_nonzero(guess == labels))
        self.count += guess.shape[0]


class CategoricalAccuracy(Metric):
    """Share of rows whose argmax equals the argmax of the one-hot (or soft) target."""

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        if target.shape != pred.shape:
            raise ShapeError(
                f"{self.name}: one-hot targets of shape {target.shape} do not match "
                f"predictions of shape {pred.shape}"
            )
        guess = pred.reshape(-1, pred.shape[-1]).argmax(axis=1)
        truth = target.reshape(-1, target.shape[-1]).argmax(axis=1)
        self.total += int(np.count_nonzero(guess == truth))
        self.count += guess.shape[0]


class BinaryAccuracy(Metric):
    """Share of outputs on the right side of ``threshold`` (0.5 for probabilities, 0 for
    logits) for 0/1 targets."""

    def __init__(self, name: str, threshold: float = 0.5) -> None:
        super().__init__(name)
        self.threshold = threshold

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        if target.size != pred.size:
            raise ShapeError(
                f"{self.name}: {target.size} targets for {pred.size} binary predictions"
            )
        guess = pred.reshape(-1) > self.threshold
        truth = target.reshape(-1) > 0.5
        self.total += int(np.count_nonzero(guess == truth))
        self.count += guess.size


class Accuracy(Metric):
    """Keras' ``"accuracy"``: binary, categorical or sparse accuracy, chosen on the first
    batch from the shapes (one output unit: binary; targets shaped like the predictions:
    categorical; else integer labels)."""

    def __init__(self, name: str = "accuracy", threshold: float = 0.5) -> None:
        super().__init__(name)
        self.threshold = threshold
        self.kind: Metric | None = None

    def _choose(self, pred: np.ndarray, target: np.ndarray) -> Metric:
        if pred.ndim == 1 or pred.shape[-1] == 1:
            return BinaryAccuracy(self.name, self.threshold)
        if target.shape == pred.shape:
            return CategoricalAccuracy(self.name)
        return SparseCategoricalAccuracy(self.name)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        if self.kind is None:
            self.kind = self._choose(pred, target)
        self.kind.update(pred, target)

    def reset(self) -> None:
        if self.kind is not None:
            self.kind.reset()

    def result(self) -> float:
        return 0.0 if self.kind is None else self.kind.result()


class SparseTopKCategoricalAccuracy(Metric):
    """Share of rows whose integer label is among the ``k`` largest outputs."""

    def __init__(self, name: str, k: int = 5) -> None:
        super().__init__(name)
        self.k = k

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        rows = pred.reshape(-1, pred.shape[-1])
        labels = _labels(target, rows.shape[0], self.name).astype(np.int64)
        k = min(self.k, rows.shape[1])
        # A label is in the top k when fewer than k outputs beat it (ties count for it).
        label_scores = rows[np.arange(rows.shape[0]), labels]
        beaten_by = np.count_nonzero(rows > label_scores[:, None], axis=1)
        self.total += int(np.count_nonzero(beaten_by < k))
        self.count += rows.shape[0]


class TopKCategoricalAccuracy(SparseTopKCategoricalAccuracy):
    """Top-k accuracy against one-hot targets."""

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        if target.shape != pred.shape:
            raise ShapeError(
                f"{self.name}: one-hot targets of shape {target.shape} do not match "
                f"predictions of shape {pred.shape}"
            )
        super().update(pred, target.reshape(-1, target.shape[-1]).argmax(axis=1))


class MeanError(Metric):
    """Mean absolute (``power=1``) or squared (``power=2``) error per element."""

    def __init__(self, name: str, power: int) -> None:
        super().__init__(name)
        self.power = power

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        if target.size != pred.size:
            raise ShapeError(f"{self.name}: target of shape {target.shape} for predictions "
                             f"of shape {pred.shape}")
        diff = pred.reshape(-1).astype(np.float64) - target.reshape(-1)
        err = np.abs(diff) if self.power == 1 else diff * diff
        self.total += float(err.sum())
        self.count += diff.size


class FunctionMetric(Metric):
    """A user function ``fn(y_true, y_pred) -> per-sample values or their mean``,
    averaged over samples."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], Any], name: str) -> None:
        super().__init__(name)
        self.fn = fn

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        value = self.fn(target, pred)
        value = np.asarray(getattr(value, "data", value), dtype=np.float64)
        rows = pred.shape[0] if pred.ndim else 1
        self.total += float(value.mean()) * rows
        self.count += rows


_FACTORIES: dict[str, Callable[[str, float], Metric]] = {
    "accuracy": lambda name, threshold: Accuracy(name, threshold),
    "acc": lambda name, threshold: Accuracy(name, threshold),
    "sparse_categorical_accuracy": lambda name, _: SparseCategoricalAccuracy(name),
    "categorical_accuracy": lambda name, _: CategoricalAccuracy(name),
    "binary_accuracy": lambda name, threshold: BinaryAccuracy(name, threshold),
    "sparse_top_k_categorical_accuracy": lambda name, _: SparseTopKCategoricalAccuracy(name),
    "top_k_categorical_accuracy": lambda name, _: TopKCategoricalAccuracy(name),
    "mae": lambda name, _: MeanError(name, 1),
    "mean_absolute_error": lambda name, _: MeanError(name, 1),
    "mse": lambda name, _: MeanError(name, 2),
    "mean_squared_error": lambda name, _: MeanError(name, 2),
}

KNOWN_METRICS = tuple(sorted(_FACTORIES))


def get_metric(metric: Any, threshold: float = 0.5) -> Metric:
    """A fresh :class:`Metric` from a Keras name, a Metric instance or a function
    ``fn(y_true, y_pred)``. ``threshold`` is where binary accuracy splits the outputs (0.5
    for probabilities, 0.0 for logits)."""
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        factory = _FACTORIES.get(metric.lower())
        if factory is None:
            raise ConfigError(
                f"unknown metric {metric!r}; known: {', '.join(KNOWN_METRICS)}, or pass a "
                "function fn(y_true, y_pred)"
            )
        return factory(metric, threshold)
    if callable(metric):
        return FunctionMetric(metric, getattr(metric, "__name__", type(metric).__name__))
    raise ConfigError(
        f"a metric must be a name, a Metric or a function, got {type(metric).__name__}"
    )


def get_metrics(metrics: Any, threshold: float = 0.5) -> list[Metric]:
    """:func:`get_metric` over ``None``, one metric or a list; names must be distinct."""
    if metrics is None:
        return []
    if isinstance(metrics, str | Metric) or callable(metrics):
        metrics = [metrics]
    if not isinstance(metrics, list | tuple):
        raise ConfigError(f"metrics must be a list, got {type(metrics).__name__}")
    built = [get_metric(m, threshold) for m in metrics]
    names = [m.name for m in built]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates or "loss" in names:
        raise ConfigError(f"metric names must be distinct and not 'loss', got {names}")
    return built
