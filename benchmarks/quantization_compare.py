"""QAT and the full comparison table (``quantize.compare``) on the 10k-image MNIST test set:
float32, float16, dynamic int8, static int8 per-tensor / per-channel, mixed precision and
QAT, with accuracy, delta vs float, top-1 agreement, ONNX size, CPU latency (batch 1 and
256) and onnxruntime agreement — then the issue's targets, checked.

The float models are the ones ``benchmarks/quantization.py`` trains (same cache, same
seed, 5,000 training images held out). QAT starts from each float model: ``prepare_qat``,
then one epoch of ``fit`` on the training images at a tenth of Adam's default learning
rate (1e-4), batch 32; the fine-tuned model is cached too (``quantize.save_qat``).

    python benchmarks/quantization_compare.py [--models mlp,lenet,mobilenet]
        [--cache /tmp/edgefw-quant-bench] [--out /tmp/edgefw-compare] [--calibration 1000]
        [--runs-b1 50] [--runs-b256 15] [--threads N]

Targets: QAT within 0.05 pp of float (never more than 0.05 pp below); int8 ONNX file
<= 0.27x the float file for the MLP; int8 runtime latency <= 1.0x float at batch 256 on
LeNet and the MobileNet-style net.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quantization import HOLDOUT, load_dataset, trained_model  # noqa: E402

import edgefw  # noqa: E402
import quantize  # noqa: E402
from edgefw import nn  # noqa: E402

QAT_LR = 1e-4
QAT_EPOCHS = 1
MIXED_EVAL = 2000  # held-out training images that score the mixed-precision search
QAT_TARGET_PP = 0.05
SIZE_TARGET = {"mlp": 0.27}
LATENCY_TARGET = {"lenet": 1.0, "mobilenet": 1.0}


def qat_model(bench: str, model, x_fit: np.ndarray, y_fit: np.ndarray, cache: Path, seed: int):
    path = cache / f"{bench}-qat-e{QAT_EPOCHS}-lr{QAT_LR:g}-s{seed}.npz"
    if path.exists():
        print(f"[{bench}] loading {path}", flush=True)
        return quantize.load_qat(path)
    edgefw.manual_seed(seed)
    qat = quantize.prepare_qat(model)
    qat.compile(edgefw.optim.Adam(list(qat.parameters()), lr=QAT_LR), nn.CrossEntropyLoss())
    start = time.perf_counter()
    qat.fit(x_fit, y_fit, epochs=QAT_EPOCHS, batch_size=32, seed=seed, verbose=0)
    print(f"[{bench}] QAT fine-tuned {QAT_EPOCHS} epoch in {time.perf_counter() - start:.0f} s",
          flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    quantize.save_qat(qat, path)
    return qat


def run(bench: str, args) -> dict:
    xtr, ytr, xte, yte = load_dataset("mnist")
    x_fit, y_fit = xtr[:-HOLDOUT], ytr[:-HOLDOUT]
    x_val, y_val = xtr[-HOLDOUT:][:MIXED_EVAL], ytr[-HOLDOUT:][:MIXED_EVAL]
    model = trained_model(bench, x_fit, y_fit, Path(args.cache), args.seed)
    qat = qat_model(bench, model, x_fit, y_fit, Path(args.cache), args.seed)
    rng = np.random.default_rng(args.seed)
    calibration = x_fit[rng.choice(len(x_fit), args.calibration, replace=False)]
    start = time.perf_counter()
    report = quantize.compare(model, (xte, yte), calibration_data=calibration, qat_model=qat,
                              output_dir=Path(args.out) / bench, mixed_eval_data=(x_val, y_val),
                              mixed_max_drop=0.001, name=bench,
                              latency_runs=(args.runs_b1, args.runs_b256))
    print(f"[{bench}] compared in {time.perf_counter() - start:.0f} s\n", flush=True)
    print(report.to_markdown(), flush=True)
    return check_targets(bench, report)


def check_targets(bench: str, report) -> dict:
    float_row = report.row("float32")
    results = {"model": bench}
    qat = report.row("qat")
    results["qat_delta_pp"] = qat.delta_pp
    results["qat_target_met"] = qat.delta_pp is not None and qat.delta_pp >= -QAT_TARGET_PP
    int8 = report.row("int8_per_channel")
    results["int8_size_ratio"] = int8.size_ratio
    if bench in SIZE_TARGET:
        results["size_target_met"] = int8.size_ratio <= SIZE_TARGET[bench]
    if int8.latency_batch_ms and float_row.latency_batch_ms:
        ratio = int8.latency_batch_ms / float_row.latency_batch_ms
        results["int8_latency_ratio_b256"] = ratio
        results["qat_latency_ratio_b256"] = qat.latency_batch_ms / float_row.latency_batch_ms
        if bench in LATENCY_TARGET:
            results["latency_target_met"] = ratio <= LATENCY_TARGET[bench]
    results["ort_agrees"] = all(r.ort_agrees for r in report.rows if r.error is None)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="mlp,lenet,mobilenet")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir())
                                               / "edgefw-quant-bench"))
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "edgefw-compare"))
    parser.add_argument("--calibration", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-b1", type=int, default=50, help="timed runs at batch 1")
    parser.add_argument("--runs-b256", type=int, default=15, help="timed runs at batch 256")
    parser.add_argument("--threads", type=int, default=None,
                        help="edgefw.set_num_threads(N) before measuring (default: the BLAS "
                             "default, usually the core count)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        edgefw.set_num_threads(args.threads)
    print(f"threads: {edgefw.get_num_threads()}", flush=True)
    summary = [run(bench, args) for bench in args.models.split(",") if bench]
    print("targets:")
    for row in summary:
        print("  " + json.dumps(row))


if __name__ == "__main__":
    main()
