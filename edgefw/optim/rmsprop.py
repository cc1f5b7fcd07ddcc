"""RMSprop, plain, centered and with momentum."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from edgefw.optim.optimizer import Optimizer, _Workspace, check_number


class RMSprop(Optimizer):
    """RMSprop, with PyTorch's ``torch.optim.RMSprop`` update.

    With ``g`` the gradient::

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v) + eps
        avg = sqrt(v - g_avg**2) + eps,   g_avg = alpha * g_avg + (1 - alpha) * g   (centered)
        b = momentum * b + g / avg;  p = p - lr * b       (momentum > 0)
        p = p - lr * g / avg                              (otherwise)

    State per parameter: ``step``, ``square_avg`` (v), ``momentum_buffer`` (b, with momentum)
    and ``grad_avg`` (g_avg, when centered).

    >>> import numpy as np
    >>> from edgefw.autograd import Parameter
    >>> w = Parameter(np.array([1.0], dtype=np.float32))
    >>> opt = RMSprop([w], lr=0.01, alpha=0.75)
    >>> w.grad = np.array([3.0], dtype=np.float32)
    >>> opt.step()
    >>> w.data  # v = 0.25 * 9, so the step is 0.01 * 3 / 1.5
    array([0.98], dtype=float32)
    """

    state_array_names = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_number("RMSprop lr", group["lr"])
        check_number("RMSprop alpha", group["alpha"], high=1.0)
        check_number("RMSprop eps", group["eps"])
        check_number("RMSprop weight_decay", group["weight_decay"])
        check_number("RMSprop momentum", group["momentum"])

    def _array_state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        names: tuple[str, ...] = ("square_avg",)
        if group["momentum"] > 0:
            names += ("momentum_buffer",)
        if group["centered"]:
            names += ("grad_avg",)
        return names

    def _needs_param_values(self, group: dict[str, Any]) -> bool:
        return group["weight_decay"] != 0

    def _update(self, group: dict[str, Any], param: np.ndarray | None, grad: np.ndarray,
                state: dict[str, Any], step: int, work: _Workspace) -> np.ndarray:
        lr = float(group["lr"])
        alpha = float(group["alpha"])
        momentum = float(group["momentum"])
        weight_decay = float(group["weight_decay"])
        out = work.a
        if weight_decay != 0.0:
            np.multiply(param, weight_decay, out=work.b)
            work.b += grad
            grad = work.b
        square_avg = state["square_avg"]
        square_avg *= alpha
        np.square(grad, out=out)
        out *= 1.0 - alpha
        square_avg += out
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg *= alpha
            np.multiply(grad, 1.0 - alpha, out=out)
            grad_avg += out
            np.square(grad_avg, out=out)
            np.subtract(square_avg, out, out=out)
            np.sqrt(out, out=out)
        else:
            np.sqrt(square_avg, out=out)
        out += float(group["eps"])
        np.divide(grad, out, out=out)
        if momentum > 0.0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += out
            np.multiply(buf, lr, out=out)
        else:
            out *= lr
        return out
