"""CPU inference benchmark: edgefw's runtime against onnxruntime's CPU EP and the TFLite
interpreter on the four reference models.

For the MLP, LeNet-5, the MobileNet-style net and a transformer encoder block, each model is
traced, exported with ``exporter.to_onnx`` and the *same* ``.onnx`` file is run by

- edgefw's runtime (``runtime.InferenceSession(path)``: the ONNX loader, optimization
  "all", CPU provider),
- onnxruntime's CPUExecutionProvider (``intra_op_num_threads`` = the thread count,
  ``inter_op_num_threads`` = 1, sequential execution),
- the TFLite interpreter (``ai_edge_litert``, default resolver with the XNNPACK delegate,
  ``num_threads`` = the thread count) on the model exported with ``exporter.to_tflite``
  (float32, NHWC input: it is fed the same arrays transposed once, outside the timing),
- for the MLP at batch 1, a hand-written numpy forward: the floor for Python overhead,
- with ``--eager``, the eager edgefw forward (``model(x)`` under ``no_grad``),

on the same input arrays, interleaved in blocks (``edgefw.commands.bench.
measure_interleaved``), reporting batch-1 latency (p50, p90) and batch-256 throughput
(``256 / p50``), the ratio of edgefw to the faster of the two references against the
targets of issue 4, and edgefw's peak memory at batch 256: the bytes allocated during one
``run()`` (tracemalloc, which sees numpy's allocations) plus the plan's preallocated
buffers.

Thread counts: OpenBLAS reads OPENBLAS_NUM_THREADS once, when numpy loads, so each thread
count runs in its own child process started with the variables set (``--threads 1,2``).

    python benchmarks/runtime_cpu.py --threads 1,2 [--repeat 2000] [--models mlp,lenet]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("mlp", "lenet", "mobilenet", "transformer")
# issue 4's targets for edgefw/onnxruntime at (batch 1, batch 256)
TARGETS = {"mlp": (1.0, 1.3), "lenet": (3.0, 2.5), "mobilenet": (3.0, 2.5),
           "transformer": (2.0, 2.0)}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _set_threads(n: int) -> None:
    for var in THREAD_VARS:
        os.environ[var] = str(n)


def build_models():
    import numpy as np

    import edgefw
    from edgefw import models

    edgefw.manual_seed(0)
    zoo = {
        "mlp": (models.build("mlp"), (1, 28, 28)),
        "lenet": (models.build("lenet"), (1, 28, 28)),
        "mobilenet": (models.build("mobilenet"), (1, 28, 28)),
        "transformer": (models.build("transformer", dim=64, heads=4, hidden=128), (16, 64)),
    }
    for model, _ in zoo.values():
        model.eval()
    return zoo, np


def _tflite_reference(model, sample, onnx_dir: Path, name: str, threads: int):
    """(run(x) of the TFLite interpreter on the exported model, input layout change) or
    (None, None) when TFLite's exporter or interpreter is not available."""
    import numpy as np

    try:
        from edgefw.commands.bench import TFLiteRunner, tflite_interpreter
        from exporter.tflite import to_tflite

        path = onnx_dir / f"{name}.tflite"
        to_tflite(model, path, np.zeros((1,) + sample, np.float32))
        runner = TFLiteRunner(tflite_interpreter(path, threads), ["x"])
    except Exception as exc:  # noqa: BLE001 - reported, the other engines still run
        print(f"TFLite reference unavailable for {name}: {exc}", file=sys.stderr)
        return None, None
    nhwc = len(sample) == 3  # to_tflite stores rank-4 inputs NHWC
    return (lambda x: runner({"x": x})[0]), ((0, 2, 3, 1) if nhwc else None)


