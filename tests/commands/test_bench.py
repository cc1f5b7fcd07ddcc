"""``edgefw bench``: statistics, interleaved timing, random inputs, and the onnxruntime
comparison (kept to a few runs so the suite stays fast)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from edgefw.cli import main
from edgefw.commands import bench
from edgefw.errors import ConfigError


def test_percentiles_are_nearest_rank():
    times = list(np.random.default_rng(0).random(101))
    s = sorted(times)
    for q in (50, 90, 99):
        assert bench.percentile(s, q) == np.percentile(times, q, method="inverted_cdf")
    stats = bench.LatencyStats.of([4.0, 1.0, 3.0, 2.0])
    assert (stats.runs, stats.p50, stats.p90, stats.p99, stats.mean, stats.best) == \
        (4, 2.0, 4.0, 4.0, 2.5, 1.0)


def test_measure_interleaved_counts_runs_and_alternates():
    calls = []
    engines = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = bench.measure_interleaved(engines, warmup=2, runs=7, block_seconds=0.0)
    assert [len(times["a"]), len(times["b"])] == [7, 7]
    timed = calls[4:]  # after 2 warm-up calls each
    # block of 1 run each; the engine going first alternates every round
    assert timed[:6] == ["a", "b", "b", "a", "a", "b"]
    assert all(t >= 0 for t in times["a"] + times["b"])
    with pytest.raises(ConfigError, match="--runs must be positive"):
        bench.measure_interleaved(engines, runs=0)


def test_num_threads_restores_the_previous_count():
    found = bench._openblas_thread_functions()
    if found is None or found[2] is None:
        pytest.skip("numpy's BLAS is not an OpenBLAS this process can reach")
    _, _, get = found
    before = get()
    target = 1 if before != 1 else 2
    with bench.num_threads(target) as how:
        assert f"({target})" in how
        assert get() == target
    assert get() == before


def _row(text: str, engine: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.split()[:1] == [engine])


def test_bench_compares_with_onnxruntime(mlp_onnx, capsys):
    assert main(["bench", str(mlp_onnx), "--runs", "5", "--warmup", "1", "--threads", "1",
                 "--compare", "onnxruntime", "--batch", "4"]) == 0
    out = capsys.readouterr().out
    assert "batch 4, inputs input float32[4, 1, 28, 28]" in out
    assert "intra_op_num_threads=1, inter_op_num_threads=1" in out
    edgefw_row, ort_row = _row(out, "edgefw"), _row(out, "onnxruntime")
    assert edgefw_row[1] == "5" and ort_row[1] == "5"
    p50s = float(edgefw_row[2]), float(ort_row[2])
    ratio = re.search(r"ratio edgefw/onnxruntime: p50 ([0-9.]+)x", out)
    assert ratio is not None
    assert float(ratio.group(1)) == pytest.approx(p50s[0] / p50s[1], rel=0.02, abs=0.01)
    agree = float(re.search(r"max \|edgefw - onnxruntime\| = (\S+)", out).group(1))
    assert agree < 1e-5
    assert re.search(r"load average before: [0-9.]+ [0-9.]+ [0-9.]+", out)
    assert "peak memory allocated during one edgefw run" in out


def test_bench_profile_lists_ops(mlp_onnx, capsys):
    assert main(["bench", str(mlp_onnx), "--runs", "3", "--warmup", "0", "--profile"]) == 0
    out = capsys.readouterr().out
    profile = out[out.index("profile of graph"):]
    assert "Gemm" in profile and "Flatten" in profile
    assert "onnxruntime" not in out


def test_bench_symbolic_dims_and_given_inputs(sequence_onnx, tmp_path, capsys):
    assert main(["bench", str(sequence_onnx), "--runs", "2"]) == 2
    assert "give its size with --dim seq=SIZE" in capsys.readouterr().err
    assert main(["bench", str(sequence_onnx), "--runs", "2", "--dim", "seq=3",
                 "--batch", "2"]) == 0
    assert "inputs x float32[2, 3, 8]" in capsys.readouterr().out
    np.save(tmp_path / "x.npy", np.ones((5, 7, 8), np.float32))
    assert main(["bench", str(sequence_onnx), "--runs", "2", "-i", str(tmp_path / "x.npy"),
                 "--compare", "onnxruntime"]) == 0
    out = capsys.readouterr().out
    assert "inputs x float32[5, 7, 8]" in out
    assert "max |edgefw - onnxruntime| = 0" in out


def test_bench_argument_errors(mlp_onnx, capsys):
    assert main(["bench", str(mlp_onnx), "--runs", "0"]) == 2
    assert "--runs must be positive" in capsys.readouterr().err
    assert main(["bench", str(mlp_onnx), "--dim", "seq"]) == 2
    assert "--dim expects SYMBOL=SIZE" in capsys.readouterr().err
    assert main(["bench", str(mlp_onnx), "--threads", "0"]) == 2
    assert "--threads must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", str(mlp_onnx), "--compare", "tensorflow"])
