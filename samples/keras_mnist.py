"""The brief's Keras-style MNIST workflow with edgefw, then to the edge.

    python samples/keras_mnist.py            # ~1-2 min on 2 cores; writes keras-mnist/

Train the MLP exactly as in Keras, save a checkpoint, then trace it, quantize it to int8,
export `.tflite` and `.onnx` files that carry their input contract and golden data, and run
the int8 file with edgefw's runtime — the same way `samples/raspberry_pi/classify.py` runs
it on a device. Check any exported file later with `edgefw verify FILE`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import edgefw
import quantize
import runtime
from edgefw import nn
from edgefw.demo.artifacts import export_with_golden
from runtime.preprocess import InputContract, prepare_images

OUT = Path("keras-mnist")

# --- The brief's Keras workflow, line by line -------------------------------------------
(x_train, y_train), (x_test, y_test) = edgefw.datasets.load_mnist()
raw_test = x_test  # uint8 images, kept to show the deployment path below
x_train, x_test = x_train / 255.0, x_test / 255.0

model = nn.Sequential([
    nn.Flatten(input_shape=(28, 28)),
    nn.Dense(128, activation="relu"),
    nn.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.summary()
history = model.fit(x_train, y_train, epochs=5, batch_size=32,
                    validation_data=(x_test, y_test),
                    callbacks=[edgefw.callbacks.EarlyStopping(patience=2)])
model.evaluate(x_test, y_test, verbose=2)
OUT.mkdir(exist_ok=True)
edgefw.save(model, OUT / "mlp.npz")

# --- To the edge -------------------------------------------------------------------------
float_graph = edgefw.trace(model, np.zeros((1, 28, 28), np.float32))
calibration = x_train[:512].astype(np.float32)
int8_graph = quantize.quantize_static(float_graph, calibration, per_channel=True)

# What a device needs to feed the model, stored in the file: pixels * 1/255, class names.
contract = {"normalization": {"scale": 1 / 255}, "class_labels": [str(d) for d in range(10)]}
golden = [x_test[:8].astype(np.float32)]  # checked by `edgefw verify` on any runtime
for graph, name in ((float_graph, "mlp_float32"), (int8_graph, "mlp_int8")):
    for suffix in (".tflite", ".onnx"):
        path = export_with_golden(graph, OUT / f"{name}{suffix}", golden_inputs=golden,
                                  reference_graph=float_graph, metadata=contract)
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")

# On the device: the runtime (numpy + flatbuffers) and the contract from the file.
session = runtime.InferenceSession(OUT / "mlp_int8.tflite", providers=["cpu"])
model_contract = InputContract.from_session(session)
(probabilities,) = session.run(None, {model_contract.name: prepare_images(raw_test,
                                                                         model_contract)})
accuracy = float(np.mean(probabilities.argmax(1) == y_test))
print(f"int8 .tflite on edgefw's runtime: test accuracy {100 * accuracy:.2f}%")
