"""Fixtures of the training tests."""

from __future__ import annotations

import numpy as np
import pytest

import edgefw


@pytest.fixture(scope="session")
def mnist() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The shipped MNIST, uint8 images and labels, as Keras' load_data() returns them."""
    return edgefw.datasets.load_mnist()