def measure(names: list[str], threads: int, repeat: int, eager: bool, onnx_dir: Path) -> dict:
    """Everything for one thread count, in this process (numpy must load after
    ``_set_threads``)."""
    import numpy as np
    import onnxruntime as ort

    import edgefw
    import exporter
    import runtime
    from edgefw.commands.bench import (
        LatencyStats,
        measure_interleaved,
        onnxruntime_session,
        peak_run_memory,
    )

    zoo, _ = build_models()
    rng = np.random.default_rng(0)
    result = {"threads": threads, "load_before": os.getloadavg(), "rows": [],
              "versions": {"numpy": np.__version__, "onnxruntime": ort.__version__,
                           "ai-edge-litert": _version("ai-edge-litert"),
                           "python": sys.version.split()[0]}}
    for name in names:
        model, sample = zoo[name]
        path = onnx_dir / f"{name}.onnx"
        exporter.to_onnx(model, path, example_inputs=np.zeros((1,) + sample, np.float32))
        ours = runtime.InferenceSession(path)  # through the ONNX loader, like any user file
        theirs = onnxruntime_session(path, threads)
        tflite, tflite_perm = _tflite_reference(model, sample, onnx_dir, name, threads)
        input_name = ours.get_inputs()[0].name
        row = {"model": name}
        for batch, runs in ((1, repeat), (256, max(20, repeat // 50))):
            feed = {input_name: rng.random((batch,) + sample, dtype=np.float32)}
            engines = _engines(ours, theirs, feed)
            if tflite is not None:
                x_tflite = feed[input_name] if tflite_perm is None else \
                    np.ascontiguousarray(feed[input_name].transpose(tflite_perm))
                engines["tflite"] = _bind(tflite, x_tflite)
                row[f"max_diff_tflite_b{batch}"] = float(np.max(np.abs(
                    ours.run(None, feed)[0] - tflite(x_tflite))))
            if name == "mlp" and batch == 1:
                engines["numpy"] = _bind(_numpy_mlp(model, np), feed[input_name])
            if eager:
                engines["eager"] = _bind(lambda x, m=model: _eager(edgefw, m, x),
                                         feed[input_name])
            a, b = ours.run(None, feed)[0], theirs.run(None, feed)[0]
            row[f"max_diff_b{batch}"] = float(np.max(np.abs(a - b)))
            times = measure_interleaved(engines, warmup=max(5, runs // 20), runs=runs)
            row[f"b{batch}"] = {k: LatencyStats.of(t).__dict__ for k, t in times.items()}
            if batch == 256:
                row["peak_run_bytes"] = peak_run_memory(engines["edgefw"])
                row["plan_buffer_bytes"] = sum(p.buffer_bytes for p in ours.last_run_plans)
        result["rows"].append(row)
    result["load_after"] = os.getloadavg()
    return result


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _engines(ours, theirs, feed):
    return {"edgefw": lambda: ours.run(None, feed), "onnxruntime": lambda: theirs.run(None, feed)}


def _bind(fn, x):
    return lambda: fn(x)


def _eager(edgefw, model, x):
    with edgefw.no_grad():
        return model(x)


def _numpy_mlp(model, np):
    """The MLP's forward written by hand in numpy: the floor for Python-side overhead."""
    params = dict(model.named_parameters())
    w1 = np.ascontiguousarray(params["1.weight"].data.T)
    b1 = params["1.bias"].data
    w2 = np.ascontiguousarray(params["3.weight"].data.T)
    b2 = params["3.bias"].data

    def forward(x):
        return np.maximum(x.reshape(len(x), -1) @ w1 + b1, 0) @ w2 + b2

    return forward


def _in_child(threads: int, args: argparse.Namespace) -> dict:
    """Run one thread count in a fresh interpreter whose BLAS starts with that count."""
    env = dict(os.environ, **{var: str(threads) for var in THREAD_VARS})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--threads", str(threads),
                   "--repeat", str(args.repeat), "--models", args.models, "--json-out", str(out)]
        if args.eager:
            command.append("--eager")
        if args.onnx_dir:
            command += ["--onnx-dir", str(args.onnx_dir)]
        subprocess.run(command, env=env, check=True, stdout=sys.stderr)
        return json.loads(out.read_text())


def report(results: list[dict], command: str) -> str:
    """The Markdown table (and notes) for the README."""
    versions = results[0]["versions"]
    lines = [f"`{command}` — {os.cpu_count()} CPUs; onnxruntime {versions['onnxruntime']}, "
             f"ai-edge-litert {versions.get('ai-edge-litert', '?')}, numpy {versions['numpy']}, "
             f"Python {versions['python']}", ""]
    for r in results:
        lines.append(f"- {r['threads']} thread(s): load average {_load(r['load_before'])} before, "
                     f"{_load(r['load_after'])} after (1, 5, 15 min)")
    lines += ["", "edgefw and onnxruntime run the same exported `.onnx` file, the TFLite "
              "interpreter the same model exported with `exporter.to_tflite`, all on the same "
              "arrays; ratio = edgefw p50 / p50 of the faster reference (below 1: edgefw "
              "faster); throughput = 256 / p50. Peak memory: bytes allocated during one edgefw "
              "`run()` at batch 256 (tracemalloc) + the preallocated buffers of the plans it "
              "used (one per thread when the batch is split).", "",
              "| model | threads | batch 1 p50 µs edgefw / ort / tflite | batch 1 p90 µs edgefw "
              "/ ort / tflite | batch 1 ratio (target) | batch 256 ms edgefw / ort / tflite | "
              "batch 256 items/s edgefw / ort / tflite | batch 256 ratio (target) | edgefw peak "
              "memory, batch 256 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for row in r["rows"]:
            one, big = row["b1"], row["b256"]
            t1, t256 = TARGETS[row["model"]]
            ratio1 = one["edgefw"]["p50"] / _faster(one)
            ratio256 = big["edgefw"]["p50"] / _faster(big)
            lines.append(
                f"| {row['model']} | {r['threads']} | {_three(one, 'p50', _us)} | "
                f"{_three(one, 'p90', _us)} | "
                f"{ratio1:.2f}x (≤ {t1}x {_mark(ratio1, t1)}) | "
                f"{_three(big, 'p50', lambda s: f'{s * 1e3:.2f}')} | "
                f"{_three(big, 'p50', lambda s: f'{256 / s:,.0f}')} | "
                f"{ratio256:.2f}x (≤ {t256}x {_mark(ratio256, t256)}) | "
                f"{_kib(row['peak_run_bytes'])} + {_kib(row['plan_buffer_bytes'])} |")
    extras = []
    for r in results:
        for row in r["rows"]:
            for batch in (1, 256):
                for engine in ("numpy", "eager"):
                    s = row[f"b{batch}"].get(engine)
                    if s is not None:
                        extras.append(f"- {row['model']}, {r['threads']} thread(s), batch {batch}: "
                                      f"{engine} p50 {_us(s['p50'])} µs (edgefw/{engine} = "
                                      f"{row[f'b{batch}']['edgefw']['p50'] / s['p50']:.2f}x)")
    worst = max(max(row["max_diff_b1"], row["max_diff_b256"])
                for r in results for row in r["rows"])
    lines += ["", f"Outputs agree: max |edgefw - onnxruntime| = {worst:.2g} over all rows."]
    tflite_diffs = [row[key] for r in results for row in r["rows"]
                    for key in ("max_diff_tflite_b1", "max_diff_tflite_b256") if key in row]
    if tflite_diffs:
        lines.append(f"max |edgefw - TFLite| = {max(tflite_diffs):.2g} over all rows.")
    if extras:
        lines += ["", "Other references measured in the same runs:", *extras]
    return "\n".join(lines)


REFERENCES = ("onnxruntime", "tflite")


def _faster(stats: dict) -> float:
    """p50 of the faster reference engine measured in this row."""
    return min(stats[name]["p50"] for name in REFERENCES if name in stats)


def _three(stats: dict, key: str, fmt) -> str:
    """``edgefw / ort / tflite`` values of one statistic (``–`` where not measured)."""
    return " / ".join(fmt(stats[name][key]) if name in stats else "–"
                      for name in ("edgefw", *REFERENCES))


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f}"


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def _mark(ratio: float, target: float) -> str:
    return "✓" if ratio <= target else "✗"


def _load(avg) -> str:
    return " ".join(f"{x:.2f}" for x in avg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated (1,2)")
    parser.add_argument("--repeat", type=int, default=2000,
                        help="batch-1 runs per engine (batch 256: repeat/50, at least 20)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--eager", action="store_true", help="also time the eager forward")
    parser.add_argument("--onnx-dir", type=Path, default=None,
                        help="keep the exported .onnx files here (default: a temporary folder)")
    parser.add_argument("--json-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    names = [n for n in args.models.split(",") if n]
    unknown = sorted(set(names) - set(MODELS))
    if unknown or not threads or min(threads) <= 0:
        parser.error(f"--models from {', '.join(MODELS)} (unknown: {unknown}); "
                     "--threads positive integers")
    command = "python benchmarks/runtime_cpu.py " + " ".join(sys.argv[1:])

    if len(threads) == 1:
        _set_threads(threads[0])  # before numpy loads (measure imports it)
        with tempfile.TemporaryDirectory() as tmp:
            onnx_dir = args.onnx_dir or Path(tmp)
            onnx_dir.mkdir(parents=True, exist_ok=True)
            results = [measure(names, threads[0], args.repeat, args.eager, onnx_dir)]
        if args.json_out:
            args.json_out.write_text(json.dumps(results[0]))
            return
    else:
        results = [_in_child(t, args) for t in threads]
    print(report(results, command.strip()))


if __name__ == "__main__":
    main()
