"""Training benchmark: the brief's MLP (5 epochs) and LeNet-5 (2 epochs) on MNIST.

Prints test accuracy and seconds per epoch for edgefw and, when PyTorch is installed
(``pip install torch==2.13.0``, the CPU build), for the same models in PyTorch in the same
run with the same thread count, with the time ratio. Also the peak memory (max RSS) of the
MLP run, measured in a child process so each figure is its own.

    python benchmarks/train_mnist.py [--threads 2] [--mlp-epochs 5] [--lenet-epochs 2]

Setup as in the brief: pixels / 255, Adam(lr=1e-3), batch 32, shuffled each epoch,
PyTorch-default initialisation, cross-entropy on logits.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def _data(model: str):
    import numpy as np

    from edgefw import datasets

    (x_train, y_train), (x_test, y_test) = datasets.load_mnist()
    x_train = (x_train.astype(np.float32) / 255.0)[:, None]
    x_test = (x_test.astype(np.float32) / 255.0)[:, None]
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def run_edgefw(model_name: str, epochs: int, seed: int) -> dict:
    import numpy as np

    import edgefw
    from edgefw import models, nn, optim

    edgefw.manual_seed(seed)
    x_train, y_train, x_test, y_test = _data(model_name)
    model = models.build(model_name)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    n, bs = len(x_train), 32
    result = {"framework": "edgefw", "model": model_name, "epochs": []}
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        order = rng.permutation(n)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            opt.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - t0
        model.eval()
        correct = 0
        with edgefw.no_grad():
            for i in range(0, len(x_test), 1000):
                pred = model(x_test[i:i + 1000]).data.argmax(1)
                correct += int((pred == y_test[i:i + 1000]).sum())
        result["epochs"].append({"seconds": seconds, "accuracy": correct / len(x_test)})
    return result


def run_torch(model_name: str, epochs: int, seed: int, threads: int) -> dict:
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = _data(model_name)
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
    if model_name == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    n, bs = len(x_train), 32
    result = {"framework": "pytorch", "model": model_name, "epochs": []}
    for _ in range(epochs):
        model.train()
        t0 = time.perf_counter()
        order = torch.from_numpy(rng.permutation(n))
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            opt.zero_grad()
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            correct = int((model(x_test).argmax(1) == y_test).sum())
        result["epochs"].append({"seconds": seconds, "accuracy": correct / len(x_test)})
    return result


def _child(args: argparse.Namespace) -> None:
    _set_threads(args.threads)
    if args.child_framework == "edgefw":
        result = run_edgefw(args.child_model, args.child_epochs, args.seed)
    else:
        result = run_torch(args.child_model, args.child_epochs, args.seed, args.threads)
    result["max_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def _spawn(framework: str, model: str, epochs: int, args: argparse.Namespace) -> dict | None:
    cmd = [sys.executable, __file__, "--child-framework", framework, "--child-model", model,
           "--child-epochs", str(epochs), "--threads", str(args.threads), "--seed",
           str(args.seed)]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    print(f"{framework} {model} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
    return None


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mlp-epochs", type=int, default=5)
    parser.add_argument("--lenet-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child-framework", help=argparse.SUPPRESS)
    parser.add_argument("--child-model", help=argparse.SUPPRESS)
    parser.add_argument("--child-epochs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_framework:
        _child(args)
        return
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
        print("PyTorch not installed: edgefw only (pip install torch==2.13.0 to compare)")

    rows = []
    for model, epochs in (("mlp", args.mlp_epochs), ("lenet", args.lenet_epochs)):
        ours = _spawn("edgefw", model, epochs, args)
        ref = _spawn("pytorch", model, epochs, args) if have_torch else None
        rows.append((model, ours, ref))

    print(f"\nMNIST training, batch 32, Adam 1e-3, {args.threads} threads")
    print("| model | epoch | edgefw acc | edgefw s/epoch | PyTorch acc | PyTorch s/epoch | "
          "time ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for model, ours, ref in rows:
        if ours is None:
            continue
        for i, ep in enumerate(ours["epochs"]):
            r = ref["epochs"][i] if ref else None
            ratio = f"{ep['seconds'] / r['seconds']:.2f}x" if r else "-"
            print(f"| {model} | {i + 1} | {ep['accuracy'] * 100:.2f}% | {ep['seconds']:.2f} | "
                  + (f"{r['accuracy'] * 100:.2f}% | {r['seconds']:.2f} | " if r else "- | - | ")
                  + f"{ratio} |")
    print()
    for model, ours, ref in rows:
        if ours is None:
            continue
        med = _median([e["seconds"] for e in ours["epochs"]])
        line = (f"{model}: final accuracy {ours['epochs'][-1]['accuracy'] * 100:.2f}%, "
                f"median epoch {med:.2f} s, peak RSS {ours['max_rss_mib']:.0f} MiB")
        if ref:
            rmed = _median([e["seconds"] for e in ref["epochs"]])
            line += (f"; PyTorch {ref['epochs'][-1]['accuracy'] * 100:.2f}%, median epoch "
                     f"{rmed:.2f} s, peak RSS {ref['max_rss_mib']:.0f} MiB; "
                     f"median time ratio {med / rmed:.2f}x")
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps([r for r in rows], indent=1, default=str))


if __name__ == "__main__":
    main()
