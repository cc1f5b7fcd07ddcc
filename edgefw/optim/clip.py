"""Gradient clipping, in place on the parameters' ``.grad`` arrays."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from edgefw.errors import TrainingError
from edgefw.optim.optimizer import OptimizerConfigError


def _grads(parameters: Any) -> list[np.ndarray]:
    if hasattr(parameters, "grad"):  # a single parameter
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _norm(flat: np.ndarray, norm_type: float) -> float:
    if flat.dtype.itemsize < 4:  # float16 squares overflow at 256
        flat = flat.astype(np.float32)
    if norm_type == math.inf:
        return float(np.max(np.abs(flat))) if flat.size else 0.0
    if norm_type == 2.0:
        return math.sqrt(float(np.dot(flat, flat)))
    if norm_type == 1.0:
        return float(np.sum(np.abs(flat), dtype=np.float64))
    return float(np.sum(np.abs(flat, dtype=np.float64) ** norm_type)) ** (1.0 / norm_type)


def clip_grad_norm(parameters: Iterable[Any] | Any, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False) -> float:
    """Scale the gradients so that their joint norm is at most ``max_norm``, like PyTorch.

    The norm is taken over all gradients together, as if they were one vector
    (``norm_type`` may be any p > 0 or ``inf``). If it exceeds ``max_norm`` every gradient is
    multiplied by ``max_norm / (norm + 1e-6)``. Parameters without a gradient are skipped.
    Returns the norm before clipping. A NaN/inf norm raises
    :class:`edgefw.errors.TrainingError` if ``error_if_nonfinite``.

    >>> import numpy as np
    >>> from edgefw.autograd import Parameter
    >>> w = Parameter(np.zeros(2, dtype=np.float32))
    >>> w.grad = np.array([3.0, 4.0], dtype=np.float32)
    >>> clip_grad_norm([w], max_norm=1.0)
    5.0
    >>> w.grad.round(4)
    array([0.6, 0.8], dtype=float32)
    """
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not max_norm >= 0.0:
        raise OptimizerConfigError(f"clip_grad_norm max_norm must be >= 0, got {max_norm}")
    if not norm_type > 0.0:
        raise OptimizerConfigError(
            f"clip_grad_norm norm_type must be > 0 or inf, got {norm_type}"
        )
    grads = _grads(parameters)
    if not grads:
        return 0.0
    norms = [_norm(g.reshape(-1), norm_type) for g in grads]
    if norm_type == math.inf:
        total = max(norms)
    elif norm_type == 2.0:
        total = math.sqrt(math.fsum(n * n for n in norms))
    else:
        total = math.fsum(n**norm_type for n in norms) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise TrainingError(
            f"the total {norm_type}-norm of the gradients is {total}; the gradients cannot be "
            f"clipped (pass error_if_nonfinite=False to clip anyway)"
        )
    clip_coef = max_norm / (total + 1e-6)
    if not clip_coef >= 1.0:  # NaN norm: scale by NaN like PyTorch, so the step is visible
        for grad in grads:
            grad *= clip_coef
    return total


def clip_grad_value(parameters: Iterable[Any] | Any, clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place.

    >>> import numpy as np
    >>> from edgefw.autograd import Parameter
    >>> w = Parameter(np.zeros(3, dtype=np.float32))
    >>> w.grad = np.array([-5.0, 0.5, 5.0], dtype=np.float32)
    >>> clip_grad_value([w], 1.0)
    >>> w.grad
    array([-1. ,  0.5,  1. ], dtype=float32)
    """
    clip_value = float(clip_value)
    if not clip_value >= 0.0:
        raise OptimizerConfigError(f"clip_grad_value clip_value must be >= 0, got {clip_value}")
    for grad in _grads(parameters):
        np.clip(grad, -clip_value, clip_value, out=grad)


__all__ = ["clip_grad_norm", "clip_grad_value"]
