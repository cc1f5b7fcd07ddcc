"""Metadata written into .onnx files and read back with exporter.onnx.read_metadata."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import exporter
from edgefw.errors import ModelFormatError
from edgefw.ir import Graph
from exporter.onnx import JSON_KEYS, read_metadata

LABELS = [str(d) for d in range(10)]
METADATA = {
    "input_layout": "NCHW",
    "normalization": {"scale": 1 / 255},
    "class_labels": LABELS,
    "input_size": 28,
    "threshold": np.float32(0.5),
    "note": "[not json, just text]",
}


def graph_with_metadata() -> Graph:
    g = Graph("meta")
    g.set_outputs([g.add_node("Relu", [g.add_input("x", "float32", ("batch", 4))]).output])
    g.metadata.update({"source": "unit test", "input_layout": "NHWC", "epochs": 3})
    return g


def test_round_trip_through_file_bytes_and_proto(tmp_path):
    path = tmp_path / "meta.onnx"
    model = exporter.to_onnx(graph_with_metadata(), path, metadata=METADATA, optimize="none")
    expected = {**METADATA, "threshold": 0.5, "source": "unit test"}
    for source in (path, str(path), path.read_bytes(), model):
        assert read_metadata(source) == expected
    # What other tools see: plain string pairs, JSON where the value was not a string.
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["input_layout"] == "NCHW"  # the explicit metadata wins over the graph's
    assert json.loads(props["class_labels"]) == LABELS
    assert props["note"] == "[not json, just text]"
    assert json.loads(props[JSON_KEYS]) == sorted(["class_labels", "input_size", "normalization",
                                                   "threshold"])
    assert "epochs" not in props  # graph metadata that is not a plain string is left out


def test_reexported_loaded_metadata_keeps_its_json_values():
    first = exporter.to_onnx(graph_with_metadata(), metadata=METADATA, optimize="none")
    g = graph_with_metadata()
    g.metadata = {p.key: p.value for p in first.metadata_props}  # what a loader keeps
    second = exporter.to_onnx(g, optimize="none")
    assert read_metadata(second)["class_labels"] == LABELS
    assert read_metadata(second)["normalization"] == {"scale": 1 / 255}


def test_model_without_metadata_reads_empty():
    g = Graph("bare")
    g.set_outputs([g.add_node("Relu", [g.add_input("x", "float32", (2,))]).output])
    assert read_metadata(exporter.to_onnx(g, optimize="none")) == {}


@pytest.mark.parametrize("source", [b"\x00\x01 definitely not protobuf \xff", "missing.onnx"])
def test_unreadable_sources_are_model_format_errors(source, tmp_path):
    if isinstance(source, str):
        source = tmp_path / source
    with pytest.raises(ModelFormatError):
        read_metadata(source)
