"""Adam and AdamW (Adam with decoupled weight decay)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from edgefw.optim.optimizer import Optimizer, OptimizerConfigError, _Workspace, check_number


class Adam(Optimizer):
    """Adam, with PyTorch's ``torch.optim.Adam`` update.

    With ``g`` the gradient and ``t`` the step (from 1)::

        g = g + weight_decay * p                      (Adam; AdamW decays p instead)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v); v = v_max              (amsgrad)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The last line is evaluated in the equal form of Kingma & Ba's Algorithm 1 footnote,
    ``lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps * sqrt(1 - beta2**t))``,
    which saves one pass over the parameter. State per parameter: ``step``, ``exp_avg`` (m),
    ``exp_avg_sq`` (v) and, with amsgrad, ``max_exp_avg_sq``; all in the parameter's dtype.

    >>> import numpy as np
    >>> from edgefw.autograd import Parameter
    >>> w = Parameter(np.array([1.0, -1.0], dtype=np.float32))
    >>> opt = Adam([w], lr=0.1)
    >>> w.grad = np.array([0.5, -2.0], dtype=np.float32)
    >>> opt.step()
    >>> w.data.round(4)  # the first step moves each weight by lr against its gradient's sign
    array([ 0.9, -0.9], dtype=float32)
    """

    state_array_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _decoupled = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        check_number(f"{name} lr", group["lr"])
        check_number(f"{name} eps", group["eps"])
        check_number(f"{name} weight_decay", group["weight_decay"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise OptimizerConfigError(f"{name} betas must be a pair of numbers, got {betas!r}")
        for i, beta in enumerate(betas):
            check_number(f"{name} betas[{i}]", beta, high=1.0, high_open=True)
        group["betas"] = tuple(betas)

    def _array_state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        if group["amsgrad"]:
            return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        return ("exp_avg", "exp_avg_sq")

    def _needs_param_values(self, group: dict[str, Any]) -> bool:
        return not self._decoupled and group["weight_decay"] != 0

    def _decoupled_decay(self, group: dict[str, Any]) -> float | None:
        weight_decay = float(group["weight_decay"])
        if not self._decoupled or weight_decay == 0.0:
            return None
        return 1.0 - float(group["lr"]) * weight_decay

    def _update(self, group: dict[str, Any], param: np.ndarray | None, grad: np.ndarray,
                state: dict[str, Any], step: int, work: _Workspace) -> np.ndarray:
        beta1, beta2 = (float(b) for b in group["betas"])
        lr = float(group["lr"])
        eps = float(group["eps"])
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        out = work.a
        if param is not None:  # coupled (L2) weight decay
            np.multiply(param, float(group["weight_decay"]), out=work.b)
            work.b += grad
            grad = work.b
        exp_avg *= beta1
        np.multiply(grad, 1.0 - beta1, out=out)
        exp_avg += out
        exp_avg_sq *= beta2
        np.square(grad, out=out)
        out *= 1.0 - beta2
        exp_avg_sq += out
        second_moment = exp_avg_sq
        if group["amsgrad"]:
            second_moment = state["max_exp_avg_sq"]
            np.maximum(second_moment, exp_avg_sq, out=second_moment)
        # Python floats: scalars stay in the parameter's dtype (NEP 50), nothing is upcast.
        bias_correction1 = 1.0 - beta1**step
        bias_correction2_sqrt = math.sqrt(1.0 - beta2**step)
        np.sqrt(second_moment, out=out)
        out += eps * bias_correction2_sqrt
        np.divide(exp_avg, out, out=out)
        out *= lr * bias_correction2_sqrt / bias_correction1
        return out


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``).

    Before the Adam update each step multiplies the parameter by ``1 - lr * weight_decay``
    instead of adding ``weight_decay * p`` to the gradient.

    >>> import numpy as np
    >>> from edgefw.autograd import Parameter
    >>> w = Parameter(np.array([1.0], dtype=np.float32))
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = np.array([0.0], dtype=np.float32)
    >>> opt.step()
    >>> w.data  # a zero gradient leaves only the decay: 1 * (1 - 0.1 * 0.5)
    array([0.95], dtype=float32)
    """

    _decoupled = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
