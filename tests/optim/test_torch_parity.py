"""Optional: 20 steps of each optimizer and scheduler against PyTorch, when it is installed."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.optim import SGD, Adam, AdamW, RMSprop, lr_scheduler
from tests.optim.reference import FakeParam, grad_sequence, make_params

torch = pytest.importorskip("torch")

SHAPES = [(300, 250), (7,), (3, 4), ()]

CASES = [
    (SGD, "SGD", dict(lr=0.05)),
    (SGD, "SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3)),
    (SGD, "SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    (Adam, "Adam", dict(lr=1e-2)),
    (Adam, "Adam", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-2, amsgrad=True)),
    (AdamW, "AdamW", dict(lr=1e-2)),
    (AdamW, "AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    (RMSprop, "RMSprop", dict(lr=1e-3)),
    (RMSprop, "RMSprop", dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-3)),
]


@pytest.mark.parametrize("ours, theirs, config", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_twenty_steps_match_pytorch(ours, theirs, config, dtype):
    start = [p.data for p in make_params(SHAPES, dtype=dtype)]
    grads = grad_sequence(SHAPES, 20, dtype=dtype)
    params = [FakeParam(v.copy()) for v in start]
    torch_params = [torch.nn.Parameter(torch.from_numpy(v.copy())) for v in start]
    opt = ours(params, **config)
    torch_opt = getattr(torch.optim, theirs)(torch_params, **config)
    for step_grads in grads:
        for p, tp, g in zip(params, torch_params, step_grads, strict=True):
            p.grad = g.copy()
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        torch_opt.step()
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    for p, tp in zip(params, torch_params, strict=True):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), **tol)


@pytest.mark.parametrize("name, kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
])
def test_scheduler_rates_match_pytorch(name, kwargs):
    opt = SGD([FakeParam([0.0])], lr=0.3)
    torch_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    ours = getattr(lr_scheduler, name)(opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(torch_opt, **kwargs)
    for _ in range(20):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        torch_opt.step()
        ours.step()
        theirs.step()


def test_reduce_on_plateau_matches_pytorch():
    opt = SGD([FakeParam([0.0])], lr=1.0)
    torch_opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    kwargs = dict(factor=0.5, patience=2, cooldown=1, threshold=0.01, min_lr=0.01)
    ours = lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(torch_opt, **kwargs)
    metrics = np.random.default_rng(0).uniform(0.9, 1.0, size=40).cumsum() / np.arange(1, 41)
    for metric in metrics:
        ours.step(float(metric))
        theirs.step(float(metric))
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
