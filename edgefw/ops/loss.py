"""Fused losses: CrossEntropy on logits, NLL on log-probabilities, BCE on logits.

Fusing keeps them numerically stable (log-sum-exp) and cheap: the gradient of
cross-entropy w.r.t. the logits is simply ``softmax - target``.
"""

from __future__ import annotations

import numpy as np

from edgefw.errors import DataError, DTypeError, ShapeError
from edgefw.ops.function import Function, register

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Function):
    """Losses exist only for training: they have no graph form (the tracer says so)."""

    training_only = True


def _rows(x: np.ndarray) -> np.ndarray:
    """(N, C, d1, ...) -> (N*d1*..., C): class axis last, one row per prediction."""
    if x.ndim == 2:
        return x
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _unrows(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if len(shape) == 2:
        return x
    moved = (shape[0],) + shape[2:] + (shape[1],)
    return np.moveaxis(x.reshape(moved), -1, 1)


def check_labels(target: np.ndarray, num_classes: int, n: int, who: str) -> np.ndarray:
    """Class-index targets: integer dtype, one per prediction, each in [0, num_classes)."""
    if target.dtype.kind not in "iu":
        raise DTypeError(f"{who}: class-index targets must be integers, got {target.dtype}")
    flat = target.reshape(-1)
    if flat.size != n:
        raise ShapeError(f"{who}: {flat.size} targets for {n} predictions")
    if flat.size:
        lo, hi = int(flat.min()), int(flat.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            raise DataError(
                f"{who}: target contains label {bad}, outside the class range "
                f"[0, {num_classes}) of a model with {num_classes} outputs"
            )
    return flat


def _reduce(loss: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        return np.asarray(loss.mean(), dtype=loss.dtype)
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=loss.dtype)
    return loss


def _check_reduction(reduction: str, who: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ShapeError(f"{who}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


@register
class CrossEntropy(_Loss):
    """Softmax cross-entropy on logits (N, C[, d...]); targets are class indices (N[, d...])
    or class probabilities of the logits' shape."""

    def forward(self, logits, target, label_smoothing=0.0, reduction="mean") -> np.ndarray:
        who = "CrossEntropyLoss"
        _check_reduction(reduction, who)
        if logits.ndim < 2:
            raise ShapeError(f"{who}: logits need shape (N, C), got {logits.shape}")
        z = _rows(logits)
        m, c = z.shape
        shifted = z - z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        logp = shifted - np.log(s)
        if target.shape == logits.shape and target.dtype.kind == "f":
            dist = _rows(target).astype(z.dtype, copy=False)
        else:
            labels = check_labels(target, c, m, who)
            dist = None
            self.labels = labels
        if label_smoothing:
            eps = z.dtype.type(label_smoothing)
            if dist is None:
                dist = np.full((m, c), eps / c, dtype=z.dtype)
                dist[np.arange(m), self.labels] += 1 - eps
            else:
                dist = dist * (1 - eps) + eps / c
        if dist is None:
            loss = -logp[np.arange(m), self.labels]
        else:
            loss = -(dist * logp).sum(axis=1)
        self.probs, self.dist, self.shape, self.reduction = e / s, dist, logits.shape, reduction
        loss = loss.astype(z.dtype, copy=False)
        if reduction == "none" and logits.ndim > 2:
            loss = loss.reshape((logits.shape[0],) + logits.shape[2:])
        return _reduce(loss, reduction)

    def backward(self, g: np.ndarray):
        grad = self.probs.copy()
        m = grad.shape[0]
        if self.dist is None:
            grad[np.arange(m), self.labels] -= 1
        else:
            grad -= self.dist
        if self.reduction == "mean":
            grad *= g / m
        elif self.reduction == "sum":
            grad *= g
        else:
            grad *= g.reshape(-1, 1)
        return _unrows(grad, self.shape), None


@register
class NLL(_Loss):
    """Negative log-likelihood of class indices under log-probabilities (N, C[, d...])."""

    def forward(self, logp, target, reduction="mean") -> np.ndarray:
        who = "NLLLoss"
        _check_reduction(reduction, who)
        rows = _rows(logp)
        m, c = rows.shape
        self.labels = check_labels(target, c, m, who)
        self.shape, self.reduction = logp.shape, reduction
        loss = -rows[np.arange(m), self.labels]
        if reduction == "none" and logp.ndim > 2:
            loss = loss.reshape((logp.shape[0],) + logp.shape[2:])
        return _reduce(loss, reduction)

    def backward(self, g: np.ndarray):
        m = len(self.labels)
        c = self.shape[1]
        grad = np.zeros((m, c), dtype=g.dtype)
        if self.reduction == "mean":
            grad[np.arange(m), self.labels] = -g / m
        elif self.reduction == "sum":
            grad[np.arange(m), self.labels] = -g
        else:
            grad[np.arange(m), self.labels] = -g.reshape(-1)
        return _unrows(grad, self.shape), None


@register
class BCEWithLogits(_Loss):
    """Binary cross-entropy on logits: max(x, 0) - x*y + log(1 + exp(-|x|))."""

    def forward(self, x, y, reduction="mean", pos_weight=None) -> np.ndarray:
        _check_reduction(reduction, "BCEWithLogitsLoss")
        if x.shape != y.shape:
            raise ShapeError(f"BCEWithLogitsLoss: logits {x.shape} vs targets {y.shape}")
        y = y.astype(x.dtype, copy=False)
        self.x, self.y, self.reduction = x, y, reduction
        softplus_neg = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)  # log(1 + e^-x)
        if pos_weight is None:
            loss = (1 - y) * x + softplus_neg
            self.pw = None
        else:
            self.pw = np.asarray(pos_weight, dtype=x.dtype)
            loss = (1 - y) * x + (1 + (self.pw - 1) * y) * softplus_neg
        return _reduce(loss.astype(x.dtype, copy=False), reduction)

    def backward(self, g: np.ndarray):
        x, y = self.x, self.y
        sig = 0.5 * (np.tanh(0.5 * x) + 1)
        if self.pw is None:
            grad = sig - y
        else:
            grad = (1 - y) - (1 + (self.pw - 1) * y) * (1 - sig)
        if self.reduction == "mean":
            grad = grad * (g / x.size)
        else:
            grad = grad * g
        return grad.astype(x.dtype, copy=False), None
