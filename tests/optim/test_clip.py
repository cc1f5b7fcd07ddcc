"""Gradient clipping by joint norm and by value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgefw.errors import TrainingError
from edgefw.optim import OptimizerConfigError, clip_grad_norm, clip_grad_value
from tests.optim.reference import FakeParam


def params_with(*grads, dtype=np.float64):
    return [FakeParam(np.zeros(np.shape(g)), np.asarray(g, dtype=dtype)) for g in grads]


def test_two_norm_clips_all_gradients_together():
    params = params_with([3.0, 0.0], [[0.0], [4.0]], [12.0])  # joint norm 13
    total = clip_grad_norm(params, max_norm=6.5)
    assert total == pytest.approx(13.0, rel=1e-15)
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(params[0].grad, [3.0 * scale, 0.0], rtol=1e-15)
    np.testing.assert_allclose(params[1].grad, [[0.0], [4.0 * scale]], rtol=1e-15)
    np.testing.assert_allclose(params[2].grad, [12.0 * scale], rtol=1e-15)


def test_below_the_limit_nothing_changes_and_grads_stay_the_same_arrays():
    params = params_with([0.3, -0.4], dtype=np.float32)
    grad = params[0].grad
    assert clip_grad_norm(params, max_norm=1.0) == pytest.approx(0.5, rel=1e-6)
    assert params[0].grad is grad
    np.testing.assert_array_equal(grad, np.array([0.3, -0.4], dtype=np.float32))


@pytest.mark.parametrize("norm_type, expected", [
    (math.inf, 7.0),
    ("inf", 7.0),
    (1.0, 1 + 2 + 7 + 3),
    (3.0, (1 + 8 + 343 + 27) ** (1 / 3)),
])
def test_other_norms(norm_type, expected):
    params = params_with([1.0, -2.0], [-7.0], [3.0])
    total = clip_grad_norm(params, max_norm=1.0, norm_type=norm_type)
    assert total == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(params[1].grad, [-7.0 / (expected + 1e-6)], rtol=1e-12)


def test_float32_matches_a_float64_reference():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(np.float32) for s in [(784, 128), (128,), (10,)]]
    params = params_with(*grads, dtype=np.float32)
    expected = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads))
    total = clip_grad_norm(params, max_norm=1.0)
    assert total == pytest.approx(expected, rel=1e-5)
    clipped = math.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in params))
    assert clipped == pytest.approx(1.0, rel=1e-5)
    assert all(p.grad.dtype == np.float32 for p in params)


def test_parameters_without_gradients_are_skipped():
    params = params_with([3.0, 4.0]) + [FakeParam([1.0])]
    assert clip_grad_norm(params, 1.0) == pytest.approx(5.0)
    assert clip_grad_norm([FakeParam([1.0])], 1.0) == 0.0
    single = params_with([6.0, 8.0])[0]
    assert clip_grad_norm(single, 5.0) == pytest.approx(10.0)  # a lone parameter works too
    np.testing.assert_allclose(single.grad, [3.0, 4.0], rtol=1e-6)


def test_non_finite_norm():
    params = params_with([np.inf, 1.0])
    with pytest.raises(TrainingError, match="inf"):
        clip_grad_norm(params, 1.0, error_if_nonfinite=True)
    assert clip_grad_norm(params_with([np.nan]), 1.0) != clip_grad_norm(params_with([1.0]), 1.0)


def test_clip_grad_value():
    params = params_with([-5.0, 0.5, 5.0], [[2.0, -0.1]])
    grad = params[0].grad
    clip_grad_value(params + [FakeParam([1.0])], 1.0)
    assert params[0].grad is grad
    np.testing.assert_array_equal(grad, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(params[1].grad, [[1.0, -0.1]])


def test_invalid_arguments():
    with pytest.raises(OptimizerConfigError, match="max_norm"):
        clip_grad_norm(params_with([1.0]), -1.0)
    with pytest.raises(OptimizerConfigError, match="norm_type"):
        clip_grad_norm(params_with([1.0]), 1.0, norm_type=0)
    with pytest.raises(OptimizerConfigError, match="clip_value"):
        clip_grad_value(params_with([1.0]), -0.5)
