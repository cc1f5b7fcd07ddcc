"""Schemas of the object-detection ops: NonMaxSuppression, RoiAlign, and DeformConv
(deformable convolution)."""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES
from edgefw.ir.schema.dims import format_shape
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


@op_schema("NonMaxSuppression", inputs=(2, 5), attrs=[Attr("center_point_box", "int", 0)],
           since_version=11,
           doc="greedy per-class selection of boxes by score, dropping those overlapping a "
               "selected one by IoU > iou_threshold; [selected, 3] (batch, class, box)")
def _nms(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    ctx.require_same_dtype(0, 1)
    boxes, scores = ctx.shape(0), ctx.shape(1)
    if boxes is not None and (len(boxes) != 3 or boxes[2] not in (4, None)):
        raise ShapeError(f"NonMaxSuppression boxes must be [batch, boxes, 4], got "
                         f"{format_shape(boxes)}")
    if scores is not None and len(scores) != 3:
        raise ShapeError(f"NonMaxSuppression scores must be [batch, classes, boxes], got "
                         f"{format_shape(scores)}")
    if ctx.attr("center_point_box") not in (0, 1):
        raise ShapeError("NonMaxSuppression center_point_box must be 0 or 1")
    return [TensorType("int64", (None, 3))]


@op_schema("RoiAlign", inputs=3,
           attrs=[Attr("coordinate_transformation_mode", "string", "half_pixel"),
                  Attr("mode", "string", "avg"), Attr("output_height", "int", 1),
                  Attr("output_width", "int", 1), Attr("sampling_ratio", "int", 0),
                  Attr("spatial_scale", "float", 1.0)], since_version=16,
           doc="bilinearly sampled, average- or max-pooled [rois, C, out_h, out_w] features of "
               "each region of interest")
def _roi_align(ctx: InferenceContext) -> list[TensorType]:
    if ctx.attr("mode") not in ("avg", "max") or ctx.attr(
            "coordinate_transformation_mode") not in ("half_pixel", "output_half_pixel"):
        raise ShapeError("RoiAlign mode must be avg or max and coordinate_transformation_mode "
                         "half_pixel or output_half_pixel")
    ctx.require_dtype(0, FLOAT_DTYPES)
    ctx.require_dtype(2, {"int64", "int32"}, "RoiAlign batch_indices")
    x, rois = ctx.shape(0), ctx.shape(1)
    if x is not None and len(x) != 4 or rois is not None and (len(rois) != 2 or rois[1] not in (
            4, None)):
        raise ShapeError(f"RoiAlign needs X [N, C, H, W] and rois [R, 4], got "
                         f"{format_shape(x)} and {format_shape(rois)}")
    if int(ctx.attr("output_height")) < 1 or int(ctx.attr("output_width")) < 1:
        raise ShapeError("RoiAlign output_height and output_width must be positive")
    return [TensorType(ctx.dtype(0), (None if rois is None else rois[0],
                                      None if x is None else x[1],
                                      int(ctx.attr("output_height")),
                                      int(ctx.attr("output_width"))))]


@op_schema("DeformConv", inputs=(3, 5),
           attrs=[Attr("dilations", "ints", None), Attr("group", "int", 1),
                  Attr("kernel_shape", "ints", None), Attr("offset_group", "int", 1),
                  Attr("pads", "ints", None), Attr("strides", "ints", None)], since_version=19,
           doc="2-D convolution whose taps are moved by the offset input (bilinear sampling), "
               "optionally scaled by mask")
def _deform_conv(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, FLOAT_DTYPES)
    dtype = ctx.require_same_dtype(0, 1, 2)
    x, w, offset = ctx.shape(0), ctx.shape(1), ctx.shape(2)
    if x is not None and len(x) != 4:
        raise ShapeError(f"DeformConv supports 2-D inputs [N, C, H, W], got {format_shape(x)}")
    if x is None or w is None or offset is None:
        return [TensorType(dtype, None)]
    return [TensorType(dtype, (x[0], w[0], offset[2], offset[3]))]
