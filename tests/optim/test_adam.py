"""Adam and AdamW against hand-computed updates and the reference formulas."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.optim import Adam, AdamW, OptimizerConfigError
from tests.optim.reference import FakeParam, adam_reference, grad_sequence, make_params, run

SHAPES = [(300, 250), (7,), (3, 4), (), (1, 5)]


def test_first_steps_by_hand():
    # With a constant g, m_hat = g and v_hat = g^2 at every step (the bias corrections undo
    # the zero start exactly), so p moves by lr * g / |g| = lr * sign(g) each step.
    p = FakeParam([1.0, -1.0])
    opt = Adam([p], lr=0.1, eps=0.0)
    for expected in ([0.9, -0.9], [0.8, -0.8], [0.7, -0.7]):
        p.grad = np.array([3.0, -0.5])
        opt.step()
        np.testing.assert_allclose(p.data, expected, rtol=1e-13)


def test_second_step_by_hand():
    # g1 = 1, g2 = -1, betas (0.5, 0.5): m2 = 0.5*0.5 - 0.5 = -0.25, m_hat = -0.25/0.75 = -1/3
    # v2 = 0.25 + 0.5 = 0.75, v_hat = 1; p = 0 - 0.1 - 0.1 * (-1/3) / (1 + 0)
    p = FakeParam([0.0])
    opt = Adam([p], lr=0.1, betas=(0.5, 0.5), eps=0.0)
    p.grad = np.array([1.0])
    opt.step()
    p.grad = np.array([-1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [-0.1 + 0.1 / 3], rtol=1e-14)


@pytest.mark.parametrize("config", [
    dict(lr=1e-2),
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=1e-2, weight_decay=0.1),
    dict(lr=1e-2, amsgrad=True),
    dict(lr=3e-3, weight_decay=0.05, amsgrad=True),
])
def test_adam_matches_reference_over_three_steps(config):
    params = make_params(SHAPES)
    start = [p.data.copy() for p in params]
    grads = grad_sequence(SHAPES, 3)
    history = run(Adam(params, **config), params, grads)
    for i in range(len(SHAPES)):
        expected = adam_reference(start[i], [g[i] for g in grads], **config)
        for step in range(3):
            np.testing.assert_allclose(history[step][i], expected[step], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("config", [
    dict(lr=1e-2),  # default weight_decay 1e-2
    dict(lr=1e-2, weight_decay=0.3, amsgrad=True),
    dict(lr=1e-2, weight_decay=0.0),
])
def test_adamw_matches_reference_over_three_steps(config):
    params = make_params(SHAPES)
    start = [p.data.copy() for p in params]
    grads = grad_sequence(SHAPES, 3)
    history = run(AdamW(params, **config), params, grads)
    ref_config = dict(config, decoupled=True)
    ref_config.setdefault("weight_decay", 1e-2)
    for i in range(len(SHAPES)):
        expected = adam_reference(start[i], [g[i] for g in grads], **ref_config)
        for step in range(3):
            np.testing.assert_allclose(history[step][i], expected[step], rtol=1e-12, atol=1e-14)


def test_amsgrad_keeps_the_largest_second_moment():
    # A large gradient then small ones: AMSGrad's denominator must not shrink back.
    grads = [[np.array([10.0])], [np.array([0.1])], [np.array([0.1])]]
    p_plain, p_ams = FakeParam([0.0]), FakeParam([0.0])
    run(Adam([p_plain], lr=0.1), [p_plain], grads)
    opt = Adam([p_ams], lr=0.1, amsgrad=True)
    run(opt, [p_ams], grads)
    v = opt.state[p_ams]["exp_avg_sq"][0]
    v_max = opt.state[p_ams]["max_exp_avg_sq"][0]
    np.testing.assert_allclose(v_max, 0.001 * 100, rtol=1e-12)
    assert v < v_max
    np.testing.assert_allclose(p_ams.data, adam_reference([0.0], [g[0] for g in grads], lr=0.1,
                                                          amsgrad=True)[-1], rtol=1e-12)


def test_float32_state_and_in_place():
    params = make_params(SHAPES, dtype=np.float32)
    arrays = [p.data for p in params]
    start = [p.data.astype(np.float64) for p in params]
    grads = grad_sequence(SHAPES, 3, dtype=np.float32)
    opt = AdamW(params, lr=1e-2, amsgrad=True)
    run(opt, params, grads)
    for i, p in enumerate(params):
        assert p.data is arrays[i] and p.data.dtype == np.float32
        for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert opt.state[p][name].dtype == np.float32
            assert opt.state[p][name].shape == p.data.shape
        assert opt.state[p]["step"] == 3
        expected = adam_reference(start[i], [g[i] for g in grads], lr=1e-2, weight_decay=1e-2,
                                  amsgrad=True, decoupled=True)[-1]
        np.testing.assert_allclose(p.data, expected, rtol=1e-5, atol=1e-6)


def test_partial_gradients_and_frozen_parameters():
    # Small parameters are packed together; members that get no gradient on some steps must
    # keep their own step counts (bias corrections) exactly as if updated one by one.
    shapes = [(4,), (3,), (2, 2), (5,)]
    params = make_params(shapes)
    start = [p.data.copy() for p in params]
    grads = grad_sequence(shapes, 5)
    grads[1][0] = None      # parameter 0 skips step 2
    grads[3][2] = None      # parameter 2 skips step 4
    for step in grads:
        step[3] = None      # parameter 3 is frozen
    opt = Adam(params, lr=0.05)
    run(opt, params, grads)
    for i in range(3):
        own = [g[i] for g in grads if g[i] is not None]
        expected = adam_reference(start[i], own, lr=0.05)[-1]
        np.testing.assert_allclose(params[i].data, expected, rtol=1e-12)
        assert opt.state[params[i]]["step"] == len(own)
    np.testing.assert_array_equal(params[3].data, start[3])
    assert not opt.state.get(params[3])


def test_hyper_parameters_changed_between_steps_take_effect():
    p = FakeParam([0.0])
    opt = Adam([p], lr=0.1, eps=0.0)
    p.grad = np.array([2.0])
    opt.step()
    opt.param_groups[0]["lr"] = np.float64(0.01)  # e.g. set by a scheduler restored from disk
    opt.step()
    np.testing.assert_allclose(p.data, [-0.11], rtol=1e-13)


@pytest.mark.parametrize("cls", [Adam, AdamW])
@pytest.mark.parametrize("kwargs, words", [
    (dict(lr=-1e-3), "lr"),
    (dict(eps=-1.0), "eps"),
    (dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    (dict(betas=(0.9, -0.1)), r"betas\[1\]"),
    (dict(betas=(0.9,)), "pair"),
    (dict(weight_decay=-0.1), "weight_decay"),
])
def test_invalid_hyper_parameters(cls, kwargs, words):
    with pytest.raises(OptimizerConfigError, match=words):
        cls([FakeParam([1.0])], **kwargs)
