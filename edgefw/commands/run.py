"""``edgefw run``: run a model file on ``.npy`` inputs and print its outputs or top-k classes.

    edgefw run mlp.onnx --input digits.npy --top-k 3
    edgefw run model.onnx --input tokens=ids.npy --input mask=mask.npy --output-dir out/

Inputs are checked by the session (names, dtypes, shapes: errors name the input). The
model's class labels (metadata ``class_labels``) name the top-k classes when present.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgefw.errors import ConfigError, InvalidInputError

PREVIEW_OPTIONS = {"precision": 4, "threshold": 24, "edgeitems": 3, "max_line_width": 96,
                   "suppress_small": True}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="run a model (.onnx, .tflite) on .npy inputs; print outputs or top-k classes",
        description="Run a model file on inputs saved with numpy.save and print each output "
                    "(shape, dtype, a preview) or its top-k classes per row.")
    p.add_argument("model", help="model file (.onnx, .tflite)")
    p.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE",
                   help="an input array (.npy); NAME= picks the model input, otherwise files "
                        "fill the inputs in order; a .npz gives inputs by their array names. "
                        "Repeat for several inputs")
    p.add_argument("--output-dir", "-o", type=Path, default=None,
                   help="also save every output as DIR/<output name>.npy")
    p.add_argument("--top-k", "-k", type=int, default=None, metavar="K",
                   help="print the K highest-scoring classes per row instead of the values")
    p.add_argument("--providers", default=None, metavar="LIST",
                   help="execution providers in priority order, comma-separated (default: cpu)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from edgefw.commands import model_io

    if args.top_k is not None and args.top_k <= 0:
        raise ConfigError(f"--top-k must be positive, got {args.top_k}")
    model = model_io.read_model(args.model)
    session = model_io.open_session(model, providers=model_io.parse_providers(args.providers))
    input_names = [i.name for i in session.get_inputs()]
    feed = model_io.read_inputs(args.input, input_names)
    for arg in session.get_inputs():
        if arg.name not in feed:
            raise InvalidInputError(f"missing input {arg.name!r} ({arg.dtype}"
                                    f"{model_io.format_shape(arg.shape)}); give it with "
                                    f"--input {arg.name}=FILE.npy")
    start = time.perf_counter()
    outputs = session.run(None, feed)
    seconds = time.perf_counter() - start
    labels = model_io.class_labels(model.metadata)

    given = ", ".join(f"{n} {a.dtype}{model_io.format_shape(a.shape)}" for n, a in feed.items())
    print(f"{model.path.name}: ran on {given} in {seconds * 1e3:.2f} ms (first run, planning "
          f"included; {', '.join(session.get_providers())})")
    for arg, value in zip(session.get_outputs(), outputs, strict=True):
        head = f"output {arg.name!r}: {value.dtype}{model_io.format_shape(value.shape)}"
        if args.top_k is not None:
            print(format_top_k(head, value, args.top_k, labels))
        else:
            print(format_values(head, value))
    if args.output_dir is not None:
        for arg, value in zip(session.get_outputs(), outputs, strict=True):
            path = args.output_dir / f"{model_io.safe_file_name(arg.name)}.npy"
            model_io.save_array(path, value)
            print(f"saved {arg.name!r} to {path}")
    return 0


def format_values(head: str, value: np.ndarray) -> str:
    """The output's header, summary statistics and a numpy preview, indented.

    >>> print(format_values("y", np.array([[1.0, 2.0]], np.float32)))
    y  min 1  max 2  mean 1.5
      [[1. 2.]]
    """
    lines = [head + _statistics(value)]
    preview = np.array2string(value, **PREVIEW_OPTIONS)
    lines += ["  " + line for line in preview.splitlines()]
    return "\n".join(lines)


def _statistics(value: np.ndarray) -> str:
    if value.size == 0 or not (np.issubdtype(value.dtype, np.number)):
        return ""
    as_float = value.astype(np.float64, copy=False)
    finite = np.isfinite(as_float)
    text = (f"  min {as_float[finite].min():.6g}  max {as_float[finite].max():.6g}  "
            f"mean {as_float[finite].mean():.6g}" if finite.any() else "")
    if not finite.all():
        text += f"  ({int(value.size - finite.sum())} non-finite)"
    return text


def format_top_k(head: str, value: np.ndarray, k: int, labels: Sequence[str] | None) -> str:
    """Top-``k`` classes per row of a ``(classes,)`` or ``(batch, classes)`` output.

    Scores are shown as probabilities: the output itself when each row already is a
    distribution (softmax in the model), else its softmax (the output holds logits). Ties
    go to the lower class index.

    >>> print(format_top_k("y", np.array([[0.1, 0.7, 0.2]]), 2, ["cat", "dog", "emu"]))
    y: top 2 of 3 classes per row (scores: the output, already probabilities)
      row 0: 1 (dog) 0.7000 | 2 (emu) 0.2000
    """
    if value.ndim not in (1, 2) or value.shape[-1] == 0 or \
            not np.issubdtype(value.dtype, np.number):
        return format_values(head + "  (top-k needs a (classes,) or (batch, classes) numeric "
                                    "output; showing values)", value)
    rows = value.reshape(1, -1) if value.ndim == 1 else value
    classes = rows.shape[1]
    k = min(k, classes)
    scores = rows.astype(np.float64)
    is_distribution = bool(np.all((scores >= 0) & (scores <= 1))
                           and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3))
    if is_distribution:
        probs, what = scores, "the output, already probabilities"
    else:
        shifted = scores - np.max(scores, axis=1, keepdims=True)
        exp = np.exp(shifted)
        probs, what = exp / exp.sum(axis=1, keepdims=True), "softmax of the output (logits)"
    note = ""
    if labels is not None and len(labels) != classes:
        note = f"; metadata has {len(labels)} class labels for {classes} classes: not used"
        labels = None
    lines = [f"{head}: top {k} of {classes} classes per row (scores: {what}{note})"]
    # NaN scores sort last: they are never a top class while a number is available.
    order = np.argsort(-np.nan_to_num(probs, nan=-np.inf), axis=1, kind="stable")[:, :k]
    for r, top in enumerate(order):
        picks = []
        for c in top:
            name = f" ({labels[c]})" if labels is not None else ""
            picks.append(f"{c}{name} {probs[r, c]:.4f}")
        lines.append(f"  row {r}: " + " | ".join(picks))
    return "\n".join(lines)


__all__ = ["cmd_run", "format_top_k", "format_values", "register"]
