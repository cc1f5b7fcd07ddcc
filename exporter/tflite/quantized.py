"""Quantized graphs: the IR's QDQ form written as TFLite's quantized tensors.

TFLite stores quantization *on tensors* (int8 data + scale/zero point), the IR as
``QuantizeLinear`` / ``DequantizeLinear`` nodes (../shared/DESIGN.md). The mapping:

- ``DequantizeLinear(constant)`` is a weight: an int8 (or int32 bias) constant tensor with
  per-channel ``quantized_dimension`` where the op takes it so (int8 and hybrid kernels),
  else that constant + DEQUANTIZE (evaluated once by the interpreter). ``Cast(float16
  constant)`` likewise gives a float16 constant + DEQUANTIZE (TFLite's float16 form).
- ``QuantizeLinear(x)`` gives the int8 tensor of ``x``; a ``DequantizeLinear`` of it costs
  nothing unless some op needs the float value (then a DEQUANTIZE is written).
- An op whose inputs are all dequantized int8 activations and whose output is only
  quantized again runs as an int8 kernel: it reads the int8 tensors and writes the
  QuantizeLinear's tensor directly (``int8_plan``). Ops TFLite's int8 kernels constrain
  (pooling and data movement keep their input's scale) are requantized after them where
  the graph's parameters differ; kernels with a fixed output scale (SOFTMAX, LOGISTIC,
  TANH) are used only when the graph chose that scale.
- Any other op runs in float between DEQUANTIZE and QUANTIZE: the same arithmetic as the
  QDQ graph, so results agree whatever the quantizer chose.
- ``uint8`` activations are written as int8 with the zero point moved by -128 (the same
  real values); int16 activations ("16x8") run through float islands.

    >>> normalize_params(QParams(np.float32([0.5]), np.int64([128]), None, "uint8"))
    QParams(scale=array([0.5], dtype=float32), zero_point=array([0]), axis=None, dtype='int8')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edgefw.ir import Node, Value
from edgefw.ir.graph import constant_data
from exporter.tflite import layout
from exporter.tflite.lowering import LoweringContext, interface_perm, lowers
from exporter.tflite.model import TensorQuantization


@dataclass
class QParams:
    """Scale / zero point of a QDQ pair; ``axis`` None for per tensor."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None
    dtype: str

    @property
    def per_tensor(self) -> bool:
        return self.scale.size == 1

    def same_as(self, other: QParams) -> bool:
        return (self.dtype == other.dtype and self.scale.size == other.scale.size
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))

    def tflite(self, quantized_dimension: int = 0) -> TensorQuantization:
        return TensorQuantization(self.scale, self.zero_point, quantized_dimension)


def normalize_params(params: QParams) -> QParams:
    """uint8 parameters as the int8 ones that describe the same real values."""
    if params.dtype != "uint8":
        return params
    return QParams(params.scale, params.zero_point - 128, params.axis, "int8")


def _node_params(node: Node, data_dtype: str) -> QParams | None:
    """The (constant) scale / zero point of a QuantizeLinear or DequantizeLinear node."""
    scale = constant_data(node.inputs[1])
    zp_value = node.inputs[2] if len(node.inputs) > 2 else None
    zero_point = None if zp_value is None else constant_data(zp_value)
    if scale is None or (zp_value is not None and zero_point is None):
        return None
    scale = np.asarray(scale, np.float32).reshape(-1)
    zero_point = np.zeros(scale.size, np.int64) if zero_point is None else \
        np.asarray(zero_point, np.int64).reshape(-1)
    axis = None
    if scale.size > 1:
        rank = node.inputs[0].rank or 1
        axis = int(node.attr("axis")) % rank
    return QParams(scale, zero_point, axis, data_dtype)


