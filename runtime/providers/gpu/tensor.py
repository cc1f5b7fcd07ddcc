"""Tensors that live on the GPU between GPU kernels.

A :class:`GPUTensor` is a storage buffer plus shape and dtype. float32 is stored as is;
int8 and uint8 (the quantized activations of QDQ graphs) are packed four per 32-bit word,
little-endian, because WGSL has no 8-bit storage type: element ``i`` is byte ``i % 4`` of
word ``i // 4``. Views (Reshape, Flatten, Squeeze) share the buffer.

A :class:`DeviceConstant` is a constant computed at build time (a DequantizeLinear of int8
weights, a Constant node): its float buffer is only uploaded if a kernel actually reads
it — Gemm and Conv read the packed int8 weights instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgefw.errors import DTypeError

#: dtypes a GPU tensor can hold, with their bytes per element.
ITEMSIZE = {"float32": 4, "int8": 1, "uint8": 1}


def storage_bytes(dtype: str, size: int) -> int:
    """Bytes of the buffer holding ``size`` elements: whole 32-bit words, at least one."""
    return max(4, -(-size * ITEMSIZE[dtype] // 4) * 4)


def pack(array: np.ndarray, dtype: str) -> np.ndarray:
    """Host array -> the words a GPU buffer holds (int8/uint8 packed four per word)."""
    if dtype not in ITEMSIZE:
        raise DTypeError(f"the GPU provider cannot hold {dtype} tensors; it holds "
                         + ", ".join(ITEMSIZE))
    flat = np.ascontiguousarray(array, dtype=np.dtype(dtype)).reshape(-1)
    words = np.zeros(storage_bytes(dtype, flat.size), np.uint8)
    words[:flat.nbytes] = flat.view(np.uint8)
    return words


def unpack(raw: Any, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Bytes read back from a GPU buffer -> a writable host array of ``shape``."""
    size = int(np.prod(shape, dtype=np.int64))
    flat = np.frombuffer(raw, dtype=np.dtype(dtype), count=size)
    return flat.reshape(shape).copy() if not flat.flags.writeable else flat.reshape(shape)


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


__all__ = ["ITEMSIZE", "DeviceConstant", "GPUTensor", "pack", "storage_bytes", "unpack"]
