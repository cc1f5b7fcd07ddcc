"""Test helpers: a stand-in parameter and plain-numpy reference updates.

The references are written from PyTorch's documented update rules, term by term, in float64
and without any of the optimizers' in-place tricks, so that they check the optimizers rather
than repeat them.
"""

from __future__ import annotations

import math

import numpy as np


class FakeParam:
    """The part of a Parameter an optimizer uses: ``.data`` and ``.grad``."""

    def __init__(self, data, grad=None):
        self.data = np.array(data)
        self.grad = None if grad is None else np.array(grad)


def make_params(shapes, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [FakeParam(rng.standard_normal(s).astype(dtype)) for s in shapes]


def grad_sequence(shapes, steps, dtype=np.float64, seed=1):
    """``steps`` lists of gradients, one per shape."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]


def run(optimizer, params, grads):
    """Apply ``optimizer`` to ``params`` for each list of gradients; copies of the values."""
    history = []
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = None if g is None else g.copy()
        optimizer.step()
        history.append([p.data.copy() for p in params])
    return history


# ---------------------------------------------------------------- reference updates
def sgd_reference(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p = np.array(p, dtype=np.float64)
    buf = None
    out = []
    for g in grads:
        g = np.array(g, dtype=np.float64) + weight_decay * p
        if momentum != 0:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        out.append(p)
    return out


def adam_reference(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   amsgrad=False, decoupled=False):
    beta1, beta2 = betas
    p = np.array(p, dtype=np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    v_max = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        g = np.array(g, dtype=np.float64)
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - beta2**t)
        else:
            v_hat = v / (1 - beta2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def rmsprop_reference(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                      centered=False):
    p = np.array(p, dtype=np.float64)
    v = np.zeros_like(p)
    g_avg = np.zeros_like(p)
    buf = np.zeros_like(p)
    out = []
    for g in grads:
        g = np.array(g, dtype=np.float64) + weight_decay * p
        v = alpha * v + (1 - alpha) * g**2
        v_tilde = v
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            v_tilde = v - g_avg**2
        if momentum > 0:
            buf = momentum * buf + g / (np.sqrt(v_tilde) + eps)
            p = p - lr * buf
        else:
            p = p - lr * g / (np.sqrt(v_tilde) + eps)
        out.append(p)
    return out


def cosine_closed_form(base_lr, eta_min, t_max, epoch):
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / t_max)) / 2


def npz_round_trip(tree, tmp_path):
    """Write a nested state dict into an .npz file as flat keys and read it back.

    Like a checkpoint writer would: every leaf becomes an array (numbers come back as 0-d
    arrays, lists of numbers as 1-d arrays), dicts become key paths.
    """
    flat = {}

    def flatten(prefix, node):
        if isinstance(node, dict):
            flat[prefix + "#dict"] = np.array(list(map(str, node)))
            for key, value in node.items():
                flatten(f"{prefix}/{key}", value)
        elif isinstance(node, list) and node and isinstance(node[0], dict):
            flat[prefix + "#list"] = np.array(len(node))
            for i, value in enumerate(node):
                flatten(f"{prefix}/{i}", value)
        else:
            flat[prefix] = np.asarray(node)

    flatten("root", tree)
    path = tmp_path / "state.npz"
    np.savez(path, **flat)
    loaded = dict(np.load(path))

    def unflatten(prefix):
        if prefix + "#dict" in loaded:
            return {str(k): unflatten(f"{prefix}/{k}") for k in loaded[prefix + "#dict"]}
        if prefix + "#list" in loaded:
            return [unflatten(f"{prefix}/{i}") for i in range(int(loaded[prefix + "#list"]))]
        return loaded[prefix]

    return unflatten("root")
