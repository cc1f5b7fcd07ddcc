"""Models and data shared by the training tests."""

from __future__ import annotations

import numpy as np

import edgefw
from edgefw import nn


def brief_mlp(seed: int = 0, softmax: bool = True) -> nn.Module:
    """The brief's Keras model: Flatten(28x28) -> Dense(128, relu) -> Dense(10, softmax)."""
    edgefw.manual_seed(seed)
    return nn.Sequential([
        nn.Flatten(input_shape=(28, 28)),
        nn.Dense(128, activation="relu"),
        nn.Dense(10, activation="softmax" if softmax else None),
    ])


def weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


def assert_same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def line_problem(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """x in [-1, 1] and y = 2x: a one-weight regression."""
    x = np.random.default_rng(seed).uniform(-1, 1, size=(n, 1)).astype(np.float32)
    return x, 2 * x


def line_model(lr: float = 0.05) -> nn.Module:
    """Linear(1, 1) starting at w = b = 0, compiled with plain SGD on MSE."""
    model = nn.Linear(1, 1)
    model.weight.data[...] = 0.0
    model.bias.data[...] = 0.0
    model.compile(edgefw.optim.SGD(model.parameters(), lr=lr), "mse")
    return model
