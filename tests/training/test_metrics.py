"""Metrics against naive per-sample loops, accumulated over uneven batches."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import ConfigError, ShapeError
from edgefw.training.metrics import Accuracy, get_metric, get_metrics

RNG = np.random.default_rng(0)


def _batched(metric, pred, target, sizes=(7, 1, 12, 20)):
    metric.reset()
    start = 0
    for size in sizes:
        metric.update(pred[start:start + size], target[start:start + size])
        start += size
    assert start == len(pred)
    return metric.result()


def test_sparse_accuracy_matches_a_loop():
    pred = RNG.standard_normal((40, 5))
    labels = RNG.integers(0, 5, 40).astype(np.uint8)
    naive = sum(int(np.argmax(p) == t) for p, t in zip(pred, labels, strict=True)) / 40
    assert _batched(get_metric("accuracy"), pred, labels) == naive
    assert _batched(get_metric("sparse_categorical_accuracy"), pred, labels) == naive
    assert _batched(get_metric("acc"), pred, labels.reshape(40, 1)) == naive


def test_categorical_accuracy_with_one_hot_targets():
    pred = RNG.standard_normal((40, 5))
    labels = RNG.integers(0, 5, 40)
    one_hot = np.eye(5, dtype=np.float32)[labels]
    naive = np.mean([np.argmax(p) == t for p, t in zip(pred, labels, strict=True)])
    accuracy = get_metric("accuracy")
    assert _batched(accuracy, pred, one_hot) == naive
    assert type(accuracy.kind).__name__ == "CategoricalAccuracy"
    assert _batched(get_metric("categorical_accuracy"), pred, one_hot) == naive


@pytest.mark.parametrize("threshold", [0.5, 0.0])
def test_binary_accuracy_threshold(threshold):
    pred = RNG.uniform(-1, 1.5, (40, 1))
    target = RNG.integers(0, 2, 40).astype(np.float32)
    naive = np.mean([(p[0] > threshold) == (t == 1) for p, t in zip(pred, target, strict=True)])
    assert _batched(get_metric("accuracy", threshold), pred, target) == pytest.approx(naive)
    assert _batched(get_metric("binary_accuracy", threshold), pred, target) == pytest.approx(naive)


def test_top_k_matches_a_loop():
    pred = RNG.standard_normal((40, 8))
    labels = RNG.integers(0, 8, 40)
    naive = np.mean([t in np.argsort(-p)[:5] for p, t in zip(pred, labels, strict=True)])
    assert _batched(get_metric("sparse_top_k_categorical_accuracy"), pred, labels) == naive
    one_hot = np.eye(8)[labels]
    assert _batched(get_metric("top_k_categorical_accuracy"), pred, one_hot) == naive


def test_mean_errors_and_functions():
    pred = RNG.standard_normal((40, 3))
    target = RNG.standard_normal((40, 3))
    assert _batched(get_metric("mae"), pred, target) == pytest.approx(np.abs(pred - target).mean())
    assert _batched(get_metric("mse"), pred, target) == pytest.approx(((pred - target) ** 2).mean())

    def max_error(y_true, y_pred):
        return np.abs(y_true - y_pred).max(axis=1)

    metric = get_metric(max_error)
    assert metric.name == "max_error"
    expected = np.abs(pred - target).max(axis=1).mean()
    assert _batched(metric, pred, target) == pytest.approx(expected)


def test_mismatched_shapes_and_unknown_names():
    with pytest.raises(ShapeError, match="accuracy: 3 targets for 4 predictions"):
        get_metric("accuracy").update(np.zeros((4, 3)), np.zeros(3, np.int64))
    with pytest.raises(ConfigError, match="unknown metric 'f1'"):
        get_metrics(["f1"])
    with pytest.raises(ConfigError, match="a metric must be a name"):
        get_metric(3)
    assert get_metrics(None) == [] and [m.name for m in get_metrics("acc")] == ["acc"]


def test_reset_starts_over():
    metric = Accuracy()
    metric.update(np.array([[1.0, 0.0]]), np.array([1]))
    metric.reset()
    metric.update(np.array([[1.0, 0.0]]), np.array([0]))
    assert metric.result() == 1.0
