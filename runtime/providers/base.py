"""What an execution provider is, and what a kernel builder sees when the planner asks it
for a kernel (:class:`KernelContext`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgefw.ir import Node, TensorType
from edgefw.ir.schema.dims import is_static

#: A built kernel: takes the node's inputs positionally (None for omitted ones) and returns
#: one array, or a tuple of arrays for a multi-output node.
Kernel = Callable[..., Any]


class KernelContext:
    """The node a kernel is built for, with the types the planner knows at this point.

    Types are specialised when the session binds symbolic dims (batch 1, batch 37...), so
    a builder can precompute for static shapes. Builders may ask for two things:

    - :meth:`output_buffer`: a preallocated array for output ``k`` (None when the shape is
      not static or the output leaves the session); the kernel must then write into it
      and return it.
    - :meth:`reuse_input`: permission to write output 0 into input ``i`` (in place); True
      only when nothing else reads that storage afterwards.

    ``concurrent`` is True for plans that run beside other threads running numpy (a batch
    split into tiles, :mod:`runtime.batch_split`): there every numpy call that releases the
    GIL pays a hand-off between the threads (~5-10 us measured on the 2-core machine, as
    much as a small call's work), so kernels prefer fewer, bigger calls to cache-sized ones.
    """

    def __init__(
        self,
        node: Node,
        input_types: list[TensorType | None],
        output_types: list[TensorType],
        input_data: list[np.ndarray | None],
        output_buffer: Callable[[int], np.ndarray | None] | None = None,
        reuse_input: Callable[[int], bool] | None = None,
        concurrent: bool = False,
    ) -> None:
        self.node = node
        self.concurrent = concurrent
        self.input_types = input_types
        self.output_types = output_types
        self.input_data = input_data
        self._output_buffer = output_buffer
        self._reuse_input = reuse_input

    @property
    def num_inputs(self) -> int:
        return len(self.node.inputs)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.inputs) and self.node.inputs[i] is not None

    def attr(self, name: str) -> Any:
        """Attribute value or schema default."""
        return self.node.attr(name)

    def const(self, i: int) -> np.ndarray | None:
        """Data of input ``i`` when it is a constant, else None."""
        return self.input_data[i] if i < len(self.input_data) else None

    def input_shape(self, i: int) -> tuple | None:
        t = self.input_types[i] if i < len(self.input_types) else None
        return None if t is None else t.shape

    def static_input_shape(self, i: int) -> tuple[int, ...] | None:
        shape = self.input_shape(i)
        return tuple(shape) if is_static(shape) else None

    def static_output_shape(self, k: int = 0) -> tuple[int, ...] | None:
        shape = self.output_types[k].shape
        return tuple(shape) if is_static(shape) else None

    def output_dtype(self, k: int = 0) -> np.dtype:
        return np.dtype(self.output_types[k].dtype)

    def output_buffer(self, k: int = 0) -> np.ndarray | None:
        return None if self._output_buffer is None else self._output_buffer(k)

    def reuse_input(self, i: int) -> bool:
        return False if self._reuse_input is None else self._reuse_input(i)

    @property
    def fused_activation(self) -> Any:
        """The node's ``meta["fused_activation"]`` mark, or None."""
        return self.node.meta.get("fused_activation")


class ExecutionProvider:
    """A backend that can build kernels for some nodes.

    Subclasses set ``name`` and implement :meth:`supports` and :meth:`build_kernel`;
    :meth:`output_alias` says whether a kernel's outputs may alias its inputs ("view"),
    are fresh arrays ("fresh") or arrays held by the kernel ("const"), which the planner
    needs for buffer reuse and in-place decisions. A provider whose kernels take and return
    tensors that live elsewhere than numpy's memory sets ``device`` (the planner then
    inserts copies through its :meth:`upload` and :meth:`download`);
    :meth:`unsupported_reason` says why :meth:`supports` refused a node (the session logs it).
    """

    name = "base"
    #: Where this provider's kernels keep their tensors: ``"host"`` (numpy arrays) or a
    #: device name (``"gpu"``).
    device = "host"

    def supports(self, node: Node) -> bool:
        raise NotImplementedError

    def build_kernel(self, ctx: KernelContext) -> Kernel:
        raise NotImplementedError

    def output_alias(self, node: Node) -> str:
        return "fresh"

    def unsupported_reason(self, node: Node) -> str | None:
        """Why :meth:`supports` refuses ``node`` (None: no reason to give)."""
        return None

    def upload(self, tensor_type: Any) -> Callable[[np.ndarray], Any]:
        """For a device provider: a function copying a host array of ``tensor_type`` to
        the device."""
        raise NotImplementedError(f"{self.name} keeps its tensors on the host")

    def download(self, tensor_type: Any) -> Callable[[Any], np.ndarray]:
        """For a device provider: a function copying one of its tensors of
        ``tensor_type`` back to a host array."""
        raise NotImplementedError(f"{self.name} keeps its tensors on the host")

    def supported_ops(self) -> list[str]:
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


__all__ = ["ExecutionProvider", "Kernel", "KernelContext"]
