"""Observers: streaming statistics of one tensor over the calibration batches, turned into
the real range ``[lo, hi]`` its quantization parameters cover.

- :class:`MinMaxObserver`: the smallest and largest value seen.
- :class:`PercentileObserver`: the ``(100 - p)``-th and ``p``-th percentiles (outliers beyond
  them are clipped).
- :class:`EntropyObserver`: TensorRT's KL-divergence calibration: the threshold whose
  quantized distribution loses least information against the original.
- :class:`MSEObserver`: the clipping range with the least expected squared error
  (rounding noise inside the range, clipping error outside it).

The histogram observers keep a fixed number of bins whatever the number of samples, so
calibration memory does not grow with the data (onnxruntime's calibrator stores every
output of every batch). When a batch falls outside the current range the histogram grows
by merging whole bins (the bin width becomes an integer multiple of the old one and the old
edges stay edges), so re-binning moves no count to a wrong bin.

    >>> import numpy as np
    >>> obs = PercentileObserver(percentile=99.0)
    >>> obs.update(np.arange(1001, dtype=np.float32))
    >>> [round(v) for v in obs.range("int8")]
    [10, 990]
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import QuantizationError
from quantize.qparams import is_symmetric_dtype, qrange

DEFAULT_BINS = 2048
METHODS = ("minmax", "percentile", "entropy", "mse")


class Observer:
    """Base class: ``update(array)`` per batch, then ``range(dtype)`` -> ``(lo, hi)``."""

    def __init__(self) -> None:
        self.min = np.inf
        self.max = -np.inf
        self.count = 0

    def update(self, x: np.ndarray) -> None:
        """Add one batch of the tensor's values."""
        x = np.asarray(x)
        if x.size == 0:
            return
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise QuantizationError("calibration saw a NaN or infinite value; check the "
                                    "calibration data and the float model")
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        self.count += x.size
        self._update(x, lo, hi)

    def _update(self, x: np.ndarray, lo: float, hi: float) -> None:
        pass

    def range(self, dtype: str = "int8") -> tuple[float, float]:
        """The real range to quantize to ``dtype`` (symmetric int16 uses ``max|x|``)."""
        if self.count == 0:
            raise QuantizationError(f"{type(self).__name__} has seen no data")
        lo, hi = self._range(dtype)
        if is_symmetric_dtype(dtype):
            bound = max(-lo, hi)
            return -bound, bound
        return lo, hi

    def _range(self, dtype: str) -> tuple[float, float]:
        return self.min, self.max

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min={self.min:.4g}, max={self.max:.4g}, n={self.count})"


class MinMaxObserver(Observer):
    """The full range seen (onnxruntime's and TFLite's default).

    >>> obs = MinMaxObserver()
    >>> obs.update(np.array([-1.0, 2.0])); obs.update(np.array([5.0]))
    >>> obs.range("int8")
    (-1.0, 5.0)
    """


