"""``edgefw demo``'s steps: data, training, quantization, export, every runtime, report.

:func:`run_demo` trains a model (the brief's Keras-style MLP by default) on MNIST, traces
it, builds the float16, dynamic int8, static int8 (per channel) and mixed-precision
variants with :mod:`quantize`, exports each to ``.onnx`` and ``.tflite`` with golden data
and the input contract inside (:mod:`edgefw.demo.artifacts`), runs every file on every
runtime present (:mod:`edgefw.demo.runners`) — feeding each the raw test images through
its own contract (:func:`runtime.preprocess.prepare_images`) — and measures accuracy,
agreement between runtimes and batch-1 latency.

The variants are built with the same :mod:`quantize` calls as :func:`quantize.compare`,
which measures graphs on edgefw's CPU provider and onnxruntime only and does not hand its
graphs back; the demo needs the graphs to export each to both formats.

    >>> from edgefw.demo.pipeline import DemoSettings, run_demo
    >>> report = run_demo(DemoSettings(epochs=1, quick=True, out="demo-out"))  # doctest: +SKIP
    >>> print(report.table())                                                 # doctest: +SKIP
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefw.errors import ConfigError, EdgeFWError

if TYPE_CHECKING:  # edgefw.ir is imported when the demo runs, not by `edgefw --help`
    from edgefw.ir import Graph

MODELS = ("mlp", "lenet", "mobilenet")
DATASETS = ("mnist", "fashion-mnist")
#: (name, description), in table order.
VARIANTS = (("float32", "float32"), ("float16", "float16 weights"),
            ("dynamic", "dynamic int8"), ("int8", "static int8 per-channel"),
            ("mixed", "mixed precision"))
FORMATS = ("onnx", "tflite")
EVAL_BATCH = 500
STEPS = 6


@dataclass
class DemoSettings:
    """What the demo does. ``quick``: 10,000 training images, 2,000 test images, shorter
    latency runs (unless ``train_limit``/``test_limit`` say otherwise). ``mixed_max_drop``:
    the mixed-precision budget as a fraction (0.001 = 0.1 pp), scored on held-back
    training images (never the test set). ``runtimes``: a subset of
    :data:`edgefw.demo.runners.RUNTIMES`."""

    model: str = "mlp"
    dataset: str = "mnist"
    data: str | None = None
    epochs: int = 5
    out: str | Path = "edgefw-demo"
    quick: bool = False
    seed: int = 0
    train_limit: int | None = None
    test_limit: int | None = None
    calibration: int = 512
    golden_samples: int = 8
    mixed_max_drop: float = 0.001
    mixed_eval_samples: int = 2000
    runtimes: tuple[str, ...] | None = None
    latency_seconds: float | None = None
    verbose: int = 1

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.dataset not in DATASETS:
            raise ConfigError(f"--dataset must be one of {', '.join(DATASETS)}, got "
                              f"{self.dataset!r}")
        for name in ("epochs", "calibration", "golden_samples", "mixed_eval_samples"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be positive")
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive")
        if self.quick:
            self.train_limit = self.train_limit or 10_000
            self.test_limit = self.test_limit or 2_000
        if self.latency_seconds is None:
            self.latency_seconds = 0.05 if self.quick else 0.25
        self.out = Path(self.out)


@dataclass
class _Variant:
    name: str
    description: str
    graph: Graph | None
    note: str = ""
    error: str | None = None
    files: dict[str, Path] = field(default_factory=dict)
    export_errors: dict[str, str] = field(default_factory=dict)


class Progress:
    """``[3/6] quantize   ...   12.3 s`` lines, flushed as they happen."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}
        self._step_start = self.start
        self._step = ""

    def step(self, index: int, name: str, text: str) -> None:
        self.finish()
        self._step, self._step_start = name, time.perf_counter()
        self.say(f"[{index}/{STEPS}] {name:<9} {text}")

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def detail(self, text: str) -> None:
        self.say(f"          {text}")

    def finish(self) -> None:
        if self._step:
            seconds = time.perf_counter() - self._step_start
            self.marks[self._step] = seconds
            self.detail(f"({seconds:.1f} s)")
            self._step = ""

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


