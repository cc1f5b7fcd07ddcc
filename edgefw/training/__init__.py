"""Keras-style training: ``compile``/``fit``/``evaluate``/``predict``/``summary``, callbacks,
metrics and the progress bar. ``nn.Module`` exposes all of them as methods.

>>> from edgefw import models
>>> net = models.build("mlp")
>>> net.compile("adam", "cross_entropy", metrics=["accuracy"])
>>> history = net.fit(x_train, y_train, epochs=1)  # doctest: +SKIP
"""

from __future__ import annotations

from edgefw.training.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    History,
    LearningRateScheduler,
    LRSchedulerCallback,
    ModelCheckpoint,
    TerminateOnNaN,
)
from edgefw.training.keras_api import compile_model, evaluate, fit, predict
from edgefw.training.metrics import Metric, get_metric
from edgefw.training.progress import ProgressBar
from edgefw.training.summary import summary

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "History",
    "LRSchedulerCallback",
    "LearningRateScheduler",
    "Metric",
    "ModelCheckpoint",
    "ProgressBar",
    "TerminateOnNaN",
    "compile_model",
    "evaluate",
    "fit",
    "get_metric",
    "predict",
    "summary",
]
