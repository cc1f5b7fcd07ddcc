"""Normalization ops decomposed where the target opset lacks their IR form.

All three follow the ONNX function bodies: statistics in ``stash_type`` (float32; float16
inputs are cast to it and the normalized value cast back before the affine part), then

- ``LayerNormalization`` (before 17): ``ReduceMean -> Sub -> Pow 2 -> ReduceMean -> Add
  eps -> Sqrt -> Div -> Mul scale -> Add bias`` over ``axis..rank-1``; the optional Mean
  and InvStdDev outputs are written when the node has them;
- ``GroupNormalization`` (before 21): the same statistics over ``Reshape(x, [0, G, -1])``,
  reshaped back to ``Shape(x)``, then a per-channel scale and bias. GroupNormalization-18
  exists but scales per *group*; the IR's (opset 21) scales per channel, so 18..20 get the
  decomposition too;
- ``RMSNormalization`` (an opset-23 op, always decomposed here): ``x / Sqrt(ReduceMean(x *
  x) + eps) * scale``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgefw.errors import DTypeError
from edgefw.ir.dtypes import FLOAT_DTYPES, from_onnx, to_onnx
from exporter.onnx.emitter import NodeWriter
from exporter.onnx.opset import reduce_node, rewrite, write_as_is


def _stash_dtype(writer: NodeWriter) -> str:
    code = writer.attrs.get("stash_type", 1)
    try:
        stash = from_onnx(int(code))
    except DTypeError:
        stash = None
    if stash not in FLOAT_DTYPES:
        writer.fail(f"stash_type {code} is not a float type")
    return stash


def _cast(writer: NodeWriter, x: str, source: str, target: str, step: str) -> str:
    if source == target:
        return x
    return writer.emit("Cast", [x], attrs={"to": to_onnx(target)}, step=step)


def _normalized_axes(writer: NodeWriter) -> list[int]:
    """``axis..rank-1`` (negative axes when the rank is unknown but the axis is negative)."""
    rank = writer.value(0).rank
    axis = int(writer.attrs.get("axis", -1))
    if axis < 0:
        return list(range(axis, 0))
    if rank is None:
        writer.fail(f"{writer.node.op_type} with a non-negative axis needs a known input rank "
                    "to be decomposed")
    return list(range(axis, rank))


def _standardize(writer: NodeWriter, x: str, axes: Sequence[int], epsilon: float, dtype: str,
                 mean_output: str | None = None) -> tuple[str, str]:
    """(x - mean) / sqrt(var + epsilon) over ``axes``; returns (normalized, std)."""
    mean = reduce_node(writer, "ReduceMean", x, axes, keepdims=1, step="mean",
                       output=mean_output)
    centered = writer.emit("Sub", [x, mean], step="centered")
    squared = writer.emit("Pow", [centered, writer.scalar(2.0, dtype, "two")], step="squared")
    variance = reduce_node(writer, "ReduceMean", squared, axes, keepdims=1, step="variance")
    variance = writer.emit("Add", [variance, writer.scalar(epsilon, dtype, "epsilon")],
                           step="variance_eps")
    std = writer.emit("Sqrt", [variance], step="std")
    return writer.emit("Div", [centered, std], step="normalized"), std


def _affine(writer: NodeWriter, normalized: str, scale: str, bias: str) -> None:
    """``normalized * scale (+ bias)`` into the node's first output."""
    if bias:
        scaled = writer.emit("Mul", [normalized, scale], step="scaled")
        writer.emit("Add", [scaled, bias], [writer.outputs[0]])
    else:
        writer.emit("Mul", [normalized, scale], [writer.outputs[0]])


