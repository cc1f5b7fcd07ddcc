"""BLAS threads, and the matrix products the primitives and kernels share.

numpy multiplies float matrices through the BLAS it was built with (OpenBLAS in the
PyPI wheels). This module finds that OpenBLAS through ``ctypes`` (no extra dependency)
to set its thread count, and applies one policy to every product edgefw computes:

**Small products run on one BLAS thread.** Measured on the 2-core development machine:
while another process holds a core, every multi-threaded OpenBLAS call waits for the
scheduler (7-15 ms per call against 0.02-1 ms of work: its threads spin and yield), so a
busy core turns a 5 ms LeNet training step into 60 ms. So :func:`matmul` keeps a product
under :data:`PARALLEL_MIN_MACS` multiply-adds (~0.3 ms on one core) on the calling thread
(``openblas_set_num_threads_local``, OpenBLAS >= 0.3.27, which affects that thread only):
on idle cores a second thread would save at most half of it. (OpenBLAS itself keeps
products under ~0.26M MACs on one thread; sessions switch a whole run to one thread, since
OpenBLAS threads matrix-vector products from ~9k MACs.)

**Big products use up to** :func:`set_num_threads` **threads, never OpenBLAS's own**: they
are cut into row (or column) blocks run on Python threads (:mod:`.parallel`), which block
instead of spinning, so on busy cores the product slows to about one thread's speed
instead of stalling; chunked convolutions split their chunks the same way. On idle cores
this gets 1.3x from 2 threads where OpenBLAS gets 1.85x (256x784 @ 784x128: 400 vs 275
vs 510 us on one thread); but an OpenBLAS call that waited for a busy core costs 7-15 ms,
and its threads spin for a while after every call, which was measured to slow the
single-threaded batch-1 runs that follow by 1.4x on a shared machine. With an older or
another BLAS the switches are skipped and the BLAS decides.

>>> import numpy as np
>>> matmul(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)).sum()
np.float32(24.0)
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import numpy as np

from edgefw.errors import ConfigError

__all__ = [
    "MIN_GEMM_PIECE",
    "PARALLEL_MIN_MACS",
    "SMALL_GEMM_MACS",
    "blas_info",
    "enter_serial",
    "get_num_threads",
    "leave_serial",
    "matmul",
    "matmul_for",
    "matmul_nt",
    "serial_blas",
    "set_num_threads",
    "single_threaded",
]

#: Products with at least this many multiply-adds are split between threads (module docs).
PARALLEL_MIN_MACS = 1 << 24
#: Below this many multiply-adds OpenBLAS uses its unpacked small-matrix kernel, 2-4x
#: faster than its packed one on "skinny" products (few rows, thousands of columns, as in
#: a convolution's W @ cols): those are computed in pieces under this size.
SMALL_GEMM_MACS = 1_000_000
#: ... when a piece keeps at least this many columns (else the call overhead wins).
MIN_GEMM_PIECE = 1024
# OpenBLAS runs products below 65536 * 4 MACs on one thread by itself: no switch needed.
_OPENBLAS_SERIAL_MACS = 1 << 18


class _OpenBLAS:
    """ctypes handles to the OpenBLAS numpy loaded, or ``None`` fields when not found."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.set_threads = self.get_threads = self.set_local = None
        for path in _candidate_libraries():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            setter = _symbol(lib, "openblas_set_num_threads")
            getter = _symbol(lib, "openblas_get_num_threads")
            if setter is None or getter is None:
                continue
            self.path = path
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter.argtypes, getter.restype = [], ctypes.c_int
            self.set_threads, self.get_threads = setter, getter
            local = _symbol(lib, "openblas_set_num_threads_local")
            if local is not None:
                local.argtypes, local.restype = [ctypes.c_int], ctypes.c_int
                self.set_local = local
            break


def _candidate_libraries() -> Iterator[str]:
    """Shared libraries that may be numpy's OpenBLAS: those already mapped into this
    process (Linux), then the ones numpy's wheels ship beside the package."""
    np.dot(np.ones((2, 2)), np.ones((2, 2)))  # make sure numpy's BLAS is loaded
    seen = set()
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if "openblas" in os.path.basename(path).lower() and path not in seen:
                    seen.add(path)
                    yield path
    except OSError:
        pass
    root = os.path.dirname(np.__file__)
    for pattern in (root + ".libs/*openblas*", root + "/.dylibs/*openblas*",
                    root + "/../numpy.libs/*openblas*"):
        for path in sorted(glob.glob(pattern)):
            if path not in seen:
                seen.add(path)
                yield path


