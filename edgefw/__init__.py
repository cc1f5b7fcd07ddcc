"""edgefw: train small networks, trace them to a graph IR, quantize, export and run them.

The top-level names are imported lazily (PEP 562) so that ``import edgefw.ir`` or
``import edgefw.errors`` — what the runtime needs on a device — does not pull in the
autograd engine, the layers or the optimizers.

>>> import edgefw
>>> x = edgefw.tensor([1.0, 2.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
array([2., 4.], dtype=float32)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> (module, attribute); attribute None means the module itself.
_LAZY = {
    "Tensor": ("edgefw.autograd", "Tensor"),
    "Parameter": ("edgefw.autograd", "Parameter"),
    "tensor": ("edgefw.autograd", "tensor"),
    "no_grad": ("edgefw.autograd", "no_grad"),
    "enable_grad": ("edgefw.autograd", "enable_grad"),
    "is_grad_enabled": ("edgefw.autograd", "is_grad_enabled"),
    "zeros": ("edgefw.autograd", "zeros"),
    "ones": ("edgefw.autograd", "ones"),
    "randn": ("edgefw.autograd", "randn"),
    "manual_seed": ("edgefw.random", "manual_seed"),
    "set_num_threads": ("edgefw.ir.primitives.blas", "set_num_threads"),
    "get_num_threads": ("edgefw.ir.primitives.blas", "get_num_threads"),
    "functional": ("edgefw.functional", None),
    "F": ("edgefw.functional", None),
    "nn": ("edgefw.nn", None),
    "optim": ("edgefw.optim", None),
    "data": ("edgefw.data", None),
    "datasets": ("edgefw.datasets", None),
    "callbacks": ("edgefw.callbacks", None),
    "models": ("edgefw.models", None),
    "save": ("edgefw.checkpoint", "save"),
    "load": ("edgefw.checkpoint", "load"),
    "trace": ("edgefw.ir.tracer", "trace"),
    "ir": ("edgefw.ir", None),
    "errors": ("edgefw.errors", None),
    "EdgeFWError": ("edgefw.errors", "EdgeFWError"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'edgefw' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
