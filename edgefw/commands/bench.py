"""``edgefw bench``: latency percentiles, throughput and a per-op profile of a model file,
optionally against onnxruntime (.onnx) or the TFLite interpreter (.tflite) measured in the
same process.

    edgefw bench mlp.onnx --batch 1 --threads 1 --compare onnxruntime --profile
    edgefw bench mlp.tflite --batch 1 --threads 1 --compare tflite

How the measurement is kept honest:

- both engines get the *same* input arrays (random, of each input's dtype, fixed seed) and
  their outputs are compared;
- runs are interleaved in blocks of about 25 ms, alternating which engine goes first, so a
  change in machine load hits both; one engine's leftover busy threads (onnxruntime's and
  OpenBLAS's workers spin for a moment after a parallel section) touch only the first run
  of the other engine's block, which the medians ignore;
- percentiles are over single runs (nearest rank); throughput is ``batch / p50``;
- the garbage collector is paused while timing (as ``timeit`` does) and the load average
  is printed before and after.

Threads: ``--threads N`` sets onnxruntime's ``intra_op_num_threads`` (``inter_op`` is 1),
the TFLite interpreter's ``num_threads`` (XNNPACK's thread pool) and edgefw's BLAS
threads through ``edgefw.set_num_threads`` (or ``runtime.set_num_threads``) when that API
exists, else by calling OpenBLAS's own ``openblas_set_num_threads`` in the library numpy
loaded (what threadpoolctl does); the previous count is restored afterwards.
Environment variables such as OPENBLAS_NUM_THREADS cannot help here: OpenBLAS reads them
once, when numpy is imported, before the command line is parsed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import math
import os
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefw.errors import ConfigError, DeviceError

BLOCK_SECONDS = 0.025
MIN_RUNS_WHEN_TIMED = 5
DEFAULT_SECONDS = 3.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="measure latency percentiles and throughput (vs onnxruntime or TFLite)",
        description="Time a model file on random inputs: p50/p90/p99 latency, throughput, "
                    "optionally a per-op profile and onnxruntime or the TFLite interpreter "
                    "in the same process.")
    p.add_argument("model", help="model file (.onnx, .tflite)")
    p.add_argument("--batch", type=int, default=1, help="size of the symbolic batch dim (1)")
    p.add_argument("--dim", action="append", default=[], metavar="SYMBOL=SIZE",
                   help="size of another symbolic dim, e.g. --dim seq=128")
    p.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE",
                   help="use this .npy for an input instead of random data")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both engines (default: each library's default)")
    p.add_argument("--warmup", type=int, default=10,
                   help="untimed runs per engine (10; at least 1 runs: it sizes the blocks)")
    amount = p.add_mutually_exclusive_group()
    amount.add_argument("--runs", type=int, default=None, help="timed runs per engine")
    amount.add_argument("--seconds", type=float, default=None,
                        help=f"time budget for all engines together ({DEFAULT_SECONDS:g} s)")
    p.add_argument("--compare", choices=sorted(COMPARE_ENGINES), default=None,
                   help="also measure this engine, interleaved, and print the ratio")
    p.add_argument("--profile", action="store_true",
                   help="print edgefw's per-op profile (from extra runs of a profiled session)")
    p.add_argument("--providers", default=None, metavar="LIST",
                   help="edgefw execution providers, comma-separated (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (0)")
    p.set_defaults(func=cmd_bench)


# ------------------------------------------------------------------------ statistics
@dataclass(frozen=True)
class LatencyStats:
    """Per-run latency summary in seconds; percentiles by nearest rank."""

    runs: int
    p50: float
    p90: float
    p99: float
    mean: float
    best: float

    @staticmethod
    def of(times: Sequence[float]) -> LatencyStats:
        """Summarize per-run seconds.

        >>> LatencyStats.of([3.0, 1.0, 2.0, 4.0]).p50
        2.0
        """
        if not times:
            raise ConfigError("no timed runs to summarize")
        s = sorted(times)
        return LatencyStats(len(s), percentile(s, 50), percentile(s, 90), percentile(s, 99),
                            sum(s) / len(s), s[0])


def percentile(sorted_times: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values.

    >>> percentile([1.0, 2.0, 3.0, 4.0, 5.0], 90)
    5.0
    """
    rank = max(1, math.ceil(q / 100 * len(sorted_times)))
    return sorted_times[rank - 1]


