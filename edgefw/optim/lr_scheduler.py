"""Learning-rate schedulers with PyTorch's semantics (``torch.optim.lr_scheduler``).

A scheduler sets ``group["lr"]`` of its optimizer's parameter groups. Creating one records
each group's ``initial_lr`` and counts as the first call of ``step()`` (epoch 0); call
``step()`` again after each epoch (or batch), after ``optimizer.step()``. The chainable ones
(:class:`StepLR`, :class:`ExponentialLR`, :class:`CosineAnnealingLR`) compute the new rate
from the current ``group["lr"]`` exactly as PyTorch does, so they compose with rates set
elsewhere; :class:`ReduceLROnPlateau` is stepped with the monitored metric instead.

``state_dict()`` holds only numbers and lists of numbers (the lambdas of :class:`LambdaLR`
and the mode strings of :class:`ReduceLROnPlateau` come from the constructor, not the file).

>>> import numpy as np
>>> from edgefw.optim import SGD
>>> from edgefw.autograd import Parameter
>>> opt = SGD([Parameter(np.zeros(1, dtype=np.float32))], lr=1.0)
>>> sched = StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(5):
...     lrs.append(sched.get_last_lr()[0])
...     sched.step()
>>> lrs
[1.0, 1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from edgefw.errors import CheckpointError
from edgefw.optim.optimizer import Optimizer, OptimizerConfigError, check_number, to_plain


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise OptimizerConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


class LRScheduler:
    """Base class: ``step()`` advances ``last_epoch`` and sets the rates from :meth:`get_lr`."""

    # Attributes saved by state_dict() besides the ones every scheduler has.
    _config_keys: tuple[str, ...] = ()
    _state_keys: tuple[str, ...] = ("last_epoch", "_step_count", "base_lrs", "_last_lr")

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise OptimizerConfigError(
                f"{type(self).__name__} needs an edgefw Optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        last_epoch = _check_int(f"{type(self).__name__} last_epoch", last_epoch, -1)
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise OptimizerConfigError(
                    f"param_groups[{i}] has no 'initial_lr': resuming a schedule with "
                    f"last_epoch={last_epoch} needs the optimizer state it was saved with"
                )
        self.base_lrs = [float(group["initial_lr"]) for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The rates for the current ``last_epoch`` (called by :meth:`step`)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set each group's ``lr``."""
        groups = self.optimizer.param_groups
        if len(groups) != len(self.base_lrs):
            raise OptimizerConfigError(
                f"{type(self).__name__} was created for {len(self.base_lrs)} parameter groups, "
                f"the optimizer now has {len(groups)}"
            )
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in groups]

    def get_last_lr(self) -> list[float]:
        """The rates set by the last :meth:`step` (or the constructor), one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Numbers and lists of numbers: the schedule's position and its settings."""
        return {key: to_plain(getattr(self, key)) for key in self._state_keys + self._config_keys}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict` (values may be numpy scalars/arrays)."""
        if not isinstance(state_dict, dict):
            raise CheckpointError(f"a {type(self).__name__} state must be a dict")
        values = {}
        for key in self._state_keys + self._config_keys:
            if key not in state_dict:
                raise CheckpointError(f"{type(self).__name__} state lacks '{key}'")
            values[key] = to_plain(state_dict[key])
        groups = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr", "min_lrs"):
            value = values.get(key)
            if key in values and (not isinstance(value, list) or len(value) != groups):
                raise CheckpointError(
                    f"{type(self).__name__} state '{key}' has {value!r}; the optimizer has "
                    f"{groups} parameter groups"
                )
        self.__dict__.update(values)


class LambdaLR(LRScheduler):
    """``lr = initial_lr * lr_lambda(epoch)``, one function for all groups or one per group.

    >>> sched = LambdaLR(opt, lambda epoch: 0.9 ** epoch)  # doctest: +SKIP
    """

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
                 last_epoch: int = -1) -> None:
        groups = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 0
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                raise OptimizerConfigError(
                    f"LambdaLR got {len(lr_lambda)} lr_lambdas for {groups} parameter groups"
                )
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise OptimizerConfigError(f"LambdaLR lr_lambda must be callable, got {fn!r}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs,
                                                                strict=True)]


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs.

    >>> sched = StepLR(opt, step_size=30, gamma=0.1)  # doctest: +SKIP
    """

    _config_keys = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.step_size = _check_int("StepLR step_size", step_size, 1)
        self.gamma = check_number("StepLR gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every epoch.

    >>> sched = ExponentialLR(opt, gamma=0.95)  # doctest: +SKIP
    """

    _config_keys = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = check_number("ExponentialLR gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self._is_initial:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from ``initial_lr`` down to ``eta_min`` over ``T_max`` epochs.

    ``lr(t) = eta_min + (initial_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``, computed
    recursively from the current rate as PyTorch does (and rising again after ``T_max``).

    >>> sched = CosineAnnealingLR(opt, T_max=100, eta_min=1e-5)  # doctest: +SKIP
    """

    _config_keys = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1) -> None:
        self.T_max = _check_int("CosineAnnealingLR T_max", T_max, 1)
        self.eta_min = check_number("CosineAnnealingLR eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups, epoch, t_max, eta_min = (self.optimizer.param_groups, self.last_epoch,
                                         self.T_max, self.eta_min)
        if self._is_initial:
            return [group["lr"] for group in groups]
        if (epoch - 1 - t_max) % (2 * t_max) == 0:  # the minimum: cos is 0/0 in the ratio
            return [group["lr"] + (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base, group in zip(self.base_lrs, groups, strict=True)]
        ratio = (1 + math.cos(math.pi * epoch / t_max)) / (1 + math.cos(math.pi * (epoch - 1)
                                                                        / t_max))
        return [ratio * (group["lr"] - eta_min) + eta_min for group in groups]


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rate by ``factor`` when a metric stops improving for ``patience`` epochs.

    ``step(metric)`` after each validation. In ``"min"`` mode an epoch improves on the best
    value if ``metric < best * (1 - threshold)`` (``"rel"``) or ``metric < best - threshold``
    (``"abs"``); ``"max"`` mode mirrors it. After more than ``patience`` epochs without
    improvement each group's rate becomes ``max(lr * factor, min_lr)`` (changes smaller than
    ``eps`` are skipped), then ``cooldown`` epochs pass before bad epochs count again.

    >>> sched = ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)  # doctest: +SKIP
    >>> sched.step(val_loss)  # doctest: +SKIP
    """

    _config_keys = ("factor", "patience", "threshold", "cooldown", "min_lrs", "eps")
    _state_keys = ("last_epoch", "_last_lr", "best", "num_bad_epochs", "cooldown_counter")

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | Sequence[float] = 0.0,
                 eps: float = 1e-8) -> None:
        if not isinstance(optimizer, Optimizer):
            raise OptimizerConfigError(
                f"ReduceLROnPlateau needs an edgefw Optimizer, got {type(optimizer).__name__}"
            )
        if mode not in ("min", "max"):
            raise OptimizerConfigError(f"ReduceLROnPlateau mode must be 'min' or 'max', got "
                                       f"{mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise OptimizerConfigError(f"ReduceLROnPlateau threshold_mode must be 'rel' or "
                                       f"'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        groups = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != groups:
                raise OptimizerConfigError(
                    f"ReduceLROnPlateau got {len(min_lr)} min_lr values for {groups} groups"
                )
            min_lrs = list(min_lr)
        else:
            min_lrs = [min_lr] * groups
        self.min_lrs = [check_number("ReduceLROnPlateau min_lr", v) for v in min_lrs]
        self.factor = check_number("ReduceLROnPlateau factor", factor, high=1.0, high_open=True)
        self.patience = _check_int("ReduceLROnPlateau patience", patience, 0)
        self.cooldown = _check_int("ReduceLROnPlateau cooldown", cooldown, 0)
        self.threshold = check_number("ReduceLROnPlateau threshold", threshold)
        self.eps = check_number("ReduceLROnPlateau eps", eps)
        self.mode, self.threshold_mode = mode, threshold_mode
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def is_better(self, metric: float, best: float) -> bool:
        """Whether ``metric`` improves significantly on ``best``."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return metric < best * (1.0 - self.threshold)
            return metric < best - self.threshold
        if self.threshold_mode == "rel":
            return metric > best * (self.threshold + 1.0)
        return metric > best + self.threshold

    def step(self, metrics: Any) -> None:  # type: ignore[override]
        """Record one epoch's metric and reduce the rates if it has plateaued."""
        try:
            current = float(metrics)
        except (TypeError, ValueError) as err:
            raise OptimizerConfigError(
                f"ReduceLROnPlateau.step needs the metric as a number, got {metrics!r}"
            ) from err
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            raise OptimizerConfigError(
                f"ReduceLROnPlateau has {len(self.min_lrs)} min_lr values, the optimizer now "
                f"has {len(groups)} parameter groups"
            )
        for group, min_lr in zip(groups, self.min_lrs, strict=True):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr


__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "ReduceLROnPlateau",
    "StepLR",
]
