"""Tensors that live on the GPU between GPU kernels.

A :class:`GPUTensor` is a storage buffer plus shape and dtype. WGSL has no 8-bit storage
type, so every element takes one 32-bit word: float32 as is, int8/uint8 activations (QDQ
and integer graphs) as i32 — data-movement kernels then copy words whatever the dtype,
and integer kernels write their outputs without packing races. Weights, which are read
many times and never written, are packed four int8 per word (:func:`pack_int8`).
Views (Reshape, Flatten, Squeeze) share the buffer.

A :class:`DeviceConstant` is a constant computed at build time (a DequantizeLinear of int8
weights, a Constant node): its float buffer is only uploaded if a kernel actually reads
it — Gemm and Conv read the packed int8 weights instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgefw.errors import DTypeError

#: dtypes a GPU tensor can hold -> the 32-bit host type of its words.
WORD_TYPES = {"float32": np.float32, "int8": np.int32, "uint8": np.int32}
ITEMSIZE = WORD_TYPES  # the dtypes a GPU tensor can hold (kept for the checks' messages)


def storage_bytes(dtype: str, size: int) -> int:
    """Bytes of the buffer holding ``size`` elements: one word each, at least one word."""
    return max(4, 4 * int(size))


def to_words(array: np.ndarray, dtype: str) -> np.ndarray:
    """Host array -> the words a GPU tensor of ``dtype`` holds."""
    if dtype not in WORD_TYPES:
        raise DTypeError(f"the GPU provider cannot hold {dtype} tensors; it holds "
                         + ", ".join(WORD_TYPES))
    return np.ascontiguousarray(np.asarray(array).astype(WORD_TYPES[dtype], copy=False))


def from_words(raw: Any, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Words read back from a GPU buffer -> a host array of ``dtype`` and ``shape``."""
    size = int(np.prod(shape, dtype=np.int64))
    flat = np.frombuffer(raw, dtype=WORD_TYPES[dtype], count=size)
    return flat.astype(np.dtype(dtype)).reshape(shape)


def pack_int8(array: np.ndarray) -> np.ndarray:
    """int8/uint8 weights packed four per 32-bit word, little-endian: element ``i`` is
    byte ``i % 4`` of word ``i // 4`` (zero-padded to whole words)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    if flat.dtype not in (np.int8, np.uint8):
        raise DTypeError(f"pack_int8 takes int8 or uint8 weights, got {flat.dtype}")
    words = np.zeros(max(4, -(-flat.size // 4) * 4), np.uint8)
    words[:flat.size] = flat.view(np.uint8)
    return words


class GPUTensor:
    """A tensor in a GPU storage buffer (see the module docstring for the layout)."""

    __slots__ = ("buffer", "shape", "dtype", "size")

    def __init__(self, buffer: Any, shape: tuple[int, ...], dtype: str) -> None:
        self.buffer = buffer
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.size = int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return storage_bytes(self.dtype, self.size)

    def view(self, shape: tuple[int, ...]) -> GPUTensor:
        """The same buffer with another shape of the same size (Reshape, Flatten...)."""
        return GPUTensor(self.buffer, shape, self.dtype)

    def __repr__(self) -> str:
        return f"GPUTensor({self.dtype}{list(self.shape)})"


class DeviceConstant:
    """A build-time constant in a GPU kernel's output slot; uploaded only when read."""

    __slots__ = ("host", "shape", "dtype", "size", "_upload", "_tensor")

    def __init__(self, host: np.ndarray, upload: Callable[[np.ndarray], GPUTensor]) -> None:
        self.host = host
        self.shape = tuple(host.shape)
        self.dtype = str(host.dtype)
        self.size = int(host.size)
        self._upload = upload
        self._tensor: GPUTensor | None = None

    @property
    def buffer(self) -> Any:
        if self._tensor is None:
            self._tensor = self._upload(self.host)
        return self._tensor.buffer

    @property
    def nbytes(self) -> int:
        return storage_bytes(self.dtype, self.size)

    def view(self, shape: tuple[int, ...]) -> DeviceConstant:
        return DeviceConstant(self.host.reshape(shape), self._upload)

    def __repr__(self) -> str:
        return f"DeviceConstant({self.dtype}{list(self.shape)})"


__all__ = ["ITEMSIZE", "WORD_TYPES", "DeviceConstant", "GPUTensor", "from_words", "pack_int8",
           "storage_bytes", "to_words"]
