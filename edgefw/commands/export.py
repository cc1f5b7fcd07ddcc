"""``edgefw export``: a checkpoint -> a deployable model file.

    edgefw export mlp.npz --format onnx --out mlp.onnx
    edgefw export weights.npz --model lenet --format onnx --out lenet.onnx --opset 13
    edgefw export lenet.npz --format tflite --quantize int8 --calibration 200

Without ``--model`` the checkpoint rebuilds its own architecture (zoo models and edgefw
layers); with it the zoo architecture is built and the checkpoint's weights are loaded into
it (shapes must match). Image models are exported for (batch, 1, 28, 28) float32 input with
a symbolic batch, and carry the metadata a deployment needs: layout NCHW, scale 1/255 and
the class labels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgefw.demo.artifacts import export_with_golden
from edgefw.errors import ExportError

MODELS = ("mlp", "lenet", "mobilenet")
FORMATS = ("onnx", "tflite")
IMAGE_SHAPE = (1, 28, 28)
DIGITS = [str(d) for d in range(10)]


def _load_model(checkpoint: str, architecture: str | None):
    import edgefw
    from edgefw import models

    if architecture is None:
        return edgefw.load(checkpoint, restore_rng=False)
    return edgefw.load(checkpoint, model=models.build(architecture), restore_rng=False)


def cmd_export(args: argparse.Namespace) -> int:
    if args.format != "tflite" and (args.quantize or args.int8_io):
        raise ExportError("--quantize and --int8-io apply to --format tflite (ONNX "
                          "quantization: see `edgefw compare` and quantize/)")
    from edgefw import models

    model = _load_model(args.checkpoint, args.model)
    name = args.model or model.__dict__.get("_zoo_spec", {}).get("name")
    sample_shape = models.INPUT_SHAPES.get(name, IMAGE_SHAPE)
    metadata: dict = {"model": name} if name else {}
    if sample_shape == IMAGE_SHAPE:
        labels = [s.strip() for s in args.class_labels.split(",")] if args.class_labels \
            else DIGITS
        metadata.update(input_layout="NCHW", normalization={"scale": 1.0 / 255.0},
                        class_labels=labels)
    if args.format == "tflite":
        return _export_tflite(args, model, name, tuple(sample_shape), metadata)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".onnx")

    import onnx

    opset = {} if args.opset is None else {"opset": args.opset}
    graph, golden = _trace_with_golden(model, tuple(sample_shape), args.dataset)
    export_with_golden(graph, out, golden_inputs=[golden], metadata=metadata, fmt="onnx",
                       optimize=args.optimize, **opset)
    proto = onnx.load(str(out))
    print(f"exported {name or type(model).__name__} to {out}: ONNX opset "
          f"{proto.opset_import[0].version}, {len(proto.graph.node)} nodes, "
          f"{out.stat().st_size / 1024:.1f} KiB (with golden data: `edgefw verify {out}`)")
    return 0


def _trace_with_golden(model, sample_shape: tuple[int, ...], dataset: str):
    """The traced graph and a few golden inputs for ``edgefw verify``: test images for the
    image models, seeded random inputs otherwise."""
    import edgefw

    graph = edgefw.trace(model, np.zeros((1,) + sample_shape, np.float32))
    if sample_shape == IMAGE_SHAPE:
        _, (images, _) = _dataset_loader(dataset)()
        golden = (images[:4].astype(np.float32) / 255.0).reshape((4,) + IMAGE_SHAPE)
    else:
        golden = np.random.default_rng(0).standard_normal((2,) + sample_shape)
    return graph, golden.astype(np.float32)


def _dataset_loader(dataset: str):
    from edgefw import datasets

    return datasets.load_fashion_mnist if dataset == "fashion-mnist" else datasets.load_mnist


def _export_tflite(args: argparse.Namespace, model, name: str | None,
                   sample_shape: tuple[int, ...], metadata: dict) -> int:
    """The ``--format tflite`` branch: NHWC image input; int8 calibrates on the first
    ``--calibration`` training images of ``--dataset``."""
    metadata.pop("input_layout", None)  # the .tflite exporter records the layout it wrote
    calibration = None
    if args.quantize == "int8":
        if sample_shape != IMAGE_SHAPE:
            raise ExportError("--quantize int8 calibrates on MNIST images; this model takes "
                              f"{sample_shape} input")
        (images, _), _ = _dataset_loader(args.dataset)()
        count = max(1, min(args.calibration, len(images)))
        calibration = (images[:count].astype(np.float32) / 255.0).reshape((count,) + IMAGE_SHAPE)
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".tflite")
    graph, golden = _trace_with_golden(model, sample_shape, args.dataset)
    export_with_golden(graph, out, golden_inputs=[golden], metadata=metadata, fmt="tflite",
                       quantize=args.quantize, calibration_data=calibration,
                       int8_io=args.int8_io, optimize=args.optimize)
    what = args.quantize or "float32"
    print(f"exported {name or type(model).__name__} to {out}: TFLite ({what}"
          f"{', int8 input/output' if args.int8_io else ''}), "
          f"{out.stat().st_size / 1024:.1f} KiB (with golden data: `edgefw verify {out}`)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    # exporter (and onnx) are imported only when the command runs: `edgefw --help` and the
    # other commands must not need them.
    export = sub.add_parser("export", help="export a checkpoint as .onnx or .tflite")
    export.add_argument("checkpoint", help="checkpoint file (.npz) written by edgefw")
    export.add_argument("--model", choices=MODELS,
                        help="architecture to load the weights into (default: the one the "
                             "checkpoint records)")
    export.add_argument("--format", choices=FORMATS, default="onnx")
    export.add_argument("--out", help="file to write (default: the checkpoint's name, .onnx "
                                      "or .tflite)")
    export.add_argument("--opset", type=int, metavar="N",
                        help="ONNX opset, 13..21 (default: the exporter's, 17)")
    export.add_argument("--optimize", choices=("none", "basic", "all"), default="all",
                        help="graph optimizations applied before writing (default all)")
    export.add_argument("--quantize", choices=("float16", "dynamic", "int8"),
                        help="TFLite: float16 weights, dynamic-range int8 weights or full "
                             "int8 (calibrated on --calibration training images)")
    export.add_argument("--calibration", type=int, default=100, metavar="N",
                        help="TFLite int8: number of calibration images (default 100)")
    export.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist",
                        help="TFLite int8: where the calibration images come from")
    export.add_argument("--int8-io", action="store_true",
                        help="TFLite int8: int8 input and output tensors")
    export.add_argument("--class-labels",
                        help="comma-separated class names for the metadata (default 0..9)")
    export.set_defaults(func=cmd_export)
