"""Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from edgefw.optim.optimizer import Optimizer, OptimizerConfigError, _Workspace, check_number


class SGD(Optimizer):
    """Stochastic gradient descent, with PyTorch's ``torch.optim.SGD`` update.

    With ``g`` the gradient, ``lr`` the learning rate, ``mu`` the momentum and ``d`` the
    dampening, each step does::

        g = g + weight_decay * p
        b = g                       (first step)
        b = mu * b + (1 - d) * g    (later steps)
        g = g + mu * b  if nesterov else  b       (when mu != 0)
        p = p - lr * g

    >>> import numpy as np
    >>> from edgefw.autograd import Parameter
    >>> w = Parameter(np.array([1.0], dtype=np.float32))
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> w.grad = np.array([1.0], dtype=np.float32)
    >>> opt.step(); opt.step()
    >>> w.data
    array([0.71], dtype=float32)
    """

    state_array_names = ("momentum_buffer",)

    def __init__(self, params: Iterable[Any], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        check_number("SGD lr", group["lr"])
        momentum = check_number("SGD momentum", group["momentum"])
        dampening = check_number("SGD dampening", group["dampening"], low=-np.inf)
        check_number("SGD weight_decay", group["weight_decay"])
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise OptimizerConfigError(
                f"SGD nesterov momentum requires momentum > 0 and dampening == 0, got "
                f"momentum={momentum}, dampening={dampening}"
            )

    def _array_state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _needs_param_values(self, group: dict[str, Any]) -> bool:
        return group["weight_decay"] != 0

    def _update(self, group: dict[str, Any], param: np.ndarray | None, grad: np.ndarray,
                state: dict[str, Any], step: int, work: _Workspace) -> np.ndarray:
        lr = float(group["lr"])
        momentum = float(group["momentum"])
        weight_decay = float(group["weight_decay"])
        out = work.a
        if weight_decay != 0.0:
            np.multiply(param, weight_decay, out=work.b)
            work.b += grad
            grad = work.b
        if momentum != 0.0:
            buf = state["momentum_buffer"]
            if step == 1:
                np.copyto(buf, grad)
            else:
                buf *= momentum
                dampening = float(group["dampening"])
                if dampening != 0.0:
                    np.multiply(grad, 1.0 - dampening, out=out)
                    buf += out
                else:
                    buf += grad
            if group["nesterov"]:
                np.multiply(buf, momentum, out=out)
                out += grad
                grad = out
            else:
                grad = buf
        np.multiply(grad, lr, out=out)
        return out
