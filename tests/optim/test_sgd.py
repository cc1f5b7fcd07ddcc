"""SGD against hand-computed updates and the reference formulas."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.optim import SGD, OptimizerConfigError
from edgefw.optim.optimizer import PACK_MAX_NUMEL
from tests.optim.reference import FakeParam, grad_sequence, make_params, run, sgd_reference

# One parameter above the packing threshold (updated alone) and small ones (packed together).
SHAPES = [(300, 250), (7,), (3, 4), ()]
assert 300 * 250 > PACK_MAX_NUMEL


def test_plain_sgd_by_hand():
    p = FakeParam([1.0, -2.0])
    opt = SGD([p], lr=0.1)
    for expected in ([0.95, -1.8], [0.90, -1.6], [0.85, -1.4]):
        p.grad = np.array([0.5, -2.0])
        opt.step()
        np.testing.assert_allclose(p.data, expected, rtol=0, atol=1e-15)


def test_momentum_by_hand():
    # buf: 1, 0.9 * 1 + 1 = 1.9, 0.9 * 1.9 + 1 = 2.71; p -= 0.1 * buf
    p = FakeParam([1.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    for expected in (0.9, 0.71, 0.439):
        p.grad = np.array([1.0])
        opt.step()
        np.testing.assert_allclose(p.data, [expected], rtol=1e-14)


def test_nesterov_and_dampening_by_hand():
    # nesterov: step uses g + mu * buf; buf 1 -> 1.5 -> 1.75 with mu = 0.5
    p = FakeParam([0.0])
    opt = SGD([p], lr=1.0, momentum=0.5, nesterov=True)
    for expected in (-1.5, -3.25, -5.125):
        p.grad = np.array([1.0])
        opt.step()
        np.testing.assert_allclose(p.data, [expected], rtol=1e-14)
    # dampening 0.5: buf = g at the first step, then 0.5 * buf + 0.5 * g -> 1, 1, 1
    q = FakeParam([0.0])
    opt = SGD([q], lr=1.0, momentum=0.5, dampening=0.5)
    for expected in (-1.0, -2.0, -3.0):
        q.grad = np.array([1.0])
        opt.step()
        np.testing.assert_allclose(q.data, [expected], rtol=1e-14)


def test_weight_decay_by_hand():
    # g + wd * p = 1 + 0.5 * 2 = 2; p = 2 - 0.1 * 2 = 1.8; then 1 + 0.9 = 1.9 -> 1.61
    p = FakeParam([2.0])
    opt = SGD([p], lr=0.1, weight_decay=0.5)
    for expected in (1.8, 1.61):
        p.grad = np.array([1.0])
        opt.step()
        np.testing.assert_allclose(p.data, [expected], rtol=1e-14)


@pytest.mark.parametrize("config", [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.05, momentum=0.9, weight_decay=0.01),
    dict(lr=0.02, weight_decay=0.1, momentum=0.5, nesterov=True),
])
def test_matches_reference_over_three_steps(config):
    params = make_params(SHAPES)
    start = [p.data.copy() for p in params]
    grads = grad_sequence(SHAPES, 3)
    history = run(SGD(params, **config), params, grads)
    for i in range(len(SHAPES)):
        expected = sgd_reference(start[i], [g[i] for g in grads], **config)
        for step in range(3):
            np.testing.assert_allclose(history[step][i], expected[step], rtol=1e-12, atol=1e-14)


def test_float32_stays_float32_and_updates_in_place():
    params = make_params(SHAPES, dtype=np.float32)
    arrays = [p.data for p in params]
    start = [p.data.astype(np.float64) for p in params]
    grads = grad_sequence(SHAPES, 3, dtype=np.float32)
    opt = SGD(params, lr=0.05, momentum=0.9)
    run(opt, params, grads)
    for i, p in enumerate(params):
        assert p.data is arrays[i] and p.data.dtype == np.float32
        assert opt.state[p]["momentum_buffer"].dtype == np.float32
        expected = sgd_reference(start[i], [g[i] for g in grads], lr=0.05, momentum=0.9)[-1]
        np.testing.assert_allclose(p.data, expected, rtol=1e-5, atol=1e-6)


def test_parameters_without_grad_are_skipped():
    a, b = FakeParam([1.0]), FakeParam([1.0])
    opt = SGD([a, b], lr=0.5, momentum=0.9)
    a.grad = np.array([1.0])
    opt.step()
    assert b.data[0] == 1.0 and not opt.state.get(b)
    b.grad = np.array([1.0])
    opt.step()  # b's first momentum step: buf = g, a's second: buf = 1.9
    np.testing.assert_allclose([a.data[0], b.data[0]], [1.0 - 0.5 - 0.95, 0.5], rtol=1e-14)


def test_param_groups_override_defaults():
    a, b = FakeParam([1.0]), FakeParam([1.0])
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.0)
    c = FakeParam([1.0])
    opt.add_param_group({"params": c, "momentum": 0.9})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.9


def test_zero_grad():
    a, b = FakeParam([1.0], [2.0]), FakeParam([1.0], [3.0])
    opt = SGD([a, b], lr=0.1)
    grad_a = a.grad
    opt.zero_grad(set_to_none=False)
    assert a.grad is grad_a and a.grad[0] == 0.0 and b.grad[0] == 0.0
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_closure_result_is_returned():
    p = FakeParam([1.0])
    opt = SGD([p], lr=0.1)

    def closure():
        p.grad = np.array([1.0])
        return 42.0

    assert opt.step(closure) == 42.0
    assert p.data[0] == pytest.approx(0.9)


@pytest.mark.parametrize("kwargs, words", [
    (dict(lr=-0.1), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(lr="0.1"), "lr"),
    (dict(lr=0.1, momentum=-1), "momentum"),
    (dict(lr=0.1, weight_decay=-1e-4), "weight_decay"),
    (dict(lr=0.1, nesterov=True), "nesterov"),
    (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening"),
])
def test_invalid_hyper_parameters(kwargs, words):
    with pytest.raises(OptimizerConfigError, match=words) as info:
        SGD([FakeParam([1.0])], **kwargs)
    assert isinstance(info.value, ValueError)


def test_invalid_params():
    with pytest.raises(OptimizerConfigError, match="empty"):
        SGD([], lr=0.1)
    with pytest.raises(OptimizerConfigError, match="single parameter"):
        SGD(FakeParam([1.0]), lr=0.1)
    with pytest.raises(OptimizerConfigError, match="parameter 1"):
        SGD([FakeParam([1.0]), np.zeros(3)], lr=0.1)
    with pytest.raises(OptimizerConfigError, match="int64"):
        SGD([FakeParam(np.array([1], dtype=np.int64))], lr=0.1)
    frozen = FakeParam([1.0])
    frozen.data.flags.writeable = False
    with pytest.raises(OptimizerConfigError, match="read-only"):
        SGD([frozen], lr=0.1)
    with pytest.raises(OptimizerConfigError, match="model.parameters"):
        SGD(object(), lr=0.1)
    p = FakeParam([1.0])
    with pytest.raises(OptimizerConfigError, match="more than once"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(OptimizerConfigError, match="set"):
        SGD([{"params": {p}}], lr=0.1)


def test_gradient_shape_mismatch_names_the_parameter():
    from edgefw.errors import ShapeError

    params = [FakeParam(np.zeros(3)), FakeParam(np.zeros((2, 2)))]
    opt = SGD(params, lr=0.1)
    params[0].grad = np.zeros(3)
    params[1].grad = np.zeros(4)
    with pytest.raises(ShapeError, match=r"parameter 1 has shape \(2, 2\).*\(4,\)"):
        opt.step()
