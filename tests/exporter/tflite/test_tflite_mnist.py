"""MNIST accuracy of the MLP's .tflite files (float32, float16, dynamic, int8): what the
interpreter gets equals what edgefw's runtime gets, and int8 costs (almost) nothing."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw
from edgefw import datasets, models, nn, optim
from exporter.tflite import to_tflite
from tests.exporter.tflite.tflite_checks import run_edgefw, run_tflite

quantize = pytest.importorskip("quantize")


@pytest.mark.slow
def test_mlp_mnist_accuracy_float_vs_int8():
    edgefw.manual_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    x_train = (x_train.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    x_test = (x_test.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    net = models.build("mlp")
    net.compile(optim.Adam(net.parameters(), lr=1e-3), nn.CrossEntropyLoss())
    net.fit(x_train, y_train.astype(np.int64), epochs=2, batch_size=64, verbose=0, seed=0)
    graph = edgefw.trace(net, x_test[:1])
    calibration = x_train[:1000]
    files = {"float32": to_tflite(graph), "float16": to_tflite(graph, quantize="float16"),
             "dynamic": to_tflite(graph, quantize="dynamic"),
             "int8": to_tflite(graph, quantize="int8", calibration_data=calibration,
                               int8_io=True)}
    accuracy = {name: float(np.mean(run_tflite(data, {"input": x_test})[0].argmax(1) == y_test))
                for name, data in files.items()}
    int8_graph = quantize.quantize_static(graph, calibration, per_channel=True)
    runtime = {
        "float32": run_edgefw(graph, {"input": x_test})[0],
        "int8": run_edgefw(int8_graph, {"input": x_test})[0],
    }
    for name, logits in runtime.items():
        assert abs(float(np.mean(logits.argmax(1) == y_test)) - accuracy[name]) <= 0.0005
    assert accuracy["float32"] > 0.95
    assert abs(accuracy["int8"] - accuracy["float32"]) <= 0.005
    assert abs(accuracy["float16"] - accuracy["float32"]) <= 0.001
    assert len(files["int8"]) <= 0.27 * len(files["float32"])
    print(f"MNIST MLP accuracy: {accuracy}; int8/float size "
          f"{len(files['int8']) / len(files['float32']):.3f}")
