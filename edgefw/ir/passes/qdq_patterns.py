"""Graph queries shared by the QDQ passes: what a ``QuantizeLinear``/``DequantizeLinear``
pair says about a tensor, and the TFLite parameter arithmetic those passes precompute.

A quantized activation in the QDQ contract (``quantize/qdq.py``) is ``t_q`` (int8, uint8
or int16) read through ``DequantizeLinear(t_q, scale, zero_point)`` with a constant scalar
scale and zero point; a weight is ``DequantizeLinear(w_q, scale, zero_point, axis)`` with
a constant int8 ``w_q``, per-tensor or per-axis scale and zero point 0. These helpers say
yes only to exactly that; anything else leaves the node float.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefw.errors import QuantizationError
from edgefw.ir.graph import constant_data
from edgefw.ir.passes.base import single_consumer
from edgefw.ir.passes.fuse_activation_pass import activation_spec

if TYPE_CHECKING:
    from edgefw.ir.graph import Graph, Node, Value

#: Activation dtypes the integer kernels take (int16 = TFLite's 16x8 mode).
ACTIVATION_DTYPES = ("int8", "uint8", "int16")
# Scales that differ by less than this (relative) are "equal": float32 products computed
# in a different order differ in the last bit, far below anything that moves a rounding.
_SCALE_RTOL = 1e-6


def _round_half_away(x: float) -> int:
    """C's ``std::round``."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``(quantized_multiplier, shift)`` with
    ``real = quantized_multiplier * 2**(shift - 31)`` and ``quantized_multiplier`` in
    ``[2**30, 2**31)`` (0 for 0 or for multipliers below ``2**-32``, flushed to zero).

    >>> quantize_multiplier(0.5), quantize_multiplier(1.0)
    ((1073741824, 0), (1073741824, 1))
    """
    real = float(real_multiplier)
    if not math.isfinite(real) or real < 0:
        raise QuantizationError(f"requantization multiplier must be finite and >= 0, got "
                                f"{real_multiplier!r} (check the scales: scale > 0)")
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q_fixed = _round_half_away(mantissa * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise QuantizationError(f"requantization multiplier {real:g} is too large for a Q31 "
                                "multiplier with a shift <= 30")
    return q_fixed, shift


def quantize_multiplier_smaller_than_one_exp(real_multiplier: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplierSmallerThanOneExp`` (used by ADD): like
    :func:`quantize_multiplier` for ``0 < real < 1``; the shift is ``<= 0``."""
    if not 0.0 < float(real_multiplier) < 1.0:
        raise QuantizationError(f"multiplier {real_multiplier!r} must be in (0, 1)")
    return quantize_multiplier(real_multiplier)


@dataclass(frozen=True)
class TensorQuant:
    """Per-tensor quantization of an activation: float32 scale, zero point, integer dtype."""

    scale: float
    zero_point: int
    dtype: str

    def same_as(self, other: TensorQuant) -> bool:
        return self.dtype == other.dtype and self.zero_point == other.zero_point and \
            math.isclose(self.scale, other.scale, rel_tol=_SCALE_RTOL, abs_tol=0.0)

    def quantize(self, value: float) -> int:
        """TFLite's activation-bound quantization: ``zp + round_half_away(f32(v) / scale)``."""
        ratio = float(np.float32(value) / np.float32(self.scale))
        return self.zero_point + int(math.copysign(math.floor(abs(ratio) + 0.5), ratio))

    @property
    def limits(self) -> tuple[int, int]:
        info = np.iinfo(self.dtype)
        return int(info.min), int(info.max)


def _scalar(value: Value | None) -> np.ndarray | None:
    data = None if value is None else constant_data(value)
    if data is None or data.size != 1:
        return None
    return data.reshape(())


def qdq_params(node: Node, quantized: Value) -> TensorQuant | None:
    """Per-tensor parameters of a QuantizeLinear/DequantizeLinear ``node`` whose integer
    side is ``quantized``; None for per-axis, blocked, non-constant or unsupported ones."""
    if node.domain != "" or node.attr("block_size"):
        return None
    scale = _scalar(node.inputs[1])
    zero_point = _scalar(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] is not None \
        else np.zeros((), quantized.dtype or "uint8")
    if scale is None or zero_point is None or quantized.dtype not in ACTIVATION_DTYPES:
        return None
    s = float(np.float32(scale))
    if not (math.isfinite(s) and s > 0):
        return None
    return TensorQuant(s, int(zero_point), quantized.dtype)