def activation_source(value: Value | None) -> tuple[Value, QParams] | None:
    """``(q, params)`` when ``value`` is ``DequantizeLinear(q)`` of an int8/uint8 activation
    with per-tensor parameters (params normalized to int8)."""
    node = None if value is None else value.producer
    if node is None or node.op_type != "DequantizeLinear" or node.domain != "":
        return None
    q = node.inputs[0]
    if constant_data(q) is not None or q.dtype not in ("int8", "uint8"):
        return None
    params = _node_params(node, q.dtype)
    if params is None or not params.per_tensor:
        return None
    return q, normalize_params(params)


# ---------------------------------------------------------------------- weights
@dataclass
class WeightSource:
    """A constant operand as the graph stores it: ``data`` (float32, float16, int8, int32)
    and, for a DequantizeLinear'd constant, its parameters."""

    data: np.ndarray
    params: QParams | None = None

    @property
    def kind(self) -> str:
        if self.params is not None:
            return "quantized"
        return "float16" if self.data.dtype == np.float16 else "plain"

    def as_float(self) -> np.ndarray:
        if self.params is None:
            return self.data.astype(np.float32) if self.data.dtype == np.float16 else self.data
        p = self.params
        shape = [1] * self.data.ndim
        if p.axis is not None:
            shape[p.axis] = -1
        zp, scale = p.zero_point.reshape(shape), p.scale.reshape(shape)
        return ((self.data.astype(np.int64) - zp).astype(np.float32) * scale).astype(np.float32)


def weight_source(value: Value | None) -> WeightSource | None:
    """The constant behind ``value``: itself, ``DequantizeLinear(constant)`` or
    ``Cast(float16 constant)`` to float32; None for computed values."""
    if value is None:
        return None
    data = constant_data(value)
    if data is not None:
        return WeightSource(np.asarray(data))
    node = value.producer
    if node is None or node.domain != "":
        return None
    if node.op_type == "DequantizeLinear":
        raw = constant_data(node.inputs[0])
        params = _node_params(node, node.inputs[0].dtype) if raw is not None else None
        if raw is None or params is None:
            return None
        return WeightSource(np.asarray(raw), params)
    if node.op_type == "Cast" and value.dtype == "float32":
        raw = constant_data(node.inputs[0])
        if raw is not None and raw.dtype == np.float16:
            return WeightSource(np.asarray(raw))
    return None


def weight_tensor(ctx: LoweringContext, value: Value, *, perm: Sequence[int] | None = None,
                  rank: int | None = None, columns: np.ndarray | None = None,
                  multiplier: float = 1.0, keep_quantized: bool = False) -> int:
    """A constant operand, reshaped to ``rank`` dims (leading 1s), transposed by ``perm``,
    its last axis reordered by ``columns`` and scaled by ``multiplier``.

    The graph's precision is kept in the file: a quantized or float16 constant is written
    as such, then DEQUANTIZE'd to float32 unless ``keep_quantized`` (int8/hybrid kernels
    read int8 weights with their per-channel ``quantized_dimension`` directly)."""
    source = weight_source(value)
    if source is None:
        raise ctx.fail(f"operand {value.name!r} must be a constant (or a quantized / "
                       "float16 constant) for this TFLite op")
    if source.params is not None and source.data.dtype not in (np.int8, np.uint8) \
            and not keep_quantized:
        source = WeightSource(source.as_float())  # DEQUANTIZE reads no int32 (biases)
    data = source.data
    pad = 0 if rank is None else rank - data.ndim
    if pad > 0:
        data = data.reshape((1,) * pad + data.shape)
    perm = layout.identity(data.ndim) if perm is None else tuple(perm)
    data = np.transpose(data, perm)
    if columns is not None:
        data = np.take(data, columns, axis=-1)
    data = np.ascontiguousarray(data)
    name = value.name
    if source.kind == "plain":
        if multiplier != 1.0:
            data = (data * np.float32(multiplier)).astype(data.dtype)
        return ctx.model.add_constant(name, data)
    if source.kind == "float16":
        if multiplier != 1.0:
            data = (data.astype(np.float32) * np.float32(multiplier)).astype(np.float16)
        tensor = ctx.model.add_constant(f"{name}/float16", data)
    else:
        p = source.params
        axis = 0
        scale = p.scale * np.float32(multiplier)
        zero_point = p.zero_point
        if p.axis is not None:
            axis = layout.inverse(perm)[p.axis + pad]
            if columns is not None and axis == data.ndim - 1:
                scale, zero_point = scale[columns], zero_point[columns]
        quant = TensorQuantization(scale, zero_point, axis)
        if p.dtype == "uint8":  # TFLite's int8 kernels: shift to int8, same real values
            data = (data.astype(np.int16) - 128).astype(np.int8)
            quant = TensorQuantization(scale, zero_point - 128, axis)
        tensor = ctx.model.add_constant(f"{name}/quantized", data, quantization=quant)
        if keep_quantized:
            return tensor
    out = ctx.model.add_tensor(f"{name}/dequantized", "float32", data.shape)
    ctx.emit("DEQUANTIZE", [tensor], [out])
    return out


