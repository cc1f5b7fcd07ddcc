"""``edgefw verify MODEL``: does this file, on every runtime here, still compute what it
computed where it was exported?

    edgefw verify edgefw-demo/models/mlp_int8.tflite
    edgefw verify mlp.onnx --runtimes cpu,onnxruntime --json report.json

The golden inputs, the float reference outputs and the file's expected outputs are bundled
in its metadata at export (``edgefw demo``, :func:`edgefw.demo.artifacts.export_with_golden`).
Each runtime present — edgefw's CPU and GPU providers, onnxruntime for ``.onnx``, LiteRT's
TFLite interpreter for ``.tflite`` — runs the golden inputs; the command prints per-output
max error and argmax agreement and exits 1 when a runtime is beyond tolerance or cannot
run the file (0 when all agree; 2 for a file without golden data or another edgefw
error). Tolerances: float files ``1e-4 * max(1, max|expected|)``; quantized files 3
quantization steps of the output (``--tolerance-steps``); see docs/deploy.md.
"""

from __future__ import annotations

import argparse
import json

from edgefw.errors import ConfigError

#: ``--runtimes`` short names -> runner names.
RUNTIME_NAMES = {"cpu": "edgefw cpu", "gpu": "edgefw gpu", "onnxruntime": "onnxruntime",
                 "tflite": "TFLite interpreter"}


def parse_runtimes(text: str | None) -> list[str] | None:
    """``"cpu,tflite"`` -> runner names; None for all."""
    if text is None:
        return None
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in RUNTIME_NAMES]
    if unknown or not names:
        raise ConfigError(f"--runtimes: unknown runtime(s) {unknown or text!r}; choose from "
                          f"{', '.join(RUNTIME_NAMES)}")
    return [RUNTIME_NAMES[n] for n in names]


def cmd_verify(args: argparse.Namespace) -> int:
    from edgefw.demo.verification import format_report, verify_model
    from edgefw.fileio import atomic_write

    report = verify_model(args.model, parse_runtimes(args.runtimes),
                          tolerance_steps=args.tolerance_steps, atol=args.atol)
    print(format_report(report))
    if args.json:
        with atomic_write(args.json, "w") as f:
            f.write(json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if report.passed else 1


def register(sub: argparse._SubParsersAction) -> None:
    verify = sub.add_parser("verify", help="check a model file against its bundled golden data "
                                           "on every runtime present")
    verify.add_argument("model", help=".onnx or .tflite file exported with golden data")
    verify.add_argument("--runtimes", metavar="LIST",
                        help="comma-separated subset of cpu,gpu,onnxruntime,tflite "
                             "(default: every runtime that runs the format)")
    verify.add_argument("--tolerance-steps", type=int, metavar="N",
                        help="quantized files: allow N output quantization steps (default: "
                             "what the file records, 3)")
    verify.add_argument("--atol", type=float, metavar="X",
                        help="replace every tolerance by this max absolute error")
    verify.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    verify.set_defaults(func=cmd_verify)
