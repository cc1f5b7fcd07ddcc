"""What a GPU kernel builder gets (:class:`GPUKernelEnv`) and what it builds
(:class:`Launch`): a pipeline with its bindings, dispatched once per run, or in chunks of
rows when a tensor is larger than one storage binding may be.

    launch = env.launch(("relu", "float32"), make_wgsl, layout, rows=n,
                        bindings=[Bind.arg(0, row_bytes=4), Bind.buffer(out.buffer, 4)],
                        params=lambda start, count: dict(n=count),
                        groups=lambda count: env.grid(ceil(count / 256)))
    def run(x):
        launch(x)          # records the dispatch; the run's submission happens later
        return out

Bind groups are cached by the identity of the buffers bound from run-time arguments; in
steady state a kernel's inputs are the same buffers every run, so a run creates none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from edgefw.errors import DeviceError
from runtime.providers.gpu.buffers import BufferManager
from runtime.providers.gpu.commands import CommandRecorder
from runtime.providers.gpu.pipelines import ParamLayout, grid

_BIND_CACHE_SIZE = 4


@dataclass(frozen=True)
class Bind:
    """One storage binding: a run-time argument (``arg``) or a fixed buffer; with
    ``row_bytes`` > 0 it is split over rows when the launch is chunked."""

    arg: int | None = None
    buffer: Any = None
    row_bytes: int = 0

    @staticmethod
    def input(index: int, row_bytes: int = 0) -> Bind:
        return Bind(arg=index, row_bytes=row_bytes)

    @staticmethod
    def fixed(buffer: Any, row_bytes: int = 0) -> Bind:
        return Bind(buffer=buffer, row_bytes=row_bytes)


class GPUKernelEnv:
    """The provider's device, memory and command recorder, as kernel builders see them."""

    def __init__(self, gpu: Any, buffers: BufferManager, recorder: CommandRecorder) -> None:
        self.gpu = gpu
        self.buffers = buffers
        self.recorder = recorder

    def pipeline(self, key: Hashable, make_wgsl: Callable[[], str]) -> Any:
        return self.gpu.pipelines.get(key, make_wgsl)

    def grid(self, groups: int) -> tuple[int, int, int]:
        return grid(groups, self.gpu.max_groups)

    def row_chunks(self, rows: int, row_bytes: Sequence[int], what: str,
                   max_rows: int | None = None) -> list[tuple[int, int]]:
        """Split ``rows`` so every chunked binding fits the adapter's binding size and
        starts at an aligned offset, and a chunk has at most ``max_rows`` rows (the grid
        limit); one chunk when everything fits."""
        limit = self.gpu.max_binding_bytes
        widest = max([b for b in row_bytes if b > 0], default=0)
        cap = rows if max_rows is None else max(1, max_rows)
        if rows <= 1 or (widest * rows <= limit and rows <= cap):
            return [(0, rows)]
        if widest == 0:
            raise DeviceError(f"{rows} rows exceed the adapter's dispatch grid and the "
                              f"{what} kernel cannot split them")
        align = self.gpu.offset_alignment
        step = 1
        for b in row_bytes:
            if b > 0:
                if b % 4:
                    raise DeviceError(f"a tensor of {widest * rows} bytes exceeds the "
                                      f"adapter's {limit}-byte binding limit and the {what} "
                                      "kernel cannot split it on word boundaries")
                need = align // math.gcd(b, align)
                step = step * need // math.gcd(step, need)
        count = min(limit // widest, cap) // step * step
        if count == 0:
            raise DeviceError(f"the {what} kernel cannot split {rows} batch entries of up to "
                              f"{widest} bytes into chunks that fit the adapter's {limit}-byte "
                              f"storage binding limit at {align}-byte aligned offsets")
        return [(start, min(count, rows - start)) for start in range(0, rows, count)]

    def launch(self, key: Hashable, make_wgsl: Callable[[], str], layout: ParamLayout,
               bindings: Sequence[Bind], params: Callable[[int, int], dict],
               groups: Callable[[int], tuple[int, int, int]], rows: int = 1,
               what: str = "kernel", max_rows: int | None = None) -> Launch:
        chunks = self.row_chunks(rows, [b.row_bytes for b in bindings], what, max_rows)
        pipeline = self.pipeline(key, make_wgsl)
        chunk_params = [self.buffers.params(layout.pack(**params(start, count)))
                        for start, count in chunks]
        chunk_groups = [groups(count) for _, count in chunks]
        return Launch(self, pipeline, list(bindings), chunks, chunk_params, chunk_groups)


class Launch:
    """A pipeline, its bindings and dispatch sizes; calling it records the dispatches."""

    def __init__(self, env: GPUKernelEnv, pipeline: Any, bindings: list[Bind],
                 chunks: list[tuple[int, int]], params: list[Any],
                 groups: list[tuple[int, int, int]]) -> None:
        self._env = env
        self._pipeline = pipeline
        self._layout = pipeline.get_bind_group_layout(0)
        self._bindings = bindings
        self._chunks = chunks
        self._params = params
        self._groups = groups
        self._args = [b.arg for b in bindings if b.arg is not None]
        self._bind_groups: dict[tuple, list[Any]] = {}

    def __call__(self, *args: Any) -> None:
        buffers = tuple(args[i].buffer for i in self._args)
        bind_groups = self._bind_groups.get(buffers)
        if bind_groups is None:
            if len(self._bind_groups) >= _BIND_CACHE_SIZE:
                self._bind_groups.clear()
            bind_groups = self._bind_groups[buffers] = self._make_bind_groups(args)
        record = self._env.recorder.dispatch
        for bind_group, groups in zip(bind_groups, self._groups, strict=True):
            if groups[0] and groups[1]:
                record(self._pipeline, bind_group, groups)

    def _make_bind_groups(self, args: Sequence[Any]) -> list[Any]:
        device = self._env.gpu.device
        made = []
        for (start, count), params in zip(self._chunks, self._params, strict=True):
            entries = [{"binding": 0, "resource": {"buffer": params, "offset": 0,
                                                   "size": params.size}}]
            for slot, bind in enumerate(self._bindings, start=1):
                buf = args[bind.arg].buffer if bind.arg is not None else bind.buffer
                if bind.row_bytes and len(self._chunks) > 1:
                    offset = start * bind.row_bytes
                    size = min(count * bind.row_bytes, buf.size - offset)
                else:
                    offset, size = 0, buf.size
                limit = self._env.gpu.max_binding_bytes
                if size > limit:
                    raise DeviceError(f"a tensor of {size / 2**20:.1f} MiB exceeds the "
                                      f"adapter's {limit / 2**20:.0f} MiB storage binding "
                                      "limit and this kernel cannot split it; run a smaller "
                                      "batch or this node on the CPU")
                entries.append({"binding": slot,
                                "resource": {"buffer": buf, "offset": offset, "size": size}})
            made.append(device.create_bind_group(layout=self._layout, entries=entries))
        return made


__all__ = ["Bind", "GPUKernelEnv", "Launch"]
