"""NonMaxSuppression, RoiAlign and DeformConv, with the semantics of ONNX's reference
implementation (which follows onnxruntime's and torchvision's kernels)."""

from __future__ import annotations

import numpy as np

from edgefw.errors import ShapeError
from runtime.providers.base import Kernel, KernelContext
from runtime.providers.cpu.registry import cpu_kernel


def _corners(boxes: np.ndarray, center_point_box: bool) -> np.ndarray:
    """[..., 4] boxes as (y_min, x_min, y_max, x_max)."""
    if center_point_box:  # (x_center, y_center, width, height)
        x, y, w, h = np.moveaxis(boxes, -1, 0)
        return np.stack([y - h / 2, x - w / 2, y + h / 2, x + w / 2], axis=-1)
    y1, x1, y2, x2 = np.moveaxis(boxes, -1, 0)  # corners in either order
    return np.stack([np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2),
                     np.maximum(x1, x2)], axis=-1)


def iou_matrix(corners: np.ndarray) -> np.ndarray:
    """IoU of every pair of boxes; 0 where a box has no area or they do not overlap."""
    y1, x1, y2, x2 = (corners[:, i] for i in range(4))
    ih = np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1[None, :])
    iw = np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1[None, :])
    inter = np.where((ih > 0) & (iw > 0), ih * iw, 0.0)
    area = (y2 - y1) * (x2 - x1)
    union = area[:, None] + area[None, :] - inter
    valid = (area[:, None] > 0) & (area[None, :] > 0) & (union > 0) & (inter > 0)
    return np.where(valid, inter / np.where(union > 0, union, 1), 0.0)


@cpu_kernel("NonMaxSuppression", since=11)
def non_max_suppression(ctx: KernelContext) -> Kernel:
    center = bool(ctx.attr("center_point_box"))

    def nms(boxes, scores, max_output_boxes_per_class=None, iou_threshold=None,
            score_threshold=None):
        def scalar(a, default):
            return default if a is None or a.size == 0 else a.reshape(-1)[0].item()

        limit = max(int(scalar(max_output_boxes_per_class, 0)), 0)
        iou_limit = float(scalar(iou_threshold, 0.0))
        min_score = scalar(score_threshold, None)
        if boxes.shape[0] != scores.shape[0] or boxes.shape[1] != scores.shape[2]:
            raise ShapeError(f"NonMaxSuppression boxes {list(boxes.shape)} and scores "
                             f"{list(scores.shape)} disagree")
        selected = []
        for b in range(boxes.shape[0]):
            iou = iou_matrix(_corners(boxes[b].astype(np.float64), center))
            for c in range(scores.shape[1]):
                s = scores[b, c]
                candidates = np.arange(s.size) if min_score is None else \
                    np.flatnonzero(s > min_score)
                # Highest score first; equal scores keep the lower box index first.
                order = candidates[np.lexsort((candidates, -s[candidates]))]
                kept: list[int] = []
                for i in order:
                    if len(kept) >= limit:
                        break
                    if not kept or np.all(iou[i, kept] <= iou_limit):
                        kept.append(int(i))
                selected += [(b, c, i) for i in kept]
        return np.array(selected, dtype=np.int64).reshape(-1, 3)

    return nms


def _axis_samples(start: float, bin_size: float, bins: int, grid: int, size: int):
    """Per sample point along one axis: low/high indices, fractional weight, validity."""
    k = np.arange(bins)[:, None] * bin_size + (np.arange(grid)[None, :] + 0.5) * bin_size / grid
    pos = (start + k).reshape(-1)
    valid = (pos >= -1.0) & (pos <= size)
    pos = np.maximum(pos, 0)
    low = pos.astype(np.int64)
    edge = low >= size - 1
    low = np.where(edge, size - 1, low)
    high = np.where(edge, size - 1, low + 1)
    frac = np.where(edge, 0.0, pos - low)
    return low, high, frac, valid


