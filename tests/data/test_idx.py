"""IDX reader/writer: round trips, hand-built reference bytes, and corrupt files."""

from __future__ import annotations

import gzip
import os
import struct
import time
import tracemalloc

import numpy as np
import pytest

from edgefw.data.idx import read_idx, write_idx
from edgefw.errors import DataError, DTypeError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
         np.float64: 0x0E}


def idx_bytes(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file built by hand from the format description, independent of write_idx."""
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def write_bytes(folder, name: str, data: bytes) -> str:
    path = os.path.join(folder, name)
    with open(path, "wb") as file:
        file.write(data)
    return path


def sample_array(dtype, shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        array.flat[:2] = [info.min, info.max]  # the extremes survive the byte swap
        return array
    return (rng.standard_normal(shape) * 1e3).astype(dtype)


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 2, 3), (2, 1, 3, 2), (0, 5)])
def test_round_trip(tmp_path, dtype, compress, shape):
    array = sample_array(dtype, shape)
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    write_idx(path, array, gzip=compress)
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(dtype) and loaded.dtype.isnative
    assert loaded.shape == shape
    np.testing.assert_array_equal(loaded, array)
    assert loaded.flags.writeable
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_written_bytes_match_the_format(tmp_path, dtype):
    array = sample_array(dtype, (2, 3), seed=1)
    expected = idx_bytes(CODES[dtype], (2, 3), array.astype(np.dtype(dtype).newbyteorder(">"))
                         .tobytes())
    write_idx(tmp_path / "raw", array, gzip=False)
    write_idx(tmp_path / "x.gz", array)
    assert (tmp_path / "raw").read_bytes() == expected
    assert gzip.decompress((tmp_path / "x.gz").read_bytes()) == expected


def test_reads_hand_built_big_endian_values(tmp_path):
    path = write_bytes(tmp_path, "h", idx_bytes(0x0B, (3,), bytes.fromhex("0001fffe8000")))
    np.testing.assert_array_equal(read_idx(path), np.array([1, -2, -32768], dtype=np.int16))
    path = write_bytes(tmp_path, "f.gz", gzip.compress(idx_bytes(0x0D, (1, 2), bytes.fromhex(
        "3f800000c0490fdb"))))
    np.testing.assert_array_equal(read_idx(path), np.array([[1.0, -np.pi]], dtype=np.float32))


def test_write_replaces_existing_file_atomically(tmp_path):
    path = tmp_path / "labels.gz"
    write_idx(path, np.arange(3, dtype=np.uint8))
    write_idx(path, np.arange(5, dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(path), np.arange(5))
    assert os.listdir(tmp_path) == ["labels.gz"]


def test_write_rejects_what_idx_cannot_store(tmp_path):
    with pytest.raises(DTypeError, match="float16"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.float16))
    with pytest.raises(DTypeError, match="int64"):
        write_idx(tmp_path / "b", np.zeros(3, dtype=np.int64))
    with pytest.raises(DataError, match="0"):
        write_idx(tmp_path / "c", np.array(3, dtype=np.uint8))
    assert os.listdir(tmp_path) == []


def test_gzip_multi_member_and_zero_padding_are_accepted(tmp_path):
    data = idx_bytes(0x08, (2, 2), bytes([1, 2, 3, 4]))
    two_members = gzip.compress(data[:6]) + gzip.compress(data[6:]) + b"\0" * 8
    path = write_bytes(tmp_path, "m.gz", two_members)
    np.testing.assert_array_equal(read_idx(path), [[1, 2], [3, 4]])


# --- corrupt files ---------------------------------------------------------------------


def raises_data_error(path, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert os.path.basename(str(path)) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_bad_headers(tmp_path, compress):
    def put(name, data):
        return write_bytes(tmp_path, name, gzip.compress(data) if compress else data)

    good = idx_bytes(0x08, (2,), b"\x01\x02")
    raises_data_error(put("magic", b"\x01" + good[1:]), "bad magic")
    raises_data_error(put("magic2", b"\x00\x07" + good[2:]), "bad magic")
    raises_data_error(put("code", good[:2] + b"\x0a" + good[3:]), "dtype code 0x0A")
    raises_data_error(put("ndim0", b"\x00\x00\x08\x00"), "0 dimensions")
    raises_data_error(put("short", b"\x00\x00"), "truncated")
    raises_data_error(put("dims", idx_bytes(0x08, (2, 3, 4), b"")[:10]), "truncated", "3 dim")
    raises_data_error(put("empty", b""), "truncated")


def test_truncated_and_trailing_payload_raw(tmp_path):
    full = idx_bytes(0x0C, (3, 4), bytes(48))
    raises_data_error(write_bytes(tmp_path, "t", full[:-1]), "truncated",
                      "3x4 = 48 bytes of int32", "file holds 47")
    raises_data_error(write_bytes(tmp_path, "l", full + b"\x00\x01"), "2 trailing bytes",
                      "3x4 = 48 bytes of int32", "file holds 50")


def test_truncated_and_trailing_payload_gzip(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, 60 * 28 * 28, dtype=np.uint8)
    full = idx_bytes(0x08, (60, 28, 28), pixels.tobytes())  # random: compresses poorly
    raises_data_error(write_bytes(tmp_path, "train-images-idx3-ubyte.gz",
                                  gzip.compress(full[:1250])),
                      "train-images-idx3-ubyte.gz: truncated: header declares 60x28x28 = 47040 "
                      "bytes of uint8, file holds 1234")
    raises_data_error(write_bytes(tmp_path, "long.gz", gzip.compress(full + b"x")),
                      "trailing bytes", "60x28x28")


def test_truncated_gzip_stream(tmp_path):
    rng = np.random.default_rng(0)
    data = idx_bytes(0x08, (5000,), rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    compressed = gzip.compress(data)
    for cut in (len(compressed) // 2, len(compressed) - 4, len(compressed) - 1, 12):
        raises_data_error(write_bytes(tmp_path, "cut.gz", compressed[:cut]), "truncated")


def test_gzip_crc_error_and_garbage(tmp_path):
    compressed = bytearray(gzip.compress(idx_bytes(0x08, (3,), b"abc")))
    bad_crc = compressed.copy()
    bad_crc[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    raises_data_error(write_bytes(tmp_path, "crc.gz", bytes(bad_crc)), "corrupt gzip",
                      "incorrect data check")
    bad_size = compressed.copy()
    bad_size[-1] ^= 0x01  # ISIZE, the uncompressed length mod 2**32
    raises_data_error(write_bytes(tmp_path, "isize.gz", bytes(bad_size)), "corrupt gzip")
    raises_data_error(write_bytes(tmp_path, "junk.gz", bytes(compressed) + b"junk"), "garbage")


def test_missing_file_and_directory(tmp_path):
    raises_data_error(tmp_path / "nope-idx1-ubyte.gz", "no such file")
    with pytest.raises(DataError, match="directory"):
        read_idx(tmp_path)


def peak_allocation(function) -> int:
    tracemalloc.start()
    try:
        function()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("dims", [(0xFFFFFFFF,) * 3, (60000, 28, 28), (2**31, 2), (100_000,)])
def test_bogus_sizes_fail_fast_without_allocating(tmp_path, compress, dims):
    data = idx_bytes(0x0E, dims, bytes(64))  # declares way more than the 64 bytes it holds
    path = write_bytes(tmp_path, "huge.gz" if compress else "huge",
                       gzip.compress(data) if compress else data)

    def read_and_expect_error():
        with pytest.raises(DataError, match="declares"):
            read_idx(path)

    start = time.perf_counter()
    peak = peak_allocation(read_and_expect_error)
    assert time.perf_counter() - start < 1.0
    assert peak < 1_000_000, f"allocated {peak} bytes for a {len(data)}-byte file"


def test_gzip_bomb_is_read_no_further_than_declared(tmp_path):
    # 40 MB of zeros compress to ~40 kB; the header declares only 100 bytes of them.
    data = idx_bytes(0x08, (100,), bytes(40_000_000))
    path = write_bytes(tmp_path, "bomb.gz", gzip.compress(data, compresslevel=1))
    peak = peak_allocation(lambda: pytest.raises(DataError, read_idx, path))
    assert peak < 2_000_000


def test_random_bytes_always_raise_data_error(tmp_path):
    rng = np.random.default_rng(1234)
    path = tmp_path / "random"
    for trial in range(300):
        size = int(rng.integers(0, 200))
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        if trial % 3 == 0:  # make it past the magic check more often
            data = b"\x00\x00" + data
        if trial % 5 == 0:
            data = b"\x1f\x8b" + data
        path.write_bytes(data)
        with pytest.raises(DataError):
            read_idx(path)


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_bit_flips_give_data_error_or_a_valid_array(tmp_path, compress):
    array = sample_array(np.int16, (4, 5), seed=3)
    write_idx(tmp_path / "good", array, gzip=compress)
    original = (tmp_path / "good").read_bytes()
    rng = np.random.default_rng(7)
    path = tmp_path / "flipped"
    outcomes = {"error": 0, "array": 0}
    for _ in range(300):
        data = bytearray(original)
        position = int(rng.integers(len(data)))
        data[position] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(data))
        try:
            loaded = read_idx(path)
        except DataError:
            outcomes["error"] += 1
        else:
            outcomes["array"] += 1
            assert loaded.size * loaded.itemsize + 4 + 4 * loaded.ndim == len(
                gzip.decompress(data) if compress else data
            )
    assert outcomes["error"] > 0 and outcomes["array"] > 0