@rewrite("LayerNormalization")
def _layer_norm(writer: NodeWriter) -> None:
    if writer.opset >= 17:
        write_as_is(writer)
        return
    dtype, stash, outputs = writer.dtype, _stash_dtype(writer), writer.outputs
    axes = _normalized_axes(writer)
    x = _cast(writer, writer.inputs[0], dtype, stash, "cast_to_stash")
    normalized, std = _standardize(writer, x, axes, float(writer.attrs.get("epsilon", 1e-5)),
                                   stash, mean_output=outputs[1] if len(outputs) > 1 else None)
    if len(outputs) > 2:
        writer.emit("Reciprocal", [std], [outputs[2]], step="inv_std_dev")
    normalized = _cast(writer, normalized, stash, dtype, "cast_back")
    _affine(writer, normalized, writer.inputs[1], writer.inputs[2] if writer.has_input(2) else "")


@rewrite("RMSNormalization")
def _rms_norm(writer: NodeWriter) -> None:
    if writer.opset >= 23:  # beyond the opsets to_onnx writes; kept for when it grows
        write_as_is(writer)
        return
    dtype, stash = writer.dtype, _stash_dtype(writer)
    axes = _normalized_axes(writer)
    x = _cast(writer, writer.inputs[0], dtype, stash, "cast_to_stash")
    squared = writer.emit("Mul", [x, x], step="squared")
    mean_square = reduce_node(writer, "ReduceMean", squared, axes, keepdims=1,
                              step="mean_square")
    epsilon = writer.scalar(float(writer.attrs.get("epsilon", 1e-5)), stash, "epsilon")
    rms = writer.emit("Sqrt", [writer.emit("Add", [mean_square, epsilon], step="mean_square_eps")],
                      step="rms")
    normalized = _cast(writer, writer.emit("Div", [x, rms], step="normalized"), stash, dtype,
                       "cast_back")
    _affine(writer, normalized, writer.inputs[1], "")


@rewrite("GroupNormalization")
def _group_norm(writer: NodeWriter) -> None:
    if writer.opset >= 21:
        write_as_is(writer)
        return
    dtype, stash = writer.dtype, _stash_dtype(writer)
    rank = writer.value(0).rank
    if rank is None or rank < 2:
        writer.fail("GroupNormalization needs an input of known rank >= 2 to be decomposed "
                    "before opset 21")
    groups = int(writer.attrs["num_groups"])
    x = _cast(writer, writer.inputs[0], dtype, stash, "cast_to_stash")
    grouped = writer.emit("Reshape", [x, writer.ints([0, groups, -1], "group_shape")],
                          step="grouped")
    normalized, _ = _standardize(writer, grouped, [2], float(writer.attrs.get("epsilon", 1e-5)),
                                 stash)
    # Back to x's shape: a constant one ([0, C, spatial...]) where x's dims are static past
    # the batch, so ONNX shape inference keeps them; else Shape(x) at run time.
    dims = writer.value(0).shape[1:]
    if all(isinstance(d, int) for d in dims):
        x_shape = writer.ints([0, *dims], "input_shape")
    else:
        x_shape = writer.emit("Shape", [writer.inputs[0]], step="input_shape")
    normalized = writer.emit("Reshape", [normalized, x_shape], step="ungrouped")
    normalized = _cast(writer, normalized, stash, dtype, "cast_back")
    # Per-channel parameters [C] broadcast against [N, C, spatial...] as [C, 1, ...].
    channel_shape = [-1] + [1] * (rank - 2)
    scale, bias = (_channel_param(writer, i, channel_shape, name)
                   for i, name in ((1, "scale"), (2, "bias")))
    _affine(writer, normalized, scale, bias)


def _channel_param(writer: NodeWriter, i: int, shape: list[int], name: str) -> str:
    data = writer.const(i)
    if data is not None:
        return writer.emitter.constant(np.asarray(data).reshape(shape),
                                       f"{writer.inputs[i]}/per_channel")
    return writer.emit("Reshape", [writer.inputs[i], writer.ints(shape, f"{name}_shape")],
                       step=f"{name}_per_channel")


__all__: list[str] = []
