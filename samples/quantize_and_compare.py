"""What does int8 cost? Quantize a trained LeNet-5 every way and compare, with a chart.

    python samples/quantize_and_compare.py   # ~2-4 min on 2 cores; writes quantize-compare/
    pip install 'edgefw[plot]'               # for comparison.png (matplotlib)

`quantize.compare` builds float32, float16, dynamic int8, static int8 per tensor and per
channel and mixed-precision variants, and measures each the same way: accuracy and its
delta vs float, top-1 agreement with float, ONNX file size, latency on edgefw's CPU
provider, and whether onnxruntime agrees with edgefw on the exported file. The per-layer
report then shows where int8 loses precision, worst layer first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import edgefw
import quantize
from edgefw import models, nn, optim

OUT = Path("quantize-compare")

(x_train, y_train), (x_test, y_test) = edgefw.datasets.load_mnist()
x_train = (x_train / 255.0).astype(np.float32)[:, None]  # (N, 1, 28, 28)
x_test = (x_test / 255.0).astype(np.float32)[:, None]

edgefw.manual_seed(0)
model = models.build("lenet")
model.compile(optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss(),
              metrics=["accuracy"])
model.fit(x_train, y_train.astype(np.int64), epochs=1, batch_size=32, seed=0)

# Calibrate on training images; score mixed precision on held-back training images, so the
# test set is only ever used to report.
report = quantize.compare(model, (x_test, y_test), calibration_data=x_train[:512],
                          mixed_eval_data=(x_train[-2000:], y_train[-2000:]),
                          output_dir=OUT, name="LeNet-5 on MNIST")
print(report.table())
for kind, path in report.files.items():
    print(f"{kind}: {path}")
if "chart" not in report.files:
    print("no chart: install matplotlib (pip install 'edgefw[plot]')")

# Where does int8 lose precision? Per layer, worst first (SQNR: ~6 dB per bit).
graph = edgefw.trace(model, x_test[:1])
int8 = quantize.quantize_static(graph, x_train[:512], per_channel=True)
layers = quantize.layer_report(graph, int8, x_test[:512])
for row in layers.worst(3):
    print(f"{row.layer:<16} {row.op_type:<8} SQNR {row.sqnr_db:6.1f} dB  "
          f"max |error| {row.max_abs_error:.4f}")