# ------------------------------------------------------------------------- timing
def measure_interleaved(engines: Mapping[str, Callable[[], Any]], warmup: int = 10,
                        runs: int | None = None, seconds: float | None = None,
                        block_seconds: float = BLOCK_SECONDS) -> dict[str, list[float]]:
    """Time each engine's ``fn()`` run by run, interleaving engines in blocks.

    Exactly ``runs`` timed runs per engine, or as many as fit in ``seconds`` (all engines
    together; at least 5 each). Returns per-run seconds for each engine.

    >>> t = measure_interleaved({"a": lambda: None, "b": lambda: None}, warmup=1, runs=3)
    >>> sorted(t), [len(v) for v in t.values()]
    (['a', 'b'], [3, 3])
    """
    if runs is not None and runs <= 0:
        raise ConfigError(f"--runs must be positive, got {runs}")
    if seconds is not None and seconds <= 0:
        raise ConfigError(f"--seconds must be positive, got {seconds}")
    if warmup < 0:
        raise ConfigError(f"--warmup must be >= 0, got {warmup}")
    if runs is None and seconds is None:
        seconds = DEFAULT_SECONDS
    names = list(engines)
    block = {}
    for name in names:  # warm up; the warm-up's pace sizes the blocks
        fn = engines[name]
        start = time.perf_counter()
        for _ in range(max(1, warmup)):
            fn()
        per_run = (time.perf_counter() - start) / max(1, warmup)
        block[name] = max(1, int(block_seconds / max(per_run, 1e-9)))
    times: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        deadline = None if seconds is None else clock() + seconds
        round_index = 0
        while True:
            if runs is not None and all(len(t) >= runs for t in times.values()):
                break
            if deadline is not None and clock() >= deadline and \
                    all(len(t) >= MIN_RUNS_WHEN_TIMED for t in times.values()):
                break
            order = names[round_index % len(names):] + names[:round_index % len(names)]
            for name in order:
                fn, record = engines[name], times[name].append
                count = block[name] if runs is None else min(block[name], runs - len(times[name]))
                for _ in range(count):
                    t0 = clock()
                    fn()
                    record(clock() - t0)
            round_index += 1
    finally:
        if was_enabled:
            gc.enable()
    return times