# ---------------------------------------------------------------------- int8 kernels
@dataclass
class Int8Plan:
    """An op that runs as an int8 kernel: its activation inputs' int8 sources and the
    QuantizeLinear nodes whose tensor it writes."""

    inputs: list[tuple[Value, QParams]]
    q_nodes: list[Node]
    out_params: QParams


def int8_plan(ctx: LoweringContext, node: Node, activations: Sequence[int]) -> Int8Plan | None:
    """An :class:`Int8Plan` when inputs ``activations`` are dequantized int8 activations and
    the single output is read only by QuantizeLinear nodes with equal int8 parameters."""
    if len(node.outputs) != 1 or ctx.graph.is_output(node.output):
        return None
    sources = []
    for i in activations:
        source = activation_source(node.inputs[i] if i < len(node.inputs) else None)
        if source is None or source[1].dtype != "int8":
            return None
        sources.append(source)
    readers = ctx.consumers(node.output)
    if not readers or any(r.op_type != "QuantizeLinear" or r.domain != "" for r in readers):
        return None
    params = [_node_params(r, r.output.dtype) for r in readers]
    if any(p is None or not p.per_tensor or p.dtype not in ("int8", "uint8") for p in params):
        return None
    params = [normalize_params(p) for p in params]
    if any(not p.same_as(params[0]) for p in params[1:]):
        return None
    return Int8Plan(sources, readers, params[0])


def int8_output(ctx: LoweringContext, plan: Int8Plan, perm: Sequence[int], *,
                required: QParams | None = None) -> tuple[int, Callable[[], None]]:
    """The tensor an int8 op writes (bound to the QuantizeLinear outputs), and a function
    to call after writing the op. With ``required`` parameters that differ from the
    graph's, the op writes a temporary tensor that is then requantized (:func:`requantize`)."""
    value = plan.q_nodes[0].output
    final = ctx.new_tensor(value.name, value, perm, dtype="int8",
                           quantization=plan.out_params.tflite())
    for q in plan.q_nodes:
        ctx.bind(q.output, final, perm)
        ctx.done.add(id(q))
    if required is None or required.same_as(plan.out_params):
        return final, lambda: None
    temp = ctx.new_tensor(f"{value.name}/requantize", value, perm, dtype="int8",
                          quantization=required.tflite())
    return temp, lambda: requantize(ctx, temp, final, value, perm)


def requantize(ctx: LoweringContext, src: int, dst: int, value: Value,
               perm: Sequence[int]) -> None:
    """int8 ``src`` -> int8 ``dst`` with other parameters, through float: DEQUANTIZE is
    exact and QUANTIZE then rounds once, as the QDQ graph does. (An int8 -> int8 QUANTIZE
    rounds a fixed-point product, and XNNPACK's is one LSB off for ~5% of values.)"""
    real = ctx.new_tensor(f"{value.name}/requantize_float", value, perm, dtype="float32")
    ctx.emit("DEQUANTIZE", [src], [real])
    ctx.emit("QUANTIZE", [real], [dst])


