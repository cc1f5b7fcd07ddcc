"""Quantization benchmark: what each quantization mode costs in accuracy on the 10k-image
MNIST test set (MLP, LeNet-5, MobileNet-style) and Fashion-MNIST (LeNet-5).

Each model is trained briefly with edgefw's Keras-style API (``compile``/``fit``; MLP 5
epochs, LeNet 2, MobileNet 3, Adam, batch 32) or loaded from the cache folder, traced, and
quantized every way; every variant runs in edgefw's runtime (CPU provider) on the test set.
Printed per variant: accuracy, delta against float in percentage points, top-1 agreement
with float, ONNX file size (when the exporter is importable) and, with ``--latency``,
runtime latency at batch 256.

    python benchmarks/quantization.py [--models mlp,lenet,mobilenet,fashion-lenet]
        [--cache /tmp/edgefw-quant-bench] [--calibration 1000] [--json results.json]
        [--latency] [--mixed-precision]

Calibration uses ``--calibration`` training images (not test images); the mixed-precision
search scores candidates on 5,000 held-out training images, never on the test set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edgefw  # noqa: E402
import quantize  # noqa: E402
from edgefw import datasets, models, nn  # noqa: E402
from runtime import InferenceSession  # noqa: E402

EPOCHS = {"mlp": 5, "lenet": 2, "mobilenet": 3}
#: name -> (zoo model, dataset)
BENCHMARKS = {"mlp": ("mlp", "mnist"), "lenet": ("lenet", "mnist"),
              "mobilenet": ("mobilenet", "mnist"), "fashion-lenet": ("lenet", "fashion-mnist")}
TARGETS_PP = {"mlp": 0.1, "lenet": 0.1, "mobilenet": 0.1, "fashion-lenet": 0.3}
HOLDOUT = 5000  # training images held out from training for the mixed-precision search
EVAL_BATCH = 1000


def _data_folder() -> Path:
    env = os.environ.get(datasets.DATA_ENV_VAR)
    return Path(env) if env else ROOT.parent / "shared" / "data"


def load_dataset(name: str) -> tuple[np.ndarray, ...]:
    folder = _data_folder()
    if name == "mnist":
        path = folder / "mnist"
        (xtr, ytr), (xte, yte) = datasets.load_mnist(path if path.is_dir() else None)
    else:
        (xtr, ytr), (xte, yte) = datasets.load_fashion_mnist(folder / "fashion-mnist")
    xtr = (xtr.astype(np.float32) / 255.0)[:, None]
    xte = (xte.astype(np.float32) / 255.0)[:, None]
    return xtr, ytr.astype(np.int64), xte, yte.astype(np.int64)


def trained_model(bench: str, xtr: np.ndarray, ytr: np.ndarray, cache: Path, seed: int):
    zoo_name, _ = BENCHMARKS[bench]
    path = cache / f"{bench}-e{EPOCHS[zoo_name]}-s{seed}.npz"
    if path.exists():
        print(f"[{bench}] loading {path}", flush=True)
        return edgefw.load(path)
    edgefw.manual_seed(seed)
    model = models.build(zoo_name)
    model.compile(optimizer="adam", loss=nn.CrossEntropyLoss(), metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(xtr, ytr, epochs=EPOCHS[zoo_name], batch_size=32, seed=seed, verbose=0)
    print(f"[{bench}] trained {EPOCHS[zoo_name]} epochs in {time.perf_counter() - start:.0f} s",
          flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    edgefw.save(model, path)
    return model


def predict(graph, x: np.ndarray) -> np.ndarray:
    session = InferenceSession(graph)
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + EVAL_BATCH]})[0]
                           for i in range(0, len(x), EVAL_BATCH)])


# ---------------------------------------------------------------- hooks (file size, latency)
def onnx_size(graph) -> int | None:
    """Bytes of the graph written as ONNX, or None while the exporter is not available.
    Written without optimization, so the file holds the QDQ graph as quantized."""
    try:
        import exporter
    except ImportError:
        return None
    try:
        model = exporter.to_onnx(graph, opset=21, optimize="none")
    except Exception as exc:  # noqa: BLE001 - the exporter is in progress; report, go on
        print(f"  (ONNX export failed: {type(exc).__name__}: {str(exc)[:120]})")
        return None
    return len(model.SerializeToString())


def latency_ms(graph, x: np.ndarray, batch: int = 256, repeats: int = 10) -> float:
    """Median runtime latency at ``batch`` on the CPU provider (optimization "all": QDQ
    groups run on the integer kernels where the QDQ-fusion pass selects them)."""
    session = InferenceSession(graph)
    name = session.get_inputs()[0].name
    feed = {name: x[:batch]}
    session.run(None, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


# ---------------------------------------------------------------------------- variants
def variants(graph, calibration: np.ndarray, args) -> list[tuple[str, object]]:
    # The float rows start where the quantizer starts (BatchNorm folded, activations fused),
    # so file sizes compare like with like.
    base = quantize.prepare(graph)
    out = [("float32", base),
           ("float16 (weights)", quantize.convert_float16(base)),
           ("float16 (compute)", quantize.convert_float16(base, compute="float16")),
           ("dynamic int8", quantize.quantize_dynamic(graph)),
           ("static int8 per-tensor", quantize.quantize_static(graph, calibration,
                                                               per_channel=False)),
           ("static int8 per-channel", quantize.quantize_static(graph, calibration))]
    for method in args.methods:
        if method != "minmax":
            out.append((f"static int8 per-channel {method}",
                        quantize.quantize_static(graph, calibration, method=method)))
    out.append(("static uint8 per-channel", quantize.quantize_static(
        graph, calibration, activation_dtype="uint8")))
    out.append(("16x8 per-channel", quantize.quantize_16x8(graph, calibration)))
    return out


def run_benchmark(bench: str, args) -> list[dict]:
    zoo_name, dataset = BENCHMARKS[bench]
    xtr, ytr, xte, yte = load_dataset(dataset)
    x_fit, y_fit = xtr[:-HOLDOUT], ytr[:-HOLDOUT]
    x_val, y_val = xtr[-HOLDOUT:], ytr[-HOLDOUT:]
    model = trained_model(bench, x_fit, y_fit, Path(args.cache), args.seed)
    graph = edgefw.trace(model, xte[:2])
    rng = np.random.default_rng(args.seed)
    calibration = x_fit[rng.choice(len(x_fit), args.calibration, replace=False)]

    start = time.perf_counter()
    graphs = variants(graph, calibration, args)
    print(f"[{bench}] built {len(graphs)} variants in {time.perf_counter() - start:.1f} s",
          flush=True)
    if args.mixed_precision:
        def val_accuracy(g) -> float:
            return float((predict(g, x_val).argmax(1) == y_val).mean())
        start = time.perf_counter()
        mixed = quantize.auto_mixed_precision(graph, calibration, val_accuracy,
                                              max_accuracy_drop=TARGETS_PP[bench] / 100)
        print(f"[{bench}] mixed precision in {time.perf_counter() - start:.1f} s:\n{mixed}")
        graphs.append((f"mixed precision ({len(mixed.kept)} float)", mixed.graph))

    base = graphs[0][1]
    float_pred = predict(base, xte).argmax(1)
    float_acc = 100.0 * float((float_pred == yte).mean())
    float_size = onnx_size(base)
    rows = []
    for name, g in graphs:
        pred = predict(g, xte).argmax(1)
        acc = 100.0 * float((pred == yte).mean())
        size = onnx_size(g)
        row = {"model": bench, "variant": name, "accuracy": acc, "delta_pp": acc - float_acc,
               "agreement": 100.0 * float((pred == float_pred).mean()),
               "onnx_bytes": size,
               "size_ratio": None if size is None or not float_size else size / float_size}
        if args.latency:
            row["latency_ms_b256"] = latency_ms(g, xte)
        rows.append(row)
    if args.report:
        int8 = dict(graphs)["static int8 per-channel"]
        print(quantize.layer_report(graph, int8, calibration))
    return rows


def print_table(rows: list[dict]) -> None:
    cols = ["model", "variant", "accuracy %", "delta pp", "agreement %", "ONNX KiB",
            "size x"]
    if any("latency_ms_b256" in r for r in rows):
        cols.append("ms @256")
    table = []
    for r in rows:
        cells = [r["model"], r["variant"], f"{r['accuracy']:.2f}", f"{r['delta_pp']:+.2f}",
                 f"{r['agreement']:.2f}",
                 "n/a" if r["onnx_bytes"] is None else f"{r['onnx_bytes'] / 1024:.1f}",
                 "n/a" if r["size_ratio"] is None else f"{r['size_ratio']:.2f}"]
        if "ms @256" in cols:
            cells.append(f"{r.get('latency_ms_b256', float('nan')):.1f}")
        table.append(cells)
    widths = [max(len(c[i]) for c in [cols] + table) for i in range(len(cols))]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mlp,lenet,mobilenet,fashion-lenet")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir())
                                               / "edgefw-quant-bench"))
    parser.add_argument("--calibration", type=int, default=1000)
    parser.add_argument("--methods", default="minmax,percentile,entropy,mse")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    parser.add_argument("--latency", action="store_true", help="measure latency at batch 256")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="also run auto_mixed_precision (budget = the issue's target)")
    parser.add_argument("--report", action="store_true", help="print the per-layer report")
    args = parser.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    rows = []
    for bench in [m for m in args.models.split(",") if m]:
        if bench not in BENCHMARKS:
            parser.error(f"unknown model {bench!r}; choose from {', '.join(BENCHMARKS)}")
        rows += run_benchmark(bench, args)
        print_table([r for r in rows if r["model"] == bench])
        print(flush=True)
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