def peak_run_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes Python and numpy allocate during one ``fn()`` (tracemalloc; memory that
    already existed, like a plan's preallocated buffers, is not counted)."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return max(0, tracemalloc.get_traced_memory()[1] - base)
    finally:
        if not was_tracing:
            tracemalloc.stop()


# ------------------------------------------------------------------------ threads
@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[str]:
    """Run the block with edgefw's numpy/BLAS on ``n`` threads, then restore the previous
    count where it can be read back. Yields how it was done (for the report), or why not.

    >>> with num_threads(None) as how:
    ...     how
    'library default'
    """
    if n is None:
        yield "library default"
        return
    if n <= 0:
        raise ConfigError(f"--threads must be positive, got {n}")
    import edgefw
    import runtime

    for owner, module in (("edgefw", edgefw), ("runtime", runtime)):
        setter = getattr(module, "set_num_threads", None)
        if callable(setter):
            getter = getattr(module, "get_num_threads", None)
            before = getter() if callable(getter) else None
            setter(n)
            try:
                yield f"{owner}.set_num_threads({n})"
            finally:
                if before is not None:
                    setter(before)
            return
    openblas = _openblas_thread_functions()
    if openblas is None:
        yield "not set: no edgefw.set_num_threads and no OpenBLAS found (BLAS default)"
        return
    symbol, setter, getter = openblas
    before = getter() if getter is not None else None
    setter(n)
    try:
        yield f"OpenBLAS {symbol}({n})"
    finally:
        if before is not None and before > 0:
            setter(before)


_OPENBLAS_SYMBOLS = (  # (set, get) pairs: numpy's bundled scipy-openblas, then plain OpenBLAS
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


def _openblas_thread_functions() -> tuple[str, Any, Any] | None:
    """(setter name, setter, getter or None) of the OpenBLAS numpy loaded, if any."""
    for path in _loaded_libraries("openblas"):
        try:
            lib = ctypes.CDLL(path)  # already loaded by numpy: this is the same handle
        except OSError:
            continue
        for set_name, get_name in _OPENBLAS_SYMBOLS:
            setter = getattr(lib, set_name, None)
            if setter is None:
                continue
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter = getattr(lib, get_name, None)
            if getter is not None:
                getter.argtypes, getter.restype = [], ctypes.c_int
            return set_name, setter, getter
    return None


def _loaded_libraries(fragment: str) -> list[str]:
    """Paths of shared libraries mapped into this process whose name contains
    ``fragment`` (Linux: /proc/self/maps; elsewhere none are found)."""
    import numpy.linalg  # noqa: F401 - make sure numpy's BLAS is loaded

    try:
        with open("/proc/self/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    paths = []
    for line in lines:
        fields = line.split(maxsplit=5)
        path = fields[5] if len(fields) == 6 else ""
        name = os.path.basename(path).lower()
        if fragment in name and ".so" in name and path not in paths:
            paths.append(path)
    return paths


# ------------------------------------------------------------------- reference engines
def onnxruntime_session(path: str | os.PathLike, threads: int | None = None) -> Any:
    """onnxruntime's CPU EP on ``path``: ``intra_op_num_threads = threads`` (0: its
    default, the physical cores), one inter-op thread, sequential execution."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])


def _onnxruntime_engine(model: Any, threads: int | None
                        ) -> tuple[Callable[[Mapping[str, np.ndarray]], list], str]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise DeviceError(f"--compare onnxruntime needs the onnxruntime package ({exc})"
                          ) from None
    try:
        session = onnxruntime_session(model.path, threads)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise DeviceError(f"onnxruntime cannot open {model.path}: {exc}") from None
    intra = session.get_session_options().intra_op_num_threads
    note = (f"onnxruntime {ort.__version__} CPUExecutionProvider, intra_op_num_threads="
            f"{intra}{' (its default: the physical cores)' if intra == 0 else ''}, "
            "inter_op_num_threads=1")
    return (lambda feed: session.run(None, feed)), note


def tflite_interpreter(path: str | os.PathLike, threads: int | None = None) -> Any:
    """The LiteRT interpreter (``ai_edge_litert``, else ``tflite_runtime``) on ``path`` with
    its default op resolver, which applies the XNNPACK delegate; ``num_threads = threads``
    (None: the interpreter's default)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError as exc:
            raise DeviceError(f"the TFLite interpreter needs ai-edge-litert or tflite-runtime "
                              f"({exc})") from None
    return Interpreter(model_path=os.fspath(path), num_threads=threads)


class TFLiteRunner:
    """Run a TFLite interpreter on a feed keyed by edgefw's input names (the subgraph's
    inputs, in order), resizing its inputs when the shapes change."""

    def __init__(self, interpreter: Any, input_names: Sequence[str]) -> None:
        self.interpreter = interpreter
        self.inputs = interpreter.get_input_details()
        self.outputs = interpreter.get_output_details()
        if len(self.inputs) != len(input_names):
            raise DeviceError(f"the TFLite interpreter sees {len(self.inputs)} inputs, edgefw "
                              f"{len(input_names)}")
        self.names = list(input_names)
        self.shapes: list[tuple[int, ...]] | None = None

    def __call__(self, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        it = self.interpreter
        arrays = [feed[name] for name in self.names]
        shapes = [a.shape for a in arrays]
        if shapes != self.shapes:
            for detail, shape in zip(self.inputs, shapes, strict=True):
                it.resize_tensor_input(detail["index"], list(shape))
            it.allocate_tensors()
            self.shapes = shapes
        for detail, array in zip(self.inputs, arrays, strict=True):
            it.set_tensor(detail["index"], array)
        it.invoke()
        return [it.get_tensor(detail["index"]) for detail in self.outputs]


def _tflite_engine(model: Any, threads: int | None
                   ) -> tuple[Callable[[Mapping[str, np.ndarray]], list], str]:
    try:
        runner = TFLiteRunner(tflite_interpreter(model.path, threads),
                              [v.name for v in model.graph.inputs])
    except DeviceError:
        raise
    except Exception as exc:  # noqa: BLE001 - the interpreter raises its own types
        raise DeviceError(f"the TFLite interpreter cannot open {model.path}: {exc}") from None
    import importlib.metadata

    try:
        version = importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        version = "(version unknown)"
    note = (f"ai-edge-litert {version} Interpreter (default resolver: XNNPACK delegate), "
            f"num_threads={threads if threads is not None else 'its default'}")
    return runner, note


#: name -> (model formats it runs, factory(model, threads) -> (run(feed), description)).
COMPARE_ENGINES: dict[str, tuple[tuple[str, ...], Callable[..., Any]]] = {
    "onnxruntime": (("onnx",), _onnxruntime_engine),
    "tflite": (("tflite",), _tflite_engine),
}


# ------------------------------------------------------------------------ command
def cmd_bench(args: argparse.Namespace) -> int:
    from edgefw.commands import model_io

    model = model_io.read_model(args.model)
    providers = model_io.parse_providers(args.providers)
    session = model_io.open_session(model, providers=providers)
    inputs = session.get_inputs()
    given = model_io.read_inputs(args.input, [i.name for i in inputs])
    rest = [i for i in inputs if i.name not in given]
    feed = {**model_io.random_inputs(rest, args.batch, model_io.parse_dims(args.dim), args.seed),
            **given}
    feed = {i.name: feed[i.name] for i in inputs}  # the model's input order, for the report
    engines: dict[str, Callable[[], Any]] = {"edgefw": lambda: session.run(None, feed)}
    notes = {"edgefw": f"edgefw runtime ({', '.join(session.get_providers())})"}
    reference_run = None
    if args.compare:
        formats, factory = COMPARE_ENGINES[args.compare]
        if model.format not in formats:
            raise ConfigError(f"--compare {args.compare} runs {'/'.join(formats)} models; "
                              f"{model.path.name} is .{model.format}")
        reference_run, notes[args.compare] = factory(model, args.threads)
        engines[args.compare] = lambda: reference_run(feed)

    with num_threads(args.threads) as how:
        notes["edgefw"] += f", BLAS threads: {how}"
        load_before = os.getloadavg()
        ours = session.run(None, feed)  # the first run plans this batch size: not timed
        agreement = None
        if reference_run is not None:
            try:
                agreement = _max_difference(ours, reference_run(feed))
            except Exception as exc:  # noqa: BLE001 - the reference engine's own errors
                raise DeviceError(f"{args.compare} failed on the inputs edgefw ran: {exc}"
                                  ) from None
        times = measure_interleaved(engines, args.warmup, args.runs, args.seconds)
        load_after = os.getloadavg()
        memory = peak_run_memory(engines["edgefw"])
        stats = {name: LatencyStats.of(t) for name, t in times.items()}
        profile = None
        if args.profile:
            profile = profile_model(model, feed, providers,
                                    runs=max(10, min(stats["edgefw"].runs, 200)))

    shapes = ", ".join(f"{n} {a.dtype}{model_io.format_shape(a.shape)}" for n, a in feed.items())
    print(f"{model.path.name}: batch {args.batch}, inputs {shapes}")
    for name, note in notes.items():
        print(f"  {name}: {note}")
    print(f"load average before: {_load(load_before)}  ({os.cpu_count()} CPUs)")
    print(format_latency_table(stats, args.batch))
    if args.compare:
        a, b = stats["edgefw"], stats[args.compare]
        print(f"ratio edgefw/{args.compare}: p50 {a.p50 / b.p50:.2f}x, p90 {a.p90 / b.p90:.2f}x, "
              f"p99 {a.p99 / b.p99:.2f}x (below 1: edgefw is faster)")
        print(f"outputs agree: max |edgefw - {args.compare}| = {agreement:.3g}")
    print(f"peak memory allocated during one edgefw run: {model_io.format_bytes(memory)} "
          f"(tracemalloc) + "
          f"{model_io.format_bytes(sum(p.buffer_bytes for p in session.last_run_plans))} "
          "preallocated "
          "plan buffers")
    print(f"load average after:  {_load(load_after)}")
    if profile is not None:
        print()
        print(profile)
    return 0


def profile_model(model: Any, feed: Mapping[str, np.ndarray], providers: list[str] | None,
                  runs: int) -> str:
    """The per-op table of a separate profiled session (so profiling's own timers never
    touch the latencies above) after ``runs`` runs."""
    from edgefw.commands import model_io

    session = model_io.open_session(model, providers=providers, enable_profiling=True)
    session.run(None, feed)
    session.profile(reset=True)  # drop the planning run
    for _ in range(runs):
        session.run(None, feed)
    return session.profile().table(top_nodes=10)


def format_latency_table(stats: Mapping[str, LatencyStats], batch: int) -> str:
    """One row per engine: runs, p50/p90/p99/mean latency and throughput (``batch/p50``)."""
    scale, unit = (1e3, "ms") if min(s.p50 for s in stats.values()) >= 0.01 else (1e6, "us")
    rows = [("engine", "runs", f"p50 {unit}", f"p90 {unit}", f"p99 {unit}", f"mean {unit}",
             "items/s")]
    for name, s in stats.items():
        rows.append((name, str(s.runs), f"{s.p50 * scale:.2f}", f"{s.p90 * scale:.2f}",
                     f"{s.p99 * scale:.2f}", f"{s.mean * scale:.2f}", f"{batch / s.p50:,.0f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def _max_difference(ours: Sequence[np.ndarray], theirs: Sequence[np.ndarray]) -> float:
    if len(ours) != len(theirs):
        return float("nan")
    worst = 0.0
    for a, b in zip(ours, theirs):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return float("nan")
        if a.size:
            worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))))
    return worst


def _load(avg: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in avg) + " (1, 5, 15 min)"


__all__ = [
    "COMPARE_ENGINES",
    "LatencyStats",
    "cmd_bench",
    "format_latency_table",
    "measure_interleaved",
    "onnxruntime_session",
    "peak_run_memory",
    "percentile",
    "tflite_interpreter",
    "TFLiteRunner",
    "profile_model",
    "register",
    "num_threads",
]
