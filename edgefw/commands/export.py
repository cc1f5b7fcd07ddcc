"""``edgefw export``: a checkpoint -> a deployable model file.

    edgefw export mlp.npz --format onnx --out mlp.onnx
    edgefw export weights.npz --model lenet --format onnx --out lenet.onnx --opset 13

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
    if args.format == "tflite":
        raise ExportError("--format tflite is not supported yet; export with --format onnx "
                          "for now")
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
    out = Path(args.out) if args.out else Path(args.checkpoint).with_suffix(".onnx")

    from exporter import to_onnx

    opset = {} if args.opset is None else {"opset": args.opset}
    proto = to_onnx(model, out, example_inputs=np.zeros((1,) + tuple(sample_shape), np.float32),
                    optimize=args.optimize, metadata=metadata, **opset)
    print(f"exported {name or type(model).__name__} to {out}: ONNX opset "
          f"{proto.opset_import[0].version}, {len(proto.graph.node)} nodes, "
          f"{out.stat().st_size / 1024:.1f} KiB")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    # exporter (and onnx) are imported only when the command runs: `edgefw --help` and the
    # other commands must not need them.
    export = sub.add_parser("export", help="export a checkpoint as .onnx (.tflite later)")
    export.add_argument("checkpoint", help="checkpoint file (.npz) written by edgefw")
    export.add_argument("--model", choices=MODELS,
                        help="architecture to load the weights into (default: the one the "
                             "checkpoint records)")
    export.add_argument("--format", choices=FORMATS, default="onnx")
    export.add_argument("--out", help="file to write (default: the checkpoint's name, .onnx)")
    export.add_argument("--opset", type=int, metavar="N",
                        help="ONNX opset, 13..21 (default: the exporter's, 17)")
    export.add_argument("--optimize", choices=("none", "basic", "all"), default="all",
                        help="graph optimizations applied before writing (default all)")
    export.add_argument("--class-labels",
                        help="comma-separated class names for the metadata (default 0..9)")
    export.set_defaults(func=cmd_export)
