"""Keras-style training callbacks (``from edgefw.callbacks import EarlyStopping``)."""

from __future__ import annotations

from edgefw.training.callbacks import *  # noqa: F403
from edgefw.training.callbacks import __all__  # noqa: F401
