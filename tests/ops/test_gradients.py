"""Every differentiable op against central finite differences in float64, over several
shapes, broadcasting included, through one helper (tests/helpers.py: check_grad)."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw.functional as F
from tests.helpers import check_grad, positive, randn

BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((5,), ()),
                   ((1, 3), (2, 1))]


@pytest.mark.parametrize("a_shape,b_shape", BROADCAST_PAIRS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_broadcasting(op, a_shape, b_shape):
    fn = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
          "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[op]
    b = positive(*b_shape, seed=1) if op == "div" else randn(*b_shape, seed=1)
    check_grad(fn, [randn(*a_shape), b])


def test_scalar_operands_and_reflected_ops():
    check_grad(lambda a: 2.0 - a * 3.0 + 1.5 / (a * a + 1.0) - (-a), [randn(3, 4)])


@pytest.mark.parametrize("shapes", [((3, 4), ()), ((2, 3), (3,))])
def test_pow(shapes):
    check_grad(lambda a, b: a ** b, [positive(*shapes[0]), randn(*shapes[1], seed=2)])
    check_grad(lambda a: a ** 3, [randn(*shapes[0])])
    check_grad(lambda a: 2.0 ** a, [randn(*shapes[0])])


UNARY = {
    "neg": (lambda x: -x, randn),
    "exp": (lambda x: x.exp(), randn),
    "log": (lambda x: x.log(), positive),
    "sqrt": (lambda x: x.sqrt(), positive),
    "abs": (lambda x: x.abs(), lambda *s: randn(*s, low=0.1)),
    "tanh": (lambda x: x.tanh(), randn),
    "sigmoid": (lambda x: x.sigmoid(), randn),
    "relu": (F.relu, lambda *s: randn(*s, low=0.01)),
    "relu6": (F.relu6, lambda *s: np.clip(randn(*s, low=0.01) * 4, -9, 9) + 0.003),
    "clip": (lambda x: F.clip(x, -0.5, 0.7), lambda *s: randn(*s, low=0.01) + 0.001),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda *s: randn(*s, low=0.01)),
    "gelu": (F.gelu, lambda *s: randn(*s) * 3),
    "softmax": (lambda x: F.softmax(x, -1), randn),
    "softmax0": (lambda x: F.softmax(x, 0), randn),
    "log_softmax": (lambda x: F.log_softmax(x, -1), randn),
    "log_softmax0": (lambda x: F.log_softmax(x, 0), randn),
}


@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4)])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name, shape):
    fn, make = UNARY[name]
    check_grad(fn, [make(*shape)])


REDUCTIONS = [(None, False), (0, False), (1, True), ((0, 2), False), (-1, True)]


@pytest.mark.parametrize("axis,keepdims", REDUCTIONS)
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min", "var"])
def test_reductions(op, axis, keepdims):
    check_grad(lambda x: getattr(x, op)(axis=axis, keepdims=keepdims), [randn(2, 3, 4)])


def test_max_ties_share_gradient():
    from edgefw.autograd import Tensor

    x = Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5])


SHAPE_OPS = {
    "reshape": lambda x: x.reshape(4, 6),
    "reshape_infer": lambda x: x.reshape(-1, 3),
    "permute": lambda x: x.permute(2, 0, 1),
    "transpose": lambda x: x.transpose(0, 2),
    "T": lambda x: x.T,
    "flatten": lambda x: x.flatten(1),
    "unsqueeze_squeeze": lambda x: x.unsqueeze(1).squeeze(1) * x.unsqueeze(-1).squeeze(),
    "getitem_basic": lambda x: x[1:, ::2, None, -1],
    "getitem_ellipsis": lambda x: x[..., 1],
    "getitem_int_array": lambda x: x[np.array([0, 1, 0, 1])],  # repeated rows accumulate
    "getitem_mixed": lambda x: x[:, np.array([2, 0, 2]), 1:3],
    "getitem_bool": lambda x: x[x.data > 0],
    "pad_constant": lambda x: F.pad(x, (1, 2, 0, 1), value=0.5),
    "pad_reflect": lambda x: F.pad(x, (1, 2, 2, 1), mode="reflect"),
    "pad_replicate": lambda x: F.pad(x, (3, 1), mode="replicate"),
    "concat": lambda x: F.concat([x, x * 2, x[:, :1]], axis=1),
    "stack": lambda x: F.stack([x, x.exp()], axis=2),
    "where": lambda x: F.where(x.data > 0, x, x * x),
}


@pytest.mark.parametrize("name", sorted(SHAPE_OPS))
def test_shape_ops(name):
    check_grad(SHAPE_OPS[name], [randn(2, 3, 4)])


def test_where_two_tensors_broadcast():
    check_grad(lambda a, b: F.where(a.data > 0, a, b), [randn(3, 4), randn(4, seed=3)])


MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)),
                 ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4,))]


@pytest.mark.parametrize("a_shape,b_shape", MATMUL_SHAPES)
def test_matmul(a_shape, b_shape):
    check_grad(lambda a, b: a @ b, [randn(*a_shape), randn(*b_shape, seed=1)])


@pytest.mark.parametrize("x_shape", [(5, 4), (2, 3, 4), (4,)])
def test_linear(x_shape):
    check_grad(lambda x, w, b: F.linear(x, w, b), [randn(*x_shape), randn(3, 4, seed=1),
                                                   randn(3, seed=2)])
    check_grad(lambda x, w: F.linear(x, w), [randn(*x_shape), randn(3, 4, seed=1)])


CONV_CASES = [
    dict(x=(2, 3, 7, 6), w=(4, 3, 3, 3)),
    dict(x=(1, 2, 8, 8), w=(3, 2, 3, 2), stride=2, padding=1),
    dict(x=(1, 2, 9, 9), w=(2, 2, 3, 3), dilation=2, padding=(2, 1)),
    dict(x=(2, 4, 6, 6), w=(6, 2, 3, 3), groups=2, padding=1),
    dict(x=(1, 3, 6, 7), w=(3, 1, 3, 3), groups=3, stride=2, padding=1),   # depthwise
    dict(x=(1, 2, 5, 5), w=(4, 1, 3, 3), groups=2, padding=1),             # multiplier 2
    dict(x=(2, 3, 5, 5), w=(4, 3, 1, 1)),                                  # pointwise
    dict(x=(1, 2, 7, 7), w=(2, 2, 3, 3), stride=2, padding="same"),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: str(c))
def test_conv2d(case):
    c = dict(case)
    x_shape, w_shape = c.pop("x"), c.pop("w")
    check_grad(lambda x, w, b: F.conv2d(x, w, b, **c),
               [randn(*x_shape), randn(*w_shape, seed=1), randn(w_shape[0], seed=2)])


POOL_CASES = [
    ("max", dict(kernel_size=2)),
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=2, stride=1, dilation=2)),
    ("max", dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("avg", dict(kernel_size=2)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, count_include_pad=True)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg", dict(kernel_size=2, stride=2, ceil_mode=True)),
]


@pytest.mark.parametrize("kind,kw", POOL_CASES, ids=lambda c: str(c))
def test_pooling(kind, kw):
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    check_grad(lambda x: fn(x, **kw), [randn(2, 2, 7, 7)])


@pytest.mark.parametrize("out", [1, (3, 3), (2, 4)])
def test_adaptive_avg_pool(out):
    check_grad(lambda x: F.adaptive_avg_pool2d(x, out), [randn(2, 3, 7, 8)])


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 3, 4, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(shape, training):
    rm, rv = np.zeros(3), np.ones(3) * 1.5

    def fn(x, w, b):
        return F.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training)

    check_grad(fn, [randn(*shape), randn(3, seed=1), randn(3, seed=2)])


@pytest.mark.parametrize("normalized", [(5,), (4, 5)])
def test_layer_norm(normalized):
    check_grad(lambda x, w, b: F.layer_norm(x, normalized, w, b),
               [randn(3, 4, 5), randn(*normalized, seed=1), randn(*normalized, seed=2)])
    check_grad(lambda x: F.layer_norm(x, normalized), [randn(3, 4, 5)])


def test_embedding_accumulates_repeated_indices():
    idx = np.array([[0, 2, 2], [1, 0, 3]])
    check_grad(lambda w, i: F.embedding(i, w), [randn(4, 3), idx], grad_inputs=[0])


LOSSES = {
    "cross_entropy": lambda z: F.cross_entropy(z, np.array([0, 2, 1, 2])),
    "cross_entropy_sum": lambda z: F.cross_entropy(z, np.array([0, 2, 1, 2]), reduction="sum"),
    "cross_entropy_none": lambda z: F.cross_entropy(z, np.array([0, 2, 1, 2]), reduction="none"),
    "cross_entropy_smooth": lambda z: F.cross_entropy(z, np.array([0, 2, 1, 2]),
                                                      label_smoothing=0.1),
    "cross_entropy_soft": lambda z: F.cross_entropy(z, np.full((4, 3), 1 / 3)),
    "nll": lambda z: F.nll_loss(F.log_softmax(z), np.array([1, 1, 0, 2])),
    "bce": lambda z: F.binary_cross_entropy_with_logits(z, (np.arange(12) % 2).reshape(4, 3)),
    "bce_pos_weight": lambda z: F.binary_cross_entropy_with_logits(
        z, (np.arange(12) % 2).reshape(4, 3), pos_weight=np.array([1.0, 2.0, 3.0])),
    "mse": lambda z: F.mse_loss(z, np.ones((4, 3))),
    "l1": lambda z: F.l1_loss(z, np.full((4, 3), 0.05)),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses(name):
    check_grad(LOSSES[name], [randn(4, 3)])


def test_cross_entropy_spatial():
    target = np.random.default_rng(0).integers(0, 3, (2, 4, 5))
    check_grad(lambda z: F.cross_entropy(z, target), [randn(2, 3, 4, 5)])


def test_cross_entropy_value_matches_log_softmax_definition():
    z = randn(5, 4)
    t = np.array([3, 0, 1, 1, 2])
    loss = F.cross_entropy(z, t, label_smoothing=0.2).item()
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    target = np.full((5, 4), 0.2 / 4)
    target[np.arange(5), t] += 0.8
    assert loss == pytest.approx(-(target * logp).sum(1).mean(), rel=1e-12)


def test_composed_mlp_gradient():
    def mlp(x, w1, b1, w2):
        return F.log_softmax(F.gelu(F.linear(x, w1, b1)) @ w2.T)

    check_grad(mlp, [randn(3, 5), randn(4, 5, seed=1), randn(4, seed=2), randn(2, 4, seed=3)])
