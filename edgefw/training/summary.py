"""``model.summary()``: Keras' table of layers, output shapes and parameter counts.

Output shapes come from running a dummy batch of zeros through the model (eval mode, no
gradients) while an observer of module calls records each layer's output. The input shape
is ``input_shape`` (one sample, without the batch axis: ``(28, 28)`` or ``(1, 28, 28)``),
else the ``input_shape=`` given to the first layer Keras-style, else the shape of the data
the model was last fitted on. Without one the table lists the parameters only. Buffers such
as BatchNorm's running statistics count as non-trainable parameters, as in Keras.

>>> from edgefw import nn
>>> model = nn.Sequential([nn.Flatten(input_shape=(28, 28)),
...                        nn.Dense(128, activation="relu"), nn.Dense(10)])
>>> text = model.summary(print_fn=lambda line: None)
>>> "Total params: 101,770" in text
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgefw.autograd import Tensor, no_grad
from edgefw.errors import ConfigError, EdgeFWError, ShapeError
from edgefw.nn import module as module_lib
from edgefw.nn.container import ModuleList, Sequential
from edgefw.nn.layers import Embedding
from edgefw.nn.module import Module
from edgefw.training.data_adapter import first_layer, model_float_type

UNBUILT = "unbuilt"


def _expands(module: Module) -> bool:
    """Containers and composite models are shown as their layers; edgefw's own layers
    (Dense with its activation, BatchNormalization with its norm) as one row."""
    if isinstance(module, Sequential | ModuleList):
        return True
    return not type(module).__module__.startswith("edgefw.nn")


def layer_rows(model: Module) -> list[tuple[str, Module, bool]]:
    """``(path, module, whole)`` per row; ``whole`` rows count their sub-modules' parameters,
    the others (a composite with parameters of its own) only their own."""
    rows: list[tuple[str, Module, bool]] = []
    seen: set[int] = set()

    def visit(path: str, module: Module) -> None:
        if id(module) in seen:
            return
        seen.add(id(module))
        children = list(module.named_children())
        if not children or not _expands(module):
            rows.append((path, module, True))
            return
        if any(p is not None for p in module._parameters.values()):
            rows.append((path, module, False))
        for name, child in children:
            visit(f"{path}.{name}" if path else name, child)

    visit("", model)
    return rows


def _counts(module: Module, whole: bool) -> tuple[int, int]:
    """(trainable, non-trainable) element counts: parameters, plus float buffers."""
    mods = list(module.modules()) if whole else [module]
    params = {id(p): p for m in mods for p in m._parameters.values() if p is not None}
    trainable = sum(p.data.size for p in params.values() if p.requires_grad)
    frozen = sum(p.data.size for p in params.values() if not p.requires_grad)
    frozen += sum(b.size for m in mods for b in m._buffers.values()
                  if b is not None and b.dtype.kind == "f")
    return trainable, frozen


def _bytes(module: Module) -> tuple[int, int]:
    params = {id(p): p for p in module.parameters()}
    trainable = sum(p.data.nbytes for p in params.values() if p.requires_grad)
    frozen = sum(p.data.nbytes for p in params.values() if not p.requires_grad)
    frozen += sum(b.nbytes for _, b in module.named_buffers() if b.dtype.kind == "f")
    return trainable, frozen


def _size(nbytes: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes:.2f} B"


def _shape_text(out: Any) -> str:
    if isinstance(out, Tensor | np.ndarray):
        return str((None,) + tuple(out.shape[1:])) if out.ndim else "()"
    if isinstance(out, tuple | list):
        return "[" + ", ".join(_shape_text(o) for o in out) + "]"
    return type(out).__name__


class _OutputShapeRecorder:
    """A module-call observer that keeps the output shape of every watched module."""

    def __init__(self, watched: set[int]) -> None:
        self.watched = watched
        self.shapes: dict[int, str] = {}

    def enter(self, module: Module) -> None:
        pass

    def exit(self, module: Module, *output: Any) -> None:
        pass

    def output(self, module: Module, args: Any, out: Any) -> None:
        if id(module) in self.watched:
            self.shapes[id(module)] = _shape_text(out)


def _sample_shape(model: Module, input_shape: Any) -> tuple[int, ...] | None:
    if input_shape is not None:
        try:
            shape = tuple(input_shape)
        except TypeError:
            shape = (input_shape,)
        if shape and shape[0] is None:
            shape = shape[1:]
        if not all(isinstance(d, int | np.integer) and not isinstance(d, bool) and d > 0
                   for d in shape):
            raise ConfigError(f"summary: input_shape must be the positive sizes of one sample "
                              f"(no batch axis, e.g. (1, 28, 28)), got {input_shape!r}")
        return tuple(int(d) for d in shape)
    first = first_layer(model)
    if getattr(first, "input_shape", None) is not None:
        return tuple(first.input_shape)
    recorded = model.__dict__.get("_input_sample_shape")
    if recorded is not None:
        return tuple(recorded)
    built = getattr(first, "built_input_shape", None)
    return None if built is None else tuple(built[1:])


def _record_shapes(model: Module, sample: tuple[int, ...], watched: set[int]) -> dict[int, str]:
    float_type = model_float_type(model)
    dtype = np.int64 if isinstance(first_layer(model), Embedding) else float_type
    recorder = _OutputShapeRecorder(watched | {id(model)})
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    module_lib._call_observers.append(recorder)
    try:
        with no_grad():
            model(np.zeros((2,) + sample, dtype=dtype))
    except EdgeFWError as err:
        raise ShapeError(f"summary: the model cannot run on input of shape "
                         f"{(None,) + sample}: {err}") from err
    finally:
        module_lib._call_observers.remove(recorder)
        for m, training in modes:
            object.__setattr__(m, "training", training)
    return recorder.shapes


def summary(model: Module, input_shape: Any = None,
            print_fn: Callable[[str], Any] | None = print) -> str:
    """Print (line by line through ``print_fn``; None prints nothing) and return the table.
    With ``input_shape``, lazily sized layers are built by the dummy batch."""
    if not isinstance(model, Module):
        raise ConfigError(f"summary needs an edgefw Module, got {type(model).__name__}")
    sample = _sample_shape(model, input_shape)
    rows = layer_rows(model)
    shapes = None if sample is None else _record_shapes(model, sample,
                                                        {id(m) for _, m, _ in rows})
    table = []
    unbuilt = False
    for path, module, whole in rows:
        name = f"{path} ({type(module).__name__})" if path else type(module).__name__
        shape = "?" if shapes is None else shapes.get(id(module), "not called")
        if not getattr(module, "built", True):
            unbuilt = True
            count = UNBUILT
        else:
            count = f"{sum(_counts(module, whole)):,}"
        table.append((name, shape, count))

    widths = [max([len("Layer (type)")] + [len(r[0]) for r in table]) + 3,
              max([len("Output Shape")] + [len(r[1]) for r in table]) + 3,
              max([len("Param #")] + [len(r[2]) for r in table])]
    widths = [max(widths[0], 29), max(widths[1], 26), max(widths[2], 10)]
    line = sum(widths) + 1

    def row(cells: tuple[str, str, str]) -> str:
        return (" " + cells[0].ljust(widths[0]) + cells[1].ljust(widths[1]) + cells[2]).rstrip()

    trainable, frozen = _counts(model, True)
    bytes_trainable, bytes_frozen = _bytes(model)
    lines = [f'Model: "{type(model).__name__}"', "_" * line,
             row(("Layer (type)", "Output Shape", "Param #")), "=" * line]
    lines += [row(r) for r in table]
    lines += ["=" * line,
              f"Total params: {trainable + frozen:,} ({_size(bytes_trainable + bytes_frozen)})",
              f"Trainable params: {trainable:,} ({_size(bytes_trainable)})",
              f"Non-trainable params: {frozen:,} ({_size(bytes_frozen)})",
              "_" * line]
    if shapes is None:
        lines.append("Output shapes need an input shape: call summary(input_shape=...) with "
                      "the shape of one sample, or fit the model first.")
    if unbuilt:
        lines.append(f"Layers marked '{UNBUILT}' create their parameters on their first call; "
                     "the totals count built layers only.")
    if print_fn is not None:
        for text in lines:
            print_fn(text)
    return "\n".join(lines)
