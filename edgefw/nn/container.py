"""Containers: Sequential (PyTorch's varargs or Keras' list) and ModuleList."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from edgefw.errors import ConfigError
from edgefw.nn.module import Module


class Sequential(Module):
    """Apply modules in order. ``Sequential(a, b)``, ``Sequential([a, b])`` (Keras) or
    ``Sequential(OrderedDict(name=module))``; ``add(layer)`` appends, as in Keras.

    >>> from edgefw import nn
    >>> model = nn.Sequential([nn.Flatten(), nn.Dense(128, activation="relu"), nn.Dense(10)])
    """

    def __init__(self, *layers: Any) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], dict):
            for name, layer in layers[0].items():
                self._append(layer, name)
            return
        if len(layers) == 1 and isinstance(layers[0], list | tuple):
            layers = tuple(layers[0])
        for layer in layers:
            self._append(layer)
        # Keras: a first layer given input_shape builds the whole model right away.
        first_shape = getattr(layers[0], "input_shape", None) if layers else None
        if first_shape is not None:
            self.build((None,) + tuple(first_shape))

    def _append(self, layer: Any, name: str | None = None) -> None:
        if not isinstance(layer, Module):
            raise ConfigError(
                f"Sequential takes Modules, got {type(layer).__name__} at position "
                f"{len(self._modules)}"
            )
        self.add_module(name or str(len(self._modules)), layer)

    def add(self, layer: Module) -> None:
        self._append(layer)

    def forward(self, x: Any) -> Any:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, i: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(i, slice):
            return Sequential(mods[i])
        return mods[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    @property
    def layers(self) -> list[Module]:
        return list(self._modules.values())


class ModuleList(Module):
    """A list of modules whose parameters are registered."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> None:
        self.add_module(str(len(self._modules)), module)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
