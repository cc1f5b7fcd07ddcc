"""Trained models keep their accuracy after static int8 quantization (small synthetic tasks
by default; MNIST under ``-m slow``)."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
import quantize
from edgefw import nn
from runtime import InferenceSession


def blob_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 images with a bright 3x3 blob in one of four quadrants (the label), plus noise."""
    r = np.random.default_rng(seed)
    labels = r.integers(0, 4, n)
    x = r.normal(0.0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    for i, label in enumerate(labels):
        top, left = 4 * (label // 2) + r.integers(0, 2), 4 * (label % 2) + r.integers(0, 2)
        x[i, 0, top:top + 3, left:left + 3] += 1.0
    return x, labels.astype(np.int64)


def accuracy(graph, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    pred = InferenceSession(graph).run(None, {"input": x})[0].argmax(1)
    return float(np.mean(pred == y)), pred


def test_small_trained_cnn_keeps_its_accuracy_after_static_int8():
    edgefw.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 4))
    x_train, y_train = blob_images(600, 0)
    x_test, y_test = blob_images(400, 1)
    model.compile(optimizer="adam", loss=nn.CrossEntropyLoss())
    model.fit(x_train, y_train, epochs=10, batch_size=32, seed=0, verbose=0)
    graph = edgefw.trace(model, x_test[:2])
    float_acc, float_pred = accuracy(graph, x_test, y_test)
    assert float_acc > 0.9  # the model learned the task
    for kwargs in ({}, {"per_channel": False}, {"method": "percentile"}):
        q = quantize.quantize_static(graph, x_train[:200], **kwargs)
        q_acc, q_pred = accuracy(q, x_test, y_test)
        assert q_acc >= float_acc - 0.01, kwargs
        assert np.mean(q_pred == float_pred) >= 0.98, kwargs


@pytest.mark.slow
@pytest.mark.parametrize("name, epochs, max_drop_pp", [("mlp", 1, 0.2), ("lenet", 1, 0.2)])
def test_mnist_static_int8_per_channel_drop(name, epochs, max_drop_pp):
    from edgefw import datasets, models

    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    x_train = (x_train.astype(np.float32) / 255.0)[:, None]
    x_test = (x_test.astype(np.float32) / 255.0)[:, None]
    edgefw.manual_seed(0)
    model = models.build(name)
    model.compile(optimizer="adam", loss=nn.CrossEntropyLoss())
    model.fit(x_train, y_train.astype(np.int64), epochs=epochs, batch_size=32, seed=0, verbose=0)
    graph = edgefw.trace(model, x_test[:2])
    calibration = x_train[np.random.default_rng(0).choice(len(x_train), 1000, replace=False)]
    q = quantize.quantize_static(graph, calibration)
    float_acc, _ = accuracy(graph, x_test, y_test)
    q_acc, _ = accuracy(q, x_test, y_test)
    assert float_acc > 0.95
    assert 100 * (float_acc - q_acc) <= max_drop_pp
