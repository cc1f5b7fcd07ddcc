"""RMSprop against hand-computed updates and the reference formulas."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.optim import OptimizerConfigError, RMSprop
from tests.optim.reference import FakeParam, grad_sequence, make_params, rmsprop_reference, run

SHAPES = [(300, 250), (7,), (3, 4), ()]


def test_first_steps_by_hand():
    # alpha 0.75, g = 2: v = 1, 1.75, 2.3125; p -= 0.1 * 2 / sqrt(v)
    p = FakeParam([0.0])
    opt = RMSprop([p], lr=0.1, alpha=0.75, eps=0.0)
    expected = 0.0
    for v in (1.0, 1.75, 2.3125):
        expected -= 0.1 * 2.0 / np.sqrt(v)
        p.grad = np.array([2.0])
        opt.step()
        np.testing.assert_allclose(p.data, [expected], rtol=1e-14)


def test_centered_by_hand():
    # alpha 0.5, g = 2: v = 2, g_avg = 1, v - g_avg^2 = 1 -> step 0.1 * 2 / 1
    # step 2: v = 3, g_avg = 1.5, 3 - 2.25 = 0.75 -> step 0.2 / sqrt(0.75)
    p = FakeParam([0.0])
    opt = RMSprop([p], lr=0.1, alpha=0.5, eps=0.0, centered=True)
    p.grad = np.array([2.0])
    opt.step()
    np.testing.assert_allclose(p.data, [-0.2], rtol=1e-14)
    opt.step()
    np.testing.assert_allclose(p.data, [-0.2 - 0.2 / np.sqrt(0.75)], rtol=1e-14)


def test_momentum_by_hand():
    # alpha 0 makes v = g^2, so g / sqrt(v) = 1: b = 1, 1.5, 1.75 with momentum 0.5
    p = FakeParam([0.0])
    opt = RMSprop([p], lr=1.0, alpha=0.0, eps=0.0, momentum=0.5)
    for expected in (-1.0, -2.5, -4.25):
        p.grad = np.array([3.0])
        opt.step()
        np.testing.assert_allclose(p.data, [expected], rtol=1e-14)


@pytest.mark.parametrize("config", [
    dict(),
    dict(lr=1e-3, alpha=0.9, eps=1e-6),
    dict(weight_decay=0.1),
    dict(momentum=0.9),
    dict(centered=True),
    dict(centered=True, momentum=0.5, weight_decay=0.01),
])
def test_matches_reference_over_three_steps(config):
    params = make_params(SHAPES)
    start = [p.data.copy() for p in params]
    grads = grad_sequence(SHAPES, 3)
    history = run(RMSprop(params, **config), params, grads)
    for i in range(len(SHAPES)):
        expected = rmsprop_reference(start[i], [g[i] for g in grads], **config)
        for step in range(3):
            np.testing.assert_allclose(history[step][i], expected[step], rtol=1e-12, atol=1e-14)


def test_float32_state():
    params = make_params(SHAPES, dtype=np.float32)
    opt = RMSprop(params, centered=True, momentum=0.9)
    run(opt, params, grad_sequence(SHAPES, 2, dtype=np.float32))
    for p in params:
        assert p.data.dtype == np.float32
        assert {k: v.dtype for k, v in opt.state[p].items() if k != "step"} == {
            "square_avg": np.float32, "grad_avg": np.float32, "momentum_buffer": np.float32}


@pytest.mark.parametrize("kwargs, words", [
    (dict(lr=-1.0), "lr"),
    (dict(alpha=-0.1), "alpha"),
    (dict(alpha=1.5), "alpha"),
    (dict(eps=-1e-8), "eps"),
    (dict(momentum=-0.9), "momentum"),
    (dict(weight_decay=-1.0), "weight_decay"),
])
def test_invalid_hyper_parameters(kwargs, words):
    with pytest.raises(OptimizerConfigError, match=words):
        RMSprop([FakeParam([1.0])], **kwargs)
