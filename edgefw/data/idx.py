"""Read and write IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic (two zero bytes, a dtype code, the number of dimensions),
one big-endian uint32 per dimension, then the items, big-endian, row-major. The files are
usually gzip-compressed. Files are untrusted: the header is checked against what the file
can hold *before* anything is allocated, and every failure is a :class:`DataError` that
names the file and what is wrong.

>>> import os, tempfile
>>> import numpy as np
>>> path = os.path.join(tempfile.mkdtemp(), "demo-idx1-ubyte.gz")
>>> write_idx(path, np.arange(5, dtype=np.uint8))
>>> read_idx(path)
array([0, 1, 2, 3, 4], dtype=uint8)
"""

from __future__ import annotations

import gzip as gzip_module
import io
import math
import os
import zlib

import numpy as np

from edgefw.errors import DataError, DTypeError
from edgefw.fileio import atomic_write

# IDX dtype code -> big-endian numpy dtype of the stored items.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_BY_NATIVE_DTYPE = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"
# Deflate cannot expand one input byte into more than ~1032 output bytes, so a gzip file of
# n bytes holds at most ~1032*n bytes. A header declaring more is bogus, and we can reject it
# without decompressing anything.
_MAX_DEFLATE_RATIO = 1032
_MAX_HEADER_BYTES = 4 + 4 * 255


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw; detected from its first bytes).

    Returns a writable array in native byte order with the dtype the file declares
    (uint8, int8, int16, int32, float32 or float64) and the declared shape.

    Raises :class:`DataError` naming the file when it is missing, is not IDX, declares an
    unknown dtype, holds fewer or more payload bytes than its header declares, or is a
    corrupt or truncated gzip stream.

    >>> x = read_idx("samples/data/mnist/t10k-labels-idx1-ubyte.gz")  # doctest: +SKIP
    >>> x.shape, x.dtype  # doctest: +SKIP
    ((10000,), dtype('uint8'))
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            file_size = os.fstat(file.fileno()).st_size
            if file.read(2) == _GZIP_MAGIC:
                file.seek(0)
                compressed = file.read()
                return _read_gzip_idx(name, compressed)
            file.seek(0)
            return _read_raw_idx(name, file, file_size)
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, expected an IDX file") from None
    except OSError as error:
        raise DataError(f"{name}: cannot read: {error.strerror or error}") from None


def write_idx(path: str | os.PathLike, array: np.ndarray, gzip: bool = True) -> None:
    """Write ``array`` as an IDX file, gzip-compressed unless ``gzip=False``.

    The file is written to a temporary file in the same folder and renamed into place, so
    a crash never leaves half a file behind. Supported dtypes: uint8, int8, int16, int32,
    float32, float64; at least one and at most 255 dimensions, each below 2**32.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx2-float")
    >>> write_idx(path, np.eye(2, dtype=np.float32), gzip=False)
    >>> os.path.getsize(path)  # 4 magic + 2*4 dims + 4*4 payload
    28
    """
    name = os.fspath(path)
    array = np.asarray(array)
    code = _CODE_BY_NATIVE_DTYPE.get(array.dtype.newbyteorder("="))
    if code is None:
        supported = ", ".join(str(dtype.newbyteorder("=")) for dtype in IDX_DTYPES.values())
        raise DTypeError(f"{name}: IDX cannot store dtype {array.dtype}; supported: {supported}")
    if not 1 <= array.ndim <= 255:
        raise DataError(f"{name}: IDX stores 1 to 255 dimensions, array has {array.ndim}")
    if any(dim >= 2**32 for dim in array.shape):
        raise DataError(f"{name}: IDX dimensions must be below 2**32, got {array.shape}")

    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()

    with atomic_write(name) as file:
        if gzip:
            # mtime=0 makes the bytes depend only on the array, so fixtures are reproducible.
            stored_name = os.path.basename(name).removesuffix(".gz")
            with gzip_module.GzipFile(
                stored_name, mode="wb", compresslevel=6, fileobj=file, mtime=0
            ) as compressed:
                compressed.write(header)
                compressed.write(payload)
        else:
            file.write(header)
            file.write(payload)


def _parse_magic(name: str, magic: bytes) -> tuple[np.dtype, int]:
    """Check the 4-byte magic; return the stored dtype and the number of dimensions."""
    if len(magic) < 4:
        raise DataError(f"{name}: truncated: {len(magic)} bytes, too short for an IDX header")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{name}: bad magic {magic.hex()}: an IDX file starts with two zero bytes "
            "(or is gzip-compressed, starting with 1f8b)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(
            f"0x{c:02X} {dtype.newbyteorder('=')}" for c, dtype in IDX_DTYPES.items()
        )
        raise DataError(f"{name}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares 0 dimensions, expected at least 1")
    return IDX_DTYPES[code], ndim