def dequantized_activation(graph: Graph, value: Value | None
                           ) -> tuple[Node, Value, TensorQuant] | None:
    """``(dq_node, t_q, params)`` when ``value`` is ``DequantizeLinear(t_q)`` per tensor."""
    node = None if value is None else graph.producer(value)
    if node is None or node.op_type != "DequantizeLinear" or node.domain != "":
        return None
    params = qdq_params(node, node.inputs[0])
    return None if params is None else (node, node.inputs[0], params)


def quantize_reader(graph: Graph, value: Value) -> tuple[Node, TensorQuant] | None:
    """``(q_node, params)`` when ``value``'s only reader is a per-tensor QuantizeLinear (and
    ``value`` is no graph output): the op producing ``value`` may then write ``q_node``'s
    integer output itself."""
    node = single_consumer(graph, value)
    if node is None or node.op_type != "QuantizeLinear" or node.domain != "" \
            or node.inputs[0] is not value:
        return None
    params = qdq_params(node, node.output)
    return None if params is None else (node, params)


@dataclass(frozen=True)
class QuantizedWeight:
    """A constant int8 weight behind DequantizeLinear: the integers, the float32 scale per
    channel along ``axis`` (None: one scale for the tensor), and the int8 constant."""

    data: np.ndarray
    scale: np.ndarray
    axis: int | None
    value: Value


def dequantized_weight(graph: Graph, value: Value | None) -> QuantizedWeight | None:
    """The int8 weight behind ``value = DequantizeLinear(w_q, scale, 0[, axis])``, with
    ``w_q`` and the parameters constant and the zero point 0 (symmetric)."""
    node = None if value is None else graph.producer(value)
    if node is None or node.op_type != "DequantizeLinear" or node.domain != "" \
            or node.attr("block_size"):
        return None
    data, scale = constant_data(node.inputs[0]), constant_data(node.inputs[1])
    if data is None or scale is None or data.dtype != np.int8 or scale.ndim > 1:
        return None
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        zero_point = constant_data(node.inputs[2])
        if zero_point is None or np.any(zero_point != 0):
            return None
    scale = np.asarray(scale, np.float32).reshape(-1)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        return None
    if scale.size == 1:
        return QuantizedWeight(data, scale, None, node.inputs[0])
    axis = int(node.attr("axis"))
    axis = axis + data.ndim if axis < 0 else axis
    if not 0 <= axis < data.ndim or data.shape[axis] != scale.size:
        return None
    return QuantizedWeight(data, scale, axis, node.inputs[0])