@cpu_kernel("RoiAlign", since=10)
def roi_align(ctx: KernelContext) -> Kernel:
    out_h, out_w = int(ctx.attr("output_height")), int(ctx.attr("output_width"))
    ratio, scale = int(ctx.attr("sampling_ratio")), float(ctx.attr("spatial_scale"))
    half_pixel = ctx.attr("coordinate_transformation_mode") == "half_pixel"
    use_max = ctx.attr("mode") == "max"

    def roi_align_(x, rois, batch_indices):
        n, channels, height, width = x.shape
        y = np.zeros((rois.shape[0], channels, out_h, out_w), np.float64)
        for r, (roi, b) in enumerate(zip(rois.astype(np.float64), batch_indices.reshape(-1),
                                         strict=True)):
            if not 0 <= b < n:
                raise ShapeError(f"RoiAlign batch index {b} is outside [0, {n})")
            offset = 0.5 if half_pixel else 0.0
            x0, y0, x1, y1 = roi * scale - offset
            roi_w, roi_h = x1 - x0, y1 - y0
            if not half_pixel:  # malformed ROIs are forced to 1x1
                roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
            bin_h, bin_w = roi_h / out_h, roi_w / out_w
            grid_h = ratio if ratio > 0 else int(np.ceil(roi_h / out_h))
            grid_w = ratio if ratio > 0 else int(np.ceil(roi_w / out_w))
            yl, yh, ly, vy = _axis_samples(y0, bin_h, out_h, grid_h, height)
            xl, xh, lx, vx = _axis_samples(x0, bin_w, out_w, grid_w, width)
            valid = (vy[:, None] & vx[None, :]).astype(np.float64)
            hy, hx = 1 - ly, 1 - lx
            img = x[b].astype(np.float64)
            taps = [(hy[:, None] * hx[None, :], yl, xl), (hy[:, None] * lx[None, :], yl, xh),
                    (ly[:, None] * hx[None, :], yh, xl), (ly[:, None] * lx[None, :], yh, xh)]
            weighted = [w * valid * img[:, yi[:, None], xi[None, :]] for w, yi, xi in taps]
            shape = (channels, out_h, grid_h, out_w, grid_w)
            if use_max:  # onnxruntime's max mode: the largest weighted corner of any sample
                y[r] = np.max(np.maximum.reduce(weighted).reshape(shape), axis=(2, 4))
            else:
                count = max(grid_h * grid_w, 1)
                y[r] = np.sum(np.sum(weighted, axis=0).reshape(shape), axis=(2, 4)) / count
        return y.astype(x.dtype)

    return roi_align_


def bilinear_zero_padded(img: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """img [C, H, W] sampled at real (ys, xs) (same shapes), corners outside the image count
    as 0: [C, *ys.shape]."""
    _, height, width = img.shape
    y0, x0 = np.floor(ys), np.floor(xs)
    out = np.zeros((img.shape[0],) + ys.shape, np.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            yi, xi = (y0 + dy).astype(np.int64), (x0 + dx).astype(np.int64)
            w = (1 - np.abs(ys - (y0 + dy))) * (1 - np.abs(xs - (x0 + dx)))
            inside = (yi >= 0) & (yi < height) & (xi >= 0) & (xi < width)
            vals = img[:, np.clip(yi, 0, height - 1), np.clip(xi, 0, width - 1)]
            out += vals * (w * inside)
    return out


@cpu_kernel("DeformConv", since=19)
def deform_conv(ctx: KernelContext) -> Kernel:
    group, offset_groups = int(ctx.attr("group")), int(ctx.attr("offset_group"))

    def deform_conv_(x, w, offset, b=None, mask=None):
        n, channels, _, _ = x.shape
        out_channels = w.shape[0]
        kh, kw = ctx.attr("kernel_shape") or w.shape[2:]
        sh, sw = ctx.attr("strides") or [1, 1]
        dh, dw = ctx.attr("dilations") or [1, 1]
        pads = ctx.attr("pads") or [0, 0, 0, 0]
        oh, ow = offset.shape[2:]
        taps = kh * kw
        if channels != w.shape[1] * group or channels % offset_groups or \
                offset.shape[1] != offset_groups * 2 * taps:
            raise ShapeError(f"DeformConv X {list(x.shape)}, W {list(w.shape)}, offset "
                             f"{list(offset.shape)} do not fit group {group} / offset_group "
                             f"{offset_groups}")
        off = offset.reshape(n, offset_groups, kh, kw, 2, oh, ow)
        m = np.ones((n, offset_groups, kh, kw, oh, ow)) if mask is None else \
            mask.reshape(n, offset_groups, kh, kw, oh, ow)
        base_y = (np.arange(oh) * sh - pads[0])[None, None, :, None] + \
            (np.arange(kh) * dh)[:, None, None, None]
        base_x = (np.arange(ow) * sw - pads[1])[None, None, None, :] + \
            (np.arange(kw) * dw)[None, :, None, None]
        per_group = channels // offset_groups
        cols = np.zeros((n, channels, kh, kw, oh, ow), np.float64)
        for i in range(n):
            for g in range(offset_groups):
                ys = base_y + off[i, g, :, :, 0]
                xs = base_x + off[i, g, :, :, 1]
                sampled = bilinear_zero_padded(x[i, g * per_group:(g + 1) * per_group], ys, xs)
                cols[i, g * per_group:(g + 1) * per_group] = sampled * m[i, g]
        cin = channels // group
        cols = cols.reshape(n, group, cin * taps, oh * ow)
        wg = w.reshape(group, out_channels // group, cin * taps).astype(np.float64)
        y = np.einsum("gok,ngkp->ngop", wg, cols).reshape(n, out_channels, oh, ow)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y.astype(x.dtype)

    return deform_conv_
