"""Resize before opset 18/19, and the deprecated Upsample, in the forms each opset has.

- ``Resize`` (the IR's form is opset 19): ``antialias`` and ``keep_aspect_ratio_policy``
  exist from 18 on (their defaults are simply left out before); an ``axes`` attribute is
  folded into full-rank ``scales``/``sizes``/``roi`` constants before 18;
  ``coordinate_transformation_mode="half_pixel_symmetric"`` exists from 19 on.
- ``Upsample`` is deprecated since opset 10 (onnx.checker rejects it): it is written as the
  Resize it equals, ``asymmetric`` coordinates and ``floor`` rounding for nearest.
"""

from __future__ import annotations

import numpy as np

from edgefw.ir.schema.dims import normalize_axis
from exporter.onnx.emitter import NodeWriter
from exporter.onnx.opset import rewrite, write_as_is

_ROI, _SCALES, _SIZES = 1, 2, 3


@rewrite("Resize")
def _resize(writer: NodeWriter) -> None:
    attrs = dict(writer.attrs)
    inputs = list(writer.inputs)
    mode = attrs.get("coordinate_transformation_mode")
    if writer.opset < 19 and mode == "half_pixel_symmetric":
        writer.fail("coordinate_transformation_mode 'half_pixel_symmetric' exists from opset "
                    "19 on")
    if writer.opset < 18:
        if int(attrs.pop("antialias", 0)):
            writer.fail("antialias=1 exists from opset 18 on")
        policy = attrs.pop("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            writer.fail(f"keep_aspect_ratio_policy {policy!r} exists from opset 18 on")
        axes = attrs.pop("axes", None)
        if axes is not None:
            inputs = _full_rank_inputs(writer, inputs, axes)
    write_as_is(writer, inputs=inputs, attrs=attrs)


def _full_rank_inputs(writer: NodeWriter, inputs: list[str], axes: list[int]) -> list[str]:
    """roi/scales/sizes given for ``axes`` only, rewritten for every axis."""
    x = writer.value(0)
    if x.rank is None:
        writer.fail("Resize with an axes attribute needs a known input rank before opset 18")
    axes = [normalize_axis(a, x.rank, "Resize axis") for a in axes]
    base = writer.node.name
    for index, what in ((_ROI, "roi"), (_SCALES, "scales"), (_SIZES, "sizes")):
        if not writer.has_input(index):
            continue
        data = writer.const(index)
        if data is None:
            writer.fail(f"its {what} (input {index}) must be a constant to fold the axes "
                        "attribute into it before opset 18")
        values = np.asarray(data).reshape(-1)
        if values.size == 0:
            continue  # an empty scales input means "use sizes"
        if what == "roi":
            full = np.array([0.0] * x.rank + [1.0] * x.rank, values.dtype)
            for j, a in enumerate(axes):
                full[a], full[a + x.rank] = values[j], values[j + len(axes)]
        elif what == "scales":
            full = np.ones(x.rank, values.dtype)
            full[axes] = values
        else:
            others = [d for i, d in enumerate(x.shape) if i not in axes]
            if not all(isinstance(d, int) for d in others):
                writer.fail("Resize sizes for some axes only need the other axes' sizes to "
                            f"be static before opset 18; the input is {list(x.shape)}")
            full = np.array([d if isinstance(d, int) else 0 for d in x.shape], np.int64)
            full[axes] = values
        inputs[index] = writer.emitter.constant(full, f"{base}/{what}")
    return inputs


@rewrite("Upsample")
def _upsample(writer: NodeWriter) -> None:
    mode = writer.attrs.get("mode", "nearest")
    attrs = {"mode": mode, "coordinate_transformation_mode": "asymmetric"}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    writer.emit("Resize", [writer.inputs[0], "", writer.inputs[1]], writer.outputs, attrs)


__all__: list[str] = []
