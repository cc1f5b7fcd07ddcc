"""What cannot be exported fails before anything is written, naming the node, its module
path and the reason; bad arguments fail with a clear ExportError."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.errors import EdgeFWError, ExportError
from edgefw.ir import Graph
from exporter.tflite import to_tflite


def graph_with_erf() -> Graph:
    g = Graph("erf_net")
    x = g.add_input("input", "float32", ("batch", 4))
    h = g.add_node("Relu", [x], name="act", module_path="block.act").output
    e = g.add_node("Erf", [h], name="erf", module_path="block.erf").output
    t = g.add_node("TopK", [e, np.int64([2])], num_outputs=2, name="topk",
                   module_path="head.topk")
    g.set_outputs([t.outputs[0]])
    return g


def test_unmappable_ops_are_all_named_and_nothing_is_written(tmp_path):
    path = tmp_path / "model.tflite"
    with pytest.raises(ExportError) as info:
        to_tflite(graph_with_erf(), path)
    message = str(info.value)
    assert "node 'erf' (Erf, module block.erf)" in message
    assert "node 'topk' (TopK, module head.topk)" in message
    assert "no TFLite builtin" in message and "nothing was written" in message
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_failed_export_leaves_an_existing_file_untouched(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"previous model")
    with pytest.raises(ExportError):
        to_tflite(graph_with_erf(), path)
    assert path.read_bytes() == b"previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]  # no temporary left


def test_rule_failures_name_node_and_reason():
    g = Graph("pool")
    x = g.add_input("input", "float32", ("batch", 2, 8, 8))
    pool = g.add_node("AveragePool", [x], {"kernel_shape": [3, 3], "pads": [0, 0, 2, 2]},
                      name="pool", module_path="features.pool")
    g.set_outputs([pool.output])
    with pytest.raises(ExportError, match=r"node 'pool' \(AveragePool, module features.pool\)"
                                          r".*count_include_pad=0"):
        to_tflite(g)


@pytest.mark.parametrize("kwargs,match", [
    ({"quantize": "int4"}, "quantize must be one of"),
    ({"quantize": "int8"}, "needs calibration_data"),
    ({"quantize": "float16", "int8_io": True}, "int8_io needs a full-integer model"),
    ({"layout": "NDHWC"}, "layout must be one of"),
    ({"optimize": "max"}, "optimize must be one of"),
    ({"metadata": {"producer": "me"}}, "written by the exporter"),
    ({"metadata": {"x": object()}}, "cannot be stored as JSON"),
    ({"metadata": ["not", "a", "dict"]}, "metadata must be a dict"),
])
def test_bad_arguments(kwargs, match):
    g = Graph("tiny")
    x = g.add_input("input", "float32", ("batch", 3))
    g.set_outputs([g.add_node("Relu", [x]).output])
    with pytest.raises(ExportError, match=match):
        to_tflite(g, **kwargs)


def test_int8_io_on_a_float_graph_names_the_input():
    g = Graph("tiny")
    x = g.add_input("pixels", "float32", ("batch", 3))
    g.set_outputs([g.add_node("Relu", [x]).output])
    with pytest.raises(ExportError, match="int8_io: graph input 'pixels' is not quantized"):
        to_tflite(g, int8_io=True)


def test_module_needs_example_inputs_and_other_objects_are_rejected():
    from edgefw import models

    with pytest.raises(ExportError, match="needs example_inputs"):
        to_tflite(models.build("mlp"))
    with pytest.raises(ExportError, match="exports an edgefw.ir.Graph or an edgefw Module"):
        to_tflite("model.onnx")


def test_directory_path_is_an_error(tmp_path):
    g = Graph("tiny")
    x = g.add_input("input", "float32", ("batch", 3))
    g.set_outputs([g.add_node("Relu", [x]).output])
    with pytest.raises(ExportError, match="is a directory"):
        to_tflite(g, tmp_path)


def test_errors_stay_in_the_hierarchy_for_odd_graphs():
    # A constant output and an unsupported dtype cannot be written; both say why.
    g = Graph("const_out")
    x = g.add_input("input", "float32", (2,))
    g.add_node("Relu", [x])
    g.set_outputs([g.add_constant("c", np.ones(2, np.float32))])
    with pytest.raises(EdgeFWError):
        to_tflite(g)
