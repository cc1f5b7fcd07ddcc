"""One model file, every runtime that can run it, behind one small interface.

``edgefw demo`` and ``edgefw verify`` run the same file on edgefw's runtime (CPU provider,
and GPU provider when a WebGPU adapter is present), onnxruntime (``.onnx``) and LiteRT's
TFLite interpreter (``.tflite``). A runner takes the inputs exactly as the file declares
them (layout, dtype: see :mod:`runtime.preprocess`) and returns the outputs as the file
produces them.

    >>> from edgefw.demo.runners import open_runners
    >>> for status in open_runners("mlp.tflite"):          # doctest: +SKIP
    ...     print(status.name, status.available, status.reason)
    edgefw cpu True
    edgefw gpu True llvmpipe (LLVM 15.0.6, 256 bits) via Vulkan, software; 4 nodes on gpu
    TFLite interpreter True ai-edge-litert 2.3.0

A runtime that is not installed, has no device, or fails to load the file is reported with
the reason (``available`` False), never raised: the callers print it in their tables.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefw.errors import EdgeFWError, ModelFormatError

#: Runner names in table order.
RUNTIMES = ("edgefw cpu", "edgefw gpu", "onnxruntime", "TFLite interpreter")
#: Which runtimes can run each format at all.
FORMAT_RUNTIMES = {"onnx": ("edgefw cpu", "edgefw gpu", "onnxruntime"),
                   "tflite": ("edgefw cpu", "edgefw gpu", "TFLite interpreter")}


class Runner:
    """``run(inputs) -> outputs``: arrays in the file's input order, as the file declares
    them."""

    name = "runner"

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError


@dataclass
class RunnerStatus:
    """A runtime for one file: the runner when usable, else why not (``reason``; with
    ``refused`` True when the runtime is present but cannot load the file, False when it is
    not installed or has no device). For an available runner, ``reason`` describes it
    (version, device)."""

    name: str
    runner: Runner | None
    reason: str = ""
    refused: bool = False

    @property
    def available(self) -> bool:
        return self.runner is not None


def model_format(path: str | os.PathLike) -> str:
    """``"tflite"`` for a file with the TFLite identifier (``TFL3`` at byte 4), else
    ``"onnx"``; ModelFormatError when the file is missing."""
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"model file not found: {path}")
    with open(path, "rb") as f:
        return "tflite" if f.read(8)[4:8] == b"TFL3" else "onnx"


def load_graph(path: str | os.PathLike) -> Any:
    """The file as edgefw's loaders read it (an ``edgefw.ir.Graph``)."""
    import runtime

    fmt = model_format(path)
    return runtime.load_tflite(os.fspath(path)) if fmt == "tflite" \
        else runtime.load_onnx(os.fspath(path))


# ------------------------------------------------------------------ edgefw
class EdgeFWRunner(Runner):
    """edgefw's ``InferenceSession`` on ``providers``."""

    def __init__(self, graph: Any, providers: Sequence[str], name: str) -> None:
        from runtime import InferenceSession

        self.name = name
        self.session = InferenceSession(graph, providers=list(providers))
        self._names = [i.name for i in self.session.get_inputs()]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, dict(zip(self._names, inputs, strict=True)))


def _gpu_status(graph: Any) -> RunnerStatus:
    name = "edgefw gpu"
    try:
        from runtime.providers.gpu import gpu_context
    except ImportError as exc:
        return RunnerStatus(name, None, f"GPU provider not available: {exc}")
    try:
        info = gpu_context().info
    except EdgeFWError as exc:
        return RunnerStatus(name, None, f"no GPU adapter: {str(exc).split(';')[0]}")
    try:
        runner = EdgeFWRunner(graph, ["gpu", "cpu"], name)
    except EdgeFWError as exc:
        return RunnerStatus(name, None, f"GPU session failed: {exc}", refused=True)
    kind = ", software" if info.is_software else ""
    return RunnerStatus(name, runner, f"{info.name} via {info.backend}{kind}; "
                                      f"{runner.session.get_provider_summary()}")


# ------------------------------------------------------------- onnxruntime
class OnnxRuntimeRunner(Runner):
    """onnxruntime's CPU execution provider on the file."""

    name = "onnxruntime"

    def __init__(self, path: str | os.PathLike) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # its warnings about unused initializers are noise here
        self.session = ort.InferenceSession(os.fspath(path), options,
                                            providers=["CPUExecutionProvider"])
        self._names = [i.name for i in self.session.get_inputs()]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, dict(zip(self._names, inputs, strict=True)))


