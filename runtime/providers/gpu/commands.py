"""Recording a run's GPU work: one command encoder, one compute pass, one submission.

Kernels do not execute when the generated run function calls them: they append a
dispatch to the pending encoder. The work is submitted when the host needs a result (a
download at a GPU -> CPU boundary or for a graph output), so a graph that runs wholly on
the GPU costs one ``queue.submit`` per run. WebGPU orders dispatches within a compute pass
(each dispatch is its own synchronization scope), so one pass serves the whole run.
"""

from __future__ import annotations

from typing import Any


class CommandRecorder:
    """The pending command encoder of one provider (one session)."""

    def __init__(self, device: Any, queue: Any) -> None:
        self._device = device
        self._queue = queue
        self._encoder: Any = None
        self._pass: Any = None
        #: Incremented by every submission; transfer sites use it to tell whether their
        #: buffer is read by work still pending (see ``HostToDevice``).
        self.epoch = 0
        self.submissions = 0
        self.dispatches = 0

    @property
    def pending(self) -> bool:
        return self._encoder is not None

    def _encoder_now(self) -> Any:
        if self._encoder is None:
            self._encoder = self._device.create_command_encoder()
        return self._encoder

    def dispatch(self, pipeline: Any, bind_group: Any, groups: tuple[int, int, int]) -> None:
        if self._pass is None:
            self._pass = self._encoder_now().begin_compute_pass()
        self._pass.set_pipeline(pipeline)
        self._pass.set_bind_group(0, bind_group)
        self._pass.dispatch_workgroups(*groups)
        self.dispatches += 1

    def copy(self, source: Any, destination: Any, size: int) -> None:
        """Buffer-to-buffer copy, ordered after the dispatches recorded so far."""
        self._end_pass()
        self._encoder_now().copy_buffer_to_buffer(source, 0, destination, 0, size)

    def submit(self) -> None:
        """Send everything recorded so far to the GPU (no-op when nothing is pending)."""
        if self._encoder is None:
            return
        self._end_pass()
        encoder, self._encoder = self._encoder, None
        self._queue.submit([encoder.finish()])
        self.epoch += 1
        self.submissions += 1

    def _end_pass(self) -> None:
        if self._pass is not None:
            self._pass.end()
            self._pass = None


__all__ = ["CommandRecorder"]
