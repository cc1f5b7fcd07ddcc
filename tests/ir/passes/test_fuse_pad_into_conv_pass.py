"""FusePadIntoConvPass: zero spatial Pad before Conv moves into the Conv's pads; other pads
(reflect, non-zero value, on channels, negative, shared) stay."""

from __future__ import annotations

import numpy as np
import pytest

from edgefw.ir import Graph
from edgefw.ir.passes import FusePadIntoConvPass
from tests.ir.passes.graph_testing import assert_rewrite_keeps_outputs, op_types, random_feeds

RNG = np.random.default_rng(9)
I64 = np.int64


def pad_conv_graph(pad_inputs: list, mode: str = "constant", conv_pads: list | None = None,
                   group: int = 1) -> Graph:
    g = Graph()
    x = g.add_input("x", "float32", ("batch", 4, 7, 6))
    padded = g.add_node("Pad", [x, *pad_inputs], {"mode": mode}, name="pad").output
    attrs = {"strides": [2, 2], "group": group}
    if conv_pads is not None:
        attrs["pads"] = conv_pads
    w = RNG.standard_normal((4, 4 // group, 3, 3)).astype(np.float32)
    g.set_outputs([g.add_node("Conv", [padded, w], attrs, name="conv").output])
    return g


@pytest.mark.parametrize("pad_inputs,conv_pads,expected", [
    ([np.array([0, 0, 0, 1, 0, 0, 1, 0], I64)], None, [0, 1, 1, 0]),  # asymmetric "same"
    ([np.array([0, 0, 1, 1, 0, 0, 1, 1], I64), np.float32(0)], [1, 0, 0, 1], [2, 1, 1, 2]),
    ([np.array([2, 1, 0, 3], I64), None, np.array([-2, 3], I64)], None, [2, 1, 0, 3]),
], ids=["asymmetric", "added-to-conv-pads", "axes-input"])
def test_zero_spatial_pad_moves_into_conv(pad_inputs, conv_pads, expected):
    g = pad_conv_graph(pad_inputs, conv_pads=conv_pads, group=2)
    feeds = [random_feeds(g, batch=b, seed=b) for b in (1, 2)]
    result = assert_rewrite_keeps_outputs(g, FusePadIntoConvPass(), feeds)
    assert result.changed and op_types(g) == ["Conv"]
    assert g.nodes[0].attrs["pads"] == expected and g.nodes[0].inputs[0] is g.inputs[0]


@pytest.mark.parametrize("pad_inputs,mode", [
    ([np.array([0, 0, 1, 1, 0, 0, 1, 1], I64)], "reflect"),
    ([np.array([0, 0, 1, 1, 0, 0, 1, 1], I64), np.float32(1)], "constant"),  # non-zero value
    ([np.array([1, 0, 1, 1, 0, 0, 1, 1], I64)], "constant"),  # pads the batch axis
    ([np.array([0, 0, -1, 0, 0, 0, 0, 0], I64)], "constant"),  # crops
], ids=["reflect", "non-zero", "batch-axis", "negative"])
def test_other_pads_stay(pad_inputs, mode):
    g = pad_conv_graph(pad_inputs, mode=mode)
    assert FusePadIntoConvPass().run(g).changed is False


def test_pad_read_elsewhere_or_auto_pad_conv_stays():
    g = pad_conv_graph([np.array([0, 0, 1, 1, 0, 0, 1, 1], I64)])
    g.set_outputs([g.outputs[0], g.node("pad").output])
    assert FusePadIntoConvPass().run(g).changed is False

    g = Graph()
    x = g.add_input("x", "float32", (1, 2, 5, 5))
    padded = g.add_node("Pad", [x, np.array([0, 0, 1, 1, 0, 0, 1, 1], I64)]).output
    g.set_outputs([g.add_node("Conv", [padded, np.ones((2, 2, 3, 3), np.float32)],
                              {"auto_pad": "SAME_UPPER"}).output])
    assert FusePadIntoConvPass().run(g).changed is False