class HistogramObserver(Observer):
    """A histogram of ``num_bins`` equal bins over ``[lo, lo + num_bins * width]`` that grows
    to cover new batches by merging bins; subclasses choose the range from it."""

    def __init__(self, num_bins: int = DEFAULT_BINS) -> None:
        super().__init__()
        if not isinstance(num_bins, int) or num_bins < 16:
            raise QuantizationError(f"num_bins must be an int >= 16, got {num_bins!r}")
        self.num_bins = num_bins
        self.counts = np.zeros(num_bins, np.int64)
        self.lo = 0.0
        self.width = 0.0  # 0 until the first batch

    @property
    def edges(self) -> np.ndarray:
        return self.lo + self.width * np.arange(self.num_bins + 1, dtype=np.float64)

    def _update(self, x: np.ndarray, lo: float, hi: float) -> None:
        if self.width == 0.0:
            span = max(hi - lo, 1e-6 * max(abs(lo), abs(hi)), 1e-12)
            self.lo, self.width = lo, span / self.num_bins
        else:
            self._grow(lo, hi)
        index = np.floor((x.astype(np.float64, copy=False).reshape(-1) - self.lo) / self.width)
        np.clip(index, 0, self.num_bins - 1, out=index)
        self.counts += np.bincount(index.astype(np.intp), minlength=self.num_bins)

    def _grow(self, lo: float, hi: float) -> None:
        """Extend the range to cover ``[lo, hi]``: shift the origin down by whole bins and
        widen bins by an integer factor, then merge the old bins into the new ones."""
        top = self.lo + self.num_bins * self.width
        if lo >= self.lo and hi <= top:
            return
        low, high = min(lo, self.lo), max(hi, top)
        # The origin moves down by `shift` old bins, between shift_min (covers `low`) and
        # shift_max (the top still covers `high`); the spare room goes where the data grew.
        shift_min = float(np.ceil((self.lo - low) / self.width))
        factor = max(1.0, float(np.ceil((high - low) / (self.num_bins * self.width))))
        while True:
            shift_max = float(np.floor((self.lo + self.num_bins * factor * self.width - high)
                                       / self.width))
            if shift_max >= shift_min:
                break
            factor += 1.0
        if lo >= self.lo:
            shift = shift_min
        elif hi <= top:
            shift = shift_max
        else:
            shift = shift_min + float(np.floor((shift_max - shift_min) / 2))
        new_lo = self.lo - shift * self.width
        new_width = self.width * factor
        centers = self.lo + (np.arange(self.num_bins) + 0.5) * self.width
        target = np.clip(np.floor((centers - new_lo) / new_width), 0, self.num_bins - 1)
        self.counts = np.bincount(target.astype(np.intp), weights=self.counts,
                                  minlength=self.num_bins).astype(np.int64)
        self.lo, self.width = new_lo, new_width

    def cdf_at(self, values: np.ndarray) -> np.ndarray:
        """Number of samples below ``values``, linear within each bin."""
        cumulative = np.concatenate([[0.0], np.cumsum(self.counts, dtype=np.float64)])
        return np.interp(values, self.edges, cumulative)

    def quantile(self, q: float) -> float:
        """The value below which a fraction ``q`` of the samples lie."""
        cumulative = np.concatenate([[0.0], np.cumsum(self.counts, dtype=np.float64)])
        target = q * cumulative[-1]
        # The first edge where the cumulative count reaches target, interpolated within the bin.
        i = int(np.searchsorted(cumulative, target, side="left"))
        if i == 0:
            return float(self.edges[0])
        below, above = cumulative[i - 1], cumulative[i]
        frac = 0.0 if above == below else (target - below) / (above - below)
        value = self.edges[i - 1] + frac * self.width
        return float(np.clip(value, self.min, self.max))

    def magnitude_histogram(self) -> tuple[np.ndarray, float]:
        """The histogram of ``|x|`` over ``[0, max|x|]`` in ``num_bins`` bins, and its bin
        width (bins straddling 0 or split by the fold are shared out linearly)."""
        bound = max(abs(self.min), abs(self.max))
        width = bound / self.num_bins if bound > 0 else 1.0
        edges = width * np.arange(self.num_bins + 1, dtype=np.float64)
        positive = np.diff(self.cdf_at(edges))
        negative = -np.diff(self.cdf_at(-edges))
        return positive + negative, width


class PercentileObserver(HistogramObserver):
    """Clip the tails beyond the ``percentile`` (e.g. 99.99: the top and bottom 0.01%).

    >>> obs = PercentileObserver(percentile=90.0)
    >>> obs.update(np.linspace(0.0, 10.0, 10001))
    >>> [round(v, 2) for v in obs.range("uint8")]
    [1.0, 9.0]
    """

    def __init__(self, percentile: float = 99.99, num_bins: int = DEFAULT_BINS) -> None:
        super().__init__(num_bins)
        if not isinstance(percentile, int | float) or not 50.0 < float(percentile) <= 100.0:
            raise QuantizationError(f"percentile must be in (50, 100], got {percentile!r}")
        self.percentile = float(percentile)

    def _range(self, dtype: str) -> tuple[float, float]:
        if is_symmetric_dtype(dtype):
            mags, width = self.magnitude_histogram()
            cumulative = np.concatenate([[0.0], np.cumsum(mags)])
            bound = float(np.interp(self.percentile / 100.0 * cumulative[-1], cumulative,
                                    width * np.arange(len(cumulative))))
            return -bound, bound
        q = self.percentile / 100.0
        return self.quantile(1.0 - q), self.quantile(q)


class EntropyObserver(HistogramObserver):
    """TensorRT's entropy calibration: the threshold ``T`` on ``|x|`` minimizing
    KL(P || Q) between the clipped histogram P and its quantization Q to the number of
    levels the dtype gives the range (128 per side for two-sided int8, 256 when every value
    has one sign); the range is ``[max(min, -T), min(max, T)]``.

    KL favours thresholds that keep the histogram's spikes sharp, so it clips hard on spiky
    distributions (ReLU6 outputs with constant channels, MaxPool inputs): measure it
    (``benchmarks/quantization.py``) before preferring it to min/max or percentile.
    """

    def __init__(self, num_bins: int = DEFAULT_BINS, max_candidates: int = 512) -> None:
        super().__init__(num_bins)
        self.max_candidates = max_candidates

    def _range(self, dtype: str) -> tuple[float, float]:
        mags, width = self.magnitude_histogram()
        qmin, qmax = qrange(dtype)
        levels = qmax - qmin + 1
        one_sided = self.min >= 0.0 or self.max <= 0.0
        if not one_sided or is_symmetric_dtype(dtype):
            levels //= 2
        threshold = kl_threshold(mags, width, levels, self.max_candidates)
        return max(self.min, -threshold), min(self.max, threshold)