def _symbol(lib: ctypes.CDLL, name: str):
    """``name`` as exported by plain, scipy-openblas (``scipy_`` prefix) or ILP64 builds."""
    for prefix in ("", "scipy_"):
        for suffix in ("", "64_", "_64"):
            try:
                return getattr(lib, prefix + name + suffix)
            except AttributeError:
                continue
    return None


_blas: _OpenBLAS | None = None
_blas_lock = threading.Lock()
_threads: int | None = None  # edgefw's budget, None until set or first read


def _openblas() -> _OpenBLAS:
    global _blas
    if _blas is None:
        with _blas_lock:
            if _blas is None:
                _blas = _OpenBLAS()
    return _blas


def set_num_threads(n: int) -> None:
    """Let BLAS use up to ``n`` threads for large products (small ones stay on one; see
    the module docs). Call it with the thread count given to the framework you compare
    against; it overrides ``OPENBLAS_NUM_THREADS`` for this process.

    >>> before = get_num_threads()
    >>> set_num_threads(1); get_num_threads()
    1
    >>> set_num_threads(before)
    """
    global _threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"set_num_threads: n must be an integer >= 1, got {n!r}")
    blas = _openblas()
    if blas.set_threads is not None:
        blas.set_threads(int(n))
        if blas.set_local is not None:
            blas.set_local(int(n))  # this thread's local setting, if it had one, too
    _threads = int(n)


def get_num_threads() -> int:
    """The number of threads large BLAS products may use."""
    global _threads
    if _threads is None:
        blas = _openblas()
        if blas.get_threads is not None:
            _threads = int(blas.get_threads())
        else:
            _threads = int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count() or 1))
    return _threads


def blas_info() -> dict[str, object]:
    """Which BLAS library the thread control found, and the current budget."""
    blas = _openblas()
    return {"library": blas.path, "threads": get_num_threads(),
            "per_call_policy": blas.set_local is not None}


def enter_serial() -> int | None:
    """Put the calling thread's BLAS on one thread until :func:`leave_serial` (a session run:
    at batch 1 its products are matrix-vector ones, which OpenBLAS threads from ~9k
    multiply-adds on, and one switch per run is cheaper than one per product)."""
    threads = _threads if _threads is not None else get_num_threads()
    set_local = _openblas().set_local if threads > 1 else None
    return None if set_local is None else set_local(1)


def leave_serial(token: int | None) -> None:
    """Undo :func:`enter_serial` (``token`` is what it returned)."""
    if token is not None:
        _openblas().set_local(token if token > 0 else get_num_threads())


def serial_blas() -> None:
    """Put the calling thread's BLAS on one thread for good (worker threads)."""
    blas = _openblas()
    if blas.set_local is not None:
        blas.set_local(1)


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the products inside on one BLAS thread (this Python thread only)."""
    blas = _openblas()
    if blas.set_local is None or get_num_threads() == 1:
        yield
        return
    previous = blas.set_local(1)
    try:
        yield
    finally:
        blas.set_local(previous if previous > 0 else get_num_threads())


def matmul_for(macs: int):
    """The product function for a product of ``macs`` multiply-adds known in advance:
    ``np.matmul`` itself when OpenBLAS keeps it on one thread anyway (saving the policy's
    ~0.5 us of Python per call at batch 1), else :func:`matmul`."""
    return np.matmul if macs <= _OPENBLAS_SERIAL_MACS else matmul


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)`` under the thread policy of the module docs, with skinny
    products in small-kernel pieces.

    Stacked operands count as one product of all their multiply-adds (numpy runs the
    stack one matrix at a time, each of which is smaller still).
    """
    if a.ndim < 2 or b.ndim < 2:
        return np.matmul(a, b, out=out)
    macs = a.size * b.shape[-1] if a.ndim >= b.ndim else b.size * a.shape[-2]
    if macs <= _OPENBLAS_SERIAL_MACS:
        return np.matmul(a, b, out=out)
    threads = _threads if _threads is not None else get_num_threads()
    if macs < PARALLEL_MIN_MACS:
        threads = 1
    skinny = macs > SMALL_GEMM_MACS and _skinny(a, b)
    set_local = _openblas().set_local
    pieces = threads > 1 or skinny
    previous = None if set_local is None else set_local(1)
    try:
        if pieces:
            split = _split_product(a, b, out, threads if set_local is not None else 1)
            if split is not None:
                return split
        return np.matmul(a, b, out=out)
    finally:
        if previous is not None:
            set_local(previous if previous > 0 else get_num_threads())


