"""Schemas of the signal-processing ops: HannWindow, HammingWindow, BlackmanWindow,
MelWeightMatrix, DFT (opset 20: dft_length and axis as inputs) and STFT.

Complex tensors are real ones with a last axis of 2 (real, imaginary); a real signal may
have a last axis of 1.
"""

from __future__ import annotations

from edgefw.errors import ShapeError
from edgefw.ir.dtypes import FLOAT_DTYPES, from_onnx
from edgefw.ir.schema.dims import Dim, format_shape, normalize_axis
from edgefw.ir.schema.registry import Attr, InferenceContext, TensorType, op_schema


def _scalar_int(ctx: InferenceContext, i: int) -> int | None:
    values = ctx.const_ints(i) if ctx.has_input(i) else None
    if values is None:
        return None
    if len(values) != 1:
        raise ShapeError(f"{ctx.schema.op_type} input {i} must be a scalar, got {values}")
    return values[0]


def _window(ctx: InferenceContext) -> list[TensorType]:
    ctx.require_dtype(0, {"int32", "int64"}, "window size")
    size = _scalar_int(ctx, 0)
    if size is not None and size < 0:
        raise ShapeError(f"{ctx.schema.op_type} size must not be negative, got {size}")
    return [TensorType(from_onnx(ctx.attr("output_datatype")), (size,))]


_WINDOW_ATTRS = [Attr("output_datatype", "int", 1), Attr("periodic", "int", 1)]
for _op, _doc in {"HannWindow": "sin^2(pi n / N)",
                  "HammingWindow": "25/46 - 21/46 cos(2 pi n / N)",
                  "BlackmanWindow": "0.42 - 0.5 cos(2 pi n / N) + 0.08 cos(4 pi n / N)"}.items():
    op_schema(_op, attrs=_WINDOW_ATTRS, since_version=17,
              doc=f"the window {_doc}, N = size (periodic) or size - 1")(_window)


@op_schema("MelWeightMatrix", inputs=5, attrs=[Attr("output_datatype", "int", 1)],
           since_version=17, doc="[dft_length/2 + 1, num_mel_bins] triangular mel filter bank")
def _mel_weight_matrix(ctx: InferenceContext) -> list[TensorType]:
    bins, dft_length = _scalar_int(ctx, 0), _scalar_int(ctx, 1)
    rows = None if dft_length is None else dft_length // 2 + 1
    return [TensorType(from_onnx(ctx.attr("output_datatype")), (rows, bins))]


def _complex_input(ctx: InferenceContext) -> tuple[Dim, ...] | None:
    ctx.require_dtype(0, FLOAT_DTYPES)
    x = ctx.shape(0)
    if x is not None and (len(x) < 2 or x[-1] not in (1, 2, None)):
        raise ShapeError(f"{ctx.schema.op_type} input must end in 1 (real) or 2 (complex), got "
                         f"{format_shape(x)}")
    return x


@op_schema("DFT", inputs=(1, 3), attrs=[Attr("inverse", "int", 0), Attr("onesided", "int", 0)],
           since_version=20, doc="discrete Fourier transform along the axis input (default -2)")
def _dft(ctx: InferenceContext) -> list[TensorType]:
    x = _complex_input(ctx)
    if x is None:
        return [TensorType(ctx.dtype(0), None)]
    axis = _scalar_int(ctx, 2)
    if ctx.has_input(2) and axis is None:
        return [TensorType(ctx.dtype(0), (None,) * (len(x) - 1) + (None,))]
    a = normalize_axis(-2 if axis is None else axis, len(x) - 1, "DFT axis")
    length = _scalar_int(ctx, 1) if ctx.has_input(1) else None
    inverse, onesided = bool(ctx.attr("inverse")), bool(ctx.attr("onesided"))
    n: Dim
    if ctx.has_input(1):
        n = length
    elif inverse and onesided:
        n = 2 * (x[a] - 1) if isinstance(x[a], int) else None
    else:
        n = x[a]
    out = list(x)
    out[a] = n // 2 + 1 if (onesided and not inverse and isinstance(n, int)) else (
        None if onesided and not inverse else n)
    out[-1] = 1 if inverse and onesided else 2
    return [TensorType(ctx.dtype(0), tuple(out))]


@op_schema("STFT", inputs=(2, 4), attrs=[Attr("onesided", "int", 1)], since_version=17,
           doc="short-time Fourier transform: [batch, frames, bins, 2]")
def _stft(ctx: InferenceContext) -> list[TensorType]:
    x = _complex_input(ctx)
    if x is not None and len(x) != 3:
        raise ShapeError(f"STFT signal must be [batch, length, 1 or 2], got {format_shape(x)}")
    step = _scalar_int(ctx, 1)
    window = ctx.shape(2) if ctx.has_input(2) else None
    frame = _scalar_int(ctx, 3) if ctx.has_input(3) else (
        window[0] if window is not None and isinstance(window[0], int) else None)
    if step is not None and step < 1:
        raise ShapeError(f"STFT frame_step must be positive, got {step}")
    batch = None if x is None else x[0]
    length = None if x is None else x[1]
    frames = bins = None
    if isinstance(length, int) and isinstance(frame, int) and step is not None:
        frames = 1 + (length - frame) // step
    if isinstance(frame, int):
        bins = frame // 2 + 1 if ctx.attr("onesided") else frame
    return [TensorType(ctx.dtype(0), (batch, frames, bins, 2))]
