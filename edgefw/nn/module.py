"""Module: the base class of layers and models (PyTorch's API, plus Keras' compile/fit).

>>> from edgefw import nn
>>> class Net(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc1 = nn.Linear(784, 128)
...         self.fc2 = nn.Linear(128, 10)
...     def forward(self, x):
...         return self.fc2(self.fc1(x.flatten(1)).relu())
>>> [name for name, _ in Net().named_parameters()]
['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgefw.autograd import Parameter, Tensor
from edgefw.errors import CheckpointError

# Observers of module calls (the tracer records module paths, summary() output shapes).
# Each has enter(module), exit(module) and optionally output(module, args, output);
# the list is empty in ordinary training, so calling a module costs nothing extra.
_call_observers: list[Any] = []


def as_input(x: Any) -> Any:
    """Model inputs: numpy arrays become tensors; float64 arrays become float32 (as Keras
    does), so ``model(x_train / 255.0)`` trains in float32. Tensors pass unchanged."""
    if isinstance(x, np.ndarray):
        return Tensor(x.astype(np.float32) if x.dtype == np.float64 else x)
    return x


class Module:
    """Base class: assign Parameters, buffers (via ``register_buffer``) and sub-modules as
    attributes and they are found by ``parameters()``, ``state_dict()`` and friends."""

    training: bool

    def __new__(cls, *args: Any, **kwargs: Any) -> Module:
        # Remember the constructor arguments: checkpoints use them to rebuild edgefw's own
        # layers without pickling code.
        obj = object.__new__(cls)
        obj.__dict__["_init_args"] = (args, kwargs)
        return obj

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---------------------------------------------------------------- registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        if name in self._buffers and (value is None or isinstance(value, np.ndarray)):
            self._buffers[name] = value  # e.g. ``self.num_batches_tracked += 1``
            object.__setattr__(self, name, value)
            return
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array: np.ndarray | None) -> None:
        """A non-trainable array saved in the state dict (e.g. BatchNorm running stats)."""
        object.__setattr__(self, name, array)
        self._buffers[name] = array

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        object.__setattr__(self, name, param)
        if param is None:
            self._parameters.pop(name, None)
        else:
            self._parameters[name] = param

    def add_module(self, name: str, module: Module) -> None:
        setattr(self, name, module)

    # ---------------------------------------------------------------- calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args = tuple(as_input(a) for a in args)
        if not _call_observers:
            return self.forward(*args, **kwargs)
        for obs in _call_observers:
            obs.enter(self)
        try:
            out = self.forward(*args, **kwargs)
        finally:
            for obs in reversed(_call_observers):
                obs.exit(self)
        for obs in _call_observers:
            if hasattr(obs, "output"):
                obs.output(self, args, out)
        return out

    # ---------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            children = [(f"{name}.{n}" if name else n, m) for n, m in mod._modules.items()
                        if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mod_name, mod in self.named_modules(prefix):
            for name, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self) -> Iterator[np.ndarray]:
        for _, b in self.named_buffers():
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.data.size for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    # ---------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = np.zeros_like(p.data)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def build(self, input_shape: tuple[int | None, ...]) -> Module:
        """Create lazily sized parameters by running a dummy batch of ``input_shape``
        (``None`` for the batch axis), in eval mode and without recording gradients."""
        from edgefw.autograd import no_grad

        shape = tuple(2 if d is None else int(d) for d in input_shape)
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                self(np.zeros(shape, dtype=np.float32))
        finally:
            self.train(was_training)
        return self

    def apply(self, fn: Callable[[Module], None]) -> Module:
        for m in list(self.modules())[::-1]:
            fn(m)
        return self

    def to_dtype(self, dtype: Any) -> Module:
        """Cast every floating parameter and buffer (``model.double()`` for grad checks)."""
        dtype = np.dtype(dtype)
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.data.dtype.kind == "f":
                    p.data = p.data.astype(dtype)
                    p.grad = None
            for name, b in list(m._buffers.items()):
                if b is not None and b.dtype.kind == "f":
                    m.register_buffer(name, b.astype(dtype))
        return self

    def double(self) -> Module:
        return self.to_dtype(np.float64)

    def float(self) -> Module:
        return self.to_dtype(np.float32)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and buffers by dotted path, as numpy arrays (not copies)."""
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for name, p in self.named_parameters():
            state[name] = p.data
        for name, b in self.named_buffers():
            state[name] = b
        return state

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays into the parameters and buffers; shapes must match exactly.

        Raises CheckpointError naming the entry and both shapes, or listing missing and
        unexpected keys when ``strict``."""
        own = self._state_slots()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise CheckpointError(
                f"state dict does not fit {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        for key, (mod, attr, is_param) in own.items():
            if key not in state:
                continue
            value = np.asarray(state[key].data if isinstance(state[key], Tensor) else state[key])
            current = mod._parameters[attr].data if is_param else mod._buffers[attr]
            if value.shape != current.shape:
                raise CheckpointError(
                    f"parameter '{key}': checkpoint has shape {value.shape}, the model has "
                    f"{current.shape}"
                )
            if is_param:
                mod._parameters[attr].data = value.astype(current.dtype, copy=True)
            else:
                mod.register_buffer(attr, value.astype(current.dtype, copy=True))

    def _state_slots(self) -> dict[str, tuple[Module, str, bool]]:
        slots: dict[str, tuple[Module, str, bool]] = {}
        for mod_name, mod in self.named_modules():
            for attr, p in mod._parameters.items():
                if p is not None:
                    slots[f"{mod_name}.{attr}" if mod_name else attr] = (mod, attr, True)
        for mod_name, mod in self.named_modules():
            for attr, b in mod._buffers.items():
                if b is not None:
                    slots[f"{mod_name}.{attr}" if mod_name else attr] = (mod, attr, False)
        return slots

    # ---------------------------------------------------------------- Keras-style training
    def compile(self, optimizer: Any = "adam", loss: Any = None, metrics: Any = None,
                **kwargs: Any) -> None:
        """Configure training like Keras: ``model.compile("adam",
        "sparse_categorical_crossentropy", metrics=["accuracy"])``."""
        from edgefw.training.keras_api import compile_model

        compile_model(self, optimizer, loss, metrics, **kwargs)

    def fit(self, x: Any = None, y: Any = None, **kwargs: Any) -> Any:
        """Train like Keras; returns a History. See :func:`edgefw.training.keras_api.fit`."""
        from edgefw.training.keras_api import fit

        return fit(self, x, y, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, **kwargs: Any) -> Any:
        from edgefw.training.keras_api import evaluate

        return evaluate(self, x, y, **kwargs)

    def predict(self, x: Any, **kwargs: Any) -> np.ndarray:
        from edgefw.training.keras_api import predict

        return predict(self, x, **kwargs)

    def summary(self, input_shape: Any = None, print_fn: Callable[[str], None] = print) -> str:
        from edgefw.training.summary import summary

        return summary(self, input_shape=input_shape, print_fn=print_fn)

    # ---------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, mod in self._modules.items():
            sub = repr(mod).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n" + "\n".join(lines) + "\n)"
