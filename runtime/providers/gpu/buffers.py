"""GPU memory of one provider (one session): kernel outputs, weights, parameters, and the
transfer sites where tensors cross between host and GPU.

- Weights are uploaded once per session: :meth:`BufferManager.constant` caches by the
  host array (and the layout the kernel wants), so the plans built for batch 1 and batch
  256 share them.
- Each kernel owns its output buffer, allocated when the plan is built; a run then
  allocates nothing.
- A transfer site (:class:`HostToDevice`, :class:`DeviceToHost`) owns the buffer it
  copies through, so steady-state runs reuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgefw.errors import DeviceError
from runtime.providers.gpu.commands import CommandRecorder
from runtime.providers.gpu.tensor import (
    DeviceConstant,
    GPUTensor,
    from_words,
    storage_bytes,
    to_words,
)


class BufferManager:
    """Allocates this session's GPU buffers and keeps its uploaded constants."""

    def __init__(self, gpu: Any, recorder: CommandRecorder) -> None:
        self.gpu = gpu
        self.recorder = recorder
        usage = gpu.wgpu.BufferUsage
        self.storage_usage = usage.STORAGE | usage.COPY_SRC | usage.COPY_DST
        self._constants: dict[tuple[int, str], tuple[np.ndarray, Any]] = {}
        #: Bytes uploaded as constants and counts of uploads (tests check "once per session").
        self.constant_bytes = 0
        self.constant_uploads = 0
        self.allocated_bytes = 0

    def buffer(self, nbytes: int, what: str, usage: int | None = None) -> Any:
        nbytes = max(4, -(-int(nbytes) // 4) * 4)
        if nbytes > self.gpu.max_buffer_bytes:
            raise DeviceError(f"{what} needs a GPU buffer of {nbytes / 2**20:.1f} MiB; the "
                              f"adapter allows {self.gpu.max_buffer_bytes / 2**20:.1f} MiB "
                              "(run a smaller batch, or assign this part to the CPU)")
        self.allocated_bytes += nbytes
        return self.gpu.device.create_buffer(size=nbytes, usage=usage or self.storage_usage)

    def tensor(self, shape: tuple[int, ...], dtype: str = "float32",
               what: str = "a tensor") -> GPUTensor:
        """A kernel's output tensor (uninitialized); ``what`` names it for debugging."""
        size = int(np.prod(shape, dtype=np.int64))
        described = f"a {dtype} tensor of shape {list(shape)}"
        return GPUTensor(self.buffer(storage_bytes(dtype, size), described), shape, dtype)

    def upload(self, words: np.ndarray, what: str = "a constant") -> Any:
        """A new storage buffer holding ``words`` (bytes, padded to whole words)."""
        data = np.ascontiguousarray(words)
        buf = self.buffer(data.nbytes, what)
        raw = data.view(np.uint8).reshape(-1)
        if raw.size % 4:
            raw = np.concatenate([raw, np.zeros(4 - raw.size % 4, np.uint8)])
        if raw.size:
            self.gpu.queue.write_buffer(buf, 0, raw)
        return buf

    def constant(self, array: Any, layout: str = "raw",
                 transform: Callable[[Any], np.ndarray] | None = None) -> Any:
        """The GPU copy of a constant, uploaded once per session per ``layout``.

        ``transform`` turns the host array into what the kernel reads (transposed,
        packed int8, float32...); it runs only on the first request. ``array`` may be
        any object that lives as long as the session (a node, for vectors derived from
        several constants): the cache is keyed by its identity.
        """
        key = (id(array), layout)
        hit = self._constants.get(key)
        if hit is not None and hit[0] is array:
            return hit[1]
        data = transform(array) if transform is not None else np.ascontiguousarray(
            array, dtype=np.float32)
        buf = self.upload(data, f"constant {list(getattr(array, 'shape', ()))} ({layout})")
        self._constants[key] = (array, buf)  # holding the array pins its id
        self.constant_bytes += int(np.asarray(data).nbytes)
        self.constant_uploads += 1
        return buf

    def float_constant(self, array: np.ndarray) -> GPUTensor:
        """A float32 GPUTensor of a constant (uploaded once)."""
        return GPUTensor(self.constant(array, "float32"), array.shape, "float32")

    def word_constant(self, array: np.ndarray, dtype: str) -> GPUTensor:
        """A GPUTensor of ``dtype`` (float32, int8, uint8) holding a constant."""
        buf = self.constant(array, f"words:{dtype}", lambda a: to_words(a, dtype))
        return GPUTensor(buf, np.shape(array), dtype)

    def params(self, data: bytes) -> Any:
        """A uniform buffer with a kernel's parameters (made once per plan)."""
        usage = self.gpu.wgpu.BufferUsage.UNIFORM | self.gpu.wgpu.BufferUsage.COPY_DST
        buf = self.buffer(len(data), "kernel parameters", usage)
        self.gpu.queue.write_buffer(buf, 0, data)
        return buf

    def device_constant(self, host: np.ndarray) -> DeviceConstant:
        return DeviceConstant(host, self.float_constant)


class HostToDevice:
    """A host -> GPU boundary in a plan: copies a numpy array into the buffer it owns."""

    def __init__(self, buffers: BufferManager, dtype: str, what: str) -> None:
        self._buffers = buffers
        self._dtype = dtype
        self._what = what
        self._tensor: GPUTensor | None = None
        self._written_epoch = -1

    def __call__(self, array: Any) -> GPUTensor:
        array = np.asarray(array)
        words = to_words(array, self._dtype)
        tensor = self._tensor
        nbytes = storage_bytes(self._dtype, array.size)
        if tensor is None or tensor.nbytes != nbytes:
            buf = self._buffers.buffer(nbytes, self._what)
            tensor = self._tensor = GPUTensor(buf, array.shape, self._dtype)
        elif tensor.shape != array.shape:
            tensor = self._tensor = tensor.view(array.shape)
        recorder = self._buffers.recorder
        # queue.write_buffer lands before the next submission's commands: if commands
        # still pending read this buffer's previous content, submit them first.
        if recorder.pending and self._written_epoch == recorder.epoch:
            recorder.submit()
        if words.size:
            self._buffers.gpu.queue.write_buffer(tensor.buffer, 0, words)
        self._written_epoch = recorder.epoch
        return tensor


class DeviceToHost:
    """A GPU -> host boundary in a plan: submits pending work and reads the tensor back."""

    def __init__(self, buffers: BufferManager) -> None:
        self._buffers = buffers
        self._staging: Any = None
        self._staging_bytes = 0

    def __call__(self, tensor: Any) -> np.ndarray:
        if isinstance(tensor, DeviceConstant):
            return tensor.host.copy()
        if not isinstance(tensor, GPUTensor):  # a host array passed through (a constant)
            return np.asarray(tensor)
        nbytes = tensor.nbytes
        if self._staging is None or self._staging_bytes != nbytes:
            usage = self._buffers.gpu.wgpu.BufferUsage
            self._staging = self._buffers.buffer(nbytes, "a read-back buffer",
                                                 usage.MAP_READ | usage.COPY_DST)
            self._staging_bytes = nbytes
        recorder = self._buffers.recorder
        recorder.copy(tensor.buffer, self._staging, nbytes)
        recorder.submit()
        mode = self._buffers.gpu.wgpu.MapMode.READ
        self._staging.map_sync(mode)
        try:
            raw = self._staging.read_mapped()
        finally:
            self._staging.unmap()
        return from_words(raw, tensor.dtype, tensor.shape)


__all__ = ["BufferManager", "DeviceToHost", "HostToDevice"]