# ------------------------------------------------------------------ TFLite
def tflite_interpreter_class() -> tuple[Any, str]:
    """LiteRT's ``Interpreter`` (``ai-edge-litert``, else ``tflite-runtime``) and its
    package's name and version; ImportError when neither is installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        package = "ai-edge-litert"
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # the older standalone package
        package = "tflite-runtime"
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return Interpreter, f"{package} {version}"


class TFLiteRunner(Runner):
    """LiteRT's interpreter (XNNPACK where it applies, as an app gets by default); the
    input tensors are resized when the batch changes."""

    name = "TFLite interpreter"

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None) -> None:
        interpreter_class, self.package = tflite_interpreter_class()
        self.interpreter = interpreter_class(model_path=os.fspath(path),
                                             num_threads=num_threads)
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()
        self._shapes: list[tuple[int, ...]] = []

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        interp = self.interpreter
        shapes = [tuple(x.shape) for x in inputs]
        if shapes != self._shapes:
            for detail, shape in zip(self._inputs, shapes, strict=True):
                interp.resize_tensor_input(detail["index"], list(shape))
            interp.allocate_tensors()
            self._shapes = shapes
        for detail, x in zip(self._inputs, inputs, strict=True):
            interp.set_tensor(detail["index"], np.ascontiguousarray(x, detail["dtype"]))
        interp.invoke()
        return [interp.get_tensor(d["index"]).copy() for d in self._outputs]


# ------------------------------------------------------------------ opening
def open_runners(path: str | os.PathLike, runtimes: Sequence[str] | None = None,
                 graph: Any = None) -> list[RunnerStatus]:
    """A status per runtime that can run this file's format (``runtimes`` narrows the
    list); ``graph``: the file already loaded by :func:`load_graph`, to load it once."""
    fmt = model_format(path)
    wanted = [r for r in FORMAT_RUNTIMES[fmt] if runtimes is None or r in runtimes]
    statuses = []
    if graph is None and any(r.startswith("edgefw") for r in wanted):
        try:
            graph = load_graph(path)
        except EdgeFWError as exc:
            statuses += [RunnerStatus(r, None, f"edgefw cannot load the file: {exc}", True)
                         for r in wanted if r.startswith("edgefw")]
            wanted = [r for r in wanted if not r.startswith("edgefw")]
    for name in wanted:
        if name == "edgefw cpu":
            statuses.append(_guarded(name, lambda: EdgeFWRunner(graph, ["cpu"], "edgefw cpu")))
        elif name == "edgefw gpu":
            statuses.append(_gpu_status(graph))
        elif name == "onnxruntime":
            statuses.append(_guarded(name, lambda: OnnxRuntimeRunner(path), "onnxruntime"))
        else:
            statuses.append(_guarded(name, lambda: TFLiteRunner(path), "tflite"))
    order = {r: i for i, r in enumerate(RUNTIMES)}
    return sorted(statuses, key=lambda s: order[s.name])


def _guarded(name: str, make: Callable[[], Runner], package: str | None = None
             ) -> RunnerStatus:
    try:
        runner = make()
    except ImportError as exc:
        hint = {"onnxruntime": "pip install onnxruntime",
                "tflite": "pip install ai-edge-litert"}.get(package or "", "")
        return RunnerStatus(name, None, f"not installed ({exc.name or exc}); {hint}".rstrip("; "))
    except EdgeFWError as exc:
        return RunnerStatus(name, None, f"cannot run the file: {exc}", refused=True)
    except Exception as exc:  # noqa: BLE001 - onnxruntime and LiteRT raise their own types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return RunnerStatus(name, None, f"failed to load the file: {first[:300]}", refused=True)
    return RunnerStatus(name, runner, _describe(name, runner))


def _describe(name: str, runner: Runner) -> str:
    if isinstance(runner, TFLiteRunner):
        return runner.package
    if isinstance(runner, OnnxRuntimeRunner):
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    import edgefw

    return f"edgefw {edgefw.__version__}, numpy {np.__version__}"


__all__ = ["FORMAT_RUNTIMES", "RUNTIMES", "EdgeFWRunner", "OnnxRuntimeRunner", "Runner",
           "RunnerStatus", "TFLiteRunner", "load_graph", "model_format", "open_runners",
           "tflite_interpreter_class"]
