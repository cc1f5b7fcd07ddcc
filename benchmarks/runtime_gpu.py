"""GPU provider benchmark: edgefw's GPU provider (WebGPU through wgpu) against its CPU
provider, per model and batch, and the GEMM rate of the GPU kernels.

For the MLP, LeNet-5, the MobileNet-style net and the transformer block of the zoo (traced
with ``edgefw.trace``, optimization "all"), the same input arrays are run by
``InferenceSession(graph, providers=["cpu"])`` and ``providers=["gpu", "cpu"]``,
interleaved in blocks (``edgefw.commands.bench.measure_interleaved``), at batch 1, 256 and
4096. Reported per row: p50 latency of each provider, throughput (``batch / p50``,
samples/s) and the GPU/CPU throughput ratio. A GPU run includes copying the input to the
GPU and the output back, as a user's ``session.run`` does. ``--int8`` adds the models
quantized with ``quantize.quantize_static`` (integer kernels on both providers).

GEMM: C = A @ W for N x N float32 (N = 1024, 4096). A GPU session runs a chain of R
MatMuls on the device; the per-GEMM time is the difference between R = 3 and R = 1 runs
divided by 2, so the host<->GPU copies of A and C cancel out. GFLOP/s = 2 N^3 / time.
numpy's matmul (the CPU provider's BLAS) is measured alongside.

    python benchmarks/runtime_gpu.py                          # everything (minutes)
    python benchmarks/runtime_gpu.py --batches 1,256 --gemm 1024 --models lenet,mobilenet
    python benchmarks/runtime_gpu.py --json results.json

On a software Vulkan driver (Mesa's lavapipe) the numbers say nothing about GPUs; the
script prints the adapter so a table is never mistaken for one from a real GPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("mlp", "lenet", "mobilenet", "transformer")
BATCHES = (1, 256, 4096)
GEMM_SIZES = (1024, 4096)


def _models(names, int8: bool):
    import numpy as np

    import edgefw
    from edgefw import models

    edgefw.manual_seed(0)
    built = []
    for name in names:
        model = models.build(name)
        model.eval()
        shape = models.INPUT_SHAPES[name]
        graph = edgefw.trace(model, np.zeros((1, *shape), np.float32))
        built.append((name, graph, shape))
        if int8:
            import quantize

            calib = np.random.default_rng(0).random((64, *shape)).astype(np.float32)
            built.append((f"{name}-int8", quantize.quantize_static(graph, calib), shape))
    return built


def bench_models(names, batches, int8: bool, seconds: float) -> list[dict]:
    import numpy as np

    from edgefw.commands.bench import LatencyStats, measure_interleaved
    from runtime import InferenceSession

    rows = []
    for name, graph, shape in _models(names, int8):
        cpu = InferenceSession(graph, providers=["cpu"])
        gpu = InferenceSession(graph, providers=["gpu"])
        input_name = cpu.get_inputs()[0].name
        for batch in batches:
            x = np.random.default_rng(1).random((batch, *shape)).astype(np.float32)
            feed = {input_name: x}
            start = time.perf_counter()
            want = cpu.run(None, feed)[0]
            got = gpu.run(None, feed)[0]  # plans, compiles, uploads weights
            setup = time.perf_counter() - start
            error = float(np.max(np.abs(got.astype(np.float64) - want)))
            engines = {"cpu": lambda s=cpu, f=feed: s.run(None, f),
                       "gpu": lambda s=gpu, f=feed: s.run(None, f)}
            times = measure_interleaved(engines, warmup=2, seconds=seconds, block_seconds=0.2)
            c, g = LatencyStats.of(times["cpu"]), LatencyStats.of(times["gpu"])
            row = {"model": name, "batch": batch, "cpu_p50_ms": 1e3 * c.p50,
                   "gpu_p50_ms": 1e3 * g.p50, "cpu_per_s": batch / c.p50,
                   "gpu_per_s": batch / g.p50, "gpu_vs_cpu": c.p50 / g.p50,
                   "max_abs_diff": error, "first_run_s": setup, "runs": min(c.runs, g.runs)}
            rows.append(row)
            print(f"{name:<17} {batch:>5}  cpu {row['cpu_p50_ms']:10.2f} ms "
                  f"{row['cpu_per_s']:11.0f}/s   gpu {row['gpu_p50_ms']:10.2f} ms "
                  f"{row['gpu_per_s']:11.0f}/s   gpu/cpu {row['gpu_vs_cpu']:6.2f}x   "
                  f"max|diff| {error:.1e}", flush=True)
    return rows


def _gemm_chain(n: int, repeats: int, weight):
    from edgefw.ir import Graph

    g = Graph(f"gemm{n}x{repeats}")
    v = g.add_input("a", "float32", (n, n))
    w = g.add_constant("w", weight)
    for _ in range(repeats):
        v = g.add_node("MatMul", [v, w]).output
    g.set_outputs([v])
    return g


def bench_gemm(sizes, seconds: float) -> list[dict]:
    import numpy as np

    from edgefw.commands.bench import LatencyStats, measure_interleaved
    from runtime import InferenceSession

    rows = []
    for n in sizes:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n)).astype(np.float32)
        w = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)
        sessions = {r: InferenceSession(_gemm_chain(n, r, w), providers=["gpu"],
                                        optimization="none") for r in (1, 3)}
        engines = {f"gpu x{r}": (lambda s=s, a=a: s.run(None, {"a": a}))
                   for r, s in sessions.items()}
        engines["numpy"] = lambda a=a, w=w: a @ w
        err = float(np.max(np.abs(sessions[1].run(None, {"a": a})[0] - a @ w)))
        times = measure_interleaved(engines, warmup=1, seconds=seconds, block_seconds=0.0)
        t1 = LatencyStats.of(times["gpu x1"]).p50
        t3 = LatencyStats.of(times["gpu x3"]).p50
        per_gemm = max((t3 - t1) / 2, 1e-9)
        flops = 2.0 * n ** 3
        row = {"n": n, "gpu_gemm_ms": 1e3 * per_gemm, "gpu_gflops": flops / per_gemm / 1e9,
               "gpu_run_ms_with_copies": 1e3 * t1,
               "numpy_gflops": flops / LatencyStats.of(times["numpy"]).p50 / 1e9,
               "max_abs_diff": err}
        rows.append(row)
        print(f"GEMM {n}^3 float32: gpu {row['gpu_gflops']:8.1f} GFLOP/s "
              f"({row['gpu_gemm_ms']:.1f} ms/GEMM, {row['gpu_run_ms_with_copies']:.1f} ms per "
              f"run with copies)   numpy {row['numpy_gflops']:8.1f} GFLOP/s   "
              f"max|diff| {err:.1e}", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--gemm", default=",".join(map(str, GEMM_SIZES)),
                        help="GEMM sizes N (N x N x N); empty to skip")
    parser.add_argument("--int8", action="store_true", help="also the int8 (QDQ) models")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="timing budget per row (at least 5 runs each)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    logging.getLogger("edgefw.runtime").setLevel(logging.ERROR)

    from runtime.providers.gpu import gpu_context

    info = gpu_context().info
    print(f"GPU adapter: {info.name} via {info.backend} ({info.adapter_type}; driver "
          f"{info.driver})" + ("  -- SOFTWARE RENDERER: correctness only" if info.is_software
                               else ""), flush=True)
    results = {"adapter": info.as_dict() | {"limits": None}, "models": [], "gemm": []}
    names = [m for m in args.models.split(",") if m]
    batches = [int(b) for b in args.batches.split(",") if b]
    if names and batches:
        results["models"] = bench_models(names, batches, args.int8, args.seconds)
    sizes = [int(s) for s in args.gemm.split(",") if s]
    if sizes:
        results["gemm"] = bench_gemm(sizes, args.seconds)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
