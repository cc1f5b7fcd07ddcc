"""Parameter initialisers, as in the reference frameworks (so training curves compare).

All draw from edgefw's global generator (``edgefw.manual_seed``) and fill in place.
"""

from __future__ import annotations

import math

import numpy as np

from edgefw import random as _random
from edgefw.autograd import Tensor


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a (out, in, *kernel) weight, as PyTorch computes them."""
    if len(shape) < 2:
        raise ValueError(f"fan in/out needs a weight of rank >= 2, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def uniform_(t: Tensor, low: float, high: float) -> Tensor:
    t.data[...] = _random.generator().uniform(low, high, t.shape)
    return t


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    t.data[...] = _random.generator().normal(mean, std, t.shape)
    return t


def zeros_(t: Tensor) -> Tensor:
    t.data[...] = 0
    return t


def ones_(t: Tensor) -> Tensor:
    t.data[...] = 1
    return t


def kaiming_uniform_(t: Tensor, a: float = 0.0) -> Tensor:
    """He uniform for leaky-ReLU slope ``a``; ``a = sqrt(5)`` is PyTorch's Linear/Conv
    default, which gives U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    fan_in, _ = fans(t.shape)
    gain = math.sqrt(2.0 / (1 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in)
    return uniform_(t, -bound, bound)


def glorot_uniform_(t: Tensor) -> Tensor:
    """Glorot/Xavier uniform, Keras' default for Dense and Conv2D kernels."""
    fan_in, fan_out = fans(t.shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -limit, limit)


xavier_uniform_ = glorot_uniform_


def he_normal_(t: Tensor) -> Tensor:
    fan_in, _ = fans(t.shape)
    return normal_(t, 0.0, math.sqrt(2.0 / fan_in))


INITIALIZERS = {
    "glorot_uniform": glorot_uniform_,
    "xavier_uniform": glorot_uniform_,
    "he_uniform": lambda t: kaiming_uniform_(t, 0.0),
    "he_normal": he_normal_,
    "zeros": zeros_,
    "ones": ones_,
}
