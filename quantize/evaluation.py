"""Streaming error statistics shared by the reports: SQNR, max and mean absolute error,
top-1 agreement, accumulated batch by batch so memory does not grow with the data.

    >>> stats = ErrorStats()
    >>> stats.update(np.array([1.0, -2.0]), np.array([1.1, -2.0]))
    >>> round(stats.sqnr_db, 2), round(stats.max_abs_error, 2)
    (26.99, 0.1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def sqnr_db(signal_power: float, noise_power: float) -> float:
    """``10 log10(signal / noise)``; +inf for no noise, -inf for noise on a zero signal."""
    if noise_power == 0.0:
        return math.inf
    if signal_power == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal_power / noise_power)


@dataclass
class ErrorStats:
    """Running sums comparing a quantized tensor with its float reference."""

    signal: float = 0.0
    noise: float = 0.0
    max_abs_error: float = 0.0
    abs_error_sum: float = 0.0
    count: int = 0
    top1_same: int = 0
    top1_total: int = 0

    def update(self, reference: np.ndarray, quantized: np.ndarray) -> None:
        ref = np.asarray(reference, np.float64)
        err = np.asarray(quantized, np.float64) - ref
        self.signal += float(np.sum(ref * ref))
        self.noise += float(np.sum(err * err))
        if err.size:
            self.max_abs_error = max(self.max_abs_error, float(np.max(np.abs(err))))
        self.abs_error_sum += float(np.sum(np.abs(err)))
        self.count += err.size
        if ref.ndim >= 2 and ref.shape[-1] > 1:
            same = np.argmax(ref, axis=-1) == np.argmax(np.asarray(quantized), axis=-1)
            self.top1_same += int(np.sum(same))
            self.top1_total += same.size

    @property
    def sqnr_db(self) -> float:
        return sqnr_db(self.signal, self.noise)

    @property
    def mean_abs_error(self) -> float:
        return self.abs_error_sum / self.count if self.count else 0.0

    @property
    def agreement(self) -> float | None:
        """Top-1 agreement in percent (outputs with a class axis), else None."""
        return 100.0 * self.top1_same / self.top1_total if self.top1_total else None


def finite_or_none(x: float | None) -> float | None:
    """``x`` for JSON: None instead of an infinity or NaN."""
    return None if x is None or not math.isfinite(x) else float(x)


def format_db(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.1f}"


__all__ = ["ErrorStats", "finite_or_none", "format_db", "sqnr_db"]
