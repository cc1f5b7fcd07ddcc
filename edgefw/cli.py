"""The ``edgefw`` command line.

    edgefw demo                       # train the brief's MLP on MNIST, report test accuracy
    edgefw train --model lenet --dataset mnist --epochs 2 --out lenet.npz

Each command lives in its own module under :mod:`edgefw.commands`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edgefw.commands import COMMAND_MODULES
from edgefw.errors import EdgeFWError


def build_parser() -> argparse.ArgumentParser:
    from edgefw import __version__

    parser = argparse.ArgumentParser(
        prog="edgefw",
        description="Train small networks, quantize them, export .onnx/.tflite and run them "
                    "on edge devices.",
    )
    parser.add_argument("--version", action="version", version=f"edgefw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    for name in ("epochs", "batch_size"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    try:
        return args.func(args)
    except EdgeFWError as exc:
        print(f"edgefw: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgefw: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
