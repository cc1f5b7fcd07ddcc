"""The input contract: what a model expects of its input, read from the model's metadata,
and the helper that turns a raw image into exactly that.

Preprocessing written by hand on the device is where deployments most often go wrong: the
channels in the wrong order, pixels left in 0..255 when the model was trained on 0..1, an
int8 input fed unquantized. edgefw's exporters store the contract in the model file, and
this module reads it back and applies it:

- ``layout``: ``"NCHW"`` or ``"NHWC"`` for rank-4 image inputs (``None`` for (N, H, W) or
  flat (N, D) inputs);
- ``dtype``: the input tensor's element type (``float32``, ``float16``, ``int8``, ``uint8``);
- normalisation: ``x = (pixel * scale - mean) / std`` per channel (metadata key
  ``normalization``: ``{"scale": 1/255}`` or ``{"scale": 1/255, "mean": [...],
  "std": [...]}``; ``mean``/``std`` apply after ``scale``, as torchvision's ``Normalize``
  after ``ToTensor``; without ``scale`` they apply to 0..255 pixels, as in Keras);
- for integer inputs, the quantization: ``q = clip(round(x / quant_scale) + zero_point)``
  (TFLite's ``inputs[i].scale`` / ``zero_point`` in edgefw's metadata).

    >>> import numpy as np
    >>> contract = InputContract(name="input", shape=(None, 1, 28, 28), dtype="float32",
    ...                          layout="NCHW", scale=1 / 255)
    >>> x = prepare_image(np.full((28, 28), 255, np.uint8), contract)
    >>> x.shape, x.dtype, float(x.max())
    ((1, 1, 28, 28), dtype('float32'), 1.0)

A model file's contract: ``InputContract.from_file("mlp.tflite")``, or from an open
session, ``InputContract.from_session(session)``.

This module needs numpy and ``edgefw.errors`` only, so it runs on a device without the
trainer.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefw.errors import DTypeError, ModelFormatError, ShapeError

LAYOUTS = ("NCHW", "NHWC")
#: ITU-R BT.601 luma weights: how an RGB image becomes one grey channel (as PIL's "L").
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_INTEGER_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}
_FLOAT_DTYPES = ("float32", "float16", "float64")


@dataclass(frozen=True)
class InputContract:
    """What one model input expects: see the module docstring.

    ``shape``: the input's shape with ``None`` for dynamic dims (the batch);
    ``class_labels``: the model's output classes when the metadata names them.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"
    layout: str | None = None
    scale: float = 1.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    quant_scale: float | None = None
    quant_zero_point: int | None = None
    class_labels: tuple[str, ...] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.layout is not None and self.layout not in LAYOUTS:
            raise ModelFormatError(f"input {self.name!r}: layout {self.layout!r} is not one of "
                                   f"{', '.join(LAYOUTS)}")
        if self.dtype not in _FLOAT_DTYPES and self.dtype not in _INTEGER_RANGES:
            raise DTypeError(f"input {self.name!r}: dtype {self.dtype} is not an image input "
                             f"type (float32, float16, int8, uint8, int16)")
        if self.dtype in _INTEGER_RANGES and self.quant_scale is None:
            raise ModelFormatError(f"input {self.name!r} is {self.dtype} but the metadata gives "
                                   "no quantization scale / zero point for it")
        if not all(math.isfinite(v) for v in (self.scale, *self.mean, *self.std)) \
                or any(s == 0 for s in self.std):
            raise ModelFormatError(f"input {self.name!r}: normalisation scale={self.scale}, "
                                   f"mean={self.mean}, std={self.std} is not usable")
        if self.quant_scale is not None and not (math.isfinite(self.quant_scale)
                                                 and self.quant_scale > 0):
            raise ModelFormatError(f"input {self.name!r}: quantization scale "
                                   f"{self.quant_scale} must be a positive number")

    # ------------------------------------------------------------------ geometry
    @property
    def image_shape(self) -> tuple[int | None, int | None, int]:
        """``(height, width, channels)`` of one image; height/width None for flat inputs."""
        dims = self.shape[1:]
        if len(dims) == 3 and self.layout == "NHWC":
            return dims[0], dims[1], dims[2] or 1
        if len(dims) == 3:
            return dims[1], dims[2], dims[0] or 1
        if len(dims) == 2:
            return dims[0], dims[1], 1
        return None, None, 1

    # --------------------------------------------------------------- conversions
    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """``(pixels * scale - mean) / std`` in float32; channels last (mean/std per
        channel). Computed in float64 and, for ``scale = 1/k`` with an integer ``k``, as
        ``pixels / k``: bit for bit what ``x / 255.0`` gave the model in training."""
        x = np.asarray(pixels, np.float64)
        inverse = 1.0 / self.scale if self.scale else 0.0
        if inverse and abs(inverse - round(inverse)) <= 1e-6 * abs(inverse):
            x = x / round(inverse)
        else:
            x = x * self.scale
        if self.mean != (0.0,) or self.std != (1.0,):
            x = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return x.astype(np.float32)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float model-input values -> the input's dtype (integer inputs are quantized,
        rounding half away from zero as TFLite's reference kernels do)."""
        if self.dtype in _FLOAT_DTYPES:
            return np.asarray(x, self.dtype)
        lo, hi = _INTEGER_RANGES[self.dtype]
        q = np.asarray(x, np.float64) / self.quant_scale
        q = np.sign(q) * np.floor(np.abs(q) + 0.5) + (self.quant_zero_point or 0)
        return np.clip(q, lo, hi).astype(self.dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`quantize` (float32; float inputs pass through)."""
        if self.dtype in _FLOAT_DTYPES:
            return np.asarray(q, np.float32)
        return ((np.asarray(q, np.float32) - (self.quant_zero_point or 0))
                * np.float32(self.quant_scale))

    def from_float(self, x: np.ndarray, layout: str = "NCHW") -> np.ndarray:
        """Already-normalised float values in ``layout`` (edgefw's graphs are NCHW) -> this
        input's layout and dtype: how a feed written for the traced graph reaches the
        exported file."""
        x = np.asarray(x, np.float32)
        if x.ndim == 4 and self.layout is not None and layout != self.layout:
            x = np.transpose(x, (0, 2, 3, 1) if self.layout == "NHWC" else (0, 3, 1, 2))
        return np.ascontiguousarray(self.quantize(x))

    def to_metadata(self) -> dict[str, Any]:
        """The metadata keys that record this contract (what the exporters store)."""
        norm: dict[str, Any] = {"scale": self.scale}
        if self.mean != (0.0,) or self.std != (1.0,):
            norm.update(mean=list(self.mean), std=list(self.std))
        meta: dict[str, Any] = {"normalization": norm}
        if self.layout is not None:
            meta["input_layout"] = self.layout
        if self.class_labels is not None:
            meta["class_labels"] = list(self.class_labels)
        return meta

    # -------------------------------------------------------------- constructors
    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], inputs: Sequence[Any] = (),
                      index: int = 0) -> InputContract:
        """The contract of input ``index`` from a model's metadata (values may be JSON
        text, as loaders keep them) and, where the metadata does not describe the inputs
        (ONNX files), ``inputs``: the graph's input Values or a session's ``get_inputs()``.
        """
        described = _json(metadata.get("inputs"))
        entry: Mapping[str, Any] = {}
        if isinstance(described, list) and index < len(described) \
                and isinstance(described[index], Mapping):
            entry = described[index]
        arg = inputs[index] if index < len(inputs) else None
        if not entry and arg is None:
            raise ModelFormatError(f"the model describes no input {index} (inputs: "
                                   f"{len(inputs) or len(described or [])})")
        name = str(entry.get("name") or getattr(arg, "name", f"input{index}"))
        shape = _shape(entry.get("shape") if entry.get("shape") is not None
                       else getattr(arg, "shape", None), name)
        dtype = str(entry.get("dtype") or getattr(arg, "dtype", None) or "float32")
        layout = entry.get("layout") if "layout" in entry else _json(metadata.get("input_layout"))
        if len(shape) != 4:
            layout = None
        elif layout not in LAYOUTS:
            layout = _guess_layout(shape)
        norm = _json(metadata.get("normalization"))
        norm = norm if isinstance(norm, Mapping) else {}
        labels = _json(metadata.get("class_labels"))
        return cls(
            name=name, shape=shape, dtype=dtype, layout=layout,
            scale=float(norm.get("scale", 1.0)),
            mean=_floats(norm.get("mean", 0.0), "mean", name),
            std=_floats(norm.get("std", 1.0), "std", name),
            quant_scale=None if entry.get("scale") is None else float(entry["scale"]),
            quant_zero_point=None if entry.get("zero_point") is None
            else int(entry["zero_point"]),
            class_labels=_labels(labels),
        )

    @classmethod
    def from_graph(cls, graph: Any, index: int = 0) -> InputContract:
        """From an ``edgefw.ir.Graph`` as a loader made it (metadata + inputs)."""
        return cls.from_metadata(graph.metadata, graph.inputs, index)

    @classmethod
    def from_session(cls, session: Any, index: int = 0) -> InputContract:
        """From a ``runtime.InferenceSession``."""
        return cls.from_metadata(session.graph.metadata, session.get_inputs(), index)

    @classmethod
    def from_file(cls, path: str | os.PathLike, index: int = 0) -> InputContract:
        """From a ``.onnx`` or ``.tflite`` file (loaded with the runtime's loaders)."""
        if not os.path.isfile(path):
            raise ModelFormatError(f"model file not found: {path}")
        with open(path, "rb") as f:
            is_tflite = f.read(8)[4:8] == b"TFL3"
        if is_tflite:
            from runtime.loaders.tflite_loader import load_tflite as load
        else:
            from runtime.loaders.onnx_loader import load_onnx as load
        return cls.from_graph(load(os.fspath(path)), index)


# ------------------------------------------------------------------- images
def prepare_image(image: np.ndarray, contract: InputContract) -> np.ndarray:
    """One raw image (uint8, HxW or HxWxC) -> the model's input with a batch of 1.

    Grey images feed 3-channel models by repetition; RGB(A) images feed 1-channel models
    through BT.601 luma (alpha is dropped). The image must already have the model's height
    and width (ShapeError otherwise: edgefw does not resample).
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ShapeError(f"prepare_image takes one HxW or HxWxC image, got shape "
                         f"{list(image.shape)}; use prepare_images for a batch")
    return prepare_images(image[None], contract)


def prepare_images(images: np.ndarray, contract: InputContract) -> np.ndarray:
    """A batch of raw images (uint8, NxHxW or NxHxWxC) -> the model's input (N, ...)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise DTypeError(f"prepare_images takes raw uint8 pixels, got {images.dtype}; "
                         "normalisation is the contract's job (scale, mean, std)")
    if images.ndim not in (3, 4):
        raise ShapeError(f"prepare_images takes NxHxW or NxHxWxC images, got shape "
                         f"{list(images.shape)}")
    height, width, channels = contract.image_shape
    hwc = images if images.ndim == 4 else images[..., None]
    hwc = _match_channels(hwc, channels, contract.name)
    size = hwc.shape[1:3]
    if height is None:  # flat input (N, D): the image's pixels in row-major order
        flat_size = contract.shape[1] if len(contract.shape) == 2 else None
        if flat_size is not None and hwc[0].size != flat_size:
            raise ShapeError(f"input {contract.name!r} takes {flat_size} values per image; a "
                             f"{size[0]}x{size[1]}x{channels} image has {hwc[0].size}")
    elif (height, width) != tuple(size) and None not in (height, width):
        raise ShapeError(f"input {contract.name!r} takes {height}x{width} images, got "
                         f"{size[0]}x{size[1]}; resize the image first")
    x = contract.normalize(hwc)
    rank = len(contract.shape)
    if rank == 4 and contract.layout == "NCHW":
        x = np.transpose(x, (0, 3, 1, 2))
    elif rank == 3:
        x = x[..., 0]
    elif rank == 2:
        x = x.reshape(len(x), -1)
    elif rank != 4:
        raise ShapeError(f"input {contract.name!r} has rank {rank}; prepare_images fills "
                         "image inputs of rank 2 (flat), 3 (N, H, W) or 4 (NCHW/NHWC)")
    return np.ascontiguousarray(contract.quantize(x))


def _match_channels(hwc: np.ndarray, channels: int, name: str) -> np.ndarray:
    have = hwc.shape[-1]
    if have == channels:
        return hwc
    if have in (3, 4) and channels == 1:
        grey = hwc[..., :3].astype(np.float32) @ np.asarray(LUMA_WEIGHTS, np.float32)
        return np.clip(np.floor(grey + 0.5), 0, 255).astype(np.uint8)[..., None]
    if have == 4 and channels == 3:
        return hwc[..., :3]
    if have == 1 and channels in (3, 4):
        return np.repeat(hwc, channels, axis=-1)
    raise ShapeError(f"input {name!r} takes {channels}-channel images, got {have} channels")


# ------------------------------------------------------------------- metadata
def _json(value: Any) -> Any:
    """Metadata values as loaders keep them (JSON text) -> Python values."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _shape(value: Any, name: str) -> tuple[int | None, ...]:
    if value is None:
        raise ModelFormatError(f"input {name!r} has no known shape")
    dims = []
    for d in value:
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0:
            dims.append(int(d))
        else:  # -1, a symbol ("batch") or None: dynamic
            dims.append(None)
    return tuple(dims)


def _guess_layout(shape: tuple[int | None, ...]) -> str:
    """A rank-4 input with no recorded layout: channels are the small axis (1, 3 or 4)."""
    if shape[1] in (1, 3, 4) and shape[3] not in (1, 3, 4):
        return "NCHW"
    return "NHWC" if shape[3] in (1, 3, 4) else "NCHW"


def _floats(value: Any, what: str, name: str) -> tuple[float, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    try:
        return tuple(float(v) for v in values) or (0.0,)
    except (TypeError, ValueError):
        raise ModelFormatError(f"input {name!r}: normalisation {what} {value!r} is not a "
                               "number or a list of numbers") from None


def _labels(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    if isinstance(value, Mapping):
        try:
            by_index = {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            return None
        return tuple(by_index.get(i, str(i)) for i in range(max(by_index, default=-1) + 1))
    if isinstance(value, str) and value:
        return tuple(s.strip() for s in value.split(","))
    return None


__all__ = ["LAYOUTS", "LUMA_WEIGHTS", "InputContract", "prepare_image", "prepare_images"]
