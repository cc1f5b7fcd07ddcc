"""Optimizers, learning-rate schedulers and gradient clipping, with PyTorch's semantics.

>>> import numpy as np
>>> from edgefw import optim
>>> from edgefw.autograd import Parameter
>>> w = Parameter(np.zeros(3, dtype=np.float32))
>>> opt = optim.Adam([w], lr=1e-3)
>>> sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
>>> w.grad = np.ones(3, dtype=np.float32)
>>> round(optim.clip_grad_norm([w], max_norm=1.0), 4)
1.7321
>>> opt.step(); sched.step(); opt.zero_grad()
"""

from __future__ import annotations

from edgefw.optim import lr_scheduler
from edgefw.optim.adam import Adam, AdamW
from edgefw.optim.clip import clip_grad_norm, clip_grad_value
from edgefw.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    ReduceLROnPlateau,
    StepLR,
)
from edgefw.optim.optimizer import Optimizer, OptimizerConfigError
from edgefw.optim.rmsprop import RMSprop
from edgefw.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "Optimizer",
    "OptimizerConfigError",
    "RMSprop",
    "ReduceLROnPlateau",
    "StepLR",
    "clip_grad_norm",
    "clip_grad_value",
    "lr_scheduler",
]
