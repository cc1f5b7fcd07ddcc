"""Observers on known distributions: min/max, streaming histograms, percentile, entropy
(KL), MSE."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import QuantizationError
from quantize.observers import (
    EntropyObserver,
    HistogramObserver,
    MinMaxObserver,
    MSEObserver,
    PercentileObserver,
    kl_threshold,
    make_observer,
)
from quantize.qparams import compute_qparams, dequantize_array, quantize_array


def feed(observer, x: np.ndarray, batches: int = 20):
    for part in np.array_split(x, batches):
        observer.update(part)
    return observer


def test_minmax_is_the_range_over_all_batches():
    obs = feed(MinMaxObserver(), np.random.default_rng(0).normal(0, 2, 10_000))
    x = np.random.default_rng(0).normal(0, 2, 10_000)
    assert obs.range("int8") == (x.min(), x.max())
    assert obs.range("int16") == (-np.abs(x).max(), np.abs(x).max())  # symmetric 16x8


def test_histogram_grows_without_losing_or_misplacing_counts():
    r = np.random.default_rng(1)
    # Batches whose spread grows, so the range grows many times, in both directions.
    x = r.normal(0, 1, 60_000) * np.linspace(0.05, 4, 60_000)
    streamed = feed(HistogramObserver(), x, batches=60)
    assert streamed.counts.sum() == x.size
    assert streamed.lo <= x.min() and streamed.lo + streamed.num_bins * streamed.width >= x.max()
    # Merging whole bins keeps every count in its true bin: the streamed histogram is the
    # one-shot histogram over the final edges (but for samples on an edge, float rounding).
    one_shot, _ = np.histogram(x, bins=streamed.edges)
    assert np.abs(one_shot - streamed.counts).sum() <= 8
    for q in (0.1, 0.5, 0.9):
        assert streamed.quantile(q) == pytest.approx(np.quantile(x, q), abs=streamed.width)


def test_histogram_memory_is_fixed():
    obs = HistogramObserver(num_bins=256)
    for seed in range(50):
        obs.update(np.random.default_rng(seed).normal(seed, 1.0, 1000))
    assert obs.counts.shape == (256,) and obs.counts.sum() == 50_000


def test_percentile_thresholds_on_uniform_and_normal_data():
    obs = feed(PercentileObserver(percentile=99.0), np.linspace(-10.0, 10.0, 200_001))
    lo, hi = obs.range("int8")
    assert lo == pytest.approx(-9.8, abs=0.02) and hi == pytest.approx(9.8, abs=0.02)
    x = np.random.default_rng(2).normal(0, 1, 200_000)
    lo, hi = feed(PercentileObserver(99.9), x).range("uint8")
    assert lo == pytest.approx(np.percentile(x, 0.1), abs=0.02)
    assert hi == pytest.approx(np.percentile(x, 99.9), abs=0.02)
    lo, hi = feed(PercentileObserver(99.9), x).range("int16")
    assert hi == -lo == pytest.approx(np.percentile(np.abs(x), 99.9), abs=0.02)


def test_entropy_clips_the_outliers_of_a_gaussian():
    r = np.random.default_rng(3)
    x = np.concatenate([r.normal(0, 1, 100_000), [60.0, -55.0, 58.0, 70.0]])
    obs = feed(EntropyObserver(), r.permutation(x))
    lo, hi = obs.range("int8")
    assert 2.5 < hi < 10.0 and -10.0 < lo < -2.5  # the bulk kept, the outliers clipped
    assert obs.range("int16") == (-70.0, 70.0)  # 65536 levels: no reason to clip


def test_entropy_on_relu_output_keeps_zero_and_clips_the_tail():
    r = np.random.default_rng(4)
    x = np.maximum(r.normal(0, 1, 100_000), 0.0)
    x[:3] = 40.0
    lo, hi = feed(EntropyObserver(), x).range("int8")
    assert lo == 0.0 and 2.0 < hi < 10.0


def reference_kl_threshold(hist: np.ndarray, width: float, levels: int) -> float:
    """NVIDIA pytorch-quantization's entropy search, loop by loop (stride 1)."""
    bins = hist.astype(np.float64).copy()
    bins[0] = bins[1]
    best, best_i = np.inf, None
    for i in range(levels, len(bins) + 1):
        group_of = np.digitize(range(i), np.linspace(0, i, levels + 1)) - 1
        group_of[bins[:i] == 0] = -1
        totals, members = np.zeros(levels), np.zeros(levels)
        for j, grp in enumerate(group_of):
            if grp != -1:
                totals[grp] += bins[j]
                members[grp] += 1
        q = np.array([totals[grp] / members[grp] if grp != -1 else 0.0 for grp in group_of])
        p = bins[:i].copy()
        p[-1] += bins[i:].sum()
        p, q = p / p.sum(), q / q.sum()
        if np.any((p > 0) & (q == 0)):
            continue  # infinite divergence
        kl = float(np.sum(p[p > 0] * np.log(p[p > 0] / q[p > 0])))
        if kl < best:
            best, best_i = kl, i
    return best_i * width