def _skinny(a: np.ndarray, b: np.ndarray) -> bool:
    """A 2-D product with so few rows (or columns) that small-kernel pieces pay off."""
    if a.ndim != 2 or b.ndim != 2:
        return False
    (m, k), n = a.shape, b.shape[1]
    return min(m, n) * k * MIN_GEMM_PIECE <= SMALL_GEMM_MACS


def _split_product(a: np.ndarray, b: np.ndarray, out: np.ndarray | None, threads: int
                   ) -> np.ndarray | None:
    """``a @ b`` computed in row (or column) blocks, spread over ``threads`` threads; blocks
    are small-kernel pieces for a skinny product. None when the operands are stacked
    (the caller then multiplies them on one thread)."""
    from edgefw.ir.primitives.parallel import parallel_workers, run_split

    if b.ndim != 2 or (a.ndim > 2 and not a.flags.c_contiguous):
        return None
    workers = min(threads, parallel_workers())
    shape = a.shape[:-1] + b.shape[1:]
    if out is None:
        out = np.empty(shape, np.result_type(a, b))
    elif out.shape != shape or (a.ndim > 2 and not out.flags.c_contiguous):
        return None
    result = out
    if a.ndim > 2:  # (..., M, K) @ (K, N) is one (prod(...) * M, K) @ (K, N) product
        a, out = a.reshape(-1, a.shape[-1]), out.reshape(-1, out.shape[-1])
    (m, k), n = a.shape, b.shape[1]
    rows = m >= n
    size = m if rows else n
    blocks = workers
    if min(m, n) * k * MIN_GEMM_PIECE <= SMALL_GEMM_MACS:
        blocks = max(blocks, -(-size * min(m, n) * k // SMALL_GEMM_MACS))
    if blocks < 2:
        return None
    bounds = [size * i // blocks for i in range(blocks + 1)]
    pieces = []
    for lo, hi in zip(bounds, bounds[1:]):
        if rows:
            pieces.append(partial(np.matmul, a[lo:hi], b, out=out[lo:hi]))
        else:
            pieces.append(partial(np.matmul, a, b[:, lo:hi], out=out[:, lo:hi]))
    if workers < 2:
        for piece in pieces:
            piece()
    else:  # consecutive pieces per thread
        per = -(-len(pieces) // workers)
        run_split([partial(_run_all, pieces[i:i + per]) for i in range(0, len(pieces), per)],
                  workers=workers)
    return result


def _run_all(tasks) -> None:
    for task in tasks:
        task()


def matmul_nt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.swapaxes(-1, -2)`` for (G, X, K) and (G, Y, K) with a long K (weight grads).

    OpenBLAS is 3x slower than it could be on a small X*Y output with K in the tens of
    thousands; summing K-chunks of 2048 as a batched product restores the speed. For a
    larger output, ``(b @ a.T).T`` packs better than ``a @ b.T`` (measured 1.5-2x for
    LeNet's (16, 3200) x (151, 3200)).

    >>> a = np.ones((1, 2, 9000), np.float32); b = np.ones((1, 3, 9000), np.float32)
    >>> matmul_nt(a, b)[0]
    array([[9000., 9000., 9000.],
           [9000., 9000., 9000.]], dtype=float32)
    """
    groups, rows, depth = a.shape
    cols = b.shape[1]
    chunk = 2048
    if rows * cols > 1024:
        return matmul(b, a.transpose(0, 2, 1)).transpose(0, 2, 1)
    if depth < 4 * chunk:
        return matmul(a, b.transpose(0, 2, 1))
    n_chunks, full = depth // chunk, depth // chunk * chunk
    a_chunks = a[:, :, :full].reshape(groups, rows, n_chunks, chunk).transpose(0, 2, 1, 3)
    b_chunks = b[:, :, :full].reshape(groups, cols, n_chunks, chunk).transpose(0, 2, 3, 1)
    out = matmul(a_chunks, b_chunks).sum(axis=1)
    if full < depth:
        out += matmul(a[:, :, full:], b[:, :, full:].transpose(0, 2, 1))
    return out

