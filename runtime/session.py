"""``InferenceSession``: onnxruntime's API over edgefw's IR and execution providers.

    >>> import numpy as np
    >>> from edgefw.ir import Graph
    >>> from runtime import InferenceSession
    >>> g = Graph("tiny")
    >>> x = g.add_input("x", "float32", ("batch", 3))
    >>> g.set_outputs([g.add_node("Relu", [x]).output])
    >>> session = InferenceSession(g)
    >>> [i.name for i in session.get_inputs()], session.get_inputs()[0].shape
    (['x'], ['batch', 3])
    >>> session.run(None, {"x": np.array([[-1.0, 0.5, 2.0]], np.float32)})
    [array([[0. , 0.5, 2. ]], dtype=float32)]

Construction: load → verify → optimize (on a copy) → assign each node to the first listed
provider that supports it → plan. Each distinct binding of the symbolic input dims (batch
1, batch 37...) gets its own plan with static shapes and preallocated buffers, cached.
``run`` is thread-safe: concurrent calls on one session are serialized (plans own buffers).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from edgefw.errors import (
    DeviceError,
    EdgeFWError,
    InvalidInputError,
    ModelFormatError,
    NodeExecutionError,
    UnsupportedOpError,
)
from edgefw.ir import Graph
from edgefw.ir.dtypes import onnx_type_string
from edgefw.ir.graph import Value
from edgefw.ir.primitives.blas import enter_serial, leave_serial
from edgefw.ir.primitives.parallel import parallel_workers, run_split
from runtime import batch_split
from runtime.input_check import InputChecker
from runtime.planner import ExecutionPlan, build_plan
from runtime.profiling import NodeProfile, ProfileReport, summarize
from runtime.providers import ExecutionProvider, canonical_provider_name, get_provider

OPTIMIZATION_LEVELS = ("none", "basic", "all")
MAX_CACHED_PLANS = 16
MAX_LISTED_REFUSALS = 20
logger = logging.getLogger("edgefw.runtime")

# format name ("onnx", "tflite") -> function(path_or_bytes) -> Graph
_LOADERS: dict[str, Callable[[Any], Graph]] = {}


def register_loader(fmt: str, loader: Callable[[Any], Graph]) -> None:
    """Let sessions open ``fmt`` models (a path or the file's bytes) with ``loader``."""
    _LOADERS[fmt] = loader


@dataclass(frozen=True)
class NodeArg:
    """An input or output as onnxruntime describes it: name, shape (ints and symbols),
    ``type`` (``"tensor(float)"``) and ``dtype`` (``"float32"``)."""

    name: str
    shape: list[int | str | None] | None
    type: str
    dtype: str


class InferenceSession:
    """Run an IR graph (or, once loaders are registered, an .onnx/.tflite file).

    ``providers``: names in priority order (``"cpu"``; ``"CPUExecutionProvider"`` works
    too). ``optimization``: ``"none"``, ``"basic"`` or ``"all"`` passes from
    ``edgefw.ir.passes`` (applied to a copy; the caller's graph is never changed).
    ``enable_profiling``: time every node; see :meth:`profile`.
    """

    def __init__(
        self,
        model: Graph | str | os.PathLike | bytes,
        providers: Sequence[str] | None = None,
        optimization: str = "all",
        enable_profiling: bool = False,
    ) -> None:
        if optimization not in OPTIMIZATION_LEVELS:
            raise InvalidInputError(f"optimization must be one of {', '.join(OPTIMIZATION_LEVELS)}"
                                    f"; got {optimization!r}")
        graph = model if isinstance(model, Graph) else self._load(model)
        graph.check()
        graph = _optimize(graph.copy(), optimization)
        graph.check()
        self._graph = graph
        self._providers = _providers(providers)
        self._assignment, self._refusals = self._partition()
        # Nodes running elsewhere than the first provider asked for are worth a warning:
        # silent fallback is what users of other runtimes complain about most.
        logger.log(logging.WARNING if self._refusals else logging.INFO, "graph '%s': %s",
                   graph.name, self.get_provider_summary())
        self._input_checker = InputChecker(graph.inputs)
        self._output_index = {v.name: i for i, v in enumerate(graph.outputs)}
        self._selections: dict[tuple[str, ...], list[int]] = {}
        self._plans: OrderedDict[tuple, ExecutionPlan] = OrderedDict()
        self._retired: list[ExecutionPlan] = []  # evicted plans keep their profile counts
        self._lock = threading.Lock()
        self._profiling = enable_profiling
        self._run_seconds = 0.0
        # Build once with the declared shapes so unsupported nodes fail here, not in run().
        self._last_plan = build_plan(graph, self._assignment)
        self._last_plans: tuple[ExecutionPlan, ...] = (self._last_plan,)
        if all(s.rank is not None and not s.dynamic for s in self._input_checker.specs):
            self._plans[()] = self._last_plan  # static inputs: this plan is the one
        self._check = self._input_checker.check
        # Runs of big batches with 2+ threads: one slice of the batch per thread (see
        # runtime.batch_split); None when some op mixes samples.
        self._batch_split = batch_split.analyze(graph) if all(
            p.name == "cpu" for p in self._assignment) else None

    # ------------------------------------------------------------------ loading
    @staticmethod
    def _load(model: Any) -> Graph:
        """Turn a path or bytes into a Graph with the registered loader for its format."""
        if isinstance(model, (bytes, bytearray, memoryview)):
            fmt, source = _sniff(bytes(model[:8])), bytes(model)
        elif isinstance(model, (str, os.PathLike)):
            path = os.fspath(model)
            if not os.path.isfile(path):
                raise ModelFormatError(f"model file not found: {path}")
            suffix = os.path.splitext(path)[1].lower()
            if suffix in (".onnx", ".tflite"):
                fmt = suffix[1:]
            else:
                with open(path, "rb") as f:
                    fmt = _sniff(f.read(8))
            source = path
        else:
            raise ModelFormatError(f"InferenceSession needs an edgefw.ir.Graph, a model path or "
                                   f"the model's bytes; got {type(model).__name__}")
        if fmt not in _LOADERS:
            try:  # loaders register themselves when their package is imported
                importlib.import_module("runtime.loaders")
            except ModuleNotFoundError as exc:
                if exc.name not in ("runtime.loaders",):
                    raise
        loader = _LOADERS.get(fmt)
        if loader is None:
            raise ModelFormatError(f"loading .{fmt} models is not supported yet; build the graph "
                                   "with edgefw.trace(...) or edgefw.ir and pass the Graph")
        return loader(source)

    def _partition(self) -> tuple[list[ExecutionProvider], dict[str, str]]:
        """Each node to the first provider that supports it; also, for nodes that the
        first provider refused, why (``provider.unsupported_reason(node)``)."""
        assignment = []
        refusals: dict[str, str] = {}
        for node in self._graph.nodes:
            for provider in self._providers:
                if provider.supports(node):
                    assignment.append(provider)
                    break
                if provider is self._providers[0]:
                    refusals[node.name] = provider.unsupported_reason(node) or "unsupported"
            else:
                names = ", ".join(p.name for p in self._providers)
                supported = "; ".join(f"{p.name}: {', '.join(p.supported_ops())}"
                                      for p in self._providers)
                raise UnsupportedOpError(f"{node.describe()}: no execution provider among "
                                         f"[{names}] supports {node.op_type!r} (supported ops "
                                         f"— {supported})")
        return assignment, refusals

    # ---------------------------------------------------------------- metadata
    @property
    def graph(self) -> Graph:
        """The graph as executed (after optimization). Do not modify it."""
        return self._graph

    def get_inputs(self) -> list[NodeArg]:
        return [_node_arg(v) for v in self._graph.inputs]

    def get_outputs(self) -> list[NodeArg]:
        return [_node_arg(v) for v in self._graph.outputs]

    def get_providers(self) -> list[str]:
        return [p.name for p in self._providers]

    def get_provider_assignment(self) -> dict[str, str]:
        """``node name -> provider name``."""
        return {n.name: p.name for n, p in zip(self._graph.nodes, self._assignment, strict=True)}

    def get_provider_summary(self) -> str:
        """Nodes per provider, and why each node the first provider refused went
        elsewhere: ``"41 nodes on gpu, 3 on cpu: shape (Shape: dtype int64 unsupported)"``.
        Logged (logger ``edgefw.runtime``, INFO) when the session is created."""
        counts: dict[str, int] = {p.name: 0 for p in self._providers}
        for p in self._assignment:
            counts[p.name] += 1
        shown = [(name, n) for i, (name, n) in enumerate(counts.items()) if n or i == 0]
        summary = ", ".join(f"{n} {'node' if n == 1 else 'nodes'} on {name}" if i == 0
                            else f"{n} on {name}" for i, (name, n) in enumerate(shown))
        if self._refusals:
            ops = {n.name: n.op_type for n in self._graph.nodes}
            listed = [f"{name} ({ops[name]}: {why})" for name, why in self._refusals.items()]
            summary += ": " + ", ".join(listed[:MAX_LISTED_REFUSALS])
            if len(listed) > MAX_LISTED_REFUSALS:
                summary += (f", and {len(listed) - MAX_LISTED_REFUSALS} more (see "
                            "get_provider_assignment())")
        return summary

    @property
    def plan(self) -> ExecutionPlan:
        """The plan of the most recent run (before any run: the plan for declared shapes);
        of a run split into batch tiles, the first tile's (see :attr:`last_run_plans`)."""
        return self._last_plan

    @property
    def last_run_plans(self) -> list[ExecutionPlan]:
        """Every plan the most recent run used: one, or one per thread for a run split into
        batch tiles (their ``buffer_bytes`` add up to the run's preallocated memory)."""
        return list(self._last_plans)

    # --------------------------------------------------------------------- run
    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any],
            run_options: Any = None) -> list[np.ndarray]:
        """Outputs named in ``output_names`` (all when None) for the inputs in ``input_feed``.

        InvalidInputError names a missing, unknown, mistyped or misshaped input;
        NodeExecutionError names the node whose kernel failed.
        """
        arrays, key = self._check(input_feed)
        with self._lock:
            tiles = None
            # (the batch test first: batch 1 pays for nothing else here)
            if self._batch_split is not None and arrays and arrays[0].ndim \
                    and arrays[0].shape[0] >= 2 * batch_split.MIN_TILE and not self._profiling:
                tiles = self._batch_split.tiles(arrays[0].shape[0], parallel_workers())
            results = self._run_tiled(key, arrays, tiles) if tiles is not None \
                else self._run_whole(key, arrays)
        if output_names is None:
            return results
        return [results[i] for i in self._select(output_names)]

    def _run_whole(self, key: tuple, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """The run on this thread through the plan for these input shapes."""
        plan = self._plans.get(key)
        if plan is None:
            plan = self._specialize(key, arrays)
        self._last_plan, self._last_plans = plan, (plan,)
        serial = enter_serial()  # BLAS on this thread only: big products split themselves
        try:
            if self._profiling:
                start = time.perf_counter()
                results = plan.run_profiled(*arrays)
                self._run_seconds += time.perf_counter() - start
                plan.profiled_runs += 1
                return results
            return plan.run(*arrays)
        except Exception as exc:
            raise _node_error(plan, exc) from exc
        finally:
            leave_serial(serial)

    def _run_tiled(self, key: tuple, arrays: list[np.ndarray], tiles: list[tuple[int, int]]
                   ) -> list[np.ndarray]:
        """The batch in tiles shared round-robin between threads (runtime.batch_split):
        worker k runs tiles k, k + W, ... through plans of its own (plans own buffers),
        copying each tile's outputs into place before its next tile."""
        # (every input has the batch at axis 0, one size: batch_split.analyze and the input
        # check guarantee it)
        workers = min(parallel_workers(), len(tiles))
        plans = {}
        for k, (lo, hi) in enumerate(tiles):
            sub_key = ("tile", k % workers, hi - lo, key)
            if sub_key not in plans:
                plan = self._plans.get(sub_key)
                if plan is None:
                    plan = self._specialize(sub_key, [a[lo:hi] for a in arrays],
                                            concurrent=workers > 1)
                plans[sub_key] = plan
        outputs: list[np.ndarray] = []
        allocate = threading.Lock()
        batch = arrays[0].shape[0]

        def worker(k: int) -> None:
            for lo, hi in tiles[k::workers]:
                plan = plans[("tile", k, hi - lo, key)]
                try:
                    results = plan.run(*(a[lo:hi] for a in arrays))
                except Exception as exc:
                    raise _node_error(plan, exc) from exc
                with allocate:
                    if not outputs:
                        outputs.extend(np.empty((batch,) + r.shape[1:], r.dtype)
                                       for r in results)
                for out, r in zip(outputs, results, strict=True):
                    out[lo:hi] = r

        run_split([partial(worker, k) for k in range(workers)], workers=workers)
        self._last_plan = plans[("tile", 0, tiles[0][1] - tiles[0][0], key)]
        self._last_plans = tuple(plans.values())
        return outputs

    def _select(self, output_names: Sequence[str]) -> list[int]:
        key = tuple(output_names) if not isinstance(output_names, str) else (output_names,)
        indices = self._selections.get(key)
        if indices is None:
            unknown = [n for n in key if n not in self._output_index]
            if unknown:
                raise InvalidInputError(f"unknown output {unknown[0]!r}; the model's outputs are "
                                        + ", ".join(repr(n) for n in self._output_index))
            indices = self._selections[key] = [self._output_index[n] for n in key]
        return indices

    def _specialize(self, key: tuple, arrays: list[np.ndarray], concurrent: bool = False
                    ) -> ExecutionPlan:
        shapes = {v.name: a.shape for v, a in zip(self._graph.inputs, arrays, strict=True)}
        try:
            plan = build_plan(self._graph, self._assignment, shapes, concurrent)
        except EdgeFWError as exc:
            raise NodeExecutionError(f"cannot plan the graph for input shapes {shapes}: {exc}"
                                     ) from exc
        self._plans[key] = plan
        if len(self._plans) > MAX_CACHED_PLANS:
            _, evicted = self._plans.popitem(last=False)
            if evicted.profiled_runs:
                self._retired.append(evicted)
        return plan

    # --------------------------------------------------------------- profiling
    def profile(self, reset: bool = False) -> ProfileReport:
        """Per-node times accumulated over the runs so far (needs enable_profiling=True);
        ``str(report)`` is the summary table."""
        if not self._profiling:
            raise InvalidInputError("profiling is off; create the session with "
                                    "enable_profiling=True")
        with self._lock:
            plans = [p for p in list(self._plans.values()) + self._retired if p.profiled_runs]
            runs = sum(p.profiled_runs for p in plans)
            totals: dict[str, float] = {}
            calls: dict[str, int] = {}
            for p in plans:
                for step, seconds in zip(p.steps, p.step_seconds, strict=True):
                    totals[step.node.name] = totals.get(step.node.name, 0.0) + float(seconds)
                    calls[step.node.name] = calls.get(step.node.name, 0) + p.profiled_runs
            records = [
                NodeProfile(n.name, n.op_type, n.module_path, prov.name, calls.get(n.name, 0),
                            totals.get(n.name, 0.0))
                for n, prov in zip(self._graph.nodes, self._assignment, strict=True)
            ]
            report = summarize(self._graph.name, runs, self._run_seconds, records)
            if reset:
                for p in plans:
                    p.step_seconds[:] = 0.0
                    p.profiled_runs = 0
                self._retired.clear()
                self._run_seconds = 0.0
        return report


# ---------------------------------------------------------------------- helpers
def _optimize(graph: Graph, level: str) -> Graph:
    """Run ``edgefw.ir.passes.optimize`` when that package exists (it is optional)."""
    if level == "none":
        return graph
    try:
        passes = importlib.import_module("edgefw.ir.passes")
    except ModuleNotFoundError as exc:
        if exc.name == "edgefw.ir.passes":
            return graph
        raise
    optimize = getattr(passes, "optimize", None)
    if optimize is None:
        return graph
    # The session's own copy may use the runtime's internal integer kernels.
    result = optimize(graph, level, integer_kernels=True)
    return result if isinstance(result, Graph) else graph


def _providers(names: Sequence[str] | None) -> list[ExecutionProvider]:
    """Provider instances; one whose device is missing (DeviceError from its factory) is
    skipped with one warning when another is available, and raises when none is."""
    if names is None:
        names = ["cpu"]
    if isinstance(names, str):
        names = [names]
    if not names:
        raise DeviceError("providers is empty; give at least one, e.g. ['cpu']")
    made, missing = [], []
    for name in names:
        if canonical_provider_name(name) is None:
            get_provider(name)  # raises DeviceError listing the known providers
        try:
            made.append(get_provider(name))
        except DeviceError as exc:
            missing.append((name, exc))
    if not made:
        if len(missing) == 1:
            raise missing[0][1]
        raise DeviceError("none of the execution providers is available: "
                          + "; ".join(f"{n}: {e}" for n, e in missing))
    for name, exc in missing:
        logger.warning("execution provider %r is not available, running on %s instead: %s",
                       name, ", ".join(repr(p.name) for p in made), exc)
    return made


def _sniff(head: bytes) -> str:
    """Model format from a file's first bytes: TFLite FlatBuffers carry "TFL3" at 4..8."""
    return "tflite" if head[4:8] == b"TFL3" else "onnx"


def _node_arg(v: Value) -> NodeArg:
    dtype = v.dtype or "float32"
    return NodeArg(v.name, None if v.shape is None else list(v.shape), onnx_type_string(dtype),
                   dtype)


def _node_error(plan: ExecutionPlan, exc: Exception) -> Exception:
    found = plan.failing_step(exc.__traceback__)
    if found is None:
        return exc
    step, args = found
    node = step.node
    module = f", module {node.module_path}" if node.module_path else ""
    described = []
    for v, var in zip(node.inputs, step.arg_vars, strict=True):
        arr = None if var is None else args.get(var)
        if v is None:
            described.append("_")
        elif isinstance(arr, np.ndarray):
            described.append(f"{v.name} {arr.dtype}{list(arr.shape)}")
        else:
            described.append(v.name)
    shapes = ", ".join(described)
    return NodeExecutionError(
        f"while executing node '{node.name}' ({node.op_type}{module}) on {step.provider}: "
        f"{type(exc).__name__}: {exc} (inputs: {shapes})"
    )


__all__ = ["InferenceSession", "NodeArg", "OPTIMIZATION_LEVELS", "register_loader"]
