"""Checkpoints: ``edgefw.save(model, path)`` / ``edgefw.load(path)``.

A checkpoint is a plain ``.npz`` file (no pickled code: ``allow_pickle=False`` on load):
every array is one entry, and one JSON entry, ``__meta__``, holds the rest: the format
version, the architecture when edgefw can rebuild it (a zoo model, or edgefw layers with
their constructor arguments), the shapes lazily built Keras-style layers were built for,
the optimizer's state and hyper-parameters, edgefw's random generator state, and whatever
extra state the caller passes (epoch, a DataLoader's shuffling state, Keras' History).
It is written to a temporary file in the same folder and renamed into place.

>>> import edgefw
>>> from edgefw import models
>>> net = models.build("mlp")
>>> edgefw.save(net, "/tmp/mlp.npz")
>>> same = edgefw.load("/tmp/mlp.npz")
"""

from __future__ import annotations

import importlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefw import __version__
from edgefw import random as _random
from edgefw.errors import CheckpointError
from edgefw.fileio import atomic_write
from edgefw.nn.module import Module

FORMAT = "edgefw-checkpoint"
FORMAT_VERSION = 1
_META = "__meta__"


# ---------------------------------------------------------------- nested state <-> npz
def _flatten(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every array in a nested structure with a reference to an npz entry."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_flatten(k, f"{prefix}/k{i}", arrays),
                              _flatten(v, f"{prefix}/{i}", arrays)]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, list | tuple):
        items = [_flatten(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise CheckpointError(f"cannot store a {type(obj).__name__} in a checkpoint ({prefix})")


def _unflatten(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, list):
        return [_unflatten(v, arrays) for v in obj]
    if isinstance(obj, dict):
        if "__array__" in obj:
            key = obj["__array__"]
            if key not in arrays:
                raise CheckpointError(f"checkpoint is missing the array entry {key!r}")
            return arrays[key]
        if "__tuple__" in obj:
            return tuple(_unflatten(v, arrays) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {_unflatten(k, arrays): _unflatten(v, arrays) for k, v in obj["__dict__"]}
    return obj


# ---------------------------------------------------------------- architecture specs
def _spec(value: Any) -> Any:
    """JSON description of constructor arguments; raises TypeError if not describable."""
    if isinstance(value, Module):
        cls = type(value)
        if not cls.__module__.startswith("edgefw."):
            raise TypeError(f"{cls.__module__}.{cls.__qualname__}")
        args, kwargs = value.__dict__.get("_init_args", ((), {}))
        return {"__module__": f"{cls.__module__}:{cls.__qualname__}",
                "args": [_spec(a) for a in args],
                "kwargs": {k: _spec(v) for k, v in kwargs.items()}}
    if isinstance(value, list | tuple):
        return [_spec(v) for v in value]
    if isinstance(value, dict):
        return {"__odict__": [[str(k), _spec(v)] for k, v in value.items()]}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(type(value).__name__)


def _build(spec: Any) -> Any:
    if isinstance(spec, list):
        return [_build(v) for v in spec]
    if isinstance(spec, dict) and "__odict__" in spec:
        return {k: _build(v) for k, v in spec["__odict__"]}
    if isinstance(spec, dict) and "__module__" in spec:
        module_name, _, qualname = spec["__module__"].partition(":")
        # Only edgefw's own classes are ever instantiated from a checkpoint.
        if not module_name.startswith("edgefw.") or "." in qualname:
            raise CheckpointError(f"checkpoint names a class outside edgefw: {spec['__module__']}")
        try:
            cls = getattr(importlib.import_module(module_name), qualname)
        except (ImportError, AttributeError):
            raise CheckpointError(
                f"checkpoint names an unknown class {spec['__module__']}"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise CheckpointError(f"checkpoint class {spec['__module__']} is not a Module")
        return cls(*_build(spec["args"]), **{k: _build(v) for k, v in spec["kwargs"].items()})
    return spec


def _architecture(model: Module) -> dict | None:
    zoo = model.__dict__.get("_zoo_spec")
    if zoo is not None:
        return {"zoo": zoo}
    try:
        return {"module": _spec(model)}
    except TypeError:
        return None


def _lazy_shapes(model: Module) -> dict[str, list[int]]:
    return {name: list(m.built_input_shape) for name, m in model.named_modules()
            if getattr(m, "built", False) and hasattr(m, "built_input_shape")}


# ---------------------------------------------------------------- public API
@dataclass
class Checkpoint:
    """What a checkpoint file holds, decoded (see :func:`read`)."""

    state_dict: dict[str, np.ndarray]
    meta: dict[str, Any]
    optimizer_state: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def save(model: Module, path: str | os.PathLike, optimizer: Any = None, **extra: Any) -> Path:
    """Write ``model``'s parameters and buffers, ``optimizer``'s state (default: the one
    ``model.compile`` made, if any) and ``extra`` state to ``path`` atomically."""
    if not isinstance(model, Module):
        raise CheckpointError(f"save() takes an edgefw Module, got {type(model).__name__}")
    optimizer = optimizer if optimizer is not None else getattr(model, "_optimizer", None)
    arrays: dict[str, np.ndarray] = {}
    for name, value in model.state_dict().items():
        arrays[f"model/{name}"] = np.asarray(value)
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "edgefw_version": __version__,
        "model_class": type(model).__qualname__,
        "architecture": _architecture(model),
        "lazy_input_shapes": _lazy_shapes(model),
        "model_keys": list(model.state_dict().keys()),
        "rng_state": _flatten(_random.get_state(), "rng", arrays),
        "optimizer": None,
        "extra": _flatten(extra, "extra", arrays),
    }
    if optimizer is not None:
        meta["optimizer"] = {
            "class": type(optimizer).__name__,
            "state": _flatten(optimizer.state_dict(), "optim", arrays),
        }
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return _write_atomic(Path(path), arrays)


def _write_atomic(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def read(path: str | os.PathLike) -> Checkpoint:
    """Decode a checkpoint without building anything; raises CheckpointError if it is not
    a readable edgefw checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, io.UnsupportedOperation) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from None
    if _META not in arrays:
        raise CheckpointError(f"{path}: not an edgefw checkpoint (no {_META} entry)")
    try:
        meta = json.loads(arrays.pop(_META).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint metadata ({exc})") from None
    if meta.get("format") != FORMAT or meta.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unsupported checkpoint format {meta.get('format')!r} version "
            f"{meta.get('version')!r} (this edgefw reads {FORMAT} version {FORMAT_VERSION})"
        )
    state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    optim = meta.get("optimizer")
    return Checkpoint(
        state_dict=state,
        meta=meta,
        optimizer_state=_unflatten(optim["state"], arrays) if optim else None,
        extra=_unflatten(meta.get("extra", {}), arrays) or {},
    )


def load(path: str | os.PathLike, model: Module | None = None, optimizer: Any = None,
         restore_rng: bool = True) -> Module:
    """Load a checkpoint and return the model.

    With ``model`` given, its parameters are replaced (shapes must match: the error names
    the parameter and both shapes). Without it, the model is rebuilt from the architecture
    recorded at save time (zoo models and edgefw layers). ``optimizer`` (or the one
    ``model.compile`` made) gets its state back, and edgefw's random generator too, so
    training resumes exactly where it stopped; the caller's extra state is on
    ``model.checkpoint_extra``."""
    ckpt = read(path)
    if model is None:
        model = _rebuild(ckpt, path)
    _build_lazy(model, ckpt.meta.get("lazy_input_shapes", {}))
    model.load_state_dict(ckpt.state_dict)
    optimizer = optimizer if optimizer is not None else getattr(model, "_optimizer", None)
    if optimizer is None and "_optimizer_factory" in model.__dict__:
        from edgefw.training.keras_api import ensure_optimizer

        optimizer = ensure_optimizer(model)  # compiled by name: create it now, all is built
    if ckpt.optimizer_state is not None:
        if optimizer is not None:
            optimizer.load_state_dict(ckpt.optimizer_state)
        else:
            # compile() after load(): the optimizer it creates picks this state up.
            model.__dict__["_pending_optimizer_state"] = ckpt.optimizer_state
    if restore_rng and ckpt.meta.get("rng_state") is not None:
        _random.set_state(_unflatten(ckpt.meta["rng_state"], {}))
    model.__dict__["checkpoint_extra"] = ckpt.extra
    return model


def _rebuild(ckpt: Checkpoint, path: Any) -> Module:
    arch = ckpt.meta.get("architecture")
    if arch is None:
        raise CheckpointError(
            f"{path}: the checkpoint holds no architecture for {ckpt.meta.get('model_class')} "
            "(a class defined outside edgefw); build the model and pass it: "
            "edgefw.load(path, model=MyModel())"
        )
    if "zoo" in arch:
        from edgefw import models

        zoo = arch["zoo"]
        model = models.build(zoo["name"], **zoo.get("kwargs", {}))
    else:
        model = _build(arch["module"])
    return model


def _build_lazy(model: Module, shapes: dict[str, list[int]]) -> None:
    modules = dict(model.named_modules())
    for name, shape in shapes.items():
        layer = modules.get(name)
        if layer is not None and not getattr(layer, "built", True):
            layer.build(tuple(shape))
            layer.built = True
            layer.built_input_shape = tuple(shape)
