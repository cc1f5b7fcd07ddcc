"""``edgefw compare``: what each way of shipping a model costs, measured on MNIST or
Fashion-MNIST (:func:`quantize.compare`).

    edgefw compare lenet.npz --data mnist --qat lenet-qat.npz --out lenet-compare
    edgefw compare model.onnx --data fashion-mnist --data-path ../shared/data/fashion-mnist

The model is an edgefw checkpoint (``edgefw.load``) or an ``.onnx`` file (the runtime's
loader). Accuracy is measured on the test split (``--limit`` images); calibration uses
``--calibration`` random training images and the mixed-precision search scores its
candidates on other training images — never on the test images it is judged by.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from edgefw.errors import ConfigError

DATASETS = ("mnist", "fashion-mnist")
MIXED_EVAL_IMAGES = 2000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="accuracy, size and latency of float/float16/int8/mixed/QAT variants",
        description="Quantize a model every way and measure each variant: accuracy, delta vs "
                    "float, top-1 agreement, ONNX size, CPU latency, onnxruntime agreement.")
    p.add_argument("model", metavar="CHECKPOINT_OR_MODEL",
                   help="edgefw checkpoint (.npz) or ONNX model (.onnx)")
    p.add_argument("--data", choices=DATASETS, required=True, help="dataset to evaluate on")
    p.add_argument("--data-path", default=None,
                   help="folder with the dataset's four IDX .gz files (default: shipped MNIST "
                        "or $EDGEFW_DATA/<dataset>)")
    p.add_argument("--qat", default=None, metavar="QAT_CHECKPOINT",
                   help="a QAT checkpoint (quantize.save_qat) to add as a variant")
    p.add_argument("--calibration", type=int, default=1000, metavar="N",
                   help="training images used for calibration (1000)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate on the first N test images (default: all)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default: ./<model name>-compare)")
    p.add_argument("--variants", default=None, metavar="LIST",
                   help="comma-separated subset of float32,float16,dynamic,int8_per_tensor,"
                        "int8_per_channel,mixed")
    p.add_argument("--mixed-budget", type=float, default=0.1, metavar="PP",
                   help="mixed precision: allowed accuracy drop in percentage points (0.1)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration sample (0)")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    import quantize
    from quantize.compare import DEFAULT_VARIANTS

    for flag in ("calibration", "limit"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            raise ConfigError(f"--{flag} must be positive, got {value}")
    if args.mixed_budget < 0:
        raise ConfigError(f"--mixed-budget must be >= 0, got {args.mixed_budget}")
    variants = list(DEFAULT_VARIANTS) if args.variants is None else \
        [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in DEFAULT_VARIANTS]
    if unknown or not variants:
        raise ConfigError(f"--variants: unknown variant(s) {unknown or args.variants!r}; choose "
                          f"from {','.join(DEFAULT_VARIANTS)} (QAT joins with --qat)")
    path = Path(args.model)
    model = _load_model(path)
    qat_model = None
    if args.qat is not None:
        qat_model = quantize.load_qat(args.qat)
    (x_train, y_train), (x_test, y_test) = _load_dataset(args.data, args.data_path)
    if args.limit:
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(x_train))
    calibration = x_train[order[:args.calibration]]
    held_out = order[args.calibration:args.calibration + MIXED_EVAL_IMAGES]
    mixed_eval = (x_train[held_out], y_train[held_out]) if len(held_out) else None
    out = Path(args.out) if args.out else Path(f"{path.stem}-compare")
    print(f"comparing {path.name} on {args.data}: {len(x_test)} test images, "
          f"{len(calibration)} calibration images", flush=True)
    report = quantize.compare(model, (x_test, y_test), calibration_data=calibration,
                              variants=variants, qat_model=qat_model, output_dir=out,
                              mixed_max_drop=args.mixed_budget / 100.0,
                              mixed_eval_data=mixed_eval, latency=not args.no_latency,
                              name=path.stem)
    print(report.to_markdown())
    written = ", ".join(report.files[k] for k in ("markdown", "json", "chart")
                        if k in report.files)
    print(f"report written to {out}: {written}")
    if "chart" not in report.files:
        print("(no chart: install matplotlib, pip install 'edgefw[plot]', for comparison.png)")
    return 0


def _load_model(path: Path) -> Any:
    """An edgefw Module from a checkpoint, or the IR graph of an .onnx/.tflite file."""
    if not path.is_file():
        raise ConfigError(f"model file not found: {path}")
    if path.suffix.lower() in (".onnx", ".tflite"):
        from edgefw.commands.model_io import read_model

        return read_model(path).graph
    import edgefw

    return edgefw.load(path)


def _load_dataset(name: str, path: str | None) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Images as float32 (N, 1, 28, 28) in [0, 1], labels int64."""
    from edgefw import datasets

    loader = datasets.load_mnist if name == "mnist" else datasets.load_fashion_mnist
    (x_train, y_train), (x_test, y_test) = loader(path)

    def images(x: np.ndarray) -> np.ndarray:
        return (x.astype(np.float32) / 255.0)[:, None]

    return ((images(x_train), y_train.astype(np.int64)),
            (images(x_test), y_test.astype(np.int64)))
