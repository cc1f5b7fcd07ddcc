"""The global random generator used for initialisation, dropout and unseeded shuffling.

>>> import edgefw
>>> edgefw.manual_seed(0)
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Reseed edgefw's global generator so that runs are reproducible."""
    global _generator
    _generator = np.random.default_rng(seed)


def generator() -> np.random.Generator:
    """The global generator (replaced, not mutated, by :func:`manual_seed`)."""
    return _generator


def get_state() -> dict:
    """The global generator's state, as a plain dict (for checkpoints)."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    """Restore a state returned by :func:`get_state`."""
    _generator.bit_generator.state = state