def _parse_dims(name: str, dims_bytes: bytes, ndim: int) -> tuple[int, ...]:
    if len(dims_bytes) < 4 * ndim:
        raise DataError(
            f"{name}: truncated: header declares {ndim} dimensions ({4 * ndim} bytes), "
            f"file holds {len(dims_bytes)} bytes of them"
        )
    return tuple(int(dim) for dim in np.frombuffer(dims_bytes, dtype=">u4"))


def _describe(dims: tuple[int, ...], dtype: np.dtype) -> str:
    # Python ints: the product of four uint32 dims would overflow any numpy integer.
    nbytes = math.prod(dims) * dtype.itemsize
    return f"{'x'.join(map(str, dims))} = {nbytes} bytes of {dtype.newbyteorder('=')}"


def _to_array(payload: bytes | np.ndarray, dims: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """View the payload bytes as the declared array; writable, in native byte order."""
    if isinstance(payload, np.ndarray):
        array = payload.view(dtype)
    else:
        array = np.frombuffer(payload, dtype=dtype)
    array = array.reshape(dims)
    native = dtype.newbyteorder("=")
    # One copy at most: it swaps bytes to native order and/or frees the array from an
    # immutable bytes buffer (a user may well want to normalize in place).
    if array.dtype != native or not array.flags.writeable:
        array = array.astype(native)
    return array


def _read_raw_idx(name: str, file: io.BufferedReader, file_size: int) -> np.ndarray:
    dtype, ndim = _parse_magic(name, file.read(4))
    dims = _parse_dims(name, file.read(4 * ndim), ndim)
    declared = math.prod(dims) * dtype.itemsize
    available = file_size - 4 - 4 * ndim
    if declared > available:
        raise DataError(
            f"{name}: truncated: header declares {_describe(dims, dtype)}, "
            f"file holds {available}"
        )
    if declared < available:
        raise DataError(
            f"{name}: {available - declared} trailing bytes: header declares "
            f"{_describe(dims, dtype)}, file holds {available}"
        )
    # readinto a preallocated array: one copy, no per-item Python, and the result is writable.
    payload = np.empty(declared, dtype=np.uint8)
    got = file.readinto(memoryview(payload)) if declared else 0
    if got != declared:  # the file shrank while we read it
        raise DataError(f"{name}: truncated: expected {declared} payload bytes, read {got}")
    return _to_array(payload, dims, dtype)


class _GzipReader:
    """Decompresses a gzip byte string on demand, never producing more than asked for.

    zlib with ``max_length`` grows its output buffer as data actually comes out, so asking
    for ``declared + 1`` bytes of a stream that holds 100 allocates ~100 bytes, not
    ``declared``. Handles multi-member files and the zero padding some tools append.
    """

    def __init__(self, name: str, compressed: bytes):
        self._name = name
        self._decompressor = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        self._pending = compressed

    def read(self, size: int) -> bytes:
        chunks: list[bytes] = []
        remaining = size
        while remaining > 0:
            if self._decompressor.eof:
                leftover = self._decompressor.unused_data
                if not leftover.strip(b"\0"):
                    break
                if not leftover.startswith(_GZIP_MAGIC):
                    raise DataError(
                        f"{self._name}: {len(leftover)} bytes of garbage after the gzip stream"
                    )
                self._decompressor = zlib.decompressobj(wbits=31)
                self._pending = leftover
            pending_before = len(self._pending)
            try:
                chunk = self._decompressor.decompress(self._pending, remaining)
            except zlib.error as error:
                raise DataError(f"{self._name}: corrupt gzip stream: {error}") from None
            self._pending = self._decompressor.unconsumed_tail
            if chunk:
                chunks.append(chunk)
                remaining -= len(chunk)
            elif not self._decompressor.eof and (
                not self._pending or len(self._pending) == pending_before
            ):
                raise DataError(
                    f"{self._name}: truncated gzip stream: it ends before its end-of-stream "
                    "marker (incomplete download?)"
                )
        return b"".join(chunks)


def _read_gzip_idx(name: str, compressed: bytes) -> np.ndarray:
    stream = _GzipReader(name, compressed)
    dtype, ndim = _parse_magic(name, stream.read(4))
    dims = _parse_dims(name, stream.read(4 * ndim), ndim)
    declared = math.prod(dims) * dtype.itemsize
    if declared + 4 + 4 * ndim > _MAX_DEFLATE_RATIO * len(compressed) + _MAX_HEADER_BYTES:
        raise DataError(
            f"{name}: header declares {_describe(dims, dtype)}, but a gzip file of "
            f"{len(compressed)} bytes decompresses to at most ~{_MAX_DEFLATE_RATIO} times "
            "its size (truncated file or corrupt header)"
        )
    # One byte more than declared, so trailing data shows up without decompressing it all.
    data = stream.read(declared + 1)
    if len(data) < declared:
        raise DataError(
            f"{name}: truncated: header declares {_describe(dims, dtype)}, "
            f"file holds {len(data)}"
        )
    if len(data) > declared:
        raise DataError(
            f"{name}: trailing bytes: header declares {_describe(dims, dtype)}, "
            "file holds more"
        )
    return _to_array(data, dims, dtype)


__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]
