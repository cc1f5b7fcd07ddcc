"""Learning-rate schedulers: rate sequences against hand-computed values, state round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgefw.errors import CheckpointError
from edgefw.optim import (
    SGD,
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    OptimizerConfigError,
    ReduceLROnPlateau,
    StepLR,
)
from tests.optim.reference import FakeParam, cosine_closed_form, npz_round_trip


def make_optimizer(*lrs):
    return SGD([{"params": [FakeParam([0.0])], "lr": lr} for lr in lrs], lr=lrs[0])


def rates(scheduler, epochs):
    """The rate of every group at epochs 0 .. epochs-1 (stepping after each)."""
    out = []
    for _ in range(epochs):
        out.append(scheduler.get_last_lr())
        assert out[-1] == [g["lr"] for g in scheduler.optimizer.param_groups]
        scheduler.step()
    return out


def test_step_lr():
    sched = StepLR(make_optimizer(1.0, 0.1), step_size=3, gamma=0.5)
    expected = [[1.0 * 0.5 ** (e // 3), 0.1 * 0.5 ** (e // 3)] for e in range(10)]
    np.testing.assert_allclose(rates(sched, 10), expected, rtol=1e-15)
    assert sched.optimizer.param_groups[0]["initial_lr"] == 1.0


def test_exponential_lr():
    sched = ExponentialLR(make_optimizer(0.5), gamma=0.9)
    np.testing.assert_allclose(rates(sched, 6), [[0.5 * 0.9**e] for e in range(6)], rtol=1e-15)


def test_cosine_annealing_lr_follows_the_closed_form():
    # Over two full periods, including the minimum at T_max and the rise after it.
    sched = CosineAnnealingLR(make_optimizer(0.1, 1.0), T_max=5, eta_min=0.01)
    got = rates(sched, 21)
    for epoch, (lr_a, lr_b) in enumerate(got):
        assert lr_a == pytest.approx(cosine_closed_form(0.1, 0.01, 5, epoch), rel=1e-12)
        assert lr_b == pytest.approx(cosine_closed_form(1.0, 0.01, 5, epoch), rel=1e-12)
    assert got[5][0] == pytest.approx(0.01, rel=1e-12) and got[10][0] == pytest.approx(0.1)


def test_cosine_by_hand():
    sched = CosineAnnealingLR(make_optimizer(1.0), T_max=2)
    np.testing.assert_allclose(rates(sched, 5), [[1.0], [0.5], [0.0], [0.5], [1.0]],
                               atol=1e-15)


def test_lambda_lr_per_group():
    sched = LambdaLR(make_optimizer(1.0, 2.0), [lambda e: 1 / (e + 1), lambda e: 0.5**e])
    expected = [[1 / (e + 1), 2.0 * 0.5**e] for e in range(5)]
    np.testing.assert_allclose(rates(sched, 5), expected, rtol=1e-15)


def test_schedulers_set_the_rate_the_optimizer_uses():
    p = FakeParam([0.0])
    opt = SGD([p], lr=1.0)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = np.array([1.0])
        opt.step()
        sched.step()
    np.testing.assert_allclose(p.data, [-(1.0 + 0.5 + 0.25)], rtol=1e-15)


def test_reduce_on_plateau_min_mode_by_hand():
    opt = make_optimizer(1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=0.2)
    metrics = [10, 9, 9, 9, 8.99999, 9, 9, 9, 9, 9, 9]
    # epoch:   1  2  3 ->bad2>1: 0.5, cooldown; 5 (no improve, rel threshold) cooldown
    # then bad counts restart: 6 bad1, 7 bad2 -> 0.25; 8 cooldown; 9, 10 -> 0.2 (min_lr)
    lrs = []
    for metric in metrics:
        sched.step(metric)
        lrs.append(sched.get_last_lr()[0])
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2]
    assert sched.best == 9


def test_reduce_on_plateau_max_mode_and_abs_threshold():
    sched = ReduceLROnPlateau(make_optimizer(1.0, 0.1), mode="max", factor=0.1, patience=0,
                              threshold=0.5, threshold_mode="abs")
    lrs = []
    for metric in (1.0, 1.6, 2.0, 2.05, 3.0):  # 2.0 and 2.05 do not beat 1.6 + 0.5
        sched.step(metric)
        lrs.append(sched.get_last_lr())
    np.testing.assert_allclose(lrs, [[1.0, 0.1], [1.0, 0.1], [0.1, 0.01], [0.01, 0.001],
                                     [0.01, 0.001]], rtol=1e-12)


def test_reduce_on_plateau_eps_skips_tiny_changes():
    sched = ReduceLROnPlateau(make_optimizer(1e-9), factor=0.5, patience=0, eps=1e-8)
    sched.step(1.0)
    sched.step(2.0)
    assert sched.get_last_lr() == [1e-9]


@pytest.mark.parametrize("make, steps", [
    (lambda opt: StepLR(opt, step_size=2, gamma=0.3), 5),
    (lambda opt: ExponentialLR(opt, gamma=0.7), 4),
    (lambda opt: CosineAnnealingLR(opt, T_max=4, eta_min=0.001), 3),
    (lambda opt: LambdaLR(opt, lambda e: 1.0 / (1 + e)), 3),
])
def test_scheduler_state_round_trip_resumes_the_sequence(make, steps, tmp_path):
    opt = make_optimizer(0.1, 0.2)
    sched = make(opt)
    for _ in range(steps):
        sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    reference = rates(sched, 6)

    opt2 = make_optimizer(0.1, 0.2)
    sched2 = make(opt2)
    opt2.load_state_dict(npz_round_trip(opt_state, tmp_path))
    sched2.load_state_dict(npz_round_trip(sched_state, tmp_path))
    assert sched2.last_epoch == steps and isinstance(sched2.last_epoch, int)
    np.testing.assert_allclose(rates(sched2, 6), reference, rtol=1e-15)


def test_reduce_on_plateau_state_round_trip(tmp_path):
    opt = make_optimizer(1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1)
    for metric in (5.0, 4.0, 4.5, 4.5):
        sched.step(metric)
    state = npz_round_trip(sched.state_dict(), tmp_path)
    sched2 = ReduceLROnPlateau(make_optimizer(1.0), factor=0.5, patience=2, cooldown=1)
    sched2.load_state_dict(state)
    assert (sched2.best, sched2.num_bad_epochs, sched2.last_epoch) == (4.0, 2, 4)
    sched.step(4.5)
    sched2.step(4.5)
    assert sched.get_last_lr() == sched2.get_last_lr() == [0.5]


def test_resuming_with_last_epoch_needs_initial_lr():
    with pytest.raises(OptimizerConfigError, match="initial_lr"):
        StepLR(make_optimizer(1.0), step_size=2, last_epoch=3)
    # As in PyTorch, constructing with last_epoch keeps the optimizer's (restored) rate, and
    # the following steps continue the schedule from it.
    opt = make_optimizer(cosine_closed_form(1.0, 0.0, 10, 4))
    opt.param_groups[0]["initial_lr"] = 1.0
    sched = CosineAnnealingLR(opt, T_max=10, last_epoch=3)
    assert sched.last_epoch == 4
    assert sched.get_last_lr()[0] == pytest.approx((1 + math.cos(math.pi * 4 / 10)) / 2)
    sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(cosine_closed_form(1.0, 0.0, 10, 5))


@pytest.mark.parametrize("make, words", [
    (lambda opt: StepLR(opt, step_size=0), "step_size"),
    (lambda opt: StepLR(opt, step_size=2.5), "step_size"),
    (lambda opt: ExponentialLR(opt, gamma=-1.0), "gamma"),
    (lambda opt: CosineAnnealingLR(opt, T_max=0), "T_max"),
    (lambda opt: LambdaLR(opt, [lambda e: 1.0] * 2), "2 lr_lambdas"),
    (lambda opt: LambdaLR(opt, 0.5), "callable"),
    (lambda opt: ReduceLROnPlateau(opt, factor=1.0), "factor"),
    (lambda opt: ReduceLROnPlateau(opt, mode="lowest"), "mode"),
    (lambda opt: ReduceLROnPlateau(opt, threshold_mode="pct"), "threshold_mode"),
    (lambda opt: ReduceLROnPlateau(opt, min_lr=[0.0, 0.0]), "min_lr"),
    (lambda opt: ReduceLROnPlateau(opt, patience=-1), "patience"),
    (lambda opt: StepLR(object(), step_size=1), "Optimizer"),
])
def test_invalid_arguments(make, words):
    with pytest.raises(OptimizerConfigError, match=words):
        make(make_optimizer(1.0))


def test_bad_metric_and_bad_state():
    sched = ReduceLROnPlateau(make_optimizer(1.0))
    with pytest.raises(OptimizerConfigError, match="metric"):
        sched.step("loss")
    state = sched.state_dict()
    state["min_lrs"] = [0.0, 0.0]
    with pytest.raises(CheckpointError, match="min_lrs"):
        sched.load_state_dict(state)
    step_state = StepLR(make_optimizer(1.0), step_size=1).state_dict()
    del step_state["last_epoch"]
    with pytest.raises(CheckpointError, match="last_epoch"):
        StepLR(make_optimizer(1.0), step_size=1).load_state_dict(step_state)
