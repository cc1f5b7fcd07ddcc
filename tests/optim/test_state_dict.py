"""Optimizer state dicts: plain values, bit-identical resumption, clear errors on mismatch."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import CheckpointError
from edgefw.optim import SGD, Adam, AdamW, RMSprop
from tests.optim.reference import FakeParam, grad_sequence, make_params, npz_round_trip, run

SHAPES = [(300, 250), (7,), (3, 4), (), (2, 3)]

CONFIGS = [
    (SGD, dict(lr=0.05)),
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    (Adam, dict(lr=1e-2)),
    (Adam, dict(lr=1e-2, weight_decay=1e-2, amsgrad=True)),
    (AdamW, dict(lr=1e-2, amsgrad=True)),
    (RMSprop, dict(lr=1e-3)),
    (RMSprop, dict(lr=1e-3, momentum=0.9, centered=True, weight_decay=1e-3)),
]


def two_groups(cls, config, params):
    """Two groups with different rates, so group hyper-parameters are saved per group."""
    return cls([{"params": params[:2]}, {"params": params[2:], "lr": config["lr"] / 2}],
               **config)


def assert_plain(node):
    if isinstance(node, dict):
        assert all(isinstance(k, str) for k in node)
        for value in node.values():
            assert_plain(value)
    elif isinstance(node, list):
        for value in node:
            assert_plain(value)
    else:
        assert isinstance(node, (np.ndarray, bool, int, float)), type(node)


@pytest.mark.parametrize("cls, config", CONFIGS, ids=lambda c: getattr(c, "__name__", ""))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resuming_from_a_saved_state_continues_bit_for_bit(cls, config, dtype, tmp_path):
    grads = grad_sequence(SHAPES, 7, dtype=dtype)
    grads[1][3] = None  # a parameter that misses a step has its own step count

    params = make_params(SHAPES, dtype=dtype)
    opt = two_groups(cls, config, params)
    run(opt, params, grads[:4])
    saved_values = [p.data.copy() for p in params]
    saved_state = opt.state_dict()
    assert_plain(saved_state)
    reference = run(opt, params, grads[4:])  # the uninterrupted run

    # The resumed optimizer has run a few steps of its own first: loading must replace all
    # of that state (and the flat buffers small parameters share).
    resumed_params = make_params(SHAPES, dtype=dtype, seed=5)
    resumed = two_groups(cls, config, resumed_params)
    run(resumed, resumed_params, grad_sequence(SHAPES, 2, dtype=dtype, seed=6))
    for p, value in zip(resumed_params, saved_values, strict=True):
        p.data[...] = value
    resumed.param_groups[0]["lr"] = 123.0  # must be overwritten by the saved value
    resumed.load_state_dict(npz_round_trip(saved_state, tmp_path))
    continued = run(resumed, resumed_params, grads[4:])
    for step_ref, step_new in zip(reference, continued, strict=True):
        for ref, new in zip(step_ref, step_new, strict=True):
            assert new.dtype == dtype
            np.testing.assert_array_equal(new, ref)


def test_state_dict_structure():
    params = make_params([(3,), (2, 2)])
    opt = Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.5}], betas=(0.8, 0.9))
    params[0].grad = np.ones(3)
    opt.step()
    state = opt.state_dict()
    assert state["param_groups"] == [
        {"lr": 1e-3, "betas": [0.8, 0.9], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
         "params": [0]},
        {"lr": 0.5, "betas": [0.8, 0.9], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
         "params": [1]},
    ]
    assert set(state["state"]) == {"0"}  # parameter 1 has no gradient yet, so no state
    entry = state["state"]["0"]
    assert entry["step"] == 1 and set(entry) == {"step", "exp_avg", "exp_avg_sq"}
    np.testing.assert_allclose(entry["exp_avg"], np.full(3, 0.2))
    entry["exp_avg"][:] = 99.0  # a copy: changing it leaves the optimizer alone
    assert opt.state[params[0]]["exp_avg"][0] == pytest.approx(0.2)


def test_loaded_state_is_a_copy_and_betas_come_back_as_a_tuple():
    params = make_params([(3,)])
    opt = Adam(params)
    params[0].grad = np.ones(3)
    opt.step()
    state = opt.state_dict()
    other = Adam([FakeParam(np.zeros(3))])
    other.load_state_dict(state)
    state["state"]["0"]["exp_avg"][:] = 5.0
    assert other.state[other.param_groups[0]["params"][0]]["exp_avg"][0] == pytest.approx(0.1)
    assert other.param_groups[0]["betas"] == (0.9, 0.999)


def trained_adam(shapes):
    params = [FakeParam(np.zeros(s)) for s in shapes]
    opt = Adam(params)
    for p in params:
        p.grad = np.ones(p.data.shape)
    opt.step()
    return opt


def test_shape_mismatch_names_parameter_and_both_shapes():
    state = trained_adam([(4,), (3, 5)]).state_dict()
    target = Adam([FakeParam(np.zeros(4)), FakeParam(np.zeros((5, 3)))])
    before = target.state_dict()
    with pytest.raises(CheckpointError, match=r"of parameter 1 has shape \(3, 5\) in the "
                                              r"checkpoint, but the parameter has shape \(5, 3\)"):
        target.load_state_dict(state)
    assert target.state_dict() == before  # nothing was half-loaded


@pytest.mark.parametrize("edit, words", [
    (lambda s: s["param_groups"].append(dict(s["param_groups"][0])), "2 parameter groups"),
    (lambda s: s["param_groups"][0]["params"].pop(), "group 0 has 1 parameters"),
    (lambda s: s["state"].update({"7": s["state"]["0"]}), "parameter 7"),
    (lambda s: s["state"]["0"].update(momentum_buffer=np.zeros(4)), "momentum_buffer"),
    (lambda s: s["state"]["0"].pop("exp_avg_sq"), "lacks exp_avg_sq"),
    (lambda s: s["param_groups"][0].update(lr=-1.0), "lr"),
    (lambda s: s.pop("state"), "'state'"),
])
def test_mismatched_state_is_rejected(edit, words):
    state = trained_adam([(4,), (3,)]).state_dict()
    edit(state)
    with pytest.raises(CheckpointError, match=words):
        Adam([FakeParam(np.zeros(4)), FakeParam(np.zeros(3))]).load_state_dict(state)


def test_state_of_another_optimizer_type_is_rejected():
    params = [FakeParam(np.zeros(3))]
    sgd = SGD(params, lr=0.1, momentum=0.9)
    params[0].grad = np.ones(3)
    sgd.step()
    with pytest.raises(CheckpointError, match="Adam does not keep"):
        Adam([FakeParam(np.zeros(3))]).load_state_dict(sgd.state_dict())


@pytest.mark.parametrize("cls, config", CONFIGS, ids=lambda c: getattr(c, "__name__", ""))
def test_packing_small_parameters_changes_no_bit(cls, config, monkeypatch):
    # Small parameters share flat buffers; the result must equal one-by-one updates exactly.
    import edgefw.optim.optimizer as optimizer_module

    grads = grad_sequence(SHAPES, 4, dtype=np.float32)
    grads[2][1] = None
    packed_params = make_params(SHAPES, dtype=np.float32)
    packed = run(two_groups(cls, config, packed_params), packed_params, grads)
    monkeypatch.setattr(optimizer_module, "PACK_MAX_NUMEL", -1)
    single_params = make_params(SHAPES, dtype=np.float32)
    single = run(two_groups(cls, config, single_params), single_params, grads)
    for step_packed, step_single in zip(packed, single, strict=True):
        for a, b in zip(step_packed, step_single, strict=True):
            np.testing.assert_array_equal(a, b)


def test_mixed_dtypes_in_one_group():
    params = [FakeParam(np.ones(3, np.float32)), FakeParam(np.ones(3, np.float64)),
              FakeParam(np.ones(2, np.float32)), FakeParam(np.ones(2, np.float64))]
    opt = Adam(params, lr=0.1, eps=0.0)
    for p in params:
        p.grad = np.full(p.data.shape, 2.0, p.data.dtype)
    opt.step()
    for p in params:
        assert p.data.dtype == opt.state[p]["exp_avg"].dtype
        np.testing.assert_allclose(p.data, 0.9, rtol=1e-6)
