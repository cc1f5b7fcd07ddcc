"""The brief's PyTorch-style training loop with edgefw, then ONNX out and back in.

    python samples/pytorch_mnist.py          # ~1-2 min on 2 cores; writes pytorch-mnist/

A `Module` with `forward`, a `DataLoader`, `zero_grad` / `backward` / `step` — as in
PyTorch. Then trace the trained net, export it to ONNX with its input contract and golden
data, and check that edgefw's runtime and onnxruntime agree on the test set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import edgefw
import runtime
from edgefw import nn, optim
from edgefw.data import DataLoader, TensorDataset
from edgefw.demo.artifacts import export_with_golden

OUT = Path("pytorch-mnist")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(self.fc1(x.flatten(1)).relu())


# --- The brief's PyTorch loop ------------------------------------------------------------
(x_train, y_train), (x_test, y_test) = edgefw.datasets.load_mnist()
loader = DataLoader(TensorDataset(x_train / 255.0, y_train), batch_size=32, shuffle=True,
                    seed=0)
net, criterion = Net(), nn.CrossEntropyLoss()
optimizer = optim.Adam(net.parameters(), lr=1e-3)
for epoch in range(5):
    running = 0.0
    for inputs, labels in loader:
        optimizer.zero_grad()
        loss = criterion(net(inputs), labels)
        loss.backward()
        optimizer.step()
        running += float(loss.item())
    print(f"epoch {epoch + 1}: mean loss {running / len(loader):.4f}")
OUT.mkdir(exist_ok=True)
edgefw.save(net, OUT / "net.npz", optimizer=optimizer, epoch=epoch)

# --- Evaluate, export, and run the file in two runtimes -----------------------------------
x_eval = (x_test / 255.0).astype(np.float32)[:, None]  # (N, 1, 28, 28): NCHW like PyTorch
with edgefw.no_grad():
    net.eval()
    logits = net(x_eval).numpy()
print(f"test accuracy (trainer): {100 * np.mean(logits.argmax(1) == y_test):.2f}%")

graph = edgefw.trace(net, x_eval[:1])
path = export_with_golden(graph, OUT / "net.onnx", golden_inputs=[x_eval[:8]],
                          metadata={"input_layout": "NCHW", "normalization": {"scale": 1 / 255}})
ours = runtime.InferenceSession(path).run(None, {"input": x_eval})[0]
try:
    import onnxruntime
except ImportError:
    print("onnxruntime is not installed: skipping the comparison")
else:
    theirs = onnxruntime.InferenceSession(str(path)).run(None, {"input": x_eval})[0]
    print(f"{path}: edgefw vs onnxruntime max |difference| {np.abs(ours - theirs).max():.2e}, "
          f"same predictions for {100 * np.mean(ours.argmax(1) == theirs.argmax(1)):.2f}%")