# ----------------------------------------------------------------------- data
def load_data(settings: DemoSettings) -> dict[str, Any]:
    """uint8 images (N, 28, 28) and labels, limited as the settings ask, and class names."""
    from edgefw import datasets

    if settings.dataset == "mnist":
        (x_train, y_train), (x_test, y_test) = datasets.load_mnist(settings.data)
        classes = list(datasets.MNIST_CLASSES)
    else:
        if settings.data is None:
            raise ConfigError("--dataset fashion-mnist needs --data PATH (a folder with the "
                              "four Fashion-MNIST IDX .gz files; edgefw ships only MNIST)")
        (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(settings.data)
        classes = list(datasets.FASHION_MNIST_CLASSES)
    x_train, y_train = x_train[:settings.train_limit], y_train[:settings.train_limit]
    x_test, y_test = x_test[:settings.test_limit], y_test[:settings.test_limit]
    return {"x_train": x_train, "y_train": y_train.astype(np.int64), "x_test": x_test,
            "y_test": y_test.astype(np.int64), "classes": classes}


def model_input(images: np.ndarray, model: str) -> np.ndarray:
    """Training input: the brief's MLP takes (N, 28, 28) in [0, 1], the zoo's CNNs
    (N, 1, 28, 28)."""
    x = images.astype(np.float32) / np.float32(255.0)
    return x if model == "mlp" else x[:, None]


# ------------------------------------------------------------------- training
def build_model(name: str) -> Any:
    """The brief's Keras-style MLP, or a zoo CNN, compiled for training."""
    from edgefw import models, nn, optim

    if name == "mlp":
        model = nn.Sequential([
            nn.Flatten(input_shape=(28, 28)),
            nn.Dense(128, activation="relu"),
            nn.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model
    model = models.build(name)
    model.compile(optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss(),
                  metrics=["accuracy"])
    return model


def train(settings: DemoSettings, data: dict[str, Any], progress: Progress) -> Any:
    import edgefw

    edgefw.manual_seed(settings.seed)
    model = build_model(settings.model)
    x_train = model_input(data["x_train"], settings.model)
    x_test = model_input(data["x_test"], settings.model)
    progress.detail(f"{settings.model}: {model.num_parameters():,} parameters, "
                    f"{settings.epochs} epoch(s) of {len(x_train):,} images, batch 32, Adam")
    model.fit(x_train, data["y_train"], epochs=settings.epochs, batch_size=32,
              validation_data=(x_test, data["y_test"]), verbose=settings.verbose,
              seed=settings.seed)
    loss, accuracy = model.evaluate(x_test, data["y_test"], verbose=0)
    name = "MNIST" if settings.dataset == "mnist" else "Fashion-MNIST"
    progress.detail(f"{name} test accuracy after {settings.epochs} epochs: "
                    f"{100 * accuracy:.2f}% (loss {loss:.4f}), in the trainer")
    return model


# --------------------------------------------------------------- quantization
def build_variants(float_graph: Graph, data: dict[str, Any], settings: DemoSettings,
                   progress: Progress) -> list[_Variant]:
    """float32, float16, dynamic int8, static int8 per channel, mixed precision."""
    import quantize
    from runtime import InferenceSession

    calibration = model_input(data["x_train"][:settings.calibration], settings.model)
    held_back = slice(-min(settings.mixed_eval_samples, len(data["x_train"])), None)
    x_eval = model_input(data["x_train"][held_back], settings.model)
    y_eval = data["y_train"][held_back]
    input_name = float_graph.inputs[0].name

    def accuracy(graph: Graph) -> float:
        session = InferenceSession(graph, providers=["cpu"])
        logits = np.concatenate([session.run(None, {input_name: x_eval[i:i + EVAL_BATCH]})[0]
                                 for i in range(0, len(x_eval), EVAL_BATCH)])
        return float(np.mean(logits.argmax(1) == y_eval))

    builders: dict[str, Callable[[], tuple[Graph, str]]] = {
        "float32": lambda: (float_graph, ""),
        "float16": lambda: (quantize.convert_float16(float_graph), ""),
        "dynamic": lambda: (quantize.quantize_dynamic(float_graph), ""),
        "int8": lambda: (quantize.quantize_static(float_graph, calibration, per_channel=True),
                         f"calibrated on {len(calibration)} training images (min/max)"),
        "mixed": lambda: _mixed(float_graph, calibration, accuracy, settings, len(x_eval)),
    }
    variants = []
    for name, description in VARIANTS:
        try:
            graph, note = builders[name]()
            variants.append(_Variant(name, description, graph, note))
        except EdgeFWError as exc:
            variants.append(_Variant(name, description, None,
                                     error=f"quantization failed: {exc}"))
        v = variants[-1]
        progress.detail(f"{description}: " + (v.error or v.note or "ok"))
    return variants


def _mixed(graph: Graph, calibration: np.ndarray, accuracy: Callable[[Graph], float],
           settings: DemoSettings, eval_count: int) -> tuple[Graph, str]:
    import quantize

    result = quantize.auto_mixed_precision(graph, calibration, accuracy,
                                           max_accuracy_drop=settings.mixed_max_drop)
    budget = f"budget {100 * settings.mixed_max_drop:.2g} pp on {eval_count} training images"
    change = f"{100 * -result.drop + 0.0:+.2f} pp vs float"  # + 0.0: no "-0.00"
    if not result.kept:
        return result.graph, (f"every layer int8: {change}, within the {budget} (same graph "
                              "as static int8)")
    kept = ", ".join(result.kept_layers)
    state = "within" if result.within_budget else "NOT within"
    return result.graph, f"kept float: {kept}; {change}, {state} the {budget}"


# --------------------------------------------------------------------- export
def export_variants(variants: list[_Variant], float_graph: Graph, data: dict[str, Any],
                    settings: DemoSettings, progress: Progress) -> None:
    from edgefw.demo.artifacts import export_with_golden

    folder = settings.out / "models"
    golden = [model_input(data["x_test"][:settings.golden_samples], settings.model)]
    contract = {"normalization": {"scale": 1.0 / 255.0}, "class_labels": data["classes"],
                "dataset": settings.dataset}
    for v in variants:
        if v.graph is None:
            continue
        for fmt in FORMATS:
            path = folder / f"{settings.model}_{v.name}.{fmt}"
            meta = dict(contract, variant=v.description)
            if fmt == "onnx" and float_graph.inputs[0].rank == 4:
                meta["input_layout"] = "NCHW"
            try:
                export_with_golden(v.graph, path, golden_inputs=golden,
                                   reference_graph=float_graph, metadata=meta)
                v.files[fmt] = path
            except (EdgeFWError, ImportError) as exc:
                what = "TFLite" if fmt == "tflite" else "ONNX"
                v.export_errors[fmt] = f"{what} export not available: {_first_line(exc)}"
                progress.detail(f"{path.name}: {v.export_errors[fmt]}")
    written = [p for v in variants for p in v.files.values()]
    progress.detail(f"{len(written)} files in {folder}, each with golden data "
                    f"({settings.golden_samples} test images) and its input contract")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


# ------------------------------------------------------------------- measuring
def measure(variants: list[_Variant], data: dict[str, Any], settings: DemoSettings,
            progress: Progress) -> tuple[list[Any], dict[str, str], list[str]]:
    """Rows for every (variant, format, runtime), each runtime's description, and notes
    (where the GPU provider left nodes on the CPU, and why)."""
    import logging

    # The runtime logs a GPU session's CPU fallbacks as a warning; here they become report
    # notes instead of lines between the progress lines.
    runtime_logger = logging.getLogger("edgefw.runtime")
    level = runtime_logger.level
    runtime_logger.setLevel(logging.ERROR)
    try:
        return _measure(variants, data, settings, progress)
    finally:
        runtime_logger.setLevel(level)


def _measure(variants: list[_Variant], data: dict[str, Any], settings: DemoSettings,
             progress: Progress) -> tuple[list[Any], dict[str, str], list[str]]:
    from edgefw.demo.report import DemoRow
    from edgefw.demo.runners import FORMAT_RUNTIMES, load_graph, open_runners
    from runtime.preprocess import InputContract, prepare_images

    rows: list[DemoRow] = []
    described: dict[str, str] = {}
    notes: list[str] = []
    predictions: dict[tuple[str, str, str], np.ndarray] = {}
    for v in variants:
        for fmt in FORMATS:
            names = [r for r in FORMAT_RUNTIMES[fmt]
                     if settings.runtimes is None or r in settings.runtimes]
            path = v.files.get(fmt)
            if path is None:
                status = v.error or v.export_errors.get(fmt) or "not exported"
                rows += [DemoRow(v.name, v.description, fmt, None, None, r, status=status)
                         for r in names]
                continue
            graph = load_graph(path)
            x = prepare_images(data["x_test"], InputContract.from_graph(graph))
            base: np.ndarray | None = None
            for status in open_runners(path, names, graph=graph):
                row = DemoRow(v.name, v.description, fmt, str(path), path.stat().st_size,
                              status.name)
                rows.append(row)
                if not status.available:
                    row.status = ("n/a: " if not status.refused else "FAILED: ") + status.reason
                    continue
                described.setdefault(status.name, status.reason.split(";")[0])
                if status.name == "edgefw gpu":
                    notes.append(f"edgefw gpu on {path.name}: "
                                 f"{status.runner.session.get_provider_summary()}")
                try:
                    outputs = _evaluate(status.runner, x)
                    row.latency_ms = _latency_ms(status.runner, x[:1], settings.latency_seconds)
                except Exception as exc:  # noqa: BLE001 - a runtime's failure is a table row
                    row.status = f"FAILED: {type(exc).__name__}: {_first_line(exc)}"
                    continue
                predicted = outputs.argmax(1)
                predictions[(v.name, fmt, status.name)] = predicted
                row.accuracy = 100.0 * float(np.mean(predicted == data["y_test"]))
                if status.name == "edgefw cpu":
                    base = outputs
                elif base is not None:
                    row.agreement = 100.0 * float(np.mean(predicted == base.argmax(1)))
                    row.max_diff = float(np.max(np.abs(outputs.astype(np.float64) - base)))
            progress.detail(f"{path.name}: " + ", ".join(
                f"{r.runtime} {r.accuracy:.2f}%" if r.accuracy is not None else
                f"{r.runtime} {r.status.split(':')[0]}" for r in rows[-len(names):]))
    _deltas(rows, predictions)
    return rows, described, notes


def _evaluate(runner: Any, x: np.ndarray) -> np.ndarray:
    outputs = [runner.run([x[i:i + EVAL_BATCH]])[0] for i in range(0, len(x), EVAL_BATCH)]
    y = np.concatenate(outputs)
    return y.reshape(len(y), -1)


def _latency_ms(runner: Any, x: np.ndarray, budget_s: float) -> float:
    """p50 of batch-1 runs: 3 warm-up runs, then runs for ``budget_s`` (at least 10, at most
    1000), with the garbage collector paused so it does not land in one run."""
    for _ in range(3):
        runner.run([x])
    times = []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        end = time.perf_counter() + budget_s
        while len(times) < 10 or (time.perf_counter() < end and len(times) < 1000):
            t0 = time.perf_counter()
            runner.run([x])
            times.append(time.perf_counter() - t0)
    finally:
        if was_enabled:
            gc.enable()
    return 1000.0 * float(np.median(times))


def _deltas(rows: list[Any], predictions: dict[tuple[str, str, str], np.ndarray]) -> None:
    float_acc = {(r.format, r.runtime): r.accuracy for r in rows
                 if r.variant == "float32" and r.accuracy is not None}
    reference = predictions.get(("float32", "onnx", "edgefw cpu"))
    for r in rows:
        if r.accuracy is None:
            continue
        base = float_acc.get((r.format, r.runtime))
        r.delta_pp = None if base is None else r.accuracy - base
        mine = predictions.get((r.variant, r.format, r.runtime))
        if reference is not None and mine is not None:
            r.float_agreement = 100.0 * float(np.mean(mine == reference))


# ------------------------------------------------------------------------ all
def run_demo(settings: DemoSettings, stream: Any = None) -> Any:
    """Every step, with progress on ``stream`` (stdout); returns the
    :class:`~edgefw.demo.report.DemoReport`, already saved under ``settings.out``."""
    import edgefw
    from edgefw.demo.report import DemoReport

    progress = Progress(stream)
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    data_name = "MNIST" if settings.dataset == "mnist" else "Fashion-MNIST"
    source = f"from {settings.data}" if settings.data else "shipped copy"
    progress.step(1, "data", f"{data_name} ({source})")
    data = load_data(settings)
    progress.detail(f"{len(data['x_train']):,} training, {len(data['x_test']):,} test images")

    progress.step(2, "train", f"{settings.model}, {settings.epochs} epoch(s)")
    model = train(settings, data, progress)
    checkpoint = edgefw.save(model, out / f"{settings.model}.npz")
    example = model_input(data["x_test"][:1], settings.model)

    progress.step(3, "quantize", "trace, then float16, dynamic int8, static int8, mixed "
                                 "precision")
    import quantize

    float_graph = quantize.prepare(edgefw.trace(model, example))
    variants = build_variants(float_graph, data, settings, progress)

    progress.step(4, "export", f".onnx and .tflite for {len(variants)} variants")
    export_variants(variants, float_graph, data, settings, progress)

    progress.step(5, "run", f"every file on every runtime: {len(data['x_test']):,} test "
                            "images each, then batch-1 latency")
    rows, described, gpu_notes = measure(variants, data, settings, progress)

    progress.step(6, "report", str(out))
    report = DemoReport(
        title=f"edgefw demo: {settings.model} on {data_name}", rows=rows,
        settings={k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        runtimes=described)
    float_row = next((r for r in rows if r.variant == "float32" and r.accuracy is not None),
                     None)
    report.facts = {
        "model": f"{settings.model}, {model.num_parameters():,} parameters, trained "
                 f"{settings.epochs} epoch(s) on {len(data['x_train']):,} images",
        "test images": f"{len(data['x_test']):,}",
        "float32 accuracy": "-" if float_row is None else f"{float_row.accuracy:.2f}%",
        "checkpoint": str(checkpoint),
        "machine": f"{_cpu_count()} CPU cores, numpy {np.__version__}",
    }
    report.notes += [f"{v.description}: {v.note}" for v in variants if v.note]
    report.notes += [f"{v.description}: {v.error}" for v in variants if v.error]
    report.notes += gpu_notes
    progress.finish()
    report.timings = dict(progress.marks, total=progress.elapsed)
    report.files["models"] = str(out / "models")
    report.save(out)
    return report


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count() or 1


__all__ = ["DATASETS", "FORMATS", "MODELS", "VARIANTS", "DemoSettings", "Progress",
           "build_model", "load_data", "model_input", "run_demo"]
