"""Losses as modules (PyTorch names) and Keras' losses by name.

>>> from edgefw import nn
>>> loss_fn = nn.get_loss("sparse_categorical_crossentropy")
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefw import functional as F
from edgefw.autograd import Tensor
from edgefw.errors import ConfigError
from edgefw.nn.module import Module
from edgefw.ops.activation import LogSoftmax, Softmax
from edgefw.ops.unary import Sigmoid

_EPS = 1e-7  # Keras' epsilon for losses on probabilities


class CrossEntropyLoss(Module):
    """Softmax cross-entropy on logits; targets are class indices (or probabilities)."""

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__()
        if not 0.0 <= label_smoothing <= 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing, self.reduction = label_smoothing, reduction

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(logits, target, self.label_smoothing, self.reduction)


class NLLLoss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, log_probs: Tensor, target: Any) -> Tensor:
        return F.nll_loss(log_probs, target, self.reduction)


class MSELoss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        return F.mse_loss(pred, target, self.reduction)


class L1Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        return F.l1_loss(pred, target, self.reduction)


class BCEWithLogitsLoss(Module):
    def __init__(self, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__()
        self.reduction, self.pos_weight = reduction, pos_weight

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, self.reduction,
                                                  self.pos_weight)


def _logits_behind(probs: Tensor, op: type) -> Tensor | None:
    """The logits a softmax/sigmoid output was computed from, if it was (Keras does the
    same, so a softmax output layer trains as stably as logits would)."""
    ctx = probs._ctx
    if isinstance(ctx, op) and (op is not Softmax or ctx.axis in (-1, probs.ndim - 1)):
        return ctx.parents[0]
    return None


class SparseCategoricalCrossentropy(Module):
    """Keras' loss: integer labels against probabilities (default) or logits."""

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__()
        self.from_logits = from_logits

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        if self.from_logits:
            return F.cross_entropy(pred, target)
        logits = _logits_behind(pred, Softmax)
        if logits is not None:
            return F.cross_entropy(logits, target)
        if isinstance(pred._ctx, LogSoftmax):
            return F.nll_loss(pred, target)
        return F.nll_loss(F.clip(pred, _EPS, 1 - _EPS).log(), target)


class CategoricalCrossentropy(Module):
    """Keras' loss: one-hot (or soft) targets against probabilities or logits."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.from_logits, self.label_smoothing = from_logits, label_smoothing

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        target = Tensor(np.asarray(getattr(target, "data", target), dtype=pred.dtype))
        logits = pred if self.from_logits else _logits_behind(pred, Softmax)
        if logits is not None:
            return F.cross_entropy(logits, target, self.label_smoothing)
        if self.label_smoothing:
            c = pred.shape[-1]
            target = target * (1 - self.label_smoothing) + self.label_smoothing / c
        logp = F.clip(pred, _EPS, 1 - _EPS).log()
        return -(logp * target).sum(axis=-1).mean()


class BinaryCrossentropy(Module):
    """Keras' loss: 0/1 targets against sigmoid probabilities (default) or logits."""

    def __init__(self, from_logits: bool = False) -> None:
        super().__init__()
        self.from_logits = from_logits

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        target = np.asarray(getattr(target, "data", target)).reshape(pred.shape)
        logits = pred if self.from_logits else _logits_behind(pred, Sigmoid)
        if logits is not None:
            return F.binary_cross_entropy_with_logits(logits, target)
        p = F.clip(pred, _EPS, 1 - _EPS)
        t = Tensor(target.astype(pred.dtype))
        return -(t * p.log() + (1 - t) * (1 - p).log()).mean()


KERAS_LOSSES: dict[str, Any] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mse": MSELoss,
    "mean_squared_error": MSELoss,
    "mae": L1Loss,
    "mean_absolute_error": L1Loss,
    "cross_entropy": CrossEntropyLoss,
}


def get_loss(loss: Any) -> Any:
    """A loss callable from a Keras name, a loss module or any ``f(pred, target)``."""
    if isinstance(loss, str):
        try:
            return KERAS_LOSSES[loss.lower()]()
        except KeyError:
            raise ConfigError(
                f"unknown loss {loss!r}; known: {', '.join(sorted(KERAS_LOSSES))}"
            ) from None
    if callable(loss):
        return loss
    raise ConfigError(f"loss must be a name or a callable, got {type(loss).__name__}")
