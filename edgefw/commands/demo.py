"""``edgefw demo``: from training to the edge in one command.

    edgefw demo                          # the brief's MLP, 5 epochs, MNIST (shipped copy)
    edgefw demo --quick                  # 1 epoch on 10,000 images, 2,000 test images
    edgefw demo --model lenet --epochs 2 --out lenet-demo
    edgefw demo --dataset fashion-mnist --data ~/data/fashion-mnist

Trains, traces, builds float16 / dynamic int8 / static int8 / mixed-precision variants,
exports each to ``.onnx`` and ``.tflite`` (golden data and input contract inside), runs
every file on edgefw's CPU (and GPU) provider, onnxruntime and the TFLite interpreter, and
prints one table: accuracy, delta vs float, agreement between runtimes, file size,
latency. The report folder (``--out``, default ``edgefw-demo``) receives report.md,
report.json, chart.png (with matplotlib), the checkpoint and the model files. See
:mod:`edgefw.demo.pipeline`.
"""

from __future__ import annotations

import argparse

from edgefw.demo.pipeline import DATASETS, MODELS


def cmd_demo(args: argparse.Namespace) -> int:
    from edgefw.commands.verify import parse_runtimes
    from edgefw.demo.pipeline import DemoSettings, run_demo

    epochs = args.epochs if args.epochs is not None else (1 if args.quick else 5)
    settings = DemoSettings(model=args.model, dataset=args.dataset, data=args.data,
                            epochs=epochs, out=args.out, quick=args.quick, seed=args.seed,
                            train_limit=args.limit, test_limit=args.test_limit,
                            runtimes=tuple(parse_runtimes(args.runtimes) or ()) or None,
                            verbose=args.verbose)
    report = run_demo(settings)
    print()
    print(report.title)
    for key, value in report.facts.items():
        print(f"  {key}: {value}")
    print()
    print(report.table())
    print()
    for note in report.notes:
        if note.startswith("edgefw gpu on ") and " on cpu" not in note:
            continue  # all nodes on the GPU: the report says so, the terminal need not
        print(f"note: {note}")
    for name, what in report.runtimes.items():
        print(f"{name}: {what}")
    print()
    files = ", ".join(report.files[k] for k in ("markdown", "json", "chart") if k in report.files)
    print(f"report: {files}")
    print(f"models: {report.files['models']} (check one anywhere with: edgefw verify "
          f"{report.files['models']}/{settings.model}_int8.tflite)")
    print(f"total {report.timings['total']:.0f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo", help="train, quantize, export .onnx/.tflite and compare every runtime, in one "
                     "command")
    demo.add_argument("--model", choices=MODELS, default="mlp",
                      help="mlp: the brief's Keras-style MLP (default); lenet, mobilenet: the "
                           "zoo's CNNs")
    demo.add_argument("--dataset", choices=DATASETS, default="mnist")
    demo.add_argument("--data", metavar="PATH",
                      help="folder with the dataset's IDX .gz files (default: the shipped "
                           "MNIST; Fashion-MNIST needs it)")
    demo.add_argument("--epochs", type=int, help="training epochs (default 5; 1 with --quick)")
    demo.add_argument("--out", default="edgefw-demo", metavar="DIR",
                      help="report folder (default ./edgefw-demo)")
    demo.add_argument("--quick", action="store_true",
                      help="a fast look: 1 epoch on 10,000 images, 2,000 test images")
    demo.add_argument("--limit", type=int, metavar="N", help="train on the first N images")
    demo.add_argument("--test-limit", type=int, metavar="N",
                      help="evaluate on the first N test images")
    demo.add_argument("--runtimes", metavar="LIST",
                      help="comma-separated subset of cpu,gpu,onnxruntime,tflite")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                      help="training progress: 0 silent, 1 progress bar, 2 one line per epoch")
    demo.set_defaults(func=cmd_demo)