def test_kl_threshold_matches_a_loop_by_loop_reference():
    r = np.random.default_rng(7)
    for outliers in (5, 50, 500):
        x = np.abs(np.concatenate([r.normal(0, 1, 20_000), r.uniform(4, 30, outliers)]))
        hist, _ = np.histogram(x, bins=320, range=(0, x.max()))
        width = x.max() / 320
        assert kl_threshold(hist, width, 64, max_candidates=10_000) == \
            pytest.approx(reference_kl_threshold(hist, width, 64))


def test_kl_threshold_keeps_everything_when_the_levels_suffice():
    hist = np.array([5, 3, 0, 2, 1, 0, 0, 0], float)
    assert kl_threshold(hist, 0.5, levels=16) == 4.0  # fewer bins than levels
    assert kl_threshold(hist, 0.5, levels=5) == 2.5  # the data ends at bin 5


def test_mse_range_minimizes_the_actual_quantization_error():
    x = np.random.default_rng(5).laplace(0, 1, 50_000)
    lo, hi = feed(MSEObserver(), x).range("int8")

    def error(a: float, b: float) -> float:
        p = compute_qparams(a, b, "int8")
        return float(np.mean((dequantize_array(quantize_array(x, p), p) - x) ** 2))

    full = error(x.min(), x.max())
    best_on_grid = min(error(f * x.min(), f * x.max()) for f in np.linspace(0.2, 1.0, 81))
    assert hi < x.max() and lo > x.min()  # a heavy tail is worth clipping
    assert error(lo, hi) < full
    assert error(lo, hi) <= 1.1 * best_on_grid


def test_mse_keeps_the_full_range_of_uniform_data():
    x = np.random.default_rng(6).uniform(-1, 1, 50_000)
    lo, hi = feed(MSEObserver(), x).range("int8")
    assert hi > 0.97 and lo < -0.97


def test_observer_errors():
    with pytest.raises(QuantizationError, match="unknown calibration method 'kl'"):
        make_observer("kl")
    with pytest.raises(QuantizationError, match="percentile"):
        PercentileObserver(percentile=30)
    with pytest.raises(QuantizationError, match="num_bins"):
        HistogramObserver(num_bins=4)
    with pytest.raises(QuantizationError, match="seen no data"):
        MinMaxObserver().range("int8")
    with pytest.raises(QuantizationError, match="NaN or infinite"):
        EntropyObserver().update(np.array([1.0, np.nan]))


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy", "mse"])
def test_constant_tensor_gives_a_usable_range(method):
    obs = make_observer(method)
    obs.update(np.zeros(100))
    lo, hi = obs.range("int8")
    p = compute_qparams(lo, hi, "int8")
    assert float(p.scale) > 0 and np.isfinite(float(p.scale))
