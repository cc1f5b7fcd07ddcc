"""The optimizers on real edgefw Parameters, with gradients from edgefw's autograd."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.autograd import Parameter, Tensor
from edgefw.optim import SGD, Adam, AdamW, RMSprop, clip_grad_norm
from tests.optim.reference import adam_reference


def test_adam_updates_parameter_arrays_in_place():
    rng = np.random.default_rng(0)
    shapes = [(784, 128), (128,), (128, 10), (10,)]
    params = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    arrays = [p.data for p in params]
    start = [a.astype(np.float64) for a in arrays]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    opt = Adam(params, lr=1e-2)
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g
        opt.step()
    for i, p in enumerate(params):
        assert p.data is arrays[i] and p.data.dtype == np.float32
        expected = adam_reference(start[i], [g[i] for g in grads], lr=1e-2)[-1]
        np.testing.assert_allclose(p.data, expected, rtol=1e-5, atol=1e-6)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: Adam(ps, lr=0.05),
    lambda ps: AdamW(ps, lr=0.05, weight_decay=1e-4),
    lambda ps: RMSprop(ps, lr=0.01),
])
def test_least_squares_converges_with_autograd(make):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    w_true = np.array([[1.5], [-2.0], [0.5]], dtype=np.float32)
    y = x @ w_true + 0.25
    w = Parameter(np.zeros((3, 1), dtype=np.float32))
    b = Parameter(np.zeros((1,), dtype=np.float32))
    opt = make([w, b])
    inputs, targets = Tensor(x), Tensor(y)
    for _ in range(300):
        opt.zero_grad()
        loss = ((inputs @ w + b - targets) ** 2).mean()
        loss.backward()
        clip_grad_norm([w, b], max_norm=10.0)
        opt.step()
    np.testing.assert_allclose(w.data, w_true, atol=0.05)
    np.testing.assert_allclose(b.data, [0.25], atol=0.05)