def int8_input(ctx: LoweringContext, plan: Int8Plan, index: int,
               perm: Sequence[int] | None = None) -> int:
    """The int8 tensor of activation input ``index`` of ``plan`` (in ``perm``)."""
    q, _ = plan.inputs[index]
    return ctx.get(q, perm)


def requantized_input(ctx: LoweringContext, plan: Int8Plan, index: int, target: QParams,
                      perm: Sequence[int] | None = None) -> int:
    """Activation input ``index`` with ``target`` parameters (requantized if they differ)."""
    q, params = plan.inputs[index]
    tensor = ctx.get(q, perm)
    if params.same_as(target):
        return tensor
    moved = ctx.new_tensor(f"{q.name}/requantize", q, perm, dtype="int8",
                           quantization=target.tflite())
    requantize(ctx, tensor, moved, q, perm)
    return moved


def symmetric_int8_weight(value: Value | None) -> WeightSource | None:
    """A weight that int8 and hybrid kernels take: int8, zero point 0."""
    source = weight_source(value)
    if source is None or source.params is None or source.params.dtype != "int8":
        return None
    return source if not np.any(source.params.zero_point) else None


def int32_bias(ctx: LoweringContext, value: Value | None, input_scale: float,
               weight_scale: np.ndarray, channels: int, name: str,
               multiplier: float = 1.0) -> int:
    """The int32 bias of ``channels`` values TFLite's int8 kernels take, scale
    ``input_scale * weight_scale`` (per channel or one scale); a quantized bias is rescaled
    to exactly that scale, a float one quantized here. ``multiplier`` scales its values."""
    scale = (np.float32(input_scale) * weight_scale.astype(np.float32)).astype(np.float32)
    if value is None:
        real = np.zeros(channels, np.float64)
    else:
        source = weight_source(value)
        if source is None:
            raise ctx.fail(f"bias {value.name!r} must be constant")
        real = source.as_float().astype(np.float64).reshape(-1)
        if source.params is not None:  # exact when the quantizer used the same scale
            p = source.params
            real = (source.data.astype(np.float64).reshape(-1) - p.zero_point) \
                * p.scale.astype(np.float64)
    real = np.broadcast_to(real * multiplier, (channels,))
    q = np.clip(np.rint(real / scale.astype(np.float64)), -(2**31), 2**31 - 1).astype(np.int32)
    return ctx.model.add_constant(name, q, quantization=TensorQuantization(
        scale, np.zeros(scale.size, np.int64), 0))


def hybrid_weight(node: Node, index: int, activation: int = 0) -> WeightSource | None:
    """Dynamic-range quantization: a float activation with a symmetric int8 weight."""
    x = node.inputs[activation]
    producer = x.producer
    if x.dtype != "float32" or (producer is not None
                                and producer.op_type == "DequantizeLinear"):
        return None  # a quantized activation (int8, or int16 computed in float)
    return symmetric_int8_weight(node.inputs[index] if index < len(node.inputs) else None)


# ---------------------------------------------------------------------- Q / DQ / IO
@lowers("QuantizeLinear")
def _quantize_linear(ctx: LoweringContext, node: Node) -> None:
    q = node.output
    params = _node_params(node, q.dtype)
    if params is None:
        raise ctx.fail("scale and zero point must be constants")
    params = normalize_params(params)
    x = node.inputs[0]
    tensor, perm = ctx.stored(x)
    quantized_dimension = 0
    if params.axis is not None:
        quantized_dimension = layout.stored_axis(perm, params.axis)
    out = ctx.output(q, perm, dtype=params.dtype,
                     quantization=params.tflite(quantized_dimension))
    ctx.emit("QUANTIZE", [tensor], [out])


