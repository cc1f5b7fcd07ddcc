"""Run independent pieces of one big operation on several threads (numpy releases the GIL
inside copies and BLAS calls, so Python threads overlap there).

Why not leave it to OpenBLAS: its worker threads spin and yield while they wait, and when
another process holds a core a multi-threaded call waits for the scheduler (7-8 ms a call
measured here), so :mod:`.blas` keeps products of a chunked convolution on one BLAS thread.
Splitting the chunks between Python threads instead, each worker blocks on a lock while it
has nothing to do: on busy cores the work degrades to roughly one thread's speed instead of
stalling. Worth it only for operations of a millisecond or more (a hand-off costs ~20 us).

>>> results = [0] * 4
>>> def task(i): results[i] = i * i
>>> run_split([lambda i=i: task(i) for i in range(4)], workers=2)
>>> results
[0, 1, 4, 9]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

from edgefw.ir.primitives.blas import get_num_threads, serial_blas, single_threaded

__all__ = ["parallel_workers", "run_split"]


class _Pool:
    """Daemon threads that run lists of tasks handed to them, one list at a time each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inboxes: list[queue.SimpleQueue] = []

    def ensure(self, count: int) -> list[queue.SimpleQueue]:
        with self._lock:
            while len(self._inboxes) < count:
                inbox: queue.SimpleQueue = queue.SimpleQueue()
                thread = threading.Thread(target=self._serve, args=(inbox,), daemon=True,
                                          name=f"edgefw-worker-{len(self._inboxes)}")
                thread.start()
                self._inboxes.append(inbox)
            return self._inboxes[:count]

    @staticmethod
    def _serve(inbox: queue.SimpleQueue) -> None:
        serial_blas()  # the products in a split operation stay on one BLAS thread
        _busy.active = True
        while True:
            tasks, done, errors = inbox.get()
            try:
                for task in tasks:
                    task()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                errors.append(exc)
            finally:
                done.release()


_POOL = _Pool()
_busy = threading.local()  # set while this thread runs split tasks (no nested splitting)


def parallel_workers() -> int:
    """How many threads :func:`run_split` uses by default (``get_num_threads()``)."""
    return 1 if getattr(_busy, "active", False) else max(1, get_num_threads())


def run_split(tasks: Sequence[Callable[[], None]], workers: int | None = None) -> None:
    """Run ``tasks`` (independent, any order) on up to ``workers`` threads, the caller's
    included: task i goes to thread ``i % workers``. Returns when all are done; the first
    exception raised by a task is raised here."""
    count = min(len(tasks), parallel_workers() if workers is None else max(1, workers))
    if count <= 1:
        for task in tasks:
            task()
        return
    done = threading.Semaphore(0)
    errors: list[BaseException] = []
    inboxes = _POOL.ensure(count - 1)
    for k, inbox in enumerate(inboxes, start=1):
        inbox.put((tasks[k::count], done, errors))
    _busy.active = True
    try:
        with single_threaded():
            for task in tasks[0::count]:
                task()
    finally:
        _busy.active = False
        for _ in inboxes:
            done.acquire()
    if errors:
        raise errors[0]
