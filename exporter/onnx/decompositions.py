"""Ops written as several ONNX nodes: Gelu before opset 20, LayerNormalization before 17,
and the activations passes fused into Conv/Gemm/MatMul/Add.

The decompositions follow the function bodies the ONNX specification gives for these ops,
so onnxruntime (which pattern-matches them back into fused kernels) computes the same
numbers:

- ``Gelu``: ``0.5 * x * (1 + Erf(x / sqrt(2)))``, or with ``approximate="tanh"``
  ``0.5 * x * (1 + Tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))``;
- ``LayerNormalization``: ``ReduceMean -> Sub -> Pow 2 -> ReduceMean -> Add eps -> Sqrt
  -> Div -> Mul scale -> Add bias``, computed in ``stash_type`` (float32) with Casts around
  it for float16 inputs; the optional Mean and InvStdDev outputs are written when the node
  has them.

``node.meta["fused_activation"]`` (see ``FuseActivationPass``) becomes an explicit
activation node again after its producer: ONNX has no fused-activation field.
"""

from __future__ import annotations

import math
from typing import Any

from edgefw.errors import DTypeError
from edgefw.ir.dtypes import FLOAT_DTYPES, from_onnx, to_onnx
from exporter.onnx.emitter import NodeWriter
from exporter.onnx.opset import reduce_node, rewrite, write_as_is


@rewrite("Gelu")
def _gelu(writer: NodeWriter) -> None:
    if writer.opset >= 20:
        write_as_is(writer)
        return
    x, dtype = writer.inputs[0], writer.dtype
    if writer.attrs.get("approximate", "none") == "tanh":
        cube = writer.emit("Pow", [x, writer.scalar(3.0, dtype, "three")], step="cube")
        cube = writer.emit("Mul", [cube, writer.scalar(0.044715, dtype, "cubic_coef")],
                           step="cube_scaled")
        inner = writer.emit("Add", [x, cube], step="inner")
        inner = writer.emit("Mul", [inner, writer.scalar(math.sqrt(2.0 / math.pi), dtype,
                                                         "sqrt_2_over_pi")], step="tanh_arg")
        core = writer.emit("Tanh", [inner], step="tanh")
    else:
        scaled = writer.emit("Div", [x, writer.scalar(math.sqrt(2.0), dtype, "sqrt2")],
                             step="div")
        core = writer.emit("Erf", [scaled], step="erf")
    one_plus = writer.emit("Add", [core, writer.scalar(1.0, dtype, "one")], step="add_one")
    half_x = writer.emit("Mul", [x, writer.scalar(0.5, dtype, "half")], step="half_x")
    writer.emit("Mul", [half_x, one_plus], writer.outputs)


@rewrite("LayerNormalization")
def _layer_norm(writer: NodeWriter) -> None:
    if writer.opset >= 17:
        write_as_is(writer)
        return
    x, dtype = writer.inputs[0], writer.dtype
    rank = writer.value(0).rank
    axis = int(writer.attrs.get("axis", -1))
    if axis < 0:
        axes = list(range(axis, 0))  # negative axes work whatever the rank
    elif rank is None:
        writer.fail("LayerNormalization with a non-negative axis needs a known input rank to "
                    "be decomposed before opset 17")
    else:
        axes = list(range(axis, rank))
    try:
        stash = from_onnx(int(writer.attrs.get("stash_type", 1)))
    except DTypeError:
        stash = None
    if stash not in FLOAT_DTYPES:
        writer.fail(f"stash_type {writer.attrs.get('stash_type')} is not a float type")
    epsilon = float(writer.attrs.get("epsilon", 1e-5))
    outputs = writer.outputs
    if dtype != stash:
        x = writer.emit("Cast", [x], attrs={"to": to_onnx(stash)}, step="cast_to_stash")
    mean = reduce_node(writer, "ReduceMean", x, axes, keepdims=1, step="mean",
                       output=outputs[1] if len(outputs) > 1 else None)
    centered = writer.emit("Sub", [x, mean], step="centered")
    squared = writer.emit("Pow", [centered, writer.scalar(2.0, stash, "two")], step="squared")
    variance = reduce_node(writer, "ReduceMean", squared, axes, keepdims=1, step="variance")
    variance = writer.emit("Add", [variance, writer.scalar(epsilon, stash, "epsilon")],
                           step="variance_eps")
    std = writer.emit("Sqrt", [variance], step="std")
    normalized = writer.emit("Div", [centered, std], step="normalized")
    if len(outputs) > 2:
        writer.emit("Reciprocal", [std], [outputs[2]], step="inv_std_dev")
    if dtype != stash:
        normalized = writer.emit("Cast", [normalized], attrs={"to": to_onnx(dtype)},
                                 step="cast_back")
    if writer.has_input(2):
        scaled = writer.emit("Mul", [normalized, writer.inputs[1]], step="scaled")
        writer.emit("Add", [scaled, writer.inputs[2]], [outputs[0]])
    else:
        writer.emit("Mul", [normalized, writer.inputs[1]], [outputs[0]])


def parse_fused_activation(spec: Any) -> tuple[str, tuple]:
    """``"Relu"``, ``("Clip", 0.0, 6.0)``, ``["LeakyRelu", 0.1]`` -> (op type, arguments)."""
    if isinstance(spec, str):
        return spec, ()
    if isinstance(spec, (tuple, list)) and spec and isinstance(spec[0], str):
        return spec[0], tuple(spec[1:])
    return repr(spec), ()


def write_fused_activation(writer: NodeWriter, spec: Any, source: str, output: str) -> None:
    """Write the activation ``spec`` (``node.meta["fused_activation"]``) reading ``source``
    and producing ``output``."""
    op, args = parse_fused_activation(spec)
    step = op.lower()
    if op in ("Relu", "Sigmoid", "Tanh") and not args:
        writer.emit(op, [source], [output], step=step)
    elif op == "LeakyRelu" and len(args) <= 1:
        alpha = float(args[0]) if args else 0.01
        writer.emit(op, [source], [output], {"alpha": alpha}, step=step)
    elif op == "Clip" and len(args) <= 2:
        dtype = writer.node.outputs[0].dtype
        bounds = [
            "" if bound is None else writer.scalar(float(bound), dtype, f"clip_{which}")
            for bound, which in zip((*args, None, None)[:2], ("min", "max"))
        ]
        writer.emit("Clip", [source, *bounds], [output], step=step)
    else:
        writer.fail(f"its fused activation {spec!r} is not one of Relu, Sigmoid, Tanh, "
                    "('LeakyRelu', alpha), ('Clip', lo, hi)")


__all__ = ["parse_fused_activation", "write_fused_activation"]