@lowers("DequantizeLinear")
def _dequantize_linear(ctx: LoweringContext, node: Node) -> None:
    if weight_source(node.output) is not None:
        return  # a weight: each reader writes it in the layout and precision it needs
    q, d = node.inputs[0], node.output

    def materialize() -> None:
        tensor, perm = ctx.stored(q)
        out = ctx.new_tensor(d.name, d, perm)
        ctx.emit("DEQUANTIZE", [tensor], [out])
        ctx.bind(d, out, perm)

    ctx.defer(d, materialize)


def bind_graph_inputs(ctx: LoweringContext) -> None:
    """Create the model's input tensors (int8 ones for ``int8_io``)."""
    for value in ctx.graph.inputs:
        perm = interface_perm(ctx, value)
        tensor = None
        if ctx.int8_io and value.dtype in ("float32", "float16"):
            tensor = _int8_input(ctx, value, perm)
        if tensor is None:
            tensor = ctx.output(value, perm)
        ctx.model.inputs.append(tensor)
    ctx.model.input_names = [v.name for v in ctx.graph.inputs]


def _int8_input(ctx: LoweringContext, value: Value, perm: Sequence[int]) -> int:
    readers = [n for n in ctx.consumers(value) if n.op_type == "QuantizeLinear"]
    params = [_node_params(r, r.output.dtype) for r in readers]
    usable = [(r, normalize_params(p)) for r, p in zip(readers, params)
              if p is not None and p.per_tensor and p.dtype in ("int8", "uint8")]
    if not usable:
        raise ctx.fail(f"int8_io: graph input {value.name!r} is not quantized (no "
                       "QuantizeLinear reads it); quantize the graph (quantize='int8') or "
                       "export with int8_io=False")
    first = usable[0][1]
    tensor = ctx.new_tensor(value.name, value, perm, dtype="int8",
                            quantization=first.tflite())
    for reader, p in usable:
        if p.same_as(first):
            ctx.bind(reader.output, tensor, perm)
            ctx.done.add(id(reader))
    if any(id(n) not in ctx.done for n in ctx.consumers(value)):
        def materialize() -> None:
            out = ctx.new_tensor(f"{value.name}/dequantized", value, perm)
            ctx.emit("DEQUANTIZE", [tensor], [out])
            ctx.bind(value, out, perm)

        ctx.defer(value, materialize)
    return tensor


def graph_output_tensor(ctx: LoweringContext, value: Value) -> int:
    """The tensor written as graph output ``value`` (int8 for ``int8_io``)."""
    perm = interface_perm(ctx, value)
    if ctx.int8_io:
        source = activation_source(value)
        if source is None:
            raise ctx.fail(f"int8_io: graph output {value.name!r} is not a dequantized int8 "
                           "value; quantize the graph (quantize='int8') or export with "
                           "int8_io=False")
        return ctx.get(source[0], perm)
    if value.dtype == "uint8" and value.producer is not None \
            and value.producer.op_type == "QuantizeLinear":
        raise ctx.fail(f"graph output {value.name!r} is uint8; TFLite's int8 kernels write "
                       "int8: end the graph with a DequantizeLinear or use int8")
    if constant_data(value) is not None or weight_source(value) is not None:
        raise ctx.fail(f"graph output {value.name!r} is a constant; TFLite outputs must be "
                       "computed")
    return ctx.get(value, perm)


__all__ = [
    "Int8Plan",
    "QParams",
    "WeightSource",
    "activation_source",
    "bind_graph_inputs",
    "graph_output_tensor",
    "hybrid_weight",
    "int32_bias",
    "int8_input",
    "int8_output",
    "int8_plan",
    "normalize_params",
    "requantize",
    "requantized_input",
    "symmetric_int8_weight",
    "weight_source",
    "weight_tensor",
]