def kl_threshold(hist: np.ndarray, width: float, levels: int,
                 max_candidates: int = 512) -> float:
    """The clipping threshold on a magnitude histogram (bins of ``width`` from 0) whose
    quantization to ``levels`` levels has the least KL divergence from the clipped
    histogram (TensorRT's algorithm; the candidates are bin edges from ``levels`` bins on;
    bin 0 takes bin 1's count, as in NVIDIA's pytorch-quantization).
    """
    hist = np.array(hist, np.float64)
    nbins = len(hist)
    if nbins > 1:
        # The zeros of a ReLU output are a spike in bin 0 that would dominate the divergence
        # (and favour tiny thresholds); NVIDIA's pytorch-quantization flattens it the same way.
        hist[0] = hist[1]
    if nbins <= levels or hist.sum() == 0:
        return nbins * width
    last = int(np.nonzero(hist)[0][-1]) + 1  # no candidate past the data
    if last <= levels:
        return last * width
    step = max(1, (last - levels) // max_candidates)
    candidates = list(range(levels, last + 1, step))
    if candidates[-1] != last:
        candidates.append(last)
    tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # tail[i] = sum(hist[i:])
    best_i, best_kl = last, np.inf
    for i in candidates:
        reference = hist[:i].copy()
        reference[-1] += tail[i]  # outliers are clipped into the last bin
        group = (np.arange(i) * levels) // i
        group_total = np.bincount(group, weights=hist[:i], minlength=levels)
        nonzero = hist[:i] > 0
        group_nonzero = np.bincount(group, weights=nonzero, minlength=levels)
        per_bin = np.divide(group_total, group_nonzero, out=np.zeros(levels),
                            where=group_nonzero > 0)
        candidate = np.where(nonzero, per_bin[group], 0.0)
        kl = _kl_divergence(reference, candidate)
        if kl < best_kl:
            best_i, best_kl = i, kl
    return best_i * width


def _kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) of two unnormalized histograms; q's empty bins where p has mass get a
    small smoothing mass (as TensorRT does) instead of making the divergence infinite."""
    p = p / p.sum()
    eps = 1e-12
    q = np.where((q == 0) & (p > 0), eps, q)
    q = q / q.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


class MSEObserver(HistogramObserver):
    """The range ``[a * min, a * max]`` (``a`` in (0, 1]) minimizing the expected squared
    error: ``scale**2 / 12`` rounding noise per value inside, squared distance to the
    bound for each value clipped outside."""

    def __init__(self, num_bins: int = DEFAULT_BINS, num_candidates: int = 200) -> None:
        super().__init__(num_bins)
        self.num_candidates = num_candidates

    def _range(self, dtype: str) -> tuple[float, float]:
        lo, hi = min(self.min, 0.0), max(self.max, 0.0)
        symmetric = is_symmetric_dtype(dtype)
        if symmetric:
            bound = max(-lo, hi)
            lo, hi = -bound, bound
        qmin, qmax = qrange(dtype, symmetric)
        if hi - lo <= 0:
            return self.min, self.max
        fractions = np.linspace(1.0 / self.num_candidates, 1.0, self.num_candidates)
        centers = self.lo + (np.arange(self.num_bins) + 0.5) * self.width
        counts = self.counts.astype(np.float64)
        lows, highs = fractions[:, None] * lo, fractions[:, None] * hi
        clipped = np.clip(centers[None, :], lows, highs)
        clip_error = (centers[None, :] - clipped) ** 2
        scale = (highs - lows)[:, 0] / (qmax - qmin)
        inside = (centers[None, :] >= lows) & (centers[None, :] <= highs)
        error = (np.where(inside, scale[:, None] ** 2 / 12.0, clip_error) * counts).sum(axis=1)
        best = fractions[int(np.argmin(error))]
        return max(self.min, best * lo), min(self.max, best * hi)


def make_observer(method: str, *, percentile: float = 99.99,
                  num_bins: int = DEFAULT_BINS) -> Observer:
    """A fresh observer for calibration ``method`` (see :data:`METHODS`)."""
    if method == "minmax":
        return MinMaxObserver()
    if method == "percentile":
        return PercentileObserver(percentile, num_bins)
    if method == "entropy":
        return EntropyObserver(num_bins)
    if method == "mse":
        return MSEObserver(num_bins)
    raise QuantizationError(f"unknown calibration method {method!r}; choose one of "
                            f"{', '.join(METHODS)}")


__all__ = [
    "DEFAULT_BINS",
    "METHODS",
    "EntropyObserver",
    "HistogramObserver",
    "MSEObserver",
    "MinMaxObserver",
    "Observer",
    "PercentileObserver",
    "kl_threshold",
    "make_observer",
]
