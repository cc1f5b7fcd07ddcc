"""Activations written as several ONNX nodes where the target opset lacks the op, and the
activations passes fused into Conv/Gemm/MatMul/Add.

The decompositions follow the function bodies the ONNX specification gives for these ops,
so onnxruntime (which pattern-matches them back into fused kernels) computes the same
numbers:

- ``Gelu`` (before 20): ``0.5 * x * (1 + Erf(x / sqrt(2)))``, or with
  ``approximate="tanh"`` ``0.5 * x * (1 + Tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))``;
- ``HardSwish`` (before 14): ``x * HardSigmoid(x, alpha=1/6, beta=1/2)``;
- ``Mish`` (before 18): ``x * Tanh(Softplus(x))``;
- ``Swish`` (before 24): ``x * Sigmoid(alpha * x)``;
- ``SwiGLU`` (before 28): ``a * Sigmoid(alpha * a) * b``.

``node.meta["fused_activation"]`` (see ``FuseActivationPass``) becomes an explicit
activation node again after its producer: ONNX has no fused-activation field.
"""

from __future__ import annotations

import math
from typing import Any

from exporter.onnx.emitter import NodeWriter
from exporter.onnx.opset import rewrite, write_as_is


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


@rewrite("HardSwish")
def _hard_swish(writer: NodeWriter) -> None:
    if writer.opset >= 14:
        write_as_is(writer)
        return
    x = writer.inputs[0]
    gate = writer.emit("HardSigmoid", [x], attrs={"alpha": 1.0 / 6.0, "beta": 0.5},
                       step="hard_sigmoid")
    writer.emit("Mul", [x, gate], writer.outputs)


@rewrite("Mish")
def _mish(writer: NodeWriter) -> None:
    if writer.opset >= 18:
        write_as_is(writer)
        return
    x = writer.inputs[0]
    softplus = writer.emit("Softplus", [x], step="softplus")
    writer.emit("Mul", [x, writer.emit("Tanh", [softplus], step="tanh")], writer.outputs)


@rewrite("Swish")
def _swish(writer: NodeWriter) -> None:
    if writer.opset >= 24:  # beyond the opsets to_onnx writes; kept for when it grows
        write_as_is(writer)
        return
    x = writer.inputs[0]
    alpha = float(writer.attrs.get("alpha", 1.0))
    scaled = x if alpha == 1.0 else writer.emit(
        "Mul", [x, writer.scalar(alpha, writer.dtype, "alpha")], step="scaled")
    writer.emit("Mul", [x, writer.emit("Sigmoid", [scaled], step="sigmoid")], writer.outputs)


@rewrite("SwiGLU")
def _swiglu(writer: NodeWriter) -> None:
    if writer.opset >= 28:  # beyond the opsets to_onnx writes; kept for when it grows
        write_as_is(writer)
        return
    a, b = writer.inputs[0], writer.inputs[1]
    alpha = float(writer.attrs.get("alpha", 1.0))
    scaled = a if alpha == 1.0 else writer.emit(
        "Mul", [a, writer.scalar(alpha, writer.dtype, "alpha")], step="scaled")
    gated = writer.emit("Mul", [a, writer.emit("Sigmoid", [scaled], step="sigmoid")],
                        step="swish")
    writer.emit("Mul", [gated, b], writer.outputs)


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
