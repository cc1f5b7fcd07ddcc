"""Shared checks for the test suite."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import edgefw
from edgefw.autograd import Tensor


def check_grad(fn: Callable[..., Tensor], inputs: Sequence[np.ndarray], *, grad_inputs=None,
               eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7, seed: int = 0) -> None:
    """Compare edgefw's gradients of ``fn`` with central finite differences in float64.

    ``fn`` takes Tensors and returns a Tensor. The scalar checked is ``sum(fn(x) * R)`` for a
    fixed random R, so every output element's gradient is exercised. ``grad_inputs`` lists
    the positions that need gradients (default: every floating input).
    """
    rng = np.random.default_rng(seed)
    arrays = [np.array(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in inputs]
    if grad_inputs is None:
        grad_inputs = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    tensors = [Tensor(a.copy(), requires_grad=i in grad_inputs) for i, a in enumerate(arrays)]
    out = fn(*tensors)
    weights = rng.standard_normal(out.shape)
    (out * Tensor(weights)).sum().backward()

    def scalar(arrs: list[np.ndarray]) -> float:
        with edgefw.no_grad():
            return float((fn(*[Tensor(a) for a in arrs]).data * weights).sum())

    for i in grad_inputs:
        analytic = tensors[i].grad
        assert analytic is not None, f"input {i} received no gradient"
        assert analytic.shape == arrays[i].shape, (analytic.shape, arrays[i].shape)
        numeric = np.zeros_like(arrays[i])
        flat = arrays[i].reshape(-1)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            plus = scalar(arrays)
            flat[j] = orig - eps
            minus = scalar(arrays)
            flat[j] = orig
            numeric.reshape(-1)[j] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")


def randn(*shape: int, seed: int = 0, low: float | None = None) -> np.ndarray:
    """float64 normal samples; with ``low``, samples are shifted away from zero by |low|."""
    x = np.random.default_rng(seed).standard_normal(shape)
    if low is not None:
        x = np.sign(x) * (np.abs(x) + low)
    return x


def positive(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 2.0, shape)


__all__: list[Any] = ["check_grad", "positive", "randn"]


def naive_conv(x, w, b, strides, pads, dilations, group):
    """Conv by its definition: one dot product per output element."""
    n, c, h, wd = x.shape
    o, per_group, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dilations
    xp = np.zeros((n, c, h + pads[0] + pads[2], wd + pads[1] + pads[3]))
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + wd] = x
    ho = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, o, ho, wo))
    for b_, oc, p, q in itertools.product(range(n), range(o), range(ho), range(wo)):
        g = oc // (o // group)
        window = xp[b_, g * per_group:(g + 1) * per_group,
                    p * sh:p * sh + dh * (kh - 1) + 1:dh, q * sw:q * sw + dw * (kw - 1) + 1:dw]
        y[b_, oc, p, q] = np.sum(window * w[oc]) + (0.0 if b is None else b[oc])
    return y
