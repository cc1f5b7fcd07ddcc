"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (scores [N, C, d...], integer
targets [N, d...], optional per-class weights, an optional ignored target value)."""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def negative_log_likelihood(log_prob: np.ndarray, target: np.ndarray, weight: np.ndarray | None,
                            ignore_index: int | None, reduction: str) -> np.ndarray:
    """The NLL loss of ``log_prob`` (already log-probabilities along axis 1)."""
    classes = log_prob.shape[1]
    ignored = np.zeros(target.shape, bool) if ignore_index is None else target == ignore_index
    bad = ~ignored & ((target < 0) | (target >= classes))
    if np.any(bad):
        raise ShapeError(f"target values must be in [0, {classes}) (or the ignore_index "
                         f"{ignore_index}); got {int(target[bad].reshape(-1)[0])}")
    safe = np.where(ignored, 0, target).astype(np.int64)
    picked = np.take_along_axis(log_prob, safe[:, None], axis=1)[:, 0]
    dtype = log_prob.dtype
    if weight is None:
        w = (~ignored).astype(dtype)
    else:
        w = np.where(ignored, 0, weight[safe]).astype(dtype, copy=False)
    loss = -picked * w
    if reduction == "none":
        return loss.astype(dtype, copy=False)
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=dtype)
    if weight is None and ignore_index is None:
        return np.asarray(loss.mean(), dtype=dtype)
    # A weighted mean: divided by the weights of the counted targets, not their number.
    return np.asarray(loss.sum() / w.sum(), dtype=dtype)


@cpu_kernel("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(ctx: KernelContext) -> Kernel:
    ignore_index, reduction = ctx.attr("ignore_index"), ctx.attr("reduction")

    def nll_loss(x, target, weight=None):
        return negative_log_likelihood(x, target, weight, ignore_index, reduction)

    return nll_loss


def log_softmax_axis1(x: np.ndarray) -> np.ndarray:
    shifted = x - np.max(x, axis=1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


@cpu_kernel("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(ctx: KernelContext) -> Kernel:
    ignore_index, reduction = ctx.attr("ignore_index"), ctx.attr("reduction")
    with_log_prob = len(ctx.node.outputs) == 2

    def softmax_cross_entropy(scores, labels, weights=None):
        log_prob = log_softmax_axis1(scores)
        loss = negative_log_likelihood(log_prob, labels, weights, ignore_index, reduction)
        return (loss, log_prob) if with_log_prob else loss

    return softmax_cross_entropy
