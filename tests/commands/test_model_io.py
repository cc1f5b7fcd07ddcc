"""The commands' shared model/array helpers: format detection, labels, .npy reading."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.commands import model_io
from edgefw.errors import DataError, InvalidInputError, ModelFormatError
from runtime import NodeArg


def test_detect_format_by_suffix_then_by_content(tmp_path):
    tfl = tmp_path / "model.bin"
    tfl.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(24))
    assert model_io.detect_format(tfl) == "tflite"
    (tmp_path / "m.tflite").write_bytes(b"")
    assert model_io.detect_format(tmp_path / "m.tflite") == "tflite"
    (tmp_path / "m.pb").write_bytes(b"\x08\x08")
    assert model_io.detect_format(tmp_path / "m.pb") == "onnx"
    with pytest.raises(ModelFormatError, match="model file not found"):
        model_io.detect_format(tmp_path / "absent.onnx")


@pytest.mark.parametrize("value, expected", [
    ('["a", "b"]', ["a", "b"]),
    (["a", 2], ["a", "2"]),
    ({"1": "dog", "0": "cat"}, ["cat", "dog"]),
    ({"0": "cat", "2": "emu"}, ["cat", "1", "emu"]),
    ("cat, dog", ["cat", "dog"]),
    ({"x": "cat"}, None),
    (None, None),
])
def test_class_labels_forms(value, expected):
    assert model_io.class_labels({"class_labels": value} if value is not None else {}) \
        == expected


def test_load_array_round_trip_and_fortran_order(tmp_path):
    a = np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4))
    np.save(tmp_path / "a.npy", a)
    np.testing.assert_array_equal(model_io.load_array(tmp_path / "a.npy"), a)
    empty = np.zeros((0, 5), np.float32)
    np.save(tmp_path / "e.npy", empty)
    assert model_io.load_array(tmp_path / "e.npy").shape == (0, 5)


def test_load_array_rejects_lying_headers(tmp_path):
    path = tmp_path / "huge.npy"
    with open(path, "wb") as f:  # promises 2^40 float64s (8 TiB)
        np.lib.format.write_array_header_2_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (2**20, 2**20)})
    with pytest.raises(DataError, match=r"is truncated: .*8,796,093,022,208 bytes"):
        model_io.load_array(path)


def test_read_inputs_rejects_duplicates_and_unknown_npz_names(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(2, np.float32))
    with pytest.raises(InvalidInputError, match="input 'x' is given twice"):
        model_io.read_inputs([f"x={tmp_path / 'x.npy'}", f"x={tmp_path / 'x.npy'}"], ["x"])
    np.savez(tmp_path / "f.npz", y=np.zeros(2))
    with pytest.raises(InvalidInputError, match="holds array 'y', but the model's inputs are 'x'"):
        model_io.read_inputs([str(tmp_path / "f.npz")], ["x"])


def test_save_array_is_atomic_and_names_are_safe(tmp_path):
    name = model_io.safe_file_name("../logits:0")
    assert "/" not in name and not name.startswith(".")
    path = model_io.save_array(tmp_path / "out" / f"{name}.npy", np.arange(3))
    np.testing.assert_array_equal(np.load(path), np.arange(3))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_random_inputs_bind_symbols_and_keep_dtypes():
    args = [NodeArg("x", ["batch", "seq", 8], "tensor(float)", "float32"),
            NodeArg("ids", ["batch", "seq"], "tensor(int64)", "int64"),
            NodeArg("mask", [1, 4], "tensor(bool)", "bool")]
    feed = model_io.random_inputs(args, batch=1, dims={"seq": 5}, seed=1)
    assert feed["x"].shape == (1, 5, 8) and feed["x"].dtype == np.float32
    assert feed["ids"].shape == (1, 5) and feed["ids"].dtype == np.int64
    assert feed["ids"].min() >= 0 and feed["ids"].max() < 10
    assert feed["mask"].dtype == np.bool_
    again = model_io.random_inputs(args, batch=1, dims={"seq": 5}, seed=1)
    assert all(np.array_equal(feed[k], again[k]) for k in feed)
    with pytest.raises(InvalidInputError, match="symbolic dim 'seq' at axis 1; give its size "
                                                "with --dim seq=SIZE"):
        model_io.random_inputs(args[:1], batch=2)
    with pytest.raises(InvalidInputError, match="fixed batch of 1"):
        model_io.random_inputs(args[2:], batch=4)