def quantized_constant(graph: Graph, value: Value | None
                       ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(q, scale)`` when ``value = DequantizeLinear(q, scale[, 0])`` of constants with a
    zero zero point (an int32 bias in QDQ form)."""
    node = None if value is None else graph.producer(value)
    if node is None or node.op_type != "DequantizeLinear" or node.domain != "":
        return None
    q, scale = constant_data(node.inputs[0]), constant_data(node.inputs[1])
    if q is None or scale is None:
        return None
    if len(node.inputs) > 2 and node.inputs[2] is not None:
        zero_point = constant_data(node.inputs[2])
        if zero_point is None or np.any(zero_point != 0):
            return None
    return q, np.asarray(scale, np.float64).reshape(-1)


def dequantized_constant(graph: Graph, value: Value | None) -> np.ndarray | None:
    """The float value of a constant, or of a DequantizeLinear of constants (computed as
    the DequantizeLinear kernel does), else None."""
    if value is None:
        return None
    data = constant_data(value)
    if data is not None:
        return data if data.dtype.kind == "f" else None
    node = graph.producer(value)
    if node is None or node.op_type != "DequantizeLinear" or node.domain != "":
        return None
    inputs = [constant_data(v) if v is not None else None for v in node.inputs]
    if any(d is None for d, v in zip(inputs, node.inputs, strict=True) if v is not None):
        return None
    return dequantize(inputs[0], inputs[1], inputs[2] if len(inputs) > 2 else None,
                      int(node.attr("axis")))


def dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None,
               axis: int) -> np.ndarray:
    """``(q - zero_point) * scale`` along ``axis`` in float32, like the CPU kernel."""
    def along(p: np.ndarray) -> np.ndarray:
        if p.size == 1 or q.ndim == 0:
            return p.reshape(())
        shape = [1] * q.ndim
        shape[axis % q.ndim] = p.size
        return p.reshape(shape)

    wide = q.astype(np.int64)
    if zero_point is not None:
        wide = wide - along(zero_point).astype(np.int64)
    return wide.astype(np.float32) * along(scale).astype(np.float32)


def output_chain(graph: Graph, node: Node) -> tuple[Node | None, Node, TensorQuant, Any] | None:
    """How ``node``'s output reaches its QuantizeLinear: ``(activation node or None, q_node,
    params, activation mark)``. The activation is ``node.meta["fused_activation"]`` or a
    Relu/Clip read only by the QuantizeLinear; None when the output goes anywhere else."""
    mark = node.meta.get("fused_activation")
    found = quantize_reader(graph, node.output)
    if found is not None:
        return None, found[0], found[1], mark
    if mark is not None:
        return None
    activation = single_consumer(graph, node.output)
    if activation is None or activation.op_type not in ("Relu", "Clip") \
            or activation.domain != "" or activation.inputs[0] is not node.output:
        return None
    spec = activation_spec(activation)
    found = quantize_reader(graph, activation.output)
    if spec is None or found is None:
        return None
    return activation, found[0], found[1], spec


def clamp_range(mark: Any, out: TensorQuant) -> tuple[int, int] | None:
    """The quantized-domain clamp of a fused Relu / Clip mark (TFLite's
    CalculateActivationRangeQuantized); None for activations a clamp cannot express."""
    qmin, qmax = out.limits
    if mark is None:
        return qmin, qmax
    name, args = (mark, ()) if isinstance(mark, str) else (mark[0], tuple(mark[1:]))
    if name == "Relu":
        return max(qmin, out.quantize(0.0)), qmax
    if name == "Clip":
        lo, hi = (list(args) + [None, None])[:2]
        act_min = qmin if lo is None else max(qmin, out.quantize(lo))
        act_max = qmax if hi is None else min(qmax, out.quantize(hi))
        return (act_min, act_max) if act_min <= act_max else None
    return None


def remove_unused(graph: Graph, nodes: list[Node]) -> None:
    """Remove each of ``nodes`` (in order) whose outputs nothing reads any more, then the
    constants only they read."""
    inputs: list[Value] = []
    for node in nodes:
        if node not in graph.nodes:
            continue
        if any(graph.consumers(v) or graph.is_output(v) for v in node.outputs):
            continue
        inputs.extend(v for v in node.inputs if v is not None)
        graph.remove_node(node)
    for value in inputs:
        if graph.constants.get(value.name) is value and not graph.consumers(value) \
                and not graph.is_output(value):
            graph.remove_constant(value)


def take_over_output(graph: Graph, node: Node, q_node: Node) -> None:
    """``node`` (now integer) replaces ``q_node``: readers of the QuantizeLinear output read
    ``node``'s output, which takes its name and quantization parameters."""
    old = q_node.output
    name = old.name
    node.output.quant = old.quant
    graph.replace_all_uses(old, node.output)
    graph.remove_node(q_node)
    if node.output.name != name and not graph.has_value(name):
        graph.rename_value(node.output, name)


__all__ = [
    "ACTIVATION_DTYPES",
    "quantize_multiplier",
    "quantize_multiplier_smaller_than_one_exp",
    "QuantizedWeight",
    "TensorQuant",
    "clamp_range",
    "dequantize",
    "dequantized_activation",
    "dequantized_constant",
    "dequantized_weight",
    "output_chain",
    "qdq_params",
    "quantize_reader",
    "quantized_constant",
    "remove_unused",
    "take_over_output",
]
