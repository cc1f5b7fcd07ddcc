"""CPU inference benchmark: edgefw's runtime on the four reference models.

For the MLP, LeNet-5, the MobileNet-style net and a transformer encoder block it reports
median and p90 latency at batch 1 and throughput at batch 256 for

- the runtime (``runtime.InferenceSession``, CPU provider, optimization "all"),
- the eager edgefw forward (``model(x)`` under ``no_grad``),
- for the MLP, a hand-written numpy forward: the floor for Python-side overhead,

all measured in the same process, interleaved, with the same thread count.

    python benchmarks/runtime_cpu.py [--threads 1] [--repeat 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _set_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def _timings(fn, repeat: int, min_seconds: float = 0.0) -> list[float]:
    fn()  # warm up (allocations, caches)
    times = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _pct(times: list[float], q: float) -> float:
    s = sorted(times)
    return s[min(len(s) - 1, int(q * len(s)))]


def build_models():
    import numpy as np

    import edgefw
    from edgefw import models

    edgefw.manual_seed(0)
    zoo = {
        "mlp": (models.build("mlp"), (1, 28, 28)),
        "lenet": (models.build("lenet"), (1, 28, 28)),
        "mobilenet": (models.build("mobilenet"), (1, 28, 28)),
        "transformer": (models.build("transformer", dim=64, heads=4, hidden=128), (16, 64)),
    }
    for model, _ in zoo.values():
        model.eval()
    return zoo, np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2000, help="batch-1 runs per engine")
    parser.add_argument("--models", default="mlp,lenet,mobilenet,transformer")
    args = parser.parse_args()
    _set_threads(args.threads)

    import edgefw
    import runtime

    zoo, np = build_models()
    rng = np.random.default_rng(0)
    rows = []
    for name in args.models.split(","):
        model, sample = zoo[name]
        graph = edgefw.trace(model, rng.random((1,) + sample, dtype=np.float32))
        session = runtime.InferenceSession(graph, optimization="all")
        engines = {
            "runtime": lambda x, s=session: s.run(None, {"input": x}),
            "eager": lambda x, m=model: _eager(edgefw, m, x),
        }
        if name == "mlp":
            engines["numpy"] = _numpy_mlp(model, np)
        for batch, repeat in ((1, args.repeat), (256, max(20, args.repeat // 50))):
            x = rng.random((batch,) + sample, dtype=np.float32)
            for engine, fn in engines.items():
                times = _timings(lambda f=fn, x=x: f(x), repeat)
                rows.append((name, batch, engine, _pct(times, 0.5), _pct(times, 0.9)))

    print(f"\nCPU inference, {args.threads} thread(s); latency in µs, throughput in "
          "images (or sequences) per second")
    print("| model | engine | batch 1 p50 | batch 1 p90 | batch 256 p50 | batch 256 thr/s |")
    print("|---|---|---:|---:|---:|---:|")
    by_key = {(r[0], r[1], r[2]): r for r in rows}
    for name in args.models.split(","):
        for engine in ("runtime", "eager", "numpy"):
            one, big = by_key.get((name, 1, engine)), by_key.get((name, 256, engine))
            if one is None:
                continue
            print(f"| {name} | {engine} | {one[3] * 1e6:.1f} | {one[4] * 1e6:.1f} | "
                  f"{big[3] * 1e6:.0f} | {256 / big[3]:,.0f} |")
    if "mlp" in args.models.split(","):
        ratio = by_key[("mlp", 1, "runtime")][3] / by_key[("mlp", 1, "numpy")][3]
        print(f"\nMLP batch 1: runtime / hand-written numpy = {ratio:.2f}x (target <= 1.3x)")


def _eager(edgefw, model, x):
    with edgefw.no_grad():
        return model(x)


def _numpy_mlp(model, np):
    """The MLP's forward written by hand in numpy: the floor for Python-side overhead."""
    params = dict(model.named_parameters())
    w1 = np.ascontiguousarray(params["1.weight"].data.T)
    b1 = params["1.bias"].data
    w2 = np.ascontiguousarray(params["3.weight"].data.T)
    b2 = params["3.bias"].data

    def forward(x):
        return np.maximum(x.reshape(len(x), -1) @ w1 + b1, 0) @ w2 + b2

    return forward


if __name__ == "__main__":
    main()
